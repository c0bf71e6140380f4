/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine handle: its options, where things live, which CRIU it runs, and what it keeps
 * (ahead work, parents, staged images, network namespaces, uids) until it is freed or trimmed. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "config.h"
#include "criu.h"
#include "ahead.h"
#include "clone.h"
#include "netns.h"
#include "staging.h"
#include "internal.h"
#include "manifest.h"
#include "code_policy.h"
#include "uids.h"

static const char *first_of(const char *a, const char *env_name, const char *fallback)
{
        if (a && *a)
                return a;
        const char *v = getenv(env_name);
        return v && *v ? v : fallback;
}

static const char *default_templates_dir(void)
{
        struct stat st;
        if (stat(PW_SOURCE_TEMPLATES_DIR, &st) == 0 && S_ISDIR(st.st_mode))
                return PW_SOURCE_TEMPLATES_DIR;
        return PW_DEFAULT_TEMPLATES_DIR;
}

/* Every descriptor the engine hands to CRIU or a sandbox must be above 2, where their stdio goes.
 * A caller started with a closed stdio slot would otherwise get one of ours there. */
static void fill_closed_stdio(void)
{
        for (int fd = 0; fd <= 2; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
                        open("/dev/null", O_RDWR); /* takes the lowest free number: fd */
}

/* Nothing of the engine's is for anyone else: templates, run directories and (prewarmd's) blobs
 * are root-only, so not even a process outside the sandboxes can read another function's code. */
static int state_dirs_create(const pw_engine *e, pw_err *err)
{
        const char *subdirs[] = {"", "/templates", "/run"};
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
                _cleanup_free_ char *dir = strdup_printf("%s%s", e->state_dir, subdirs[i]);
                int r = dir ? mkdir_private(dir) : -ENOMEM;
                if (r < 0)
                        return err_set(err, r, "cannot create state dir %s: %s", dir ? dir : e->state_dir,
                                       r == -EPERM ? "owned by another user" : strerror(-r));
        }
        return 0;
}

PW_PUBLIC int pw_engine_new(const pw_options *caller_opts, pw_engine **ret)
{
        pw_options given = {0};
        const pw_options *opts = &given;
        if (!ret || (caller_opts && SIZED_IN(given, caller_opts) < 0))
                return -EINVAL;
        fill_closed_stdio();

        pw_engine *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        pthread_mutex_init(&e->lock, NULL);
        pthread_mutex_init(&e->stage_lock, NULL);
        e->netns = netns_pool_new();
        parents_new(&e->parents);
        e->ahead = ahead_new(e);
        e->flags = opts->flags;
        if (getenv("PREWARM_NO_IO_URING") && !strcmp(getenv("PREWARM_NO_IO_URING"), "1"))
                e->flags |= PW_ENGINE_NO_IO_URING;
        e->log = opts->log;
        e->log_userdata = opts->log_userdata;
        e->log_level = opts->log_level ? opts->log_level : PW_LOG_INFO;
        e->state_dir = strdup(first_of(opts->state_dir, "PREWARM_STATE_DIR", PW_DEFAULT_STATE_DIR));
        e->templates_dir = strdup(first_of(opts->templates_dir, "PREWARM_TEMPLATES_DIR",
                                           default_templates_dir()));
        if (!e->state_dir || !e->templates_dir || !e->netns || !e->ahead || !e->parents) {
                pw_engine_free(e);
                return -ENOMEM;
        }

        pw_err err = {""};
        int r = criu_locate(first_of(opts->criu_path, "PREWARM_CRIU", NULL), &e->criu_argv, &err);
        e->kdat_dir = criu_kdat_dir();
        e->zygote_helper = zygote_helper_locate();
        if (r >= 0)
                r = uid_pool_new(opts->uid_base, opts->uid_count, &e->uids, &err);
        if (r >= 0)
                r = state_dirs_create(e, &err);
        if (r < 0) {
                pw_log(e, PW_LOG_ERROR, "%s", err.msg);
                pw_engine_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

PW_PUBLIC pw_engine *pw_engine_free(pw_engine *e)
{
        if (!e)
                return NULL;
        engine_forget_errors(e);
        /* Its jobs hold namespaces and staged templates' files, its clones their parents, and its
         * thread reads the verified cache: it goes first. */
        ahead_free(e->ahead);
        parents_free(e->parents); /* instances: before the uids, cgroups and namespaces they hold */
        verified_cache_free(e->verified);
        staging_engine_done(e);
        netns_pool_free(e->netns);
        uid_pool_free(e->uids);
        code_policy_free(e->code_policy);
        pthread_mutex_destroy(&e->lock);
        pthread_mutex_destroy(&e->stage_lock);
        strv_free(e->criu_argv);
        free(e->zygote_helper);
        free(e->kdat_dir);
        free(e->state_dir);
        free(e->templates_dir);
        free(e);
        return NULL;
}

PW_PUBLIC const char *pw_version(void)
{
        return PW_VERSION;
}

PW_PUBLIC int pw_engine_trim(pw_engine *e)
{
        if (!e)
                return -EINVAL;
        ahead_drop(e->ahead, NULL);
        parents_trim(e);
        staging_engine_done(e);
        netns_pool_drain(e->netns);
        return 0;
}

PW_PUBLIC int pw_engine_restrict_code(pw_engine *e, const pw_code_policy *caller_p)
{
        pw_code_policy given;
        const pw_code_policy *p = &given;
        if (!e || !caller_p || SIZED_IN(given, caller_p) < 0)
                return -EINVAL;
        pw_err err = {""};
        code_policy *policy = NULL;
        int r = code_policy_new(p, &policy, &err);
        if (r < 0)
                return engine_fail(e, r, &err);
        code_policy_free(e->code_policy);
        e->code_policy = policy;
        return 0;
}


/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Template build: run the zygote in its sandbox until the agent says it is ready, checkpoint it
 * with CRIU, record a manifest, and move the result into the store in one rename.
 *
 * Store layout: STATE/templates/NAME/{manifest.json, images/, rootfs/, dump.log}; a build happens
 * in STATE/templates/.build-NAME and never disturbs the template it replaces until it succeeded.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include "ahead.h"
#include "agent.h"
#include "cgroup.h"
#include "criu.h"
#include "definition.h"
#include "internal.h"
#include "manifest.h"
#include "netns.h"
#include "sandbox.h"
#include "store.h"
#include "uids.h"
#include "zygote.h"

typedef struct build {
        pw_engine *e;
        template_def *def;
        char *dir;      /* .build-NAME */
        char *rootfs;
        char *images;
        cgroup *cg;
        pid_t pid;
        zygote_pipes pipes;
        bool clone; /* the agent loaded the clone helper */
        host_file *host_files; /* what the zygote maps of the host's /usr, for the manifest */
        size_t n_host_files;
} build;

/* Kills and reaps the zygote, removes the cgroup and the build directory. */
static void build_cleanup(build *b)
{
        kill_and_reap(b->pid);
        b->cg = cgroup_destroy(b->cg);
        zygote_pipes_close(&b->pipes);
        host_files_free(b->host_files, b->n_host_files);
        if (b->dir)
                rm_rf(b->dir);
        free(b->dir);
        free(b->rootfs);
        free(b->images);
        template_def_free(b->def);
}

char **zygote_env(const template_def *def)
{
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_free_ char *preload = NULL;
        size_t len = 1;
        for (char **p = def->preload; *p; p++)
                len += strlen(*p) + 1;
        preload = calloc(1, len + strlen("PREWARM_PRELOAD="));
        if (!preload)
                return NULL;
        strcpy(preload, "PREWARM_PRELOAD=");
        for (char **p = def->preload; *p; p++) {
                strcat(preload, *p);
                if (p[1])
                        strcat(preload, " ");
        }
        const char *base[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "TMPDIR=/tmp", preload};
        for (size_t i = 0; i < ELEMENTSOF(base); i++)
                if (strv_push(&env, base[i]) < 0)
                        return NULL;
        for (char **p = def->env; *p; p++)
                if (strv_push(&env, *p) < 0)
                        return NULL;
        return TAKE_PTR(env);
}

/* The last line the zygote wrote to stderr before it died, for the error message. */
static void stderr_tail(int fd, char *out, size_t size)
{
        out[0] = '\0';
        char buf[8192];
        ssize_t n = 0;
        for (;;) { /* keep the last chunk: the reason comes last (a traceback's final line) */
                char chunk[4096];
                ssize_t got = read(fd, chunk, sizeof(chunk));
                if (got <= 0)
                        break;
                size_t keep = (size_t)n + (size_t)got > sizeof(buf) - 1 ? sizeof(buf) - 1 - (size_t)got : (size_t)n;
                memmove(buf, buf + n - keep, keep);
                memcpy(buf + keep, chunk, (size_t)got);
                n = (ssize_t)(keep + (size_t)got);
        }
        if (n <= 0)
                return;
        buf[n] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = '\0';
        const char *last = strrchr(buf, '\n');
        str_copy(out, size, last ? last + 1 : buf);
}

int zygote_pipes_open(zygote_pipes *p, pw_err *err)
{
        if (pipe2(p->ctl_in, O_CLOEXEC) < 0 || pipe2(p->ctl_out, O_CLOEXEC) < 0 ||
            pipe2(p->errpipe, O_CLOEXEC) < 0)
                return err_set(err, negative_errno(), "pipe: %m");
        if (fd_set_nonblocking(p->ctl_in[1]) < 0 || fd_set_nonblocking(p->ctl_out[0]) < 0 ||
            fd_set_nonblocking(p->errpipe[0]) < 0)
                return err_set(err, negative_errno(), "fcntl: %m");
        /* Nobody reads stderr before the agent is ready: give it room so warnings never block it. */
        fcntl(p->errpipe[0], F_SETPIPE_SZ, 1 << 20);
        return 0;
}

void zygote_pipes_close(zygote_pipes *p)
{
        close_pair(p->ctl_in);
        close_pair(p->ctl_out);
        close_pair(p->errpipe);
}

/* The runtime's command line: the definition's runtime, then the agent's path in the sandbox. */
static char **zygote_argv(const template_def *def)
{
        _cleanup_free_ char *agent = rootfs_agent_path(def->agent_path);
        _cleanup_strv_free_ char **argv = NULL;
        if (!agent)
                return NULL;
        for (char **p = def->runtime; *p; p++)
                if (strv_push(&argv, *p) < 0)
                        return NULL;
        return strv_push(&argv, agent) < 0 ? NULL : TAKE_PTR(argv);
}

int zygote_start(const template_def *def, const char *rootfs, unsigned tmp_mb, const cgroup *cg,
                 uid_t uid, zygote_pipes *p, pid_t *ret_pid, pw_err *err)
{
        _cleanup_strv_free_ char **argv = zygote_argv(def);
        _cleanup_strv_free_ char **envp = zygote_env(def);
        if (!argv || !envp)
                return -ENOMEM;
        const zygote_params zp = {
                .rootfs = rootfs, .tmp_mb = tmp_mb, .argv = argv, .envp = envp,
                .ctl_in = p->ctl_in[0], .ctl_out = p->ctl_out[1], .stderr_w = p->errpipe[1], .cg = cg,
                .uid = uid, .gid = uid,
        };
        int r = zygote_spawn(&zp, ret_pid, err);
        close(p->ctl_in[0]);
        close(p->ctl_out[1]);
        close(p->errpipe[1]);
        p->ctl_in[0] = p->ctl_out[1] = p->errpipe[1] = -1;
        return r;
}

static int start_zygote(build *b, pw_err *err)
{
        const template_def *def = b->def;
        int r = zygote_pipes_open(&b->pipes, err);
        if (r < 0)
                return r;
        const cgroup_limits limits = {def->memory_mb, def->pids_max};
        _cleanup_free_ char *cg_name = strdup_printf("build-%s-%d", def->name, getpid());
        if (!cg_name)
                return -ENOMEM;
        if ((r = cgroup_create(cg_name, &limits, &b->cg, err)) < 0)
                return r;
        /* Builds share one uid: a zygote being built runs only the agent and its preloads, never
         * function code, and every restored copy gets a uid of its own (creds_image.h). */
        return zygote_start(def, b->rootfs, def->tmp_mb, b->cg, uid_builder(b->e->uids), &b->pipes, &b->pid, err);
}

int zygote_wait_ready(const zygote_pipes *p, const template_def *def, pid_t *pid, char **ret_runtime,
                      bool *ret_clone, pw_err *err)
{
        const agent_channel ch = {p->ctl_in[1], p->ctl_out[0]};
        uint64_t deadline = now_us() + (uint64_t)def->ready_timeout_ms * 1000;
        int r = agent_wait_ready(&ch, deadline, ret_runtime, ret_clone, err);
        if (r == -ECONNRESET) {
                char why[1024];
                int status = reap_within(*pid, 1000);
                *pid = 0;
                stderr_tail(p->errpipe[0], why, sizeof(why));
                return err_set(err, -ECHILD, "the zygote exited (%s %d) before it was ready%s%s",
                               WIFSIGNALED(status) ? "signal" : "status",
                               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                               why[0] ? ": " : "", why);
        }
        if (r == -ETIMEDOUT)
                return err_set(err, r, "the agent did not report ready within %u ms", def->ready_timeout_ms);
        return r;
}


static int checkpoint(build *b, pw_err *err)
{
        _cleanup_close_ int images_fd = open(b->images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int work_fd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_strv_free_ char **external = sandbox_externals(NULL, NULL);
        if (images_fd < 0 || work_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", b->dir);
        if (!external)
                return -ENOMEM;
        /* Its network namespace stays out of the images: restores join one made ahead (netns.c). */
        _cleanup_free_ char *netns_path = strdup_printf("/proc/%d/ns/net", (int)b->pid);
        struct stat netns_st;
        if (!netns_path || stat(netns_path, &netns_st) < 0)
                return err_set(err, negative_errno(), "stat %s: %m", netns_path ? netns_path : "netns");
        _cleanup_free_ char *netns_key = strdup_printf("net[%llu]:" NETNS_EXTERNAL_KEY,
                                                       (unsigned long long)netns_st.st_ino);
        if (!netns_key || strv_push(&external, netns_key) < 0)
                return -ENOMEM;
        /* What the images will name of the host, while the zygote still maps it. */
        int r = host_files_of(b->pid, &b->host_files, &b->n_host_files, err);
        if (r < 0)
                return r;
        const criu_dump_params p = {b->pid, uid_builder(b->e->uids), images_fd, work_fd,
                                    (const char *const *)external};
        r = criu_dump(b->e, &p, err);
        if (r < 0)
                return r;
        /* CRIU killed the zygote after the dump; reap it. */
        reap(b->pid);
        b->pid = 0;
        return 0;
}

static int write_manifest(build *b, const char *runtime, pw_err *err)
{
        criu_version_info v;
        int r = criu_get_version(b->e, &v, err);
        if (r < 0)
                return r;
        struct utsname u;
        uname(&u);
        struct stat in_st, out_st;
        if (fstat(b->pipes.ctl_in[1], &in_st) < 0 || fstat(b->pipes.ctl_out[0], &out_st) < 0)
                return negative_errno();

        char criu_version[32];
        snprintf(criu_version, sizeof(criu_version), "%d.%d.%d", v.major, v.minor, v.sublevel);
        manifest m = {
                .name = b->def->name, .definition_sha256 = b->def->sha256, .runtime = (char *)runtime,
                .criu_version = criu_version, .kernel = u.release, .created = time(NULL),
                .ctl_in_ino = in_st.st_ino, .ctl_out_ino = out_st.st_ino,
                .memory_mb = b->def->memory_mb, .pids_max = b->def->pids_max, .tmp_mb = b->def->tmp_mb,
                .external_netns = true, .sandbox = MANIFEST_SANDBOX, .clone = b->clone,
                .host_files = b->host_files, .n_host_files = b->n_host_files,
        };
        r = manifest_hash_images(b->images, &m, err);
        _cleanup_free_ char *json = r >= 0 ? manifest_to_json(&m) : NULL;
        for (size_t i = 0; i < m.n_images; i++)
                free(m.images[i].file);
        free(m.images);
        if (r < 0)
                return r;
        if (!json)
                return -ENOMEM;
        _cleanup_free_ char *path = strdup_printf("%s/manifest.json", b->dir);
        if (!path)
                return -ENOMEM;
        r = write_file_atomic(path, json, strlen(json), 0644);
        return r < 0 ? err_set(err, r, "writing %s: %s", path, strerror(-r)) : 0;
}

/* Replaces the old template (if any) with the build. */
static int publish(build *b, pw_err *err)
{
        return store_install(b->e, b->def->name, b->dir, err);
}

static int do_build(build *b, const char *name, pw_err *err)
{
        int r = template_def_load(b->e->templates_dir, name, &b->def, err);
        if (r < 0)
                return r;
        b->dir = strdup_printf("%s/templates/.build-%s", b->e->state_dir, name);
        b->rootfs = strdup_printf("%s/templates/.build-%s/rootfs", b->e->state_dir, name);
        b->images = strdup_printf("%s/templates/.build-%s/images", b->e->state_dir, name);
        if (!b->dir || !b->rootfs || !b->images)
                return -ENOMEM;
        rm_rf(b->dir);
        if ((r = mkdir_p(b->images, 0700)) < 0)
                return err_set(err, r, "mkdir %s: %s", b->images, strerror(-r));
        if ((r = rootfs_prepare(b->rootfs, b->def->agent_path, b->e->zygote_helper, err)) < 0)
                return r;

        uint64_t t0 = now_us();
        if ((r = start_zygote(b, err)) < 0)
                return r;
        _cleanup_free_ char *runtime = NULL;
        if ((r = zygote_wait_ready(&b->pipes, b->def, &b->pid, &runtime, &b->clone, err)) < 0)
                return r;
        uint64_t t1 = now_us();
        if ((r = checkpoint(b, err)) < 0)
                return r;
        if ((r = write_manifest(b, runtime, err)) < 0 || (r = publish(b, err)) < 0)
                return r;
        pw_log(b->e, PW_LOG_INFO, "template %s built: %s ready in %.1f ms, checkpointed in %.1f ms",
               name, runtime, (t1 - t0) / 1000.0, (now_us() - t1) / 1000.0);
        return 0;
}

PW_PUBLIC int pw_template_build(pw_engine *e, const char *name)
{
        if (!e)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(name))
                return template_name_refused(e, name);
        /* One build of a name at a time, across threads and processes: they share .build-NAME. */
        _cleanup_close_ int lock_fd = store_lock_name(e, name, &err);
        if (lock_fd < 0)
                return engine_fail(e, lock_fd, &err);
        build b = {.e = e, .pipes = ZYGOTE_PIPES_NONE};
        int r = do_build(&b, name, &err);
        build_cleanup(&b);
        if (r >= 0)
                ahead_drop(e->ahead, name); /* prepared from the old images: let them go now */
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "build of template %s", name), &err));
        return 0;
}

PW_PUBLIC int pw_template_remove(pw_engine *e, const char *name)
{
        if (!e)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(name))
                return template_name_refused(e, name);
        ahead_drop(e->ahead, name); /* a prepared restore holds the template */
        int r = store_retire(e, name, &err);
        if (r == -ENOENT)
                return engine_failf(e, r, "template %s is not built", name);
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "removing template %s", name), &err));
        store_collect(e, name);
        return 0;
}

static int compare_strings(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t images_size(const manifest *m)
{
        uint64_t total = 0;
        for (size_t i = 0; i < m->n_images; i++)
                total += m->images[i].size;
        return total;
}

PW_PUBLIC int pw_template_foreach(pw_engine *e, pw_template_fn fn, void *userdata)
{
        if (!e || !fn)
                return -EINVAL;
        _cleanup_free_ char *store = strdup_printf("%s/templates", e->state_dir);
        _cleanup_strv_free_ char **names = NULL;
        DIR *d = store ? opendir(store) : NULL;
        if (!d)
                return store ? 0 : -ENOMEM;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && strv_push(&names, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        closedir(d);
        if (!names)
                return 0;
        qsort(names, strv_length(names), sizeof(char *), compare_strings);

        for (char **n = names; *n; n++) {
                _cleanup_free_ char *dir = engine_template_dir(e, *n);
                _cleanup_manifest_ manifest *m = NULL;
                pw_err err = {""};
                if (!dir || manifest_load(dir, &m, &err) < 0)
                        continue;
                const pw_template_info info = {sizeof(info), m->name, m->runtime, m->criu_version, m->kernel,
                                               m->created, images_size(m)};
                int r = fn(&info, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

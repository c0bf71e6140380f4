/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Instance lifecycle: restore a template into fresh namespaces and a cgroup of its own,
 * specialize it with a function's code, invoke it, destroy it.
 *
 * A restore happens in STATE/run/ID: "root" is a bind mount of the template's rootfs that CRIU
 * pivots into, "tmp" a fresh tmpfs that becomes the instance's /tmp. Both are detached from the
 * host as soon as CRIU has put them into the instance's own mount namespace, so nothing of the
 * instance is left on the host but its processes and its cgroup.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "agent.h"
#include "blob.h"
#include "cgroup.h"
#include "checkpoint.h"
#include "criu.h"
#include "instance.h"
#include "internal.h"
#include "manifest.h"
#include "netns.h"
#include "sandbox.h"
#include "staging.h"
#include "store.h"

#define SPECIALIZE_TIMEOUT_MS 60000

static void instance_kill(pw_instance *i)
{
        kill_and_reap(i->pid);
        i->pid = 0;
        if (i->cg)
                cgroup_kill(i->cg);
        i->state = DEAD;
}

PW_PUBLIC pw_instance *pw_instance_destroy(pw_instance *i)
{
        if (!i)
                return NULL;
        instance_kill(i);
        cgroup_destroy(i->cg);
        if (i->template_name)
                store_collect(i->engine, i->template_name); /* its retired template may be free now */
        if (i->ch.to_agent >= 0)
                close(i->ch.to_agent);
        if (i->ch.from_agent >= 0)
                close(i->ch.from_agent);
        free(i->template_name);
        free(i->id);
        free(i);
        return NULL;
}

/* The per-restore directory with CRIU's root and the instance's /tmp. */
typedef struct restore_dir {
        char *dir, *root, *tmp;
        bool root_mounted, tmp_mounted;
} restore_dir;

/* $PREWARM_CRIU_LOG_DIR keeps a verbose CRIU log of every restore there, for profiling. */
static void restore_log_keep(const restore_dir *d, const char *id)
{
        const char *keep = getenv("PREWARM_CRIU_LOG_DIR");
        if (!keep || !*keep || !d->dir)
                return;
        _cleanup_free_ char *from = strdup_printf("%s/restore.log", d->dir);
        _cleanup_free_ char *to = strdup_printf("%s/%s.restore.log", keep, id);
        if (from && to)
                copy_file(from, to, 64u << 20, 0600);
}

static void restore_dir_cleanup(restore_dir *d)
{
        if (d->root_mounted)
                umount2(d->root, MNT_DETACH);
        if (d->tmp_mounted)
                umount2(d->tmp, MNT_DETACH);
        if (d->dir)
                rm_rf(d->dir); /* CRIU's log and stats; never crosses into a mount */
        free(d->dir);
        free(d->root);
        free(d->tmp);
}

static int restore_dir_setup(pw_instance *i, const char *rootfs, unsigned tmp_mb, restore_dir *d, pw_err *err)
{
        _cleanup_free_ char *run = engine_run_dir(i->engine);
        if (!run)
                return -ENOMEM;
        d->dir = strdup_printf("%s/%s", run, i->id);
        d->root = strdup_printf("%s/%s/root", run, i->id);
        d->tmp = strdup_printf("%s/%s/tmp", run, i->id);
        if (!d->dir || !d->root || !d->tmp)
                return -ENOMEM;
        int r = mkdir_p(d->root, 0700);
        if (r < 0)
                return err_set(err, r, "mkdir %s: %s", d->root, strerror(-r));
        if (mount(rootfs, d->root, NULL, MS_BIND, NULL) < 0)
                return err_set(err, negative_errno(), "bind %s: %m", rootfs);
        d->root_mounted = true;
        /* Instances share the template's rootfs: it must reach them read-only. */
        if (mount(NULL, d->root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL) < 0 ||
            mount(NULL, d->root, NULL, MS_PRIVATE, NULL) < 0)
                return err_set(err, negative_errno(), "making %s read-only and private: %m", d->root);
        if ((r = tmpfs_mount(d->tmp, tmp_mb)) < 0)
                return err_set(err, r, "tmpfs %s: %s", d->tmp, strerror(-r));
        d->tmp_mounted = true;
        return 0;
}

typedef struct pipes {
        int to_agent[2], from_agent[2];
} pipes;

/* How a restore runs: the engine's fast path, or stock CRIU for comparison. */
typedef enum restore_path { FAST_PATH, STOCK_CLI } restore_path;

/* What a restore reads: the template's manifest and rootfs, and where CRIU finds its images. */
typedef struct restore_source {
        int lock_fd;    /* shared lock on the template: a rebuild may retire it meanwhile */
        manifest *m;
        char *rootfs, *images;
        int images_fd;
} restore_source;

static void restore_source_done(restore_source *src)
{
        if (src->images_fd >= 0)
                close(src->images_fd);
        if (src->lock_fd >= 0)
                close(src->lock_fd);
        manifest_free(src->m);
        free(src->rootfs);
        free(src->images);
}

static int restore_source_open(pw_engine *e, const char *name, restore_path path, restore_source *src,
                               pw_err *err)
{
        *src = (restore_source){.lock_fd = -1, .images_fd = -1};
        _cleanup_free_ char *template_dir = engine_template_dir(e, name);
        _cleanup_free_ char *images = strdup_printf("%s/images", template_dir ? template_dir : "");
        src->rootfs = strdup_printf("%s/rootfs", template_dir ? template_dir : "");
        if (!template_dir || !images || !src->rootfs)
                return -ENOMEM;
        if ((src->lock_fd = store_lock_shared(template_dir, err)) < 0)
                return src->lock_fd;
        int r = manifest_load(template_dir, &src->m, err);
        if (r < 0)
                return r;
        /* A checkpoint holds kernel state (vDSO, feature set) of the kernel it was taken on. */
        struct utsname u;
        if (uname(&u) == 0 && strcmp(u.release, src->m->kernel))
                return err_set(err, -EUCLEAN, "built on kernel %s, this is %s: rebuild the template",
                               src->m->kernel, u.release);
        if ((r = manifest_verify(e, images, src->m, err)) < 0)
                return r;
        _cleanup_close_ int images_fd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (images_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", images);
        src->images_fd = TAKE_FD(images_fd);
        src->images = TAKE_PTR(images);
        return 0;
}

static int criu_restore_into(pw_instance *i, const restore_source *src, const restore_dir *d, pipes *p,
                             restore_path path, pw_err *err)
{
        _cleanup_close_ int work_fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (work_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", d->dir);
        _cleanup_strv_free_ char **external = sandbox_externals(d->tmp);
        char in_key[48], out_key[48];
        snprintf(in_key, sizeof(in_key), "pipe:[%llu]", (unsigned long long)src->m->ctl_in_ino);
        snprintf(out_key, sizeof(out_key), "pipe:[%llu]", (unsigned long long)src->m->ctl_out_ino);
        if (!external)
                return -ENOMEM;
        _cleanup_close_ int netns_fd = -1;
        if (src->m->external_netns) {
                /* Stock CRIU would make the namespace itself during the restore. */
                int r = path == FAST_PATH ? netns_take(i->engine->netns, &netns_fd, err)
                                          : netns_create(&netns_fd, err);
                if (r < 0)
                        return r;
        }
        const criu_inherit inherit[] = {{in_key, p->to_agent[0]}, {out_key, p->from_agent[1]},
                                        {NETNS_EXTERNAL_KEY, netns_fd}};
        const criu_restore_params params = {
                .images_fd = src->images_fd, .work_fd = work_fd, .root = d->root,
                .external = (const char *const *)external, .inherit = inherit,
                .n_inherit = ELEMENTSOF(inherit) - (src->m->external_netns ? 0 : 1),
                .cgroup_procs = (const char *const *)i->cg->procs,
        };
        if (path == STOCK_CLI)
                return criu_restore_cli(i->engine, &params, &i->pid, err);
        return criu_restore(i->engine, &params, &i->pid, err);
}

/* Restores into the instance's cgroup, with a fresh control channel. */
static int restore_with(pw_instance *i, const restore_source *src, restore_path path, pw_err *err)
{
        const cgroup_limits limits = {src->m->memory_mb, src->m->pids_max};
        int r = cgroup_create(i->id, &limits, &i->cg, err);
        if (r < 0)
                return r;
        pipes p = {{-1, -1}, {-1, -1}};
        restore_dir d = {0};
        if (pipe2(p.to_agent, O_CLOEXEC) < 0 || pipe2(p.from_agent, O_CLOEXEC) < 0)
                r = err_set(err, negative_errno(), "pipe: %m");
        if (r >= 0)
                r = restore_dir_setup(i, src->rootfs, src->m->tmp_mb, &d, err);
        if (r >= 0)
                r = criu_restore_into(i, src, &d, &p, path, err);
        if (r >= 0 && ((r = fd_set_nonblocking(p.to_agent[1])) < 0 ||
                       (r = fd_set_nonblocking(p.from_agent[0])) < 0))
                err_set(err, r, "fcntl: %s", strerror(-r));
        if (r >= 0) {
                i->ch.to_agent = TAKE_FD(p.to_agent[1]);
                i->ch.from_agent = TAKE_FD(p.from_agent[0]);
        } else if (i->pid <= 0) {
                /* CRIU may have died after forking tasks into the cgroup: those die with it here. */
                cgroup_kill(i->cg);
        }
        close_pair(p.to_agent);
        close_pair(p.from_agent);
        restore_log_keep(&d, i->id);
        restore_dir_cleanup(&d);
        return r;
}

static int do_restore(pw_instance *i, restore_path path, pw_err *err)
{
        uint64_t t0 = now_us();
        restore_source src;
        int r = restore_source_open(i->engine, i->template_name, path, &src, err);
        uint64_t t1 = now_us();
        if (r >= 0) {
                i->memory_mb = src.m->memory_mb;
                r = restore_with(i, &src, path, err);
        }
        pw_log(i->engine, PW_LOG_DEBUG, "restore %s: verify %.2f ms, cgroup+criu %.2f ms", i->id,
               (t1 - t0) / 1000.0, (now_us() - t1) / 1000.0);
        /* Only now: a stager reading while CRIU reads slows both down (docs/performance.md). */
        pw_err stage_err;
        if (r >= 0 && path == FAST_PATH && stage_template(i->engine, src.images, src.images_fd, &stage_err) < 0)
                pw_log(i->engine, PW_LOG_WARNING, "staging template %s: %s", i->template_name, stage_err.msg);
        restore_source_done(&src);
        return r;
}

pw_instance *instance_new(pw_engine *e, const char *template_name)
{
        _cleanup_(instance_destroyp) pw_instance *i = calloc(1, sizeof(*i));
        if (!i)
                return NULL;
        i->engine = e;
        i->ch.to_agent = i->ch.from_agent = -1;
        i->template_name = strdup(template_name);
        /* Unique in the process, not per engine: ids name cgroups, which all engines share. */
        static atomic_uint next_instance;
        i->id = strdup_printf("%s-%d-%u", template_name, getpid(), atomic_fetch_add(&next_instance, 1));
        if (!i->template_name || !i->id)
                return NULL;
        return TAKE_PTR(i);
}

static int restore_by(pw_engine *e, const char *template_name, restore_path path, pw_instance **ret)
{
        if (!e || !ret)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(template_name))
                return engine_fail(e, -EINVAL, (err_set(&err, -EINVAL, "invalid template name"), &err));

        uint64_t t0 = now_us();
        _cleanup_(instance_destroyp) pw_instance *i = instance_new(e, template_name);
        if (!i)
                return -ENOMEM;
        int r = do_restore(i, path, &err);
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "restore of template %s", template_name), &err));
        /* A second-level template's copies come back with their function loaded (checkpoint.c). */
        i->state = template_restores_specialized(e, template_name) ? SPECIALIZED : RESTORED;
        i->timings.restore_us = now_us() - t0;
        pw_log(e, PW_LOG_DEBUG, "instance %s restored as pid %d in %.2f ms", i->id, (int)i->pid,
               i->timings.restore_us / 1000.0);
        *ret = TAKE_PTR(i);
        return 0;
}

PW_PUBLIC int pw_instance_restore(pw_engine *e, const char *template_name, pw_instance **ret)
{
        return restore_by(e, template_name, FAST_PATH, ret);
}

int instance_restore_stock(pw_engine *e, const char *template_name, pw_instance **ret)
{
        return restore_by(e, template_name, STOCK_CLI, ret);
}

static int instance_fail(pw_instance *i, int r, pw_err *err, const char *what)
{
        err_prefix(err, r, "%s of instance %s", what, i->id);
        i->last_error = *err;
        pw_log(i->engine, PW_LOG_ERROR, "%s", err->msg);
        return r;
}

/* The agent stopped answering: say why, kill what is left and mark the instance dead. */
static int instance_lost(pw_instance *i, int r, unsigned timeout_ms, pw_err *err)
{
        if (r == -ETIMEDOUT) {
                instance_kill(i);
                return err_set(err, r, "timed out after %u ms; instance killed", timeout_ms);
        }
        int status = i->pid > 0 ? reap_within(i->pid, 1000) : 0;
        i->pid = 0;
        bool oom = i->cg && cgroup_oom_kills(i->cg) > 0;
        instance_kill(i);
        if (oom)
                return err_set(err, -ENOMEM, "memory limit of %u MiB hit; instance killed", i->memory_mb);
        if (WIFSIGNALED(status))
                return err_set(err, -ECHILD, "instance died (signal %d)", WTERMSIG(status));
        return err_set(err, -ECHILD, "instance died (exit status %d)", WEXITSTATUS(status));
}

static bool channel_lost(int r)
{
        return r == -ECONNRESET || r == -ETIMEDOUT || r == -EPIPE;
}

static uint64_t deadline_after(int timeout_ms)
{
        return timeout_ms > 0 ? now_us() + (uint64_t)timeout_ms * 1000 : 0;
}

PW_PUBLIC int pw_instance_specialize(pw_instance *i, const pw_function *fn)
{
        if (!i || !fn)
                return -EINVAL;
        pw_err err = {""};
        if (i->state == DEAD)
                return instance_fail(i, -ESRCH, (err_set(&err, -ESRCH, "instance is dead"), &err), "specialize");
        if (i->state == SPECIALIZED)
                return instance_fail(i, -EALREADY, (err_set(&err, -EALREADY, "already specialized"), &err), "specialize");

        uint64_t t0 = now_us();
        blob b = {0};
        int r = blob_fetch(fn->code_uri, fn->digest, BLOB_MAX, &b, &err);
        if (r < 0)
                return instance_fail(i, r, &err, "specialize");
        const agent_code code = {b.filename, fn->main && *fn->main ? fn->main : "main",
                                 (char *const *)fn->env, b.data, b.size};
        r = agent_specialize(&i->ch, &code, deadline_after(SPECIALIZE_TIMEOUT_MS), &err);
        blob_done(&b);
        if (channel_lost(r))
                r = instance_lost(i, r, SPECIALIZE_TIMEOUT_MS, &err);
        if (r < 0)
                return instance_fail(i, r, &err, "specialize");
        i->state = SPECIALIZED;
        i->timings.specialize_us = now_us() - t0;
        return 0;
}

PW_PUBLIC int pw_instance_invoke_logs(pw_instance *i, const char *args_json, int timeout_ms,
                                      char **ret_result, char **ret_logs)
{
        if (ret_logs)
                *ret_logs = NULL;
        if (!i)
                return -EINVAL;
        pw_err err = {""};
        if (i->state == DEAD)
                return instance_fail(i, -ESRCH, (err_set(&err, -ESRCH, "instance is dead"), &err), "invoke");
        if (i->state != SPECIALIZED)
                return instance_fail(i, -EBADFD, (err_set(&err, -EBADFD, "not specialized"), &err), "invoke");

        uint64_t t0 = now_us();
        _cleanup_free_ char *result = NULL, *logs = NULL;
        int r = agent_invoke(&i->ch, args_json, deadline_after(timeout_ms), &result, &logs, &err);
        if (channel_lost(r))
                r = instance_lost(i, r, (unsigned)timeout_ms, &err);
        i->timings.invoke_us = now_us() - t0;
        if (ret_logs)
                *ret_logs = TAKE_PTR(logs);
        if (r < 0)
                return instance_fail(i, r, &err, "invoke");
        if (ret_result)
                *ret_result = TAKE_PTR(result);
        return 0;
}

PW_PUBLIC int pw_instance_invoke(pw_instance *i, const char *args_json, int timeout_ms, char **ret_result)
{
        return pw_instance_invoke_logs(i, args_json, timeout_ms, ret_result, NULL);
}

PW_PUBLIC int pw_instance_timings(const pw_instance *i, pw_timings *ret)
{
        if (!i || !ret)
                return -EINVAL;
        *ret = i->timings;
        return 0;
}

PW_PUBLIC pid_t pw_instance_pid(const pw_instance *i)
{
        return i && i->state != DEAD && i->pid > 0 ? i->pid : -ESRCH;
}

PW_PUBLIC const char *pw_instance_last_error(const pw_instance *i)
{
        return i ? i->last_error.msg : "";
}

PW_PUBLIC const char *pw_instance_template(const pw_instance *i)
{
        return i ? i->template_name : NULL;
}

PW_PUBLIC const char *pw_instance_id(const pw_instance *i)
{
        return i ? i->id : NULL;
}

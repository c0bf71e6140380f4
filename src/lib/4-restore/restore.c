/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Restore of a template into a new instance, in two steps: a *job* is prepared with everything a
 * restore needs that does not depend on the request (the verified template, a cgroup, the
 * control pipes, the instance's root and /tmp mounts, a network namespace, and a CRIU already
 * started, holding all of these and waiting), then *run*: CRIU is sent the restore and the
 * instance is handed out. The engine runs the two steps back to back, or prepares jobs ahead
 * (ahead.c) so that a request only runs one.
 *
 * A restore happens in STATE/run/ID: "root" is a bind mount of the template's rootfs that CRIU
 * pivots into, "tmp" a fresh tmpfs that becomes the instance's /tmp, "dev" its read-only /dev,
 * and "images" the template's images as this instance's uid sees them (creds_image.h). The
 * mounts are detached from the host as soon as CRIU has put them into the instance's own mount
 * namespace, so nothing of the instance is left on the host but its processes and its cgroup.
 */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "agent.h"
#include "creds_image.h"
#include "criu.h"
#include "manifest.h"
#include "netns.h"
#include "restore.h"
#include "sandbox.h"
#include "sandbox_check.h"
#include "seccomp.h"
#include "staging.h"
#include "store.h"
#include "uids.h"

/* The per-restore directory: a small tmpfs holding CRIU's root, the instance's /tmp and /dev, the
 * images' view and CRIU's log, so that one unmount takes it all away (every unmount waits for an
 * RCU grace period, which a busy machine makes long). */
typedef struct restore_dir {
        char *dir, *root, *tmp, *dev, *images, *images_src;
        bool mounted;
} restore_dir;

/* What a restore reads: the template's manifest and rootfs, and where CRIU finds its images. */
typedef struct restore_source {
        int lock_fd;    /* shared lock on the template: a rebuild may retire it meanwhile */
        manifest *m;
        char *rootfs, *images;
        int images_fd;
        dev_t dev;      /* the template directory's identity: a rebuild publishes another */
        ino_t ino;
} restore_source;

struct restore_job {
        pw_instance *i;
        restore_path path;
        restore_source src;
        restore_dir d;
        int to_agent[2], from_agent[2];
        int work_fd, netns_fd, images_fd; /* images_fd: the instance's view of the images */
        char **external;
        char in_key[48], out_key[48];
        criu_inherit inherit[3];
        criu_restore_params params;
        criu_worker *worker;
        uid_t checkpoint_uid; /* the uid the template's tasks were checkpointed as */
};

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
        if (d->mounted)
                umount2(d->dir, MNT_DETACH); /* and everything mounted below it */
        if (d->dir)
                rmdir(d->dir);
        free(d->dir);
        free(d->root);
        free(d->tmp);
        free(d->dev);
        free(d->images);
        free(d->images_src);
        *d = (restore_dir){0};
}

static bool uid_of_sandbox(uid_t uid, void *userdata)
{
        return uid_in_range(userdata, uid);
}

static int restore_dir_setup(pw_instance *i, const restore_source *src, restore_dir *d,
                             const struct sock_fprog *seccomp, uid_t *ret_checkpoint_uid, pw_err *err)
{
        _cleanup_free_ char *run = engine_run_dir(i->engine);
        if (!run)
                return -ENOMEM;
        d->dir = strdup_printf("%s/%s", run, i->id);
        d->root = strdup_printf("%s/root", d->dir ? d->dir : "");
        d->tmp = strdup_printf("%s/tmp", d->dir ? d->dir : "");
        d->dev = strdup_printf("%s/dev", d->dir ? d->dir : "");
        d->images = strdup_printf("%s/images", d->dir ? d->dir : "");
        d->images_src = strdup_printf("%s/template-images", d->dir ? d->dir : "");
        if (!d->dir || !d->root || !d->tmp || !d->dev || !d->images || !d->images_src)
                return -ENOMEM;
        if (mkdir(d->dir, 0700) < 0)
                return err_set(err, negative_errno(), "mkdir %s: %m", d->dir);
        if (mount("tmpfs", d->dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,mode=0700") < 0)
                return err_set(err, negative_errno(), "tmpfs %s: %m", d->dir);
        d->mounted = true;
        if (mount(NULL, d->dir, NULL, MS_PRIVATE, NULL) < 0 || mkdir(d->root, 0700) < 0)
                return err_set(err, negative_errno(), "preparing %s: %m", d->dir);
        /* Instances share the template's rootfs: it must reach them read-only. */
        int r = bind_mount_private(src->rootfs, d->root, MS_RDONLY | MS_NOSUID | MS_NODEV);
        if (r < 0)
                return err_set(err, r, "bind %s read-only at %s: %s", src->rootfs, d->root, strerror(-r));
        r = tmpfs_mount(d->tmp, src->m->tmp_mb);
        if (r < 0)
                return err_set(err, r, "tmpfs %s: %s", d->tmp, strerror(-r));
        if ((r = devfs_mount(d->dev)) < 0)
                return err_set(err, r, "/dev for the sandbox at %s: %s", d->dev, strerror(-r));
        return images_view_for_uid(src->images, d->images_src, d->images, i->uid, i->uid, uid_of_sandbox,
                                   i->engine->uids, seccomp, ret_checkpoint_uid, err);
}

static void restore_source_done(restore_source *src)
{
        if (src->images_fd >= 0)
                close(src->images_fd);
        if (src->lock_fd >= 0)
                close(src->lock_fd);
        manifest_free(src->m);
        free(src->rootfs);
        free(src->images);
        *src = (restore_source){.lock_fd = -1, .images_fd = -1};
}

static int restore_source_open(pw_engine *e, const char *name, restore_source *src, pw_err *err)
{
        _cleanup_free_ char *template_dir = engine_template_dir(e, name);
        _cleanup_free_ char *images = strdup_printf("%s/images", template_dir ? template_dir : "");
        src->rootfs = strdup_printf("%s/rootfs", template_dir ? template_dir : "");
        if (!template_dir || !images || !src->rootfs)
                return -ENOMEM;
        if ((src->lock_fd = store_lock_shared(template_dir, err)) < 0)
                return src->lock_fd;
        struct stat st;
        if (fstat(src->lock_fd, &st) < 0)
                return err_set(err, negative_errno(), "stat %s: %m", template_dir);
        src->dev = st.st_dev;
        src->ino = st.st_ino;
        int r = manifest_load(template_dir, &src->m, err);
        if (r < 0 || (r = manifest_check_sandbox(src->m, err)) < 0)
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

restore_job *restore_job_free(restore_job *job)
{
        if (!job)
                return NULL;
        criu_worker_free(job->worker); /* never sent a request: nothing was restored */
        if (job->i && job->i->cg)
                cgroup_kill(job->i->cg);
        close_pair(job->to_agent);
        close_pair(job->from_agent);
        if (job->work_fd >= 0)
                close(job->work_fd);
        if (job->netns_fd >= 0)
                close(job->netns_fd);
        if (job->images_fd >= 0)
                close(job->images_fd);
        strv_free(job->external);
        restore_dir_cleanup(&job->d);
        restore_source_done(&job->src); /* unlocks the template before destroy collects it */
        pw_instance_destroy(job->i);
        free(job);
        return NULL;
}

static void restore_job_freep(restore_job **job) { restore_job_free(*job); }

/* The descriptors and names CRIU is given: control pipes, network namespace, mounts. */
static int job_params(restore_job *job, pw_err *err)
{
        const manifest *m = job->src.m;
        if (pipe2(job->to_agent, O_CLOEXEC) < 0 || pipe2(job->from_agent, O_CLOEXEC) < 0)
                return err_set(err, negative_errno(), "pipe: %m");
        job->work_fd = open(job->d.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        job->images_fd = open(job->d.images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (job->work_fd < 0 || job->images_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", job->d.dir);
        if (!(job->external = sandbox_externals(job->d.tmp, job->d.dev)))
                return -ENOMEM;
        snprintf(job->in_key, sizeof(job->in_key), "pipe:[%llu]", (unsigned long long)m->ctl_in_ino);
        snprintf(job->out_key, sizeof(job->out_key), "pipe:[%llu]", (unsigned long long)m->ctl_out_ino);
        size_t n = 0;
        job->inherit[n++] = (criu_inherit){job->in_key, job->to_agent[0]};
        job->inherit[n++] = (criu_inherit){job->out_key, job->from_agent[1]};
        if (m->external_netns) {
                /* Stock CRIU would make the namespace itself during the restore. */
                pw_engine *e = job->i->engine;
                int r = job->path == FAST_PATH ? netns_take(e->netns, &job->netns_fd, err)
                                               : netns_create(&job->netns_fd, err);
                if (r < 0)
                        return r;
                job->inherit[n++] = (criu_inherit){NETNS_EXTERNAL_KEY, job->netns_fd};
        }
        job->params = (criu_restore_params){
                .images_fd = job->images_fd, .work_fd = job->work_fd, .root = job->d.root,
                .external = (const char *const *)job->external, .inherit = job->inherit,
                .n_inherit = n, .cgroup_procs = (const char *const *)job->i->cg->procs,
        };
        return 0;
}

static int job_prepare(pw_engine *e, const char *template_name, restore_path path, bool parent,
                       restore_job **ret, pw_err *err)
{
        _cleanup_(restore_job_freep) restore_job *job = calloc(1, sizeof(*job));
        if (!job)
                return -ENOMEM;
        *job = (restore_job){.path = path, .to_agent = {-1, -1}, .from_agent = {-1, -1}, .work_fd = -1,
                             .netns_fd = -1, .images_fd = -1, .src = {.lock_fd = -1, .images_fd = -1}};
        if (!(job->i = instance_new(e, template_name)))
                return -ENOMEM;
        int r = restore_source_open(e, template_name, &job->src, err);
        if (r < 0)
                return r;
        job->i->memory_mb = job->src.m->memory_mb;
        const cgroup_limits limits = {job->src.m->memory_mb, job->src.m->pids_max};
        /* A parent's cgroup is a group its uid may start children in (cgroup.h): uid first. */
        if ((r = instance_take_uid(job->i, err)) < 0 ||
            (r = parent ? cgroup_create_group(job->i->id, &limits, job->i->uid, &job->i->cg, err)
                        : cgroup_create(job->i->id, &limits, &job->i->cg, err)) < 0 ||
            (r = restore_dir_setup(job->i, &job->src, &job->d, parent ? parent_seccomp_filter() : NULL,
                                   &job->checkpoint_uid, err)) < 0 ||
            (r = job_params(job, err)) < 0)
                return r;
        /* Started last: CRIU gets a private copy of the mounts there are now (criu.c). */
        if (path == FAST_PATH && (r = criu_restore_worker(e, &job->params, &job->worker, err)) < 0)
                return r;
        *ret = TAKE_PTR(job);
        return 0;
}

int restore_job_prepare(pw_engine *e, const char *template_name, restore_path path, restore_job **ret,
                        pw_err *err)
{
        return job_prepare(e, template_name, path, false, ret, err);
}

int restore_job_prepare_parent(pw_engine *e, const char *template_name, restore_job **ret, pw_err *err)
{
        return job_prepare(e, template_name, FAST_PATH, true, ret, err);
}

bool restore_job_current(const restore_job *job)
{
        _cleanup_free_ char *dir = engine_template_dir(job->i->engine, job->i->template_name);
        struct stat st;
        if (!dir || stat(dir, &st) < 0 || st.st_dev != job->src.dev || st.st_ino != job->src.ino)
                return false;
        /* Images changed since the job was prepared fail here, as they would in a fresh restore
         * (cheap: verified files are only stat'ed). */
        pw_err err;
        return manifest_verify(job->i->engine, job->src.images, job->src.m, &err) >= 0;
}


/* Sends CRIU the restore; on success the instance owns the agent's ends of the pipes. */
static int job_restore(restore_job *job, pw_err *err)
{
        pw_instance *i = job->i;
        int r = job->path == STOCK_CLI ? criu_restore_cli(i->engine, &job->params, &i->pid, err)
                                       : criu_restore_on(TAKE_PTR(job->worker), &job->params, &i->pid, err);
        if (r >= 0 && ((r = fd_set_nonblocking(job->to_agent[1])) < 0 ||
                       (r = fd_set_nonblocking(job->from_agent[0])) < 0))
                err_set(err, r, "fcntl: %s", strerror(-r));
        /* What CRIU restored is checked from the host, as a clone is, before any code reaches it. */
        const char *wrong = r >= 0 ? restored_sandbox_wrong(i->pid, i->uid) : NULL;
        if (wrong)
                r = err_set(err, -EPERM, "the restored instance failed its sandbox check: %s; killed", wrong);
        /* A copy of a function that was checkpointed after it loaded: the files of its /tmp,
         * then its after-restore hooks (after the agent's own reseeding) before anything else. */
        if (r >= 0 && job->src.m->specialized) {
                const agent_channel ch = {job->to_agent[1], job->from_agent[0]};
                if ((r = restored_tmp_chown(i->pid, job->checkpoint_uid, i->uid)) < 0)
                        err_set(err, r, "giving the instance the files of its /tmp: %s", strerror(-r));
                else if ((r = agent_run_hooks(&ch, "after_restore", now_us() + AGENT_HOOKS_TIMEOUT_MS * 1000ull,
                                              &i->streams, err)) < 0)
                        err_prefix(err, r, "after the restore");
        }
        if (r < 0) {
                if (i->pid <= 0) /* CRIU may have died after forking tasks into the cgroup */
                        cgroup_kill(i->cg);
                return r;
        }
        i->ch.to_agent = TAKE_FD(job->to_agent[1]);
        i->ch.from_agent = TAKE_FD(job->from_agent[0]);
        i->state = job->src.m->specialized ? SPECIALIZED : RESTORED;
        if (job->src.m->specialized) /* checkpointed under the init its agent went under */
                i->agent_pid = sandbox_agent_under(i->pid);
        return 0;
}

int restore_job_run(restore_job *job, pw_instance **ret, pw_err *err)
{
        _cleanup_(restore_job_freep) restore_job *owned = job;
        int r = job_restore(job, err);
        restore_log_keep(&job->d, job->i->id);
        restore_dir_cleanup(&job->d);
        if (r < 0)
                return r;
        if (job->path == FAST_PATH) {
                /* Only now: a stager reading while CRIU reads slows both down (staging.c). */
                pw_err stage_err;
                if (stage_template(job->i->engine, job->src.images, job->src.images_fd, &stage_err) < 0)
                        pw_log(job->i->engine, PW_LOG_WARNING, "staging template %s: %s",
                               job->i->template_name, stage_err.msg);
        }
        *ret = TAKE_PTR(job->i);
        return 0;
}

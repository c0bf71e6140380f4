/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cold starts at fork speed: a template is restored once per engine with CRIU into a *parent*
 * that never runs function code, and every instance after that is a child the parent clones
 * (src/zygote/clone.c), sharing its memory copy-on-write.
 *
 * A parent is a restore like any other but for its seccomp filter (seccomp.h: clone into new
 * namespaces and mount allowed) and a /proc without the sandbox's masks (a child in a user
 * namespace of its own may mount a /proc only where one is fully visible). The engine talks to it
 * on a SEQPACKET socket whose end it takes from the parent with pidfd_getfd: a clone request
 * carries the child's control pipes and sync socket, the reply a pidfd of the child. The engine
 * then maps the child's uid and gid (its own, from the uid pool, mapped to themselves), moves it
 * into its cgroup and lets it go; the child makes its sandbox, reports ready, and the engine
 * checks from the host that it is what a restored instance is before it hands it out: its uid,
 * no capability, no_new_privs, the sandbox's filter on top of the parent's, its own namespaces,
 * /tmp and /proc. A child that fails any of it is killed and never sees function code.
 *
 * A parent is pid 1 of its pid namespace, so its clones die with it. It lives as long as the
 * engine, unless its template is rebuilt, pw_engine_trim retires it, or it dies; a retired parent
 * clones no more and is destroyed with its last clone.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <jansson.h>

#include "agent.h"
#include "clone.h"
#include "manifest.h"
#include "restore.h"
#include "sandbox_check.h"
#include "sandbox_inside.h"

#define CLONE_READY_TIMEOUT_MS 10000
#define PARENT_ANSWER_TIMEOUT_MS 5000

typedef struct template_parent {
        struct template_parent *next;
        char *template_name;
        pw_instance *inst;      /* the restored parent */
        int sock;               /* the engine's end of the parent's socket */
        pthread_mutex_t lock;   /* one request at a time on sock */
        dev_t dev;              /* the template directory it was restored from */
        ino_t ino;
        manifest *m;            /* of the template as restored: clones check its images against it,
                                 * and get its limits */
        char *images;
        sandbox_facts facts;
        unsigned clones;        /* live clones, and callers about to clone (parents.lock) */
        bool retired;           /* clones no more; destroyed with its last clone */
} template_parent;

/* A template that cannot keep a parent (its agent has no clone helper), until it is rebuilt. */
typedef struct unable {
        struct unable *next;
        char *template_name;
        dev_t dev;
        ino_t ino;
} unable;

struct parents {
        pthread_mutex_t lock;   /* guards the lists and every parent's clones and retired */
        pthread_mutex_t making; /* one parent made at a time: a burst of first requests waits for it */
        template_parent *list;
        unable *unable;
};

int parents_new(parents **ret)
{
        parents *ps = calloc(1, sizeof(*ps));
        if (!ps)
                return -ENOMEM;
        pthread_mutex_init(&ps->lock, NULL);
        pthread_mutex_init(&ps->making, NULL);
        *ret = ps;
        return 0;
}

static void parent_free(template_parent *p)
{
        if (!p)
                return;
        pw_instance_destroy(p->inst); /* its pid namespace, and any clone left in it, dies */
        if (p->sock >= 0)
                close(p->sock);
        pthread_mutex_destroy(&p->lock);
        manifest_free(p->m);
        free(p->images);
        free(p->template_name);
        free(p);
}

void parents_free(parents *ps)
{
        if (!ps)
                return;
        for (template_parent *p = ps->list, *next; p; p = next) {
                next = p->next;
                parent_free(p);
        }
        for (unable *u = ps->unable, *next; u; u = next) {
                next = u->next;
                free(u->template_name);
                free(u);
        }
        pthread_mutex_destroy(&ps->lock);
        pthread_mutex_destroy(&ps->making);
        free(ps);
}

static int template_identity(pw_engine *e, const char *name, dev_t *dev, ino_t *ino)
{
        _cleanup_free_ char *dir = engine_template_dir(e, name);
        struct stat st;
        if (!dir)
                return -ENOMEM;
        if (stat(dir, &st) < 0)
                return negative_errno();
        *dev = st.st_dev;
        *ino = st.st_ino;
        return 0;
}

/* Unlinks p from the list when it is retired and has no clone left; the caller frees it. */
static template_parent *unlink_if_done(parents *ps, template_parent *p)
{
        if (!p->retired || p->clones)
                return NULL;
        for (template_parent **pp = &ps->list; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        return p;
                }
        return NULL;
}

void parent_release(pw_engine *e, template_parent *p)
{
        parents *ps = e->parents;
        pthread_mutex_lock(&ps->lock);
        p->clones--;
        template_parent *done = unlink_if_done(ps, p);
        pthread_mutex_unlock(&ps->lock);
        parent_free(done);
}

static void parent_retire(pw_engine *e, template_parent *p)
{
        parents *ps = e->parents;
        pthread_mutex_lock(&ps->lock);
        p->retired = true;
        template_parent *done = unlink_if_done(ps, p);
        pthread_mutex_unlock(&ps->lock);
        parent_free(done);
}

/* A live parent of the template as it is now, reserved (clones + 1), or NULL. Parents of an older
 * build are retired on the way. -ENOTSUP when the template cannot keep one. */
static int parent_find(pw_engine *e, const char *name, dev_t dev, ino_t ino, template_parent **ret)
{
        parents *ps = e->parents;
        template_parent *found = NULL, *done = NULL;
        int r = 0;
        pthread_mutex_lock(&ps->lock);
        for (unable *u = ps->unable; u; u = u->next)
                if (!strcmp(u->template_name, name) && u->dev == dev && u->ino == ino)
                        r = -ENOTSUP;
        for (template_parent *p = ps->list; p && !found && !done; p = p->next) {
                if (p->retired || strcmp(p->template_name, name))
                        continue;
                if (p->dev == dev && p->ino == ino) {
                        p->clones++;
                        found = p;
                } else {
                        p->retired = true; /* a rebuild: its clones finish on the old one */
                        done = unlink_if_done(ps, p);
                }
        }
        pthread_mutex_unlock(&ps->lock);
        parent_free(done);
        if (done)
                return parent_find(e, name, dev, ino, ret);
        *ret = found;
        return r;
}

static void remember_unable(parents *ps, const char *name, dev_t dev, ino_t ino)
{
        unable *u = calloc(1, sizeof(*u));
        if (!u || !(u->template_name = strdup(name))) {
                free(u);
                return; /* only a cache: the next cold start finds out again */
        }
        u->dev = dev;
        u->ino = ino;
        pthread_mutex_lock(&ps->lock);
        u->next = ps->unable;
        ps->unable = u;
        pthread_mutex_unlock(&ps->lock);
}

/* --- making a parent --- */

/* Takes the sandbox's masks off the parent's /proc, from inside its mount namespace. */
static int parent_unmask_proc(pid_t pid, pw_err *err)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
        _cleanup_close_ int mnt = open(path, O_RDONLY | O_CLOEXEC);
        if (mnt < 0)
                return err_set(err, negative_errno(), "opening %s: %m", path);
        pid_t helper = fork(); /* a single-threaded child may enter another mount namespace */
        if (helper < 0)
                return err_set(err, negative_errno(), "fork: %m");
        if (helper == 0) {
                if (setns(mnt, CLONE_NEWNS) < 0)
                        _exit(1);
                proc_submounts_detach();
                _exit(0);
        }
        int status = reap(helper);
        if (!WIFEXITED(status) || WEXITSTATUS(status))
                return err_set(err, -EIO, "cannot enter the parent's mount namespace to unmask its /proc");
        return 0;
}

static int parent_send(template_parent *p, const char *json, const int *fds, size_t n_fds)
{
        struct iovec iov = {(void *)json, strlen(json)};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(4 * sizeof(int))];
        } c = {0};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (n_fds) {
                msg.msg_control = c.buf;
                msg.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
                h->cmsg_level = SOL_SOCKET;
                h->cmsg_type = SCM_RIGHTS;
                h->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
                memcpy(CMSG_DATA(h), fds, n_fds * sizeof(int));
        }
        return sendmsg(p->sock, &msg, MSG_NOSIGNAL) < 0 ? negative_errno() : 0;
}

/* The parent's answer: its JSON and the descriptor it carries (or -1). -ECONNRESET when the
 * parent is gone. */
static int parent_recv(template_parent *p, json_t **ret, int *ret_fd)
{
        struct pollfd pfd = {p->sock, POLLIN, 0};
        int r = poll(&pfd, 1, PARENT_ANSWER_TIMEOUT_MS);
        if (r == 0)
                return -ETIMEDOUT;
        if (r < 0)
                return negative_errno();
        char text[4096];
        struct iovec iov = {text, sizeof(text) - 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } c;
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof(c.buf)};
        ssize_t n = recvmsg(p->sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return -ECONNRESET;
        *ret_fd = -1;
        struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
        if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(ret_fd, CMSG_DATA(h), sizeof(int));
        text[n] = '\0';
        json_t *reply = json_loads(text, 0, NULL);
        if (!reply || !json_is_object(reply) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                json_decref(reply);
                if (*ret_fd >= 0)
                        close(*ret_fd);
                return -EPROTO;
        }
        *ret = reply;
        return 0;
}

/* Turns the restored parent's agent into a parent and takes the engine's end of its socket. */
static int parent_attach(template_parent *p, pw_err *err)
{
        pw_instance *i = p->inst;
        int fd;
        int r = agent_become_parent(&i->ch, now_us() + PARENT_ANSWER_TIMEOUT_MS * 1000ull, &fd, err);
        if (r < 0)
                return r;
        _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, i->pid, 0);
        if (pidfd < 0)
                return err_set(err, negative_errno(), "pidfd_open of the parent: %m");
        p->sock = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
        if (p->sock < 0)
                return err_set(err, negative_errno(), "taking the parent's socket: %m");
        if ((r = parent_send(p, "{\"op\":\"attached\"}", NULL, 0)) < 0)
                return err_set(err, r, "the parent's socket: %s", strerror(-r));
        if ((r = sandbox_facts_read(i->pid, &p->facts)) < 0)
                return err_set(err, r, "reading the parent's sandbox: %s", strerror(-r));
        return 0;
}

static int parent_make(pw_engine *e, const char *name, dev_t dev, ino_t ino, template_parent **ret, pw_err *err)
{
        _cleanup_free_ char *dir = engine_template_dir(e, name);
        _cleanup_manifest_ manifest *m = NULL;
        int r = dir ? manifest_load(dir, &m, err) : -ENOMEM;
        if (r < 0)
                return r;
        /* Known from the manifest: no restore is prepared for a template that cannot keep one. */
        if (!m->clone || m->specialized) {
                remember_unable(e->parents, name, dev, ino);
                return err_set(err, -ENOTSUP, "template %s has no clone helper; rebuild it to clone it", name);
        }
        template_parent *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        p->sock = -1;
        if (!(p->template_name = strdup(name)) || !(p->images = strdup_printf("%s/images", dir))) {
                parent_free(p);
                return -ENOMEM;
        }
        p->dev = dev;
        p->ino = ino;
        p->m = TAKE_PTR(m);
        restore_job *job = NULL;
        if ((r = restore_job_prepare_parent(e, name, &job, err)) >= 0 &&
            (r = restore_job_run(job, &p->inst, err)) >= 0 && /* consumes the job */
            (r = parent_unmask_proc(p->inst->pid, err)) >= 0)
                r = parent_attach(p, err);
        if (r < 0) {
                parent_free(p);
                return err_prefix(err, r, "making the parent of template %s", name);
        }
        *ret = p;
        return 0;
}

static cgroup_limits parent_limits(const template_parent *p)
{
        return (cgroup_limits){p->m->memory_mb, p->m->pids_max};
}

/* A live parent of template name, reserved for one clone: found, or made now. */
static int parent_get(pw_engine *e, const char *name, template_parent **ret, pw_err *err)
{
        dev_t dev;
        ino_t ino;
        int r = template_identity(e, name, &dev, &ino);
        if (r == -ENOENT)
                return err_set(err, r, "template %s is not built", name);
        if (r < 0)
                return err_set(err, r, "template %s: %s", name, strerror(-r));
        template_parent *p = NULL;
        if ((r = parent_find(e, name, dev, ino, &p)) < 0)
                return err_set(err, r, "template %s cannot keep a parent", name);
        if (p) {
                *ret = p;
                return 0;
        }
        parents *ps = e->parents;
        pthread_mutex_lock(&ps->making);
        r = parent_find(e, name, dev, ino, &p); /* made while we waited? */
        uint64_t t0 = now_us();
        if (r >= 0 && !p && (r = parent_make(e, name, dev, ino, &p, err)) >= 0) {
                pthread_mutex_lock(&ps->lock);
                p->clones = 1;
                p->next = ps->list;
                ps->list = p;
                pthread_mutex_unlock(&ps->lock);
                pw_log(e, PW_LOG_INFO, "template %s: parent %s ready as pid %d in %.1f ms", name, p->inst->id,
                       (int)p->inst->pid, (now_us() - t0) / 1000.0);
        }
        pthread_mutex_unlock(&ps->making);
        if (r == -ENOTSUP && !err->msg[0])
                err_set(err, r, "template %s cannot keep a parent", name);
        if (r >= 0)
                *ret = p;
        return r;
}

/* --- cloning --- */

typedef struct clone_fds {
        int to_agent[2], from_agent[2], sync[2], cgroup;
} clone_fds;

static void clone_fds_close(clone_fds *f)
{
        close_pair(f->to_agent);
        close_pair(f->from_agent);
        close_pair(f->sync);
        if (f->cgroup >= 0)
                close(f->cgroup);
        f->cgroup = -1;
}

static void close_one(int *fd)
{
        close(*fd);
        *fd = -1;
}

static int pidfd_pid(int pidfd, pid_t *ret)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        _cleanup_free_ char *text = NULL;
        size_t n;
        int r = read_file(path, 4096, &text, &n);
        if (r < 0)
                return r;
        const char *pid = status_field(text, "Pid", &n);
        if (!pid || atoi(pid) <= 0)
                return -ESRCH;
        *ret = atoi(pid);
        return 0;
}

/* The child's uid and gid inside its user namespace are the host's: one of each, to itself. */
static int map_ids(pid_t pid, uid_t uid, pw_err *err)
{
        char path[64], map[64];
        snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
        static const char *const files[] = {"uid_map", "gid_map"};
        for (size_t k = 0; k < ELEMENTSOF(files); k++) {
                snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[k]);
                int r = write_string(path, map);
                if (r < 0)
                        return err_set(err, r, "writing %s: %s", path, strerror(-r));
        }
        return 0;
}

/* Asks the parent for a child; on success i has its pid and pidfd. Parent gone: -ECONNRESET. */
static int request_child(template_parent *p, pw_instance *i, clone_fds *f, pw_err *err)
{
        char json[160];
        snprintf(json, sizeof(json), "{\"op\":\"clone\",\"uid\":%u,\"gid\":%u,\"tmp_mb\":%u}", (unsigned)i->uid,
                 (unsigned)i->uid, p->m->tmp_mb);
        int fds[4] = {f->to_agent[0], f->from_agent[1], f->sync[1], f->cgroup};
        json_t *reply = NULL;
        int pidfd = -1;
        pthread_mutex_lock(&p->lock);
        int r = parent_send(p, json, fds, f->cgroup >= 0 ? 4 : 3);
        if (r >= 0)
                r = parent_recv(p, &reply, &pidfd);
        pthread_mutex_unlock(&p->lock);
        if (r == -EPIPE || r == -ECONNREFUSED || r == -ECONNRESET)
                return err_set(err, -ECONNRESET, "the parent is gone");
        if (r < 0)
                return err_set(err, r, "asking the parent for a clone: %s", strerror(-r));
        _cleanup_(json_decrefp) json_t *owned = reply;
        if (!json_is_true(json_object_get(reply, "ok")) || pidfd < 0) {
                if (pidfd >= 0)
                        close(pidfd);
                const char *why = json_string_value(json_object_get(reply, "error"));
                return err_set(err, -EIO, "the parent could not clone: %s", why ? why : "no reason given");
        }
        i->pidfd = pidfd;
        if ((r = pidfd_pid(pidfd, &i->pid)) < 0)
                return err_set(err, r, "the clone's pid: %s", strerror(-r));
        return 0;
}

/* The host pid of the one child of a clone's init: its agent. */
static int init_child(pid_t init, pid_t *ret)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
        _cleanup_free_ char *text = NULL;
        size_t n;
        int r = read_file(path, 4096, &text, &n);
        if (r < 0)
                return r;
        int pid = atoi(text);
        if (pid <= 0)
                return -ESRCH;
        *ret = pid;
        return 0;
}

/* The reason the child wrote on its sync socket before it died, if any. */
static void child_reason(int sync, pw_err *err)
{
        char why[512];
        ssize_t n = recv(sync, why, sizeof(why) - 1, MSG_DONTWAIT);
        if (n <= 0)
                return;
        why[n] = '\0';
        why[strcspn(why, "\n")] = '\0';
        err_set(err, -EPERM, "%s", why);
}

static int clone_from(pw_engine *e, template_parent *p, pw_instance **ret, pw_err *err)
{
        _cleanup_(instance_destroyp) pw_instance *i = instance_new(e, p->template_name);
        if (!i)
                return -ENOMEM;
        const cgroup_limits limits = parent_limits(p);
        i->memory_mb = limits.memory_mb;
        clone_fds f = {{-1, -1}, {-1, -1}, {-1, -1}, -1};
        uint64_t t[6] = {now_us()};
        int r;
        if ((r = cgroup_create_in(p->inst->cg, p->inst->uid, i->id, &limits, &i->cg, err)) < 0 ||
            (r = instance_take_uid(i, err)) < 0)
                goto out;
        /* v2: born in its cgroup, charged there from its first page; v1: moved in below. */
        if (i->cg->v2 && (f.cgroup = open(i->cg->dirs[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
                r = err_set(err, negative_errno(), "opening %s: %m", i->cg->dirs[0]);
                goto out;
        }
        if (pipe2(f.to_agent, O_CLOEXEC) < 0 || pipe2(f.from_agent, O_CLOEXEC) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f.sync) < 0) {
                r = err_set(err, negative_errno(), "pipe: %m");
                goto out;
        }
        t[1] = now_us();
        if ((r = request_child(p, i, &f, err)) < 0)
                goto out;
        t[2] = now_us();
        /* The parent's copies are closed; ours of the child's ends go too, so that its death
         * shows as the end of its pipes. */
        close_one(&f.to_agent[0]);
        close_one(&f.from_agent[1]);
        close_one(&f.sync[1]);
        if ((r = map_ids(i->pid, i->uid, err)) < 0)
                goto out;
        if (!i->cg->v2 && (r = cgroup_attach(i->cg, i->pid)) < 0) {
                err_set(err, r, "moving the clone into its cgroup: %s", strerror(-r));
                goto out;
        }
        if (write(f.sync[0], "g", 1) != 1) {
                r = err_set(err, negative_errno(), "starting the clone: %m");
                goto out;
        }
        t[3] = now_us();
        i->ch = (agent_channel){TAKE_FD(f.to_agent[1]), TAKE_FD(f.from_agent[0])};
        if ((r = fd_set_nonblocking(i->ch.to_agent)) < 0 || (r = fd_set_nonblocking(i->ch.from_agent)) < 0) {
                err_set(err, r, "fcntl: %s", strerror(-r));
                goto out;
        }
        r = agent_wait_ready(&i->ch, now_us() + CLONE_READY_TIMEOUT_MS * 1000ull, NULL, NULL, err);
        if (r < 0) {
                /* Not the parent's end (-ECONNRESET from request_child): this child's. */
                r = -EPERM;
                child_reason(f.sync[0], err);
                err_prefix(err, r, "the clone did not make its sandbox");
                goto out;
        }
        t[4] = now_us();
        if ((r = init_child(i->pid, &i->agent_pid)) < 0) {
                err_set(err, r, "the clone's agent: %s", strerror(-r));
                goto out;
        }
        const char *wrong = clone_sandbox_wrong(&p->facts, i->pid, i->uid);
        if (wrong) {
                r = err_set(err, -EPERM, "the clone failed its sandbox check: %s; killed", wrong);
                goto out;
        }
        t[5] = now_us();
        pw_log(e, PW_LOG_DEBUG, "instance %s cloned: cgroup, uid, pipes %.2f ms, parent's clone %.2f ms, ids and "
               "cgroup %.2f ms, sandbox and ready %.2f ms, check %.2f ms", i->id, (t[1] - t[0]) / 1e3,
               (t[2] - t[1]) / 1e3, (t[3] - t[2]) / 1e3, (t[4] - t[3]) / 1e3, (t[5] - t[4]) / 1e3);
        i->status_fd = TAKE_FD(f.sync[0]);
        i->source = PW_SOURCE_CLONE;
        i->state = RESTORED;
        *ret = TAKE_PTR(i);
out:
        clone_fds_close(&f);
        return r;
}

static void release_parent(pw_instance *i)
{
        parent_release(i->engine, i->parent);
}

int clone_instance(pw_engine *e, const char *name, pw_instance **ret, pw_err *err)
{
        for (int attempt = 0;; attempt++) {
                template_parent *p = NULL;
                int r = parent_get(e, name, &p, err);
                if (r < 0)
                        return r;
                /* A clone reads nothing of the template, but promises what a restore does. */
                if ((r = manifest_verify(e, p->images, p->m, err)) < 0) {
                        parent_retire(e, p);
                        parent_release(e, p);
                        return r;
                }
                pw_instance *i = NULL;
                r = clone_from(e, p, &i, err);
                if (r >= 0) {
                        i->parent = p; /* released with the instance */
                        i->release = release_parent;
                        *ret = i;
                        return 0;
                }
                bool gone = r == -ECONNRESET;
                if (gone)
                        parent_retire(e, p);
                parent_release(e, p);
                if (!gone || attempt > 0)
                        return r;
                pw_log(e, PW_LOG_WARNING, "template %s: parent gone (%s); making another", name, err->msg);
                err->msg[0] = '\0';
        }
}

int clone_still_current(pw_engine *e, pw_instance *i, pw_err *err)
{
        template_parent *p = i->parent;
        dev_t dev;
        ino_t ino;
        if (!p)
                return -EINVAL;
        int r = template_identity(e, p->template_name, &dev, &ino);
        pthread_mutex_lock(&e->parents->lock);
        bool retired = p->retired;
        pthread_mutex_unlock(&e->parents->lock);
        if (r < 0 || retired || dev != p->dev || ino != p->ino)
                return -ESTALE; /* rebuilt, removed or trimmed since */
        if ((r = manifest_verify(e, p->images, p->m, err)) < 0)
                parent_retire(e, p);
        return r;
}

pid_t clone_parent_pid(const pw_instance *i)
{
        return i->parent ? i->parent->inst->pid : 0;
}

void parents_trim(pw_engine *e)
{
        parents *ps = e->parents;
        pthread_mutex_lock(&ps->lock);
        template_parent *done = NULL;
        for (template_parent **pp = &ps->list; *pp;) {
                template_parent *p = *pp;
                p->retired = true;
                if (p->clones) {
                        pp = &p->next;
                        continue;
                }
                *pp = p->next;
                p->next = done;
                done = p;
        }
        pthread_mutex_unlock(&ps->lock);
        for (template_parent *next; done; done = next) {
                next = done->next;
                parent_free(done);
        }
}

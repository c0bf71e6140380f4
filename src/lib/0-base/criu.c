/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRIU's RPC protocol spoken directly: fork `criu swrk FD` with one end of a SOCK_SEQPACKET pair,
 * send one criu_req, read the criu_resp. This is what libcriu does; doing it here lets the child
 * join the instance's cgroups before CRIU starts (so every restored task is charged to them from
 * its first page) and lets CRIU run from a private root with its own loader.
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "config.h"
#include "criu.h"
#include "rpc.pb-c.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#if defined(__x86_64__)
#define PRIVATE_LOADER "/lib64/ld-linux-x86-64.so.2"
#define PRIVATE_LIBDIRS "/usr/lib/x86_64-linux-gnu:%s/lib/x86_64-linux-gnu"
#elif defined(__aarch64__)
#define PRIVATE_LOADER "/lib/ld-linux-aarch64.so.1"
#define PRIVATE_LIBDIRS "/usr/lib/aarch64-linux-gnu:%s/lib/aarch64-linux-gnu"
#endif

static bool is_executable(const char *path)
{
        return access(path, X_OK) == 0;
}

static char **private_root_argv(const char *root)
{
#ifdef PRIVATE_LOADER
        _cleanup_free_ char *loader = strdup_printf("%s" PRIVATE_LOADER, root);
        _cleanup_free_ char *binary = strdup_printf("%s/usr/sbin/criu", root);
        _cleanup_free_ char *libdirs = strdup_printf("%s" PRIVATE_LIBDIRS, root, root);
        if (!loader || !binary || !libdirs || !is_executable(loader) || access(binary, R_OK) < 0)
                return NULL;
        const char *argv[] = {loader, "--library-path", libdirs, binary, NULL};
        char **v = NULL;
        for (size_t i = 0; argv[i]; i++)
                if (strv_push(&v, argv[i]) < 0) {
                        strv_free(v);
                        return NULL;
                }
        return v;
#else
        return NULL;
#endif
}

int criu_locate(const char *explicit_path, char ***ret, pw_err *err)
{
        char **v = NULL;
        struct stat st;
        if (explicit_path) {
                if (stat(explicit_path, &st) == 0 && S_ISDIR(st.st_mode))
                        v = private_root_argv(explicit_path);
                else if (is_executable(explicit_path) && strv_push(&v, explicit_path) < 0)
                        return -ENOMEM;
                if (!v)
                        return err_set(err, -ENOENT, "CRIU not found at %s", explicit_path);
        } else if (!(v = private_root_argv(PW_PRIVATE_CRIU_ROOT))) {
                /* No private root: scripts/setup only skips it when the system's CRIU is >= 4.1. */
                const char *system[] = {"/usr/sbin/criu", "/usr/bin/criu", "/usr/local/sbin/criu"};
                for (size_t i = 0; i < ELEMENTSOF(system) && !v; i++)
                        if (is_executable(system[i]) && strv_push(&v, system[i]) < 0)
                                return -ENOMEM;
                if (!v)
                        return err_set(err, -ENOENT,
                                       "no CRIU found (neither %s nor a system criu): run scripts/setup",
                                       PW_PRIVATE_CRIU_ROOT);
        }
        *ret = v;
        return 0;
}

/* Async-signal-safe decimal formatting for the forked child. */
static void format_int(char *buf, long v)
{
        char tmp[24];
        int n = 0;
        do
                tmp[n++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                *buf++ = tmp[--n];
        *buf = '\0';
}

#define CRIU_ANSWER_TIMEOUT_S 120

typedef struct swrk {
        pid_t pid;
        int sk;
} swrk;

/*
 * CRIU probes ~40 kernel features on every start (tens of ms here) unless it finds its cache,
 * /run/criu.kdat, which it only writes when /run is a tmpfs (the cache must not survive a reboot).
 * Where /run is not a tmpfs, the engine keeps that cache in a directory on /dev/shm (a tmpfs,
 * emptied at boot just like /run should be) and shows it to CRIU as /run inside a private mount
 * namespace of CRIU's own. Returns the directory, or NULL when /run already is a tmpfs or
 * /dev/shm is not one (CRIU then does what it always does).
 */
char *criu_kdat_dir(void)
{
        struct statfs fs;
        if (statfs("/run", &fs) == 0 && fs.f_type == TMPFS_MAGIC)
                return NULL;
        if (statfs("/dev/shm", &fs) < 0 || fs.f_type != TMPFS_MAGIC)
                return NULL;
        const char *dir = "/dev/shm/prewarm-criu-run";
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return NULL;
        struct stat st;
        if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
                return NULL; /* not ours: never hand CRIU a /run someone else controls */
        return strdup(dir);
}

/* In the forked child: only system calls, and a failure just costs the probes. */
static void swrk_enter_kdat_run(const char *kdat_dir)
{
        if (!kdat_dir || unshare(CLONE_NEWNS) < 0)
                return;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
                mount(kdat_dir, "/run", NULL, MS_BIND, NULL);
}

void criu_child_setup(const pw_engine *e, uid_t dump_uid)
{
        swrk_enter_kdat_run(e->kdat_dir);
        if (dump_uid && (syscall(SYS_setresgid, dump_uid, 0, 0) < 0 || syscall(SYS_setresuid, dump_uid, 0, 0) < 0))
                _exit(126);
}

static void swrk_child(const pw_engine *e, int sk, const int *keep, size_t n_keep,
                       const char *const *cgroup_procs, uid_t dump_uid, int null_fd)
{
        char pid_str[24], sk_str[24];
        /* CRIU talks through the socket and its log; it must not write on our caller's terminal. */
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        format_int(pid_str, getpid());
        for (size_t i = 0; cgroup_procs && cgroup_procs[i]; i++) {
                int fd = open(cgroup_procs[i], O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, pid_str, strlen(pid_str)) < 0)
                        _exit(126);
                close(fd);
        }
        criu_child_setup(e, dump_uid);
        fcntl(sk, F_SETFD, 0);
        for (size_t i = 0; i < n_keep; i++)
                if (keep[i] >= 0)
                        fcntl(keep[i], F_SETFD, 0);
        format_int(sk_str, sk);

        const char *argv[16];
        size_t n = 0;
        for (; e->criu_argv[n] && n < ELEMENTSOF(argv) - 3; n++)
                argv[n] = e->criu_argv[n];
        argv[n++] = "swrk";
        argv[n++] = sk_str;
        argv[n] = NULL;
        char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
}

static int swrk_start(const pw_engine *e, const int *keep, size_t n_keep,
                      const char *const *cgroup_procs, uid_t dump_uid, swrk *ret, pw_err *err)
{
        int sk[2];
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0)
                return err_set(err, negative_errno(), "opening /dev/null: %m");
        if (socketpair(AF_LOCAL, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0)
                return err_set(err, negative_errno(), "socketpair: %m");
        pid_t pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(sk[0]);
                close(sk[1]);
                return err_set(err, r, "fork: %s", strerror(-r));
        }
        if (pid == 0) {
                close(sk[0]);
                swrk_child(e, sk[1], keep, n_keep, cgroup_procs, dump_uid, null_fd);
        }
        close(sk[1]);
        /* A CRIU that hangs must not hang the caller: its answer has a deadline (swrk_finish kills). */
        const struct timeval answer_timeout = {CRIU_ANSWER_TIMEOUT_S, 0};
        setsockopt(sk[0], SOL_SOCKET, SO_RCVTIMEO, &answer_timeout, sizeof(answer_timeout));
        ret->pid = pid;
        ret->sk = sk[0];
        return 0;
}

/* Waits for the swrk process; reports how it ended when it did not exit 0. */
static int swrk_finish(swrk *w, pw_err *err, int r)
{
        if (w->sk >= 0)
                close(w->sk);
        w->sk = -1;
        if (r == -ETIMEDOUT)
                kill(w->pid, SIGKILL);
        int status = reap(w->pid);
        /* A child that never became CRIU explains the failed exchange better than the socket does. */
        if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
                return err_set(err, -EIO, "could not join the instance's cgroup or take the dumped tree's ids");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return err_set(err, -ENOENT, "could not execute CRIU (%s)", "see pw_options.criu_path");
        return r;
}

static int send_req(int sk, CriuReq *req, pw_err *err)
{
        size_t len = criu_req__get_packed_size(req);
        _cleanup_free_ uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        criu_req__pack(req, buf);
        if (send(sk, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
                return err_set(err, negative_errno(), "sending the request to CRIU: %m");
        return 0;
}

static int recv_resp(int sk, CriuResp **ret, pw_err *err)
{
        ssize_t len;
        do
                len = recv(sk, NULL, 0, MSG_PEEK | MSG_TRUNC);
        while (len < 0 && errno == EINTR);
        if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return err_set(err, -ETIMEDOUT, "CRIU did not answer within %d s", CRIU_ANSWER_TIMEOUT_S);
        if (len < 0)
                return err_set(err, negative_errno(), "reading CRIU's answer: %m");
        if (len == 0)
                return err_set(err, -EIO, "CRIU exited without an answer");
        _cleanup_free_ uint8_t *buf = malloc((size_t)len);
        if (!buf)
                return -ENOMEM;
        if (recv(sk, buf, (size_t)len, 0) != len)
                return err_set(err, -EIO, "short read of CRIU's answer");
        CriuResp *resp = criu_resp__unpack(NULL, (size_t)len, buf);
        if (!resp)
                return err_set(err, -EPROTO, "CRIU's answer does not parse");
        *ret = resp;
        return 0;
}

static void resp_freep(CriuResp **r)
{
        if (*r)
                criu_resp__free_unpacked(*r, NULL);
}

/* The last lines of CRIU's log that say "Error", to tell a person what went wrong. */
static void log_errors(int work_fd, const char *log_name, char *out, size_t size)
{
        out[0] = '\0';
        _cleanup_close_ int fd = openat(work_fd, log_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        off_t end = lseek(fd, 0, SEEK_END);
        off_t start = end > 16384 ? end - 16384 : 0;
        char buf[16385];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, start);
        if (n <= 0)
                return;
        buf[n] = '\0';
        char *lines[3] = {NULL};
        for (char *line = buf, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (strstr(line, "Error")) {
                        memmove(lines, lines + 1, sizeof(lines) - sizeof(lines[0]));
                        lines[2] = line;
                }
        }
        for (size_t i = 0; i < 3; i++)
                if (lines[i]) {
                        size_t used = strlen(out);
                        snprintf(out + used, size - used, "%s%s", used ? " | " : "", lines[i]);
                }
}

struct criu_worker {
        swrk w;
};

static int criu_worker_start(const pw_engine *e, const int *keep, size_t n_keep, const char *const *cgroup_procs,
                             uid_t dump_uid, criu_worker **ret, pw_err *err)
{
        criu_worker *cw = malloc(sizeof(*cw));
        if (!cw)
                return -ENOMEM;
        *cw = (criu_worker){{.pid = -1, .sk = -1}};
        int r = swrk_start(e, keep, n_keep, cgroup_procs, dump_uid, &cw->w, err);
        if (r < 0) {
                free(cw);
                return r;
        }
        *ret = cw;
        return 0;
}

criu_worker *criu_worker_free(criu_worker *cw)
{
        if (!cw)
                return NULL;
        if (cw->w.sk >= 0)
                close(cw->w.sk);
        kill_and_reap(cw->w.pid);
        free(cw);
        return NULL;
}

/* Sends req to a started swrk, returns its answer and lets the swrk go. */
static int criu_call_on(criu_worker *cw, CriuReq *req, pid_t *ret_root_pid, CriuResp **ret, pw_err *err)
{
        swrk *w = &cw->w;
        int r = send_req(w->sk, req, err);
        CriuResp *resp = NULL;
        /* With notify_scripts CRIU reports its stages first; "setup-namespaces" carries the pid of
         * the restored tree's root, which rst_sibling makes our child even when the restore fails. */
        while (r >= 0 && (r = recv_resp(w->sk, &resp, err)) >= 0 && resp->type == CRIU_REQ_TYPE__NOTIFY) {
                if (ret_root_pid && resp->notify && resp->notify->has_pid && resp->notify->pid > 0)
                        *ret_root_pid = resp->notify->pid;
                criu_resp__free_unpacked(resp, NULL);
                resp = NULL;
                CriuReq ack = CRIU_REQ__INIT;
                ack.type = CRIU_REQ_TYPE__NOTIFY;
                ack.has_notify_success = true;
                ack.notify_success = true;
                r = send_req(w->sk, &ack, err);
        }
        r = swrk_finish(w, err, r);
        free(cw);
        if (r < 0) {
                if (resp)
                        criu_resp__free_unpacked(resp, NULL);
                return r;
        }
        *ret = resp;
        return 0;
}

/* Sends req through a fresh swrk and returns its answer. */
static int criu_call(const pw_engine *e, CriuReq *req, const int *keep, size_t n_keep,
                     uid_t dump_uid, pid_t *ret_root_pid, CriuResp **ret, pw_err *err)
{
        criu_worker *cw = NULL;
        int r = criu_worker_start(e, keep, n_keep, NULL, dump_uid, &cw, err);
        if (r < 0)
                return r;
        return criu_call_on(cw, req, ret_root_pid, ret, err);
}

static int failure(const CriuResp *resp, int work_fd, const char *log_name, pw_err *err)
{
        char errors[1024] = "";
        if (work_fd >= 0)
                log_errors(work_fd, log_name, errors, sizeof(errors));
        const char *msg = errors[0] ? errors : resp->cr_errmsg ? resp->cr_errmsg : "failed";
        if (resp->has_cr_errno && resp->cr_errno)
                return err_set(err, -EIO, "criu: %s (%s)", msg, strerror(resp->cr_errno));
        return err_set(err, -EIO, "criu: %s", msg);
}

int criu_get_version(const pw_engine *e, criu_version_info *ret, pw_err *err)
{
        CriuReq req = CRIU_REQ__INIT;
        req.type = CRIU_REQ_TYPE__VERSION;
        _cleanup_(resp_freep) CriuResp *resp = NULL;
        int r = criu_call(e, &req, NULL, 0, 0, NULL, &resp, err);
        if (r < 0)
                return r;
        if (!resp->success || !resp->version)
                return err_set(err, -EIO, "criu does not report its version");
        ret->major = resp->version->major_number;
        ret->minor = resp->version->minor_number;
        ret->sublevel = resp->version->has_sublevel ? resp->version->sublevel : 0;
        return 0;
}

int criu_run_check(const pw_engine *e, pw_err *err)
{
        CriuReq req = CRIU_REQ__INIT;
        CriuOpts opts = CRIU_OPTS__INIT;
        req.type = CRIU_REQ_TYPE__CHECK;
        req.opts = &opts;
        /* CRIU wants a directory even for checks; it writes nothing there. */
        _cleanup_close_ int dir_fd = open(e->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", e->state_dir);
        opts.images_dir_fd = dir_fd;
        _cleanup_(resp_freep) CriuResp *resp = NULL;
        int r = criu_call(e, &req, &dir_fd, 1, 0, NULL, &resp, err);
        if (r < 0)
                return r;
        return resp->success ? 0 : failure(resp, -1, NULL, err);
}

/* CPUINFO_DUMP or CPUINFO_CHECK with cpuinfo.img in dir. */
static int cpuinfo_call(const pw_engine *e, CriuReqType type, const char *dir, pw_err *err)
{
        CriuReq req = CRIU_REQ__INIT;
        CriuOpts opts = CRIU_OPTS__INIT;
        req.type = type;
        req.opts = &opts;
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", dir);
        opts.images_dir_fd = dir_fd;
        opts.has_work_dir_fd = true;
        opts.work_dir_fd = dir_fd;
        opts.log_file = "cpuinfo.log";
        opts.has_log_level = true;
        opts.log_level = 2;
        _cleanup_(resp_freep) CriuResp *resp = NULL;
        int r = criu_call(e, &req, &dir_fd, 1, 0, NULL, &resp, err);
        if (r < 0)
                return r;
        return resp->success ? 0 : failure(resp, dir_fd, "cpuinfo.log", err);
}

int criu_cpuinfo_dump(const pw_engine *e, const char *dir, pw_err *err)
{
        return cpuinfo_call(e, CRIU_REQ_TYPE__CPUINFO_DUMP, dir, err);
}

int criu_cpuinfo_check(const pw_engine *e, const char *dir, pw_err *err)
{
        return cpuinfo_call(e, CRIU_REQ_TYPE__CPUINFO_CHECK, dir, err);
}

/* What dump and restore share: where the images and the log are, and the sandbox's externals. */
static void set_common_opts(CriuOpts *opts, int images_fd, int work_fd, const char *log_file,
                            int log_level, const char *const *external)
{
        opts->images_dir_fd = images_fd;
        opts->has_work_dir_fd = true;
        opts->work_dir_fd = work_fd;
        opts->log_file = (char *)log_file;
        opts->has_log_level = true;
        opts->log_level = log_level;
        /* The sandbox has no TCP connections to protect, so no iptables or nftables lock. */
        opts->has_network_lock = true;
        opts->network_lock = CRIU_NETWORK_LOCK_METHOD__SKIP;
        opts->n_external = strv_length((char *const *)external);
        opts->external = (char **)external;
}

int criu_kdat_ensure(const pw_engine *e, pw_err *err)
{
        _cleanup_free_ char *cache = strdup_printf("%s/criu.kdat", e->kdat_dir ? e->kdat_dir : "/run");
        if (!cache)
                return -ENOMEM;
        if (access(cache, F_OK) == 0)
                return 0;
        criu_version_info v;
        return criu_get_version(e, &v, err); /* every CRIU run as root saves the cache */
}

int criu_dump(const pw_engine *e, const criu_dump_params *p, pw_err *err)
{
        CriuReq req = CRIU_REQ__INIT;
        CriuOpts opts = CRIU_OPTS__INIT;
        req.type = CRIU_REQ_TYPE__DUMP;
        req.opts = &opts;
        /* Builds are rare and their log is kept with the template: make it a useful one. */
        set_common_opts(&opts, p->images_fd, p->work_fd, "dump.log", 4, p->external);
        opts.has_pid = true;
        opts.pid = p->pid;
        opts.has_leave_running = true;
        opts.leave_running = false;

        const int keep[] = {p->images_fd, p->work_fd};
        _cleanup_(resp_freep) CriuResp *resp = NULL;
        int r = p->uid ? criu_kdat_ensure(e, err) : 0;
        if (r >= 0)
                r = criu_call(e, &req, keep, ELEMENTSOF(keep), p->uid, NULL, &resp, err);
        if (r < 0)
                return r;
        return resp->success ? 0 : failure(resp, p->work_fd, "dump.log", err);
}

/* The descriptors a restore's CRIU must have: images, work dir, and what it hands on. */
static size_t restore_keep(const criu_restore_params *p, int *keep, size_t max)
{
        size_t n = 0;
        keep[n++] = p->images_fd;
        keep[n++] = p->work_fd;
        for (size_t i = 0; i < p->n_inherit && n < max; i++)
                keep[n++] = p->inherit[i].fd;
        return n;
}

int criu_restore_worker(const pw_engine *e, const criu_restore_params *p, criu_worker **ret, pw_err *err)
{
        int keep[2 + CRIU_MAX_INHERIT];
        if (p->n_inherit > CRIU_MAX_INHERIT)
                return -E2BIG;
        size_t n = restore_keep(p, keep, ELEMENTSOF(keep));
        return criu_worker_start(e, keep, n, p->cgroup_procs, 0, ret, err);
}

int criu_restore_on(criu_worker *cw, const criu_restore_params *p, pid_t *ret_pid, pw_err *err)
{
        CriuReq req = CRIU_REQ__INIT;
        CriuOpts opts = CRIU_OPTS__INIT;
        req.type = CRIU_REQ_TYPE__RESTORE;
        req.opts = &opts;
        const char *keep_log = getenv("PREWARM_CRIU_LOG_DIR");
        set_common_opts(&opts, p->images_fd, p->work_fd, "restore.log", keep_log && *keep_log ? 4 : 2,
                        p->external);
        opts.root = (char *)p->root;
        /* The restored tree becomes our child, so the engine can wait for it. */
        opts.has_rst_sibling = true;
        opts.rst_sibling = true;
        /* CRIU's process already sits in the instance's cgroups; the tasks stay where it forks them. */
        opts.has_manage_cgroups_mode = true;
        opts.manage_cgroups_mode = CRIU_CG_MODE__IGNORE;

        InheritFd items[CRIU_MAX_INHERIT];
        InheritFd *ptrs[CRIU_MAX_INHERIT];
        if (p->n_inherit > CRIU_MAX_INHERIT) {
                criu_worker_free(cw);
                return -E2BIG;
        }
        for (size_t i = 0; i < p->n_inherit; i++) {
                inherit_fd__init(&items[i]);
                items[i].key = (char *)p->inherit[i].key;
                items[i].fd = p->inherit[i].fd;
                ptrs[i] = &items[i];
        }
        opts.n_inherit_fd = p->n_inherit;
        opts.inherit_fd = ptrs;

        opts.has_notify_scripts = true;
        opts.notify_scripts = true;
        _cleanup_(resp_freep) CriuResp *resp = NULL;
        pid_t root = 0;
        int r = criu_call_on(cw, &req, &root, &resp, err);
        if (r < 0 || !resp->success || !resp->restore || resp->restore->pid <= 0)
                kill_and_reap(root); /* the tree CRIU gave up on: its root is our child */
        if (r < 0)
                return r;
        if (!resp->success)
                return failure(resp, p->work_fd, "restore.log", err);
        if (!resp->restore || resp->restore->pid <= 0)
                return err_set(err, -EPROTO, "criu: restore answer without a pid");
        *ret_pid = resp->restore->pid;
        return 0;
}

/* argv of `criu restore` with the options criu_restore_on sends over RPC. */
static char **restore_cli_argv(const pw_engine *e, const criu_restore_params *p, const char *images,
                               const char *work)
{
        _cleanup_strv_free_ char **v = NULL;
        for (size_t i = 0; e->criu_argv[i]; i++)
                if (strv_push(&v, e->criu_argv[i]) < 0)
                        return NULL;
        const char *fixed[] = {"restore", "--images-dir", images, "--work-dir", work, "--log-file",
                               "restore.log", "-v2", "--root", p->root, "--restore-detached",
                               "--restore-sibling", "--pidfile", "restore.pid", "--manage-cgroups=ignore",
                               "--network-lock", "skip", NULL};
        for (size_t i = 0; fixed[i]; i++)
                if (strv_push(&v, fixed[i]) < 0)
                        return NULL;
        for (size_t i = 0; p->external && p->external[i]; i++)
                if (strv_push(&v, "--external") < 0 || strv_push(&v, p->external[i]) < 0)
                        return NULL;
        for (size_t i = 0; i < p->n_inherit; i++) {
                _cleanup_free_ char *spec = strdup_printf("fd[%d]:%s", p->inherit[i].fd, p->inherit[i].key);
                if (!spec || strv_push(&v, "--inherit-fd") < 0 || strv_push(&v, spec) < 0)
                        return NULL;
        }
        return TAKE_PTR(v);
}

static void restore_cli_child(char **argv, const criu_restore_params *p, int null_fd)
{
        char pid_str[24];
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        format_int(pid_str, getpid());
        for (size_t i = 0; p->cgroup_procs && p->cgroup_procs[i]; i++) {
                int fd = open(p->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write(fd, pid_str, strlen(pid_str)) < 0)
                        _exit(126);
                close(fd);
        }
        fcntl(p->images_fd, F_SETFD, 0);
        fcntl(p->work_fd, F_SETFD, 0);
        for (size_t i = 0; i < p->n_inherit; i++)
                fcntl(p->inherit[i].fd, F_SETFD, 0);
        char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve(argv[0], argv, envp);
        _exit(127);
}

int criu_restore_cli(const pw_engine *e, const criu_restore_params *p, pid_t *ret_pid, pw_err *err)
{
        char images[64], work[64];
        /* Our descriptors, seen from the child that becomes CRIU: it inherits them. */
        snprintf(images, sizeof(images), "/proc/self/fd/%d", p->images_fd);
        snprintf(work, sizeof(work), "/proc/self/fd/%d", p->work_fd);
        _cleanup_strv_free_ char **argv = restore_cli_argv(e, p, images, work);
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (!argv || null_fd < 0)
                return argv ? err_set(err, negative_errno(), "opening /dev/null: %m") : -ENOMEM;
        pid_t pid = fork();
        if (pid == 0)
                restore_cli_child(argv, p, null_fd);
        if (pid < 0)
                return err_set(err, negative_errno(), "fork: %m");
        int status = reap_within(pid, CRIU_ANSWER_TIMEOUT_S * 1000);
        _cleanup_free_ char *pid_file = strdup_printf("%s/restore.pid", work);
        _cleanup_free_ char *pid_text = NULL;
        int r = pid_file ? read_file(pid_file, 64, &pid_text, NULL) : -ENOMEM;
        long root = r >= 0 ? strtol(pid_text, NULL, 10) : 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && root > 0) {
                *ret_pid = (pid_t)root;
                return 0;
        }
        kill_and_reap((pid_t)root);
        char errors[1024] = "";
        log_errors(p->work_fd, "restore.log", errors, sizeof(errors));
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return err_set(err, -ENOENT, "could not execute CRIU");
        return err_set(err, -EIO, "criu restore: %s", errors[0] ? errors : "failed");
}

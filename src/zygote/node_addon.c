/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The clone helper as a Node-API module: what criu-templates/node/agent.js cannot do in
 * JavaScript. Node has no fork, no SCM_RIGHTS on its sockets and no way to reseed the OpenSSL
 * it carries, so the template parent's socket, its clone call and the reseeding are here.
 *
 * The same libprewarm-zygote.so is a Node module (it exports napi_register_module_v1) and a
 * plain C library for the Python and native agents: the napi_* calls are weak references that
 * only a Node process resolves, so loading it anywhere else costs nothing and needs nothing.
 *
 * A clone gets none of its parent's descriptors above the channel (the helper closes them: it must
 * share no kernel object with its parent or its siblings), so the event loop's epoll instance and
 * wake-up descriptors are made anew (uv_loop_fork) before any JavaScript runs in it.
 *
 * Node's own threads (V8's platform workers, its delayed-task and inspector-signal threads) are
 * idle in a template parent: with --single-threaded V8 posts them no work. A clone gets only the
 * calling thread, as after any fork; the agent must therefore never make Node tear down its
 * platform (it ends with exit() here, not process.exit()'s join of threads it does not have).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node/node_api.h>

/* libuv's, exported by every Node (uv.h itself needs Node's include directory on the path). */
int uv_loop_fork(struct uv_loop_s *loop);

#include "prewarm-zygote.h"

#pragma weak napi_create_function
#pragma weak napi_set_named_property
#pragma weak napi_get_cb_info
#pragma weak napi_get_value_int32
#pragma weak napi_create_int32
#pragma weak napi_create_object
#pragma weak napi_create_array_with_length
#pragma weak napi_set_element
#pragma weak napi_get_element
#pragma weak napi_get_array_length
#pragma weak napi_get_buffer_info
#pragma weak napi_create_buffer_copy
#pragma weak napi_get_null
#pragma weak napi_get_boolean
#pragma weak napi_throw_error
#pragma weak napi_get_uv_event_loop
#pragma weak uv_loop_fork

#define MAX_FDS 8
#define MAX_MESSAGE (1 << 16)

/* Throws "WHAT: strerror(-r)" and returns NULL, the value a failed call hands back to JS. */
static napi_value throw_errno(napi_env env, const char *what, int r)
{
        char msg[256];
        snprintf(msg, sizeof(msg), "%s: %s", what, strerror(-r));
        napi_throw_error(env, NULL, msg);
        return NULL;
}

static napi_value int_value(napi_env env, int32_t v)
{
        napi_value out;
        napi_create_int32(env, v, &out);
        return out;
}

/* The call's arguments, at most n; missing ones are undefined. */
static void args_of(napi_env env, napi_callback_info info, napi_value *argv, size_t n)
{
        size_t argc = n;
        napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
}

static int int_arg(napi_env env, napi_value v, int32_t *out)
{
        return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -EINVAL;
}

static int int_array_arg(napi_env env, napi_value v, int32_t *out, uint32_t max, uint32_t *ret_n)
{
        uint32_t n;
        if (napi_get_array_length(env, v, &n) != napi_ok || n > max)
                return -EINVAL;
        for (uint32_t i = 0; i < n; i++) {
                napi_value e;
                if (napi_get_element(env, v, i, &e) != napi_ok || int_arg(env, e, &out[i]) < 0)
                        return -EINVAL;
        }
        *ret_n = n;
        return 0;
}

/* socketpair() -> [mine, theirs]: the parent's SOCK_SEQPACKET pair. */
static napi_value js_socketpair(napi_env env, napi_callback_info info)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return throw_errno(env, "socketpair", -errno);
        napi_value pair;
        napi_create_array_with_length(env, 2, &pair);
        napi_set_element(env, pair, 0, int_value(env, sp[0]));
        napi_set_element(env, pair, 1, int_value(env, sp[1]));
        return pair;
}

static void put_fds(napi_env env, napi_value obj, struct msghdr *mh)
{
        napi_value fds;
        uint32_t n = 0;
        napi_create_array_with_length(env, 0, &fds);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                const int *got = (const int *)CMSG_DATA(c);
                for (size_t i = 0; i < count; i++)
                        napi_set_element(env, fds, n++, int_value(env, got[i]));
        }
        napi_set_named_property(env, obj, "fds", fds);
}

/* recv(fd) -> {msg: Buffer or null at end of file, fds: [...]}: one datagram, blocking. */
static napi_value js_recv(napi_env env, napi_callback_info info)
{
        napi_value argv[1];
        int32_t fd;
        args_of(env, info, argv, 1);
        if (int_arg(env, argv[0], &fd) < 0)
                return throw_errno(env, "recv", -EINVAL);
        static char buf[MAX_MESSAGE];
        union {
                char space[CMSG_SPACE(MAX_FDS * sizeof(int))];
                struct cmsghdr align;
        } control;
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space,
                            .msg_controllen = sizeof(control.space)};
        ssize_t n;
        while ((n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
                ;
        if (n < 0)
                return throw_errno(env, "recvmsg", -errno);
        napi_value obj, msg;
        napi_create_object(env, &obj);
        if (n == 0)
                napi_get_null(env, &msg);
        else
                napi_create_buffer_copy(env, (size_t)n, buf, NULL, &msg);
        napi_set_named_property(env, obj, "msg", msg);
        put_fds(env, obj, &mh);
        return obj;
}

/* send(fd, buffer, fd_to_pass or -1): one datagram. */
static napi_value js_send(napi_env env, napi_callback_info info)
{
        napi_value argv[3];
        int32_t fd, pass;
        void *data;
        size_t len;
        args_of(env, info, argv, 3);
        if (int_arg(env, argv[0], &fd) < 0 || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
            int_arg(env, argv[2], &pass) < 0)
                return throw_errno(env, "send", -EINVAL);
        union {
                char space[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control = {0};
        struct iovec iov = {data, len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (pass >= 0) {
                mh.msg_control = control.space;
                mh.msg_controllen = sizeof(control.space);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass, sizeof(int));
        }
        ssize_t n;
        while ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
                ;
        return n < 0 ? throw_errno(env, "sendmsg", -errno) : NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
        napi_value argv[1];
        int32_t fd;
        args_of(env, info, argv, 1);
        if (int_arg(env, argv[0], &fd) == 0)
                close(fd);
        return NULL;
}

/* exit(status): ends the process now, without Node's teardown (see the top of this file). */
static napi_value js_exit(napi_env env, napi_callback_info info)
{
        napi_value argv[1];
        int32_t status = 1;
        args_of(env, info, argv, 1);
        int_arg(env, argv[0], &status);
        _exit(status);
}

/* reapChildren(): a parent's clones are reaped by the kernel as they end. The clone's init
 * resets it (prewarm_zygote_become_init). */
static napi_value js_reap_children(napi_env env, napi_callback_info info)
{
        signal(SIGCHLD, SIG_IGN);
        return NULL;
}

/* goUnderInit(): prewarm_zygote_go_under_init() for a restored copy's agent; true in the agent
 * when it forked (its loop goes on: a plain fork keeps every descriptor, and the parent's
 * copies close at its exec), false when there was nothing to do. */
static napi_value js_go_under_init(napi_env env, napi_callback_info info)
{
        int r = prewarm_zygote_go_under_init();
        if (r < 0)
                return throw_errno(env, "fork", r);
        napi_value v;
        napi_get_boolean(env, r > 0, &v);
        return v;
}

/* The highest descriptor this process has open, or -1. */
static int highest_fd(void)
{
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -1;
        int high = -1;
        for (struct dirent *e; (e = readdir(d));) {
                int fd = atoi(e->d_name);
                if (fd > high && fd != dirfd(d))
                        high = fd;
        }
        closedir(d);
        return high;
}

static bool is_dev_null(int fd)
{
        struct stat st;
        return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

/* In a new clone, whose helper closed every descriptor of the parent above the channel: makes
 * this runtime's event loop and signal pipes anew (uv_loop_fork, and libuv's at-fork handler in
 * the agent's fork). Both close the descriptor numbers the parent's objects had before they open
 * new ones; until then those numbers hold /dev/null, so that nothing new lands on a number that
 * is about to be closed. Returns 0 in the agent, sandboxed, under its init. */
static int clone_child_loop(napi_env env, int parent_high)
{
        for (int fd; (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
                if (fd > parent_high) {
                        close(fd);
                        break;
                }
        int r = prewarm_zygote_become_init();
        if (r < 0)
                return r;
        struct uv_loop_s *loop;
        if (napi_get_uv_event_loop(env, &loop) != napi_ok)
                return -EINVAL;
        if ((r = uv_loop_fork(loop)) < 0) /* libuv's errors are negative errnos */
                return r;
        for (int fd = 6; fd <= parent_high; fd++)
                if (is_dev_null(fd))
                        close(fd);
        return 0;
}

/* clone(uid, gid, tmp_mb, [ctl_in, ctl_out, sync(, cgroup)]) -> {pid, pidfd} in the parent;
 * {pid: 0} in the new clone's agent, sandboxed, under its init. */
static napi_value js_clone(napi_env env, napi_callback_info info)
{
        napi_value argv[4];
        int32_t uid, gid, tmp_mb, fds[4];
        uint32_t n_fds = 0;
        args_of(env, info, argv, 4);
        if (int_arg(env, argv[0], &uid) < 0 || int_arg(env, argv[1], &gid) < 0 ||
            int_arg(env, argv[2], &tmp_mb) < 0 || int_array_arg(env, argv[3], fds, 4, &n_fds) < 0 ||
            n_fds < 3 || uid <= 0 || gid <= 0 || tmp_mb <= 0)
                return throw_errno(env, "clone needs uid, gid, tmp_mb and 3 or 4 descriptors", -EINVAL);
        struct prewarm_clone_request req = {
                .size = sizeof(req), .ctl_in = fds[0], .ctl_out = fds[1], .sync = fds[2],
                .cgroup = n_fds == 4 ? fds[3] : -1, .uid = (uint32_t)uid, .gid = (uint32_t)gid,
                .tmp_mb = (uint32_t)tmp_mb,
        };
        int pidfd = -1;
        int high = highest_fd();
        prewarm_zygote_inherit_all();
        int pid = prewarm_zygote_clone(&req, &pidfd);
        if (pid < 0)
                return throw_errno(env, "clone3", pid);
        napi_value obj;
        napi_create_object(env, &obj);
        if (pid == 0) {
                int r = clone_child_loop(env, high);
                if (r < 0) { /* the init has the sync socket still; an agent ends so */
                        dprintf(5, "sandbox: the agent's event loop: %s", strerror(-r));
                        _exit(125);
                }
        } else {
                napi_set_named_property(env, obj, "pidfd", int_value(env, pidfd));
        }
        napi_set_named_property(env, obj, "pid", int_value(env, pid));
        return obj;
}

/* forkServing(ctl_in, ctl_out) -> pid, or 0 in the child, which has them at fds 3 and 4: the bench's
 * fork zygote (bench/fork_zygote.js), a plain fork with nothing of the sandbox. */
static napi_value js_fork_serving(napi_env env, napi_callback_info info)
{
        napi_value argv[2];
        int32_t in, out;
        args_of(env, info, argv, 2);
        if (int_arg(env, argv[0], &in) < 0 || int_arg(env, argv[1], &out) < 0 || in <= 4 || out <= 4)
                return throw_errno(env, "forkServing needs two descriptors above 4", -EINVAL);
        prewarm_zygote_inherit_all();
        pid_t pid = fork(); /* libuv's and OpenSSL's at-fork handlers run */
        if (pid < 0)
                return throw_errno(env, "fork", -errno);
        if (pid == 0) {
                signal(SIGCHLD, SIG_DFL);
                struct uv_loop_s *loop;
                if (dup2(in, 3) < 0 || dup2(out, 4) < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok ||
                    uv_loop_fork(loop) < 0)
                        _exit(125);
                close(in);
                close(out);
        }
        return int_value(env, pid);
}

/* reseedOpenSSL() -> whether it could: mixes fresh kernel entropy into the OpenSSL that Node
 * carries (its own, or the system's), whose generator state every copy of a checkpoint shares
 * and which reseeds itself only when it sees a fork (a restore and a raw clone are none). */
static napi_value js_reseed_openssl(napi_env env, napi_callback_info info)
{
        void (*rand_add)(const void *, int, double) = (void (*)(const void *, int, double))dlsym(RTLD_DEFAULT, "RAND_add");
        unsigned char seed[48];
        bool done = false;
        if (rand_add && getrandom(seed, sizeof(seed), 0) == (ssize_t)sizeof(seed)) {
                rand_add(seed, (int)sizeof(seed), (double)sizeof(seed));
                done = true;
        }
        explicit_bzero(seed, sizeof(seed));
        napi_value out;
        napi_get_boolean(env, done, &out);
        return out;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback fn)
{
        napi_value f;
        napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
        napi_set_named_property(env, exports, name, f);
}

NAPI_MODULE_INIT()
{
        export_function(env, exports, "socketpair", js_socketpair);
        export_function(env, exports, "recv", js_recv);
        export_function(env, exports, "send", js_send);
        export_function(env, exports, "close", js_close);
        export_function(env, exports, "exit", js_exit);
        export_function(env, exports, "reapChildren", js_reap_children);
        export_function(env, exports, "clone", js_clone);
        export_function(env, exports, "reseedOpenSSL", js_reseed_openssl);
        export_function(env, exports, "forkServing", js_fork_serving);
        export_function(env, exports, "goUnderInit", js_go_under_init);
        return exports;
}

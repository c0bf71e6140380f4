/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The template parent (docs/agent-protocol.md, "Template parents and clones"): an unspecialized
 * copy that clones the instances, each sharing its memory copy-on-write, through the clone helper
 * (src/zygote/clone.c) it loaded before the checkpoint. It takes requests on a SOCK_SEQPACKET
 * socket whose other end the engine takes out of this process with pidfd_getfd.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "agent.h"
#include "prewarm-zygote.h"
#include "util.h"

#define MAX_REQUEST_FDS 8 /* a clone request carries 3 or 4 */

static struct {
        void *library;
        __typeof__(prewarm_zygote_clone) *clone;
        __typeof__(prewarm_zygote_become_init) *become_init;
        __typeof__(prewarm_zygote_go_under_init) *go_under_init; /* NULL in an older helper */
} helper;

int helper_load(void)
{
        if (access(HELPER_PATH, F_OK) < 0)
                return 0; /* a template built without it: never a parent */
        void *library = dlopen(HELPER_PATH, RTLD_NOW | RTLD_LOCAL);
        void *clone = library ? dlsym(library, "prewarm_zygote_clone") : NULL;
        void *become_init = library ? dlsym(library, "prewarm_zygote_become_init") : NULL;
        if (!clone || !become_init) {
                fprintf(stderr, "prewarm agent: cannot load the clone helper %s: %s\n", HELPER_PATH, dlerror());
                return -ENOENT;
        }
        helper.library = library;
        helper.clone = (__typeof__(helper.clone))clone;
        helper.become_init = (__typeof__(helper.become_init))become_init;
        helper.go_under_init = (__typeof__(helper.go_under_init))dlsym(library, "prewarm_zygote_go_under_init");
        return 0;
}

int helper_go_under_init(void)
{
        return helper.go_under_init ? helper.go_under_init() : 0;
}

bool helper_loaded(void)
{
        return helper.library != NULL;
}

/* One request datagram and the descriptors it carries. Returns its length (0: the engine hung up)
 * or a negative errno. */
static ssize_t request_recv(int sock, char *buf, size_t size, int fds[MAX_REQUEST_FDS], size_t *ret_n_fds)
{
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(MAX_REQUEST_FDS * sizeof(int))];
        } control;
        struct iovec iov = {buf, size};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf)};
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return negative_errno();
        *ret_n_fds = 0;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h; h = CMSG_NXTHDR(&msg, h))
                if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
                        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        k = k < MAX_REQUEST_FDS - *ret_n_fds ? k : MAX_REQUEST_FDS - *ret_n_fds;
                        memcpy(fds + *ret_n_fds, CMSG_DATA(h), k * sizeof(int));
                        *ret_n_fds += k;
                }
        return n;
}

static int reply_with_fd(int sock, json_t *reply, int fd)
{
        _cleanup_free_ char *text = json_dumps(reply, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        struct iovec iov = {text, strlen(text)};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {0};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (fd >= 0) {
                msg.msg_control = control.buf;
                msg.msg_controllen = sizeof(control.buf);
                struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
                *h = (struct cmsghdr){.cmsg_len = CMSG_LEN(sizeof(int)), .cmsg_level = SOL_SOCKET,
                                      .cmsg_type = SCM_RIGHTS};
                memcpy(CMSG_DATA(h), &fd, sizeof(int));
        }
        return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? negative_errno() : 0;
}

/* In a fresh clone: its init stays pid 1 of the namespace, the agent goes on in its child. */
static int become_instance(void)
{
        if (helper.become_init() < 0)
                _exit(125); /* the init could not fork the agent: it ends, and the engine sees it */
        return SERVE_CLONED;
}

/* Clones a child for the request. In the parent returns 0 with the child's pid and pidfd; in the
 * child, once its sandbox is made, SERVE_CLONED. */
static int clone_child(json_t *req, const int *fds, size_t n_fds, int *ret_pid, int *ret_pidfd, refusal *why)
{
        static const char *const keys[] = {"uid", "gid", "tmp_mb"};
        json_int_t v[ELEMENTSOF(keys)];
        bool valid = n_fds == 3 || n_fds == 4;
        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                json_t *j = json_object_get(req, keys[k]);
                v[k] = json_is_integer(j) ? json_integer_value(j) : 0;
                valid = valid && v[k] > 0 && v[k] < (json_int_t)1 << 32;
        }
        if (!valid)
                return refuse(why, "protocol", "clone needs uid, gid, tmp_mb and 3 or 4 descriptors");
        const struct prewarm_clone_request r = {
                .size = sizeof(r), .ctl_in = fds[0], .ctl_out = fds[1], .sync = fds[2],
                .cgroup = n_fds == 4 ? fds[3] : -1, .uid = (uint32_t)v[0], .gid = (uint32_t)v[1],
                .tmp_mb = (uint32_t)v[2],
        };
        int pidfd = -1;
        int pid = helper.clone(&r, &pidfd);
        if (pid == 0)
                return become_instance();
        if (pid < 0)
                return refuse(why, "clone", "clone3: %s", strerror(-pid));
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        return 0;
}

/* Answers one request of the engine into *ret_reply (NULL: nothing to answer) with the child's
 * pidfd, or returns SERVE_CLONED in a new child. The descriptors that came with the request are
 * the child's: the parent closes its copies. */
static int parent_request(const char *msg, size_t n, const int *fds, size_t n_fds, json_t **ret_reply, int *ret_pidfd)
{
        refusal why = {0};
        json_error_t jerr;
        json_auto_t *req = json_loadb(msg, n, 0, &jerr);
        const char *op = json_string_value(json_object_get(req, "op"));
        int r = 0, pid = 0;
        if (!req)
                r = refuse(&why, "protocol", "malformed JSON: %s", jerr.text);
        else if (!op || (strcmp(op, "clone") && strcmp(op, "attached")))
                r = refuse(&why, "protocol", "a parent takes only clone requests");
        else if (!strcmp(op, "clone"))
                r = clone_child(req, fds, n_fds, &pid, ret_pidfd, &why);
        if (r == SERVE_CLONED)
                return r; /* the helper closed them already, and their numbers are no longer theirs */
        for (size_t k = 0; k < n_fds; k++)
                close(fds[k]);
        if (r < 0)
                *ret_reply = refusal_reply(&why);
        else if (!strcmp(op, "clone"))
                *ret_reply = json_pack("{s:b, s:i}", "ok", 1, "pid", pid);
        return 0;
}

/* Clones a child for each request on the engine's socket until the engine hangs up. */
static int serve_parent(int sock, int engine_end)
{
        signal(SIGCHLD, SIG_IGN); /* its clones are reaped by the kernel; their init resets it */
        for (;;) {
                char msg[65536];
                int fds[MAX_REQUEST_FDS];
                size_t n_fds = 0;
                ssize_t n = request_recv(sock, msg, sizeof(msg), fds, &n_fds);
                if (engine_end >= 0) { /* the engine took its end: the socket is ours alone now */
                        close(engine_end);
                        engine_end = -1;
                }
                if (n == -EINTR)
                        continue;
                if (n <= 0)
                        return n == 0 ? SERVE_HANGUP : (int)n;
                json_auto_t *reply = NULL;
                int pidfd = -1;
                if (parent_request(msg, (size_t)n, fds, n_fds, &reply, &pidfd) == SERVE_CLONED)
                        return SERVE_CLONED;
                int r = reply ? reply_with_fd(sock, reply, pidfd) : 0;
                if (pidfd >= 0)
                        close(pidfd);
                if (r < 0)
                        return r;
        }
}

int agent_parent(agent *a, refusal *why)
{
        if (a->specialized || !helper.library)
                return refuse(why, "state", "only an unspecialized zygote with the clone helper is a parent");
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return refuse(why, "clone", "socketpair: %m");
        json_auto_t *reply = json_pack("{s:b, s:i}", "ok", 1, "fd", pair[1]);
        int r = reply ? reply_send(reply) : -ENOMEM;
        if (r >= 0)
                r = serve_parent(pair[0], pair[1]);
        else
                close(pair[1]);
        /* A new clone leaves the number alone: its helper closed the socket, and the number may
         * be its sync socket's now. */
        if (r != SERVE_CLONED)
                close(pair[0]);
        return r;
}

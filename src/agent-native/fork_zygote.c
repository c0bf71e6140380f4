/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `prewarm-agent-native --fork-zygote [AGENT]`: the fork_zygote mode of `prewarm bench` for this
 * runtime (the SOCK / OpenLambda approach): a long-lived, unisolated agent that has loaded the
 * template's preloads forks one child per request, and the child serves the agent protocol. The
 * protocol is bench/fork_zygote.py's, on a SOCK_SEQPACKET socket at fd 3:
 *   zygote -> bench  "ready"                  once the preloads are loaded
 *   bench  -> zygote "fork" + SCM_RIGHTS [r, w] the child's request and reply pipe ends
 *   zygote -> bench  "PID"                    the child, serving on r (fd 3) and w (fd 4)
 * The zygote exits when the bench closes the socket; its children are reaped by the kernel.
 * AGENT (the bench passes the agent's own path) is not used: this program is the agent.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "agent.h"
#include "util.h"

#define CONTROL_FD 3

static void answer(const char *text)
{
        if (send(CONTROL_FD, text, strlen(text), MSG_NOSIGNAL) < 0) {
                /* the bench is gone: the next receive ends the zygote */
        }
}

/* A "fork" request: its text into buf and the two descriptors into fds (-1 when absent). */
static ssize_t request_recv(char *buf, size_t size, int fds[2], size_t *ret_n_fds)
{
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } control;
        struct iovec iov = {buf, size - 1};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf)};
        ssize_t n = recvmsg(CONTROL_FD, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        *ret_n_fds = 0;
        struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
        if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
                size_t n_fds = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                *ret_n_fds = n_fds < 2 ? n_fds : 2;
                memcpy(fds, CMSG_DATA(h), *ret_n_fds * sizeof(int));
        }
        return n;
}

/* Puts fd at target, close-on-exec (a function's child process must not get the channel). */
static int move_fd(int fd, int target)
{
        if (fd == target)
                return fcntl(fd, F_SETFD, FD_CLOEXEC);
        int r = dup3(fd, target, O_CLOEXEC);
        close(fd);
        return r;
}

_Noreturn static void child_serve(int req, int rep)
{
        close(CONTROL_FD); /* frees fd 3 for the request pipe */
        signal(SIGCHLD, SIG_DFL);
        /* Neither came at 3 (the control socket held it), so moving req there first spares rep. */
        if (move_fd(req, REQ_FD) < 0 || move_fd(rep, REP_FD) < 0)
                _exit(1);
        agent a = {0};
        _exit(serve(&a) == SERVE_HANGUP ? 0 : 1);
}

int fork_zygote_main(void)
{
        signal(SIGCHLD, SIG_IGN);
        if (preload_libraries() < 0)
                return 1;
        answer("ready");
        for (;;) {
                char msg[16];
                int fds[2] = {-1, -1};
                size_t n_fds = 0;
                ssize_t n = request_recv(msg, sizeof(msg), fds, &n_fds);
                if (n == -EINTR)
                        continue;
                if (n <= 0)
                        return n == 0 ? 0 : 1; /* the bench is gone */
                if (strcmp(msg, "fork") || n_fds != 2) {
                        for (size_t k = 0; k < n_fds; k++)
                                close(fds[k]);
                        answer("error: expected 'fork' with two descriptors");
                        continue;
                }
                pid_t pid = fork();
                if (pid == 0)
                        child_serve(fds[0], fds[1]);
                char text[64];
                if (pid < 0)
                        snprintf(text, sizeof(text), "error: fork: %s", strerror(errno));
                else
                        snprintf(text, sizeof(text), "%d", (int)pid);
                close(fds[0]);
                close(fds[1]);
                answer(text);
        }
}

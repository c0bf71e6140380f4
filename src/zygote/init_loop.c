/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The init of a sandbox whose agent is not pid 1 of its namespace. The kernel hands an init every
 * orphan of the namespace to reap and keeps from it any signal it has no handler for, so an agent
 * that were pid 1 would gather the zombies of its function's orphans and could not die of its own
 * abort(): here a small init does the reaping, and the agent is an ordinary process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init_loop.h"

static volatile pid_t init_agent;

static void init_forward(int sig)
{
        if (init_agent > 0)
                kill(init_agent, sig);
}

static const int init_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

_Noreturn void init_serve(pid_t agent, int status_fd)
{
        init_agent = agent;
        signal(SIGCHLD, SIG_DFL); /* an ignored SIGCHLD would have the kernel reap the agent unseen */
        struct sigaction sa = {.sa_handler = init_forward};
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(init_forwarded) / sizeof(init_forwarded[0]); i++)
                sigaction(init_forwarded[i], &sa, NULL);
        for (;;) { /* reap orphans; end with the agent, the way it ended */
                int status;
                pid_t pid = wait(&status);
                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid < 0)
                        _exit(1);
                if (pid != agent)
                        continue;
                if (status_fd >= 0) {
                        char how[32];
                        int len = WIFEXITED(status) ? snprintf(how, sizeof(how), "exited %d", WEXITSTATUS(status))
                                                    : snprintf(how, sizeof(how), "killed %d", WTERMSIG(status));
                        if (write(status_fd, how, (size_t)len) < 0) {
                                /* the engine went away: nobody to tell */
                        }
                }
                _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm-agent-native's start (agent.h): preload, shed what a checkpoint must not hold, say ready
 * and serve. With --fork-zygote it is the bench's fork-zygote baseline instead (fork_zygote.c).
 */
#include <dirent.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <stdio.h>

#include "agent.h"
#include "frame.h"
#include "util.h"

/* The checkpoint must hold one thread: a preloaded library must not have started any. */
static int check_single_threaded(void)
{
        DIR *d = opendir("/proc/self/task");
        if (!d)
                return 0; /* no /proc: nothing to count with, and nothing here starts threads */
        unsigned tasks = 0;
        for (struct dirent *de; (de = readdir(d));)
                tasks += de->d_name[0] != '.';
        closedir(d);
        if (tasks == 1)
                return 0;
        fprintf(stderr, "prewarm agent: %u threads after preloading; the checkpoint must be single-threaded\n", tasks);
        return -EBUSY;
}

/* No descriptor but the channel (a build's stray ones, the stderr pipe of the build), which a
 * function's child processes must not inherit either; stdio on /dev/null. */
static int make_lean(void)
{
        if (close_range(REP_FD + 1, ~0U, 0) < 0 || fcntl(REQ_FD, F_SETFD, FD_CLOEXEC) < 0 ||
            fcntl(REP_FD, F_SETFD, FD_CLOEXEC) < 0)
                return negative_errno();
        fflush(stdout);
        fflush(stderr);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0)
                return negative_errno();
        for (int fd = 0; fd <= 2; fd++)
                if (dup2(null, fd) < 0)
                        return negative_errno();
        if (null > 2)
                close(null);
        return 0;
}

/* Written by hand rather than with jansson: no JSON object may exist before the checkpoint. */
static int send_ready(void)
{
        char msg[256];
        int n = snprintf(msg, sizeof(msg), "{\"op\":\"ready\",\"runtime\":\"native (glibc %s)\",\"pid\":%d,\"clone\":%s}",
                         gnu_get_libc_version(), (int)getpid(), helper_loaded() ? "true" : "false");
        return frame_write(REP_FD, msg, (size_t)n, 0);
}

int main(int argc, char **argv)
{
        if (argc > 1 && !strcmp(argv[1], "--fork-zygote"))
                return fork_zygote_main();
        if (argc > 1) {
                fprintf(stderr, "usage: %s [--fork-zygote [AGENT]]\n", argv[0]);
                return 2;
        }
        if (preload_libraries() < 0 || check_single_threaded() < 0 || helper_load() < 0)
                return 1;
        int r = make_lean();
        if (r < 0) {
                fprintf(stderr, "prewarm agent: arranging descriptors: %s\n", strerror(-r));
                return 1;
        }
        agent a = {0};
        for (;;) {
                if (send_ready() < 0)
                        return 1;
                r = serve(&a);
                if (r != SERVE_CLONED) /* a clone announces itself like a restored copy */
                        return r == SERVE_HANGUP ? 0 : 1;
        }
}

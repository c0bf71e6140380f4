/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a template build (template.c) and a cold start (coldstart.c) share to boot a zygote. */
#pragma once

#include "agent.h"
#include "cgroup.h"
#include "definition.h"

/* The zygote's environment: a fixed PATH/HOME/TMPDIR, PREWARM_PRELOAD and the definition's env.
 * NULL on -ENOMEM. */
char **zygote_env(const template_def *def);

/* The pipes of a zygote being booted: its control channel (fds 3 and 4 in the sandbox) and its
 * stderr until it is ready. */
typedef struct zygote_pipes {
        int ctl_in[2], ctl_out[2], errpipe[2];
} zygote_pipes;
#define ZYGOTE_PIPES_NONE {{-1, -1}, {-1, -1}, {-1, -1}}

/* Makes the pipes; our ends non-blocking. */
int zygote_pipes_open(zygote_pipes *p, pw_err *err);
void zygote_pipes_close(zygote_pipes *p);

/* Starts the definition's runtime with its agent as our child, in the sandbox on rootfs (with a
 * /tmp of tmp_mb) and in cg, as host uid and gid uid, talking through p; then drops our copies of
 * the agent's ends of p, so that we see it close them when it dies. */
int zygote_start(const template_def *def, const char *rootfs, unsigned tmp_mb, const cgroup *cg,
                 uid_t uid, zygote_pipes *p, pid_t *ret_pid, pw_err *err);

/* Waits up to def's ready_timeout_ms for the agent's ready message. When the zygote exits first,
 * reaps it (*pid becomes 0) and returns -ECHILD saying how it ended and the last line it wrote on
 * stderr. */
int zygote_wait_ready(const zygote_pipes *p, const template_def *def, pid_t *pid, char **ret_runtime,
                      bool *ret_clone,
                      pw_err *err);

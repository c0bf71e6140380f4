/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a template build (template.c) and a cold start (coldstart.c) share to boot a zygote. */
#pragma once

#include "agent.h"
#include "definition.h"

/* The zygote's environment: a fixed PATH/HOME/TMPDIR, PREWARM_PRELOAD and the definition's env.
 * NULL on -ENOMEM. */
char **zygote_env(const template_def *def);

/* Waits up to def's ready_timeout_ms for the agent's ready message. When the zygote exits first,
 * reaps it (*pid becomes 0) and returns -ECHILD saying how it ended and the last line it wrote on
 * stderr (errpipe: the read end of its stderr pipe). */
int zygote_wait_ready(const agent_channel *ch, const template_def *def, pid_t *pid, int errpipe,
                      char **ret_runtime, pw_err *err);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a template build (template.c) and a cold start (coldstart.c) share to boot a zygote. */
#pragma once

#include "definition.h"

/* The zygote's environment: a fixed PATH/HOME/TMPDIR, PREWARM_PRELOAD and the definition's env.
 * NULL on -ENOMEM. */
char **zygote_env(const template_def *def);

/* The last line a zygote wrote on stderr (read from fd, the read end of its stderr pipe) before it
 * died, for the error message; "" if none. */
void stderr_tail(int fd, char *out, size_t size);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A sandbox's init, the process at pid 1 of its namespace while its agent runs at pid 2
 * (init_loop.c): in clones (clone.c) and in restored copies (init.c). */
#pragma once

#include <sys/types.h>

/* Forwards TERM, INT, HUP, USR1 and USR2 to agent, reaps every child (orphans are reparented to
 * pid 1), and when agent ends writes "exited N" or "killed SIG" on status_fd (if >= 0) and exits
 * with the agent's status, 128 + SIG for a signal (an init cannot die of its own signals). */
_Noreturn void init_serve(pid_t agent, int status_fd);

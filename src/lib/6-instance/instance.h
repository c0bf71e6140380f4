/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An instance as the library's files see it (include/prewarm.h shows only the handle). */
#pragma once

#include "agent.h"
#include "cgroup.h"
#include "internal.h"

typedef enum instance_state { RESTORED, SPECIALIZED, DEAD } instance_state;

struct pw_instance {
        pw_engine *engine;
        char *template_name;
        char *id;
        pid_t pid;
        int pidfd; /* a clone's (the engine is not its parent), else -1 */
        pid_t agent_pid; /* a clone's agent, the child of its init (pid), else 0 */
        int status_fd; /* a clone's: its init writes "exited N" / "killed SIG" there, else -1 */
        struct template_parent *parent; /* a clone's parent (clone.h), else NULL */
        void (*release)(pw_instance *i); /* what its maker holds for it, let go at destroy */
        int source; /* PW_SOURCE_RESTORE, _CLONE or _COLD_START */
        uid_t uid; /* its host uid and gid, from the engine's uid pool; 0 before it has one */
        cgroup *cg;
        unsigned memory_mb;
        agent_channel ch;
        instance_state state;
        pw_timings timings;
        pw_err last_error;
        agent_streams streams; /* what the code printed in the last specialize or invoke */
};

/* A restored copy's agent runs under an init from its first specialize on (src/zygote/init.c),
 * and so does a copy of a second-level template made after it: finds the agent, the child of the
 * namespace's init, for pw_instance_pid. Nothing for a clone or an agent still at pid 1. */
void instance_find_agent(pw_instance *i);

/* A new, empty instance of template_name with a process-wide unique id; NULL on -ENOMEM. */
pw_instance *instance_new(pw_engine *e, const char *template_name);
/* Gives i a host uid of its own (uids.h), released with the instance. */
int instance_take_uid(pw_instance *i, pw_err *err);
static inline void instance_destroyp(pw_instance **i) { pw_instance_destroy(*i); }

/* Records the reason of a failed call on i (prefixed "WHAT of instance ID: "), logs it once and
 * returns r; instance_failf formats the reason itself. */
int instance_fail(pw_instance *i, int r, pw_err *err, const char *what);
int instance_failf(pw_instance *i, int r, const char *what, const char *fmt, ...) _printf_(4, 5);
/* The agent stopped answering (r): says why in err (timeout, memory limit, how it died), kills
 * what is left and marks i dead; returns the errno that says it. */
int instance_lost(pw_instance *i, int r, unsigned timeout_ms, pw_err *err);

/* Whether an agent call's failure means the instance is gone. */
static inline bool channel_lost(int r)
{
        return r == -ECONNRESET || r == -ETIMEDOUT || r == -EPIPE;
}

static inline uint64_t deadline_after(int timeout_ms)
{
        return timeout_ms > 0 ? now_us() + (uint64_t)timeout_ms * 1000 : 0;
}

/* Restores like pw_instance_restore, always with CRIU, never a clone: for what needs a restored
 * instance (a checkpoint) and for the benchmark's prewarm_restore mode. */
int instance_restore_full(pw_engine *e, const char *template_name, pw_instance **ret);

/* Restores like pw_instance_restore, but the way a Prebaking-style system does it: the stock
 * `criu restore` command exec'd per restore, with none of the engine's fast path. For the
 * benchmark's criu_cli mode. */
int instance_restore_stock(pw_engine *e, const char *template_name, pw_instance **ret);

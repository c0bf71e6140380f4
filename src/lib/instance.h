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
        uid_t uid; /* its host uid and gid, from the engine's uid pool; 0 before it has one */
        cgroup *cg;
        unsigned memory_mb;
        agent_channel ch;
        instance_state state;
        pw_timings timings;
        pw_err last_error;
};

/* A new, empty instance of template_name with a process-wide unique id; NULL on -ENOMEM. */
pw_instance *instance_new(pw_engine *e, const char *template_name);
/* Gives i a host uid of its own (uids.h), released with the instance. */
int instance_take_uid(pw_instance *i, pw_err *err);
static inline void instance_destroyp(pw_instance **i) { pw_instance_destroy(*i); }

/* Restores like pw_instance_restore, but the way a Prebaking-style system does it: the stock
 * `criu restore` command exec'd per restore, with none of the engine's fast path. For the
 * benchmark's criu_cli mode. */
int instance_restore_stock(pw_engine *e, const char *template_name, pw_instance **ret);

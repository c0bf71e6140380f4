/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the host sees of a sandbox, and the checks of a clone's and a restored instance's (sandbox_check.c). */
#pragma once

#include <sys/types.h>

#include "internal.h"

#define SANDBOX_NAMESPACES 6 /* user, pid, mnt, net, uts, ipc */

/* What a process's sandbox is made of, as the host sees it. */
typedef struct sandbox_facts {
        ino_t ns[SANDBOX_NAMESPACES];
        dev_t tmp_dev, proc_dev;
        unsigned seccomp_filters, pid_depth;
} sandbox_facts;

int sandbox_facts_read(pid_t pid, sandbox_facts *f);

/* NULL when the process pid, cloned from a parent with those facts, runs as uid and gid uid with
 * no group, no capability, no_new_privs, one seccomp filter more than the parent, and namespaces,
 * /tmp and /proc of its own; else what is wrong, for a message. */
const char *clone_sandbox_wrong(const sandbox_facts *parent, pid_t pid, uid_t uid);
/* NULL when the restored process pid runs as uid and gid uid with no group, no capability,
 * no_new_privs and more seccomp filters than the engine has, in pid, mount, net, uts and ipc
 * namespaces, with a /tmp and a /proc of its own (not the engine's); else what is wrong. The user
 * namespace is the engine's. */
const char *restored_sandbox_wrong(pid_t pid, uid_t uid);

/* The agent under init, a sandbox's pid 1: its oldest child, or 0 if it has none. */
pid_t sandbox_agent_under(pid_t init);

/* The value after "Key:" in /proc/PID/status (or fdinfo) text, up to the end of its line, *len
 * long; NULL if there is none. */
const char *status_field(const char *status, const char *key, size_t *len);

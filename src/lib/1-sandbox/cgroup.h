/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One cgroup per sandbox, with memory and pids limits, on cgroup v2 or v1 (memory + pids). */
#pragma once

#include "internal.h"

#define CGROUP_PARENT "prewarm"

typedef struct cgroup {
        bool v2;
        char *dirs[2];  /* v2: one directory; v1: the memory and pids controllers' */
        char *procs[3]; /* cgroup.procs files, NULL-terminated */
} cgroup;

typedef struct cgroup_limits {
        unsigned memory_mb;
        unsigned pids_max;
} cgroup_limits;

/* Where a cgroup goes (what cgroup_create makes): the hierarchy's root for a controller (v2: the
 * one unified root, v1: the controller's own), and NAME's directory beneath it,
 * ROOT/prewarm/NAME; NULL for a NAME that is not one directory entry (or -ENOMEM). */
char *cgroup_controller_root(bool v2, const char *controller);
char *cgroup_dir(const char *controller_root, const char *name);

/* Creates prewarm/NAME with the limits. */
int cgroup_create(const char *name, const cgroup_limits *limits, cgroup **ret, pw_err *err);

/* The leaf a group's leader lives in: prewarm/NAME/leader. */
#define CGROUP_GROUP_LEADER "leader"

/* The cgroup of a process that starts others straight into cgroups of their own (a template
 * parent, clone.h): on v2 the leaf prewarm/NAME/leader of a group prewarm/NAME whose cgroup.procs
 * owner may write, which CLONE_INTO_CGROUP needs of an unprivileged caller (the common ancestor
 * of its cgroup and the child's); on v1, cgroup_create's. */
int cgroup_create_group(const char *name, const cgroup_limits *limits, uid_t owner, cgroup **ret, pw_err *err);
/* A cgroup for a child of the group leader's: prewarm/NAME/name on v2 (removed with the group when
 * it is the last; its cgroup.procs owner's, the group's owner), prewarm/name on v1. */
int cgroup_create_in(const cgroup *leader, uid_t owner, const char *name, const cgroup_limits *limits,
                     cgroup **ret, pw_err *err);
/* Sets the memory limit (and, on v1, the same memory+swap limit). -EBUSY when the cgroup already
 * uses more than memory_mb and cannot reclaim it. */
int cgroup_set_memory(const cgroup *cg, unsigned memory_mb);
/* Moves pid into the cgroup. */
int cgroup_attach(const cgroup *cg, pid_t pid);
/* How many times the memory limit's OOM killer fired in this cgroup. */
unsigned cgroup_oom_kills(const cgroup *cg);
/* SIGKILLs every process left in the cgroup. */
void cgroup_kill(const cgroup *cg);
/* Kills what is left, removes the directories (and the parent when empty) and frees. */
cgroup *cgroup_destroy(cgroup *cg);
static inline void cgroup_destroyp(cgroup **cg) { cgroup_destroy(*cg); }
#define _cleanup_cgroup_ _cleanup_(cgroup_destroyp)

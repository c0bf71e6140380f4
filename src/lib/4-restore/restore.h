/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restores in two steps: prepare what does not depend on the request, then run (restore.c). */
#pragma once

#include "instance.h"

/* How a restore runs: the engine's fast path, or stock `criu restore` for comparison. */
typedef enum restore_path { FAST_PATH, STOCK_CLI } restore_path;

typedef struct restore_job restore_job;

/* Prepares a restore of template_name: verified template, cgroup, pipes, mounts, network
 * namespace and, on the fast path, a started CRIU. Errors as pw_instance_restore. */
int restore_job_prepare(pw_engine *e, const char *template_name, restore_path path, restore_job **ret,
                        pw_err *err);

/* Prepares the restore of a template parent (clone.h): a restore like the others but with the
 * parent's seccomp filter (seccomp.h) in place of the sandbox's. Never prepared ahead. */
int restore_job_prepare_parent(pw_engine *e, const char *template_name, restore_job **ret, pw_err *err);

/* Runs the restore and consumes the job, also on failure. *ret is a new instance, restored or, for
 * a second-level template, specialized. */
int restore_job_run(restore_job *job, pw_instance **ret, pw_err *err);

/* Whether the template is still the one the job was prepared from: not rebuilt or removed, and its
 * images still those verified. */
bool restore_job_current(const restore_job *job);

/* Discards a job that will not run. Accepts NULL; returns NULL. */
restore_job *restore_job_free(restore_job *job);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What an integration test must leave behind: nothing. After every test the calling process has
 * no child processes, no mount under the state dir, no cgroup of its own instances or builds
 * (instance ids are TEMPLATE-ENGINEPID-N, build cgroups build-NAME-ENGINEPID) and no empty
 * "prewarm" cgroup parent, an empty STATE/run/, no half-done build in STATE/templates/, and no
 * file descriptor that was not open when the test started.
 *
 * The tests run with Check in no-fork mode, so the engine's pid is the test program's pid for
 * every test, and a test's leftovers would also be the next test's: leaks_check() therefore
 * also removes what it reports, so that one leak fails one test only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Remembers which file descriptors are open now (call at the start of a test). */
void leaks_begin(void);

/* Looks for everything listed above, appends one line per finding to report (NUL-terminated,
 * truncated to size) and cleans it up. Returns the number of findings. Engines keep things ready
 * ahead of requests: pw_engine_trim() them first. */
int leaks_check(const char *state_dir, char *report, size_t size);

/* Reads /proc/PID/stat: the process's state letter, its parent and its command name (truncated to
 * comm_size); each of them may be NULL. False if the process is gone or the file makes no sense. */
bool proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid, char *comm, size_t comm_size);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A sandbox's own steps inside its new namespaces (sandbox_inside.c). errfd gets a one-line
 * reason when a step fails, and the process exits with status 125. */
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include "util.h"

/* Where the masks of /proc come from: an empty directory and an empty file on the read-only root
 * (CRIU restores a bind from the root like any mount of the sandbox's own). */
#define MASK_DIR "/.masked/dir"
#define MASK_FILE "/.masked/file"

/* Writes "sandbox: WHAT: REASON(errno)" to fd and exits 125. */
_Noreturn void sandbox_die(int fd, const char *what);
void mount_or_die(int errfd, const char *src, const char *dst, const char *type, unsigned long flags,
                  const char *data);
/* Brings the network namespace's loopback up. */
void loopback_up(int errfd);
/* Mounts /proc for the caller's pid namespace, the kernel's knobs read-only and the views of
 * memory, keys and timers masked. */
void mount_proc(int errfd);
/* Takes uid and gid with no supplementary group, empties all five capability sets, sets
 * no_new_privs and installs filter. */
void drop_privileges(int errfd, uid_t uid, gid_t gid, const struct sock_fprog *filter);
/* Detaches what mount_proc put on /proc, leaving /proc itself: a template parent's /proc must be
 * fully visible for its children, in user namespaces of their own, to mount theirs. */
void proc_submounts_detach(void);

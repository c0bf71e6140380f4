/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The template parent's clone call (clone.c), as the agents see it through their FFI. */
#pragma once

#include <stdint.h>

#define PREWARM_ZYGOTE_EXPORT __attribute__((visibility("default")))

struct prewarm_clone_request {
        uint32_t size;     /* sizeof(struct prewarm_clone_request): the layout's version */
        int32_t ctl_in;    /* becomes the child's fd 3: requests from the engine */
        int32_t ctl_out;   /* becomes its fd 4: replies */
        int32_t sync;      /* its end of the engine's sync socket: one byte "g" to go, reasons back */
        int32_t cgroup;    /* cgroup v2 directory to be born in (CLONE_INTO_CGROUP), or -1 */
        uint32_t uid, gid; /* the instance's host uid and gid, mapped to themselves; never 0 */
        uint32_t tmp_mb;   /* size of its /tmp */
};

/* Clones the calling, single-threaded process into a sandboxed child (see clone.c). In the parent
 * returns the child's pid as the parent's pid namespace sees it and puts a pidfd of it in
 * *ret_pidfd (the caller owns it); in the child returns 0 once its sandbox is made, with the
 * channel at fds 3 and 4 and the sync socket at fd 5, on which it writes "exited N" or
 * "killed SIG" when the agent ends (the agent itself closes fd 5). Errors (parent only):
 * -EINVAL, or clone3's. */
PREWARM_ZYGOTE_EXPORT int prewarm_zygote_clone(const struct prewarm_clone_request *req, int *ret_pidfd);

/* In a fresh clone, once prewarm_zygote_clone() returned 0 there: forks the agent, and returns 0
 * in it (pid 2 of the namespace, fd 5 closed). The calling process stays the namespace's init and
 * never returns: it closes the channel (fds 3 and 4), forwards TERM, INT, HUP, USR1 and USR2 to the
 * agent, reaps orphans, and when the agent ends writes "exited N" or "killed SIG" on fd 5 and exits
 * the same way. Agents whose runtime can fork safely on its own (Python's os.fork runs the
 * interpreter's at-fork hooks) may do this themselves; the node and native agents call this.
 * Errors (in the init, which then should _exit): fork's. */
PREWARM_ZYGOTE_EXPORT int prewarm_zygote_become_init(void);

/* In a restored copy, whose agent is pid 1 of its namespace (an init, which the kernel hands every
 * orphan and spares its own abort()): forks, and returns 1 in the child, which goes on as the
 * agent, while the parent closes the channel (fds 3 and 4) and executes PREWARM_INIT with the
 * child's pid, to be the namespace's init. Returns 0, doing nothing, when the caller is not pid 1
 * (a clone's agent, or one that did it already) or the rootfs has no PREWARM_INIT. Undoes
 * MADV_DONTFORK first (prewarm_zygote_inherit_all). Runtimes call it with their before-fork and
 * after-fork hooks around it, before any of the function's code runs. Errors: fork's. */
#define PREWARM_INIT "/prewarm/prewarm-init"
PREWARM_ZYGOTE_EXPORT int prewarm_zygote_go_under_init(void);

/* Undoes MADV_DONTFORK on every mapping of the caller, so that a clone inherits all of its memory.
 * V8 marks its heap pages so (a forked Node.js would fault on its own heap); call it right before
 * prewarm_zygote_clone() in runtimes that do. Returns the number of mappings it went through, or
 * -errno if /proc/self/maps cannot be read. */
PREWARM_ZYGOTE_EXPORT int prewarm_zygote_inherit_all(void);

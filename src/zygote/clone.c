/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libprewarm-zygote: what a template parent (src/lib/5-clone/clone.c) calls, in its own process, to clone
 * a child that shares its memory copy-on-write. The agent loads it before the checkpoint and calls
 * prewarm_zygote_clone() with the interpreter's lock held (ctypes.PyDLL), between the runtime's
 * own before-fork and after-fork hooks.
 *
 * The child is born in new user, pid, mount, uts, ipc and network namespaces (and, on cgroup v2,
 * directly in its instance's cgroup); it waits until the engine has mapped its uid and gid and, on
 * v1, moved it into its cgroup, then makes its own sandbox before it returns to the runtime: a
 * fresh /tmp, /proc of its own pid namespace with the same masks as a restored instance's,
 * loopback up, the instance's uid and gid, no capability in any set, and the sandbox's seccomp
 * filter on top of the parent's. Any failure ends the child (status 125) with the reason written
 * on the sync socket: it never returns to run function code outside its sandbox. On success the
 * sync socket stays open at fd 5 for the runtime's init process to report the agent's end.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init_loop.h"
#include "prewarm-zygote.h"
#include "sandbox_inside.h"
#include "seccomp.h"

#define CLONE_NAMESPACES \
        (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET)

/* The child's descriptors: the channel at 3 and 4 (close-on-exec: a handler's subprocess must not
 * get it), the sync socket at 5, nothing else but stdio. */
static void child_arrange_fds(const struct prewarm_clone_request *req)
{
        int in = fcntl(req->ctl_in, F_DUPFD_CLOEXEC, 16);
        int out = fcntl(req->ctl_out, F_DUPFD_CLOEXEC, 16);
        int sync = fcntl(req->sync, F_DUPFD_CLOEXEC, 16);
        if (in < 0 || out < 0 || sync < 0)
                _exit(125); /* no channel to say why on: the engine sees it die */
        if (dup3(in, 3, O_CLOEXEC) < 0 || dup3(out, 4, O_CLOEXEC) < 0 || dup3(sync, 5, O_CLOEXEC) < 0)
                _exit(125);
        syscall(SYS_close_range, 6, ~0U, 0);
}

static void child_sandbox(const struct prewarm_clone_request *req)
{
        child_arrange_fds(req);
        const int sync = 5;
        char go;
        if (read(sync, &go, 1) != 1 || go != 'g')
                _exit(124); /* the engine gave up on this child before it started */
        char tmp_opts[64];
        snprintf(tmp_opts, sizeof(tmp_opts), "size=%um,mode=1777", req->tmp_mb);
        /* Over the parent's: theirs stay beneath, locked, out of reach without a mount call. */
        mount_or_die(sync, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmp_opts);
        mount_proc(sync);
        loopback_up(sync);
        drop_privileges(sync, req->uid, req->gid, sandbox_seccomp_filter());
        /* fd 5 stays: the clone's init tells the engine on it how the agent ended. */
}

int prewarm_zygote_clone(const struct prewarm_clone_request *req, int *ret_pidfd)
{
        if (!req || !ret_pidfd || req->size < sizeof(*req) || !req->uid || !req->gid)
                return -EINVAL;
        int pidfd = -1;
        struct clone_args args = {
                .flags = CLONE_NAMESPACES | CLONE_PIDFD,
                .pidfd = (uint64_t)(uintptr_t)&pidfd,
                .exit_signal = SIGCHLD,
        };
        if (req->cgroup >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t)req->cgroup;
        }
        long pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                child_sandbox(req);
                return 0;
        }
        *ret_pidfd = pidfd;
        return (int)pid;
}

int prewarm_zygote_inherit_all(void)
{
        FILE *maps = fopen("/proc/self/maps", "re");
        if (!maps)
                return -errno;
        char line[512];
        unsigned long start, end;
        int n = 0;
        while (fgets(line, sizeof(line), maps)) {
                /* [vsyscall] and device mappings refuse it; nothing of theirs needs copying. */
                if (sscanf(line, "%lx-%lx", &start, &end) == 2 && madvise((void *)start, end - start, MADV_DOFORK) == 0)
                        n++;
                if (!strchr(line, '\n')) /* a path longer than the buffer: skip the rest of it */
                        while (fgets(line, sizeof(line), maps) && !strchr(line, '\n'))
                                ;
        }
        fclose(maps);
        return n;
}

int prewarm_zygote_become_init(void)
{
        /* The parent may have ignored SIGCHLD to have its clones reaped: an init must see its child. */
        signal(SIGCHLD, SIG_DFL);
        pid_t agent = fork();
        if (agent < 0)
                return -errno;
        if (agent == 0) {
                close(5); /* the init's, not the function's to write on */
                return 0;
        }
        close(3);
        close(4);
        init_serve(agent, 5);
}

int prewarm_zygote_go_under_init(void)
{
        if (getpid() != 1 || access(PREWARM_INIT, X_OK) < 0)
                return 0;
        prewarm_zygote_inherit_all(); /* V8's heap, marked not to be forked */
        pid_t agent = fork();
        if (agent < 0)
                return -errno;
        if (agent == 0)
                return 1;
        close(3);
        close(4);
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", (int)agent);
        execl(PREWARM_INIT, PREWARM_INIT, pid, (char *)NULL);
        _exit(127); /* the namespace ends with its init: the engine sees the agent go */
}

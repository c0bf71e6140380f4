/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The steps a sandbox takes from inside its new namespaces, before any untrusted code runs: shared
 * by the zygote a template build starts (sandbox.c, between clone and exec) and the children a
 * template parent clones (src/zygote/, in the parent's process). Nothing here allocates or locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox_inside.h"

/* /proc as container runtimes leave it, for what an unprivileged uid could still read or, were it
 * root, write: the kernel's knobs read-only; its memory, keyrings, timers and interrupt counts
 * masked. What only root may read or write (/proc/kmsg, /proc/bus, /proc/irq, ...) is left to the
 * uid: every mount here costs each restore about 50 µs in CRIU. Entries this kernel lacks are
 * skipped. */
static const char *const proc_read_only[] = {"/proc/sys", "/proc/sysrq-trigger"};
static const char *const proc_masked_files[] = {
        "/proc/kcore", "/proc/keys", "/proc/key-users", "/proc/timer_list", "/proc/sched_debug",
        "/proc/latency_stats", "/proc/interrupts",
};
static const char *const proc_masked_dirs[] = {"/proc/scsi"};

_Noreturn void sandbox_die(int fd, const char *what)
{
        const char *reason = strerrordesc_np(errno); /* strerror may lock: not after clone */
        if (!reason)
                reason = "unknown error";
        const char *parts[] = {"sandbox: ", what, ": ", reason, "\n"};
        for (size_t i = 0; i < ELEMENTSOF(parts); i++)
                if (write(fd, parts[i], strlen(parts[i])) < 0)
                        break;
        _exit(125);
}

void loopback_up(int errfd)
{
        int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {0};
        strcpy(ifr.ifr_name, "lo");
        if (sk < 0 || ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
                sandbox_die(errfd, "loopback");
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
                sandbox_die(errfd, "loopback up");
        close(sk);
}

void mount_or_die(int errfd, const char *src, const char *dst, const char *type,
                         unsigned long flags, const char *data)
{
        if (mount(src, dst, type, flags, data) < 0)
                sandbox_die(errfd, dst ? dst : src);
}

/* A bind of src on dst made read-only; a dst this kernel does not have is left alone. */
static void bind_read_only(int errfd, const char *src, const char *dst)
{
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0) {
                if (errno == ENOENT)
                        return;
                sandbox_die(errfd, dst);
        }
        mount_or_die(errfd, NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     NULL);
}

void mount_proc(int errfd)
{
        mount_or_die(errfd, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        for (size_t i = 0; i < ELEMENTSOF(proc_read_only); i++)
                bind_read_only(errfd, proc_read_only[i], proc_read_only[i]);
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_files); i++)
                bind_read_only(errfd, MASK_FILE, proc_masked_files[i]);
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_dirs); i++)
                bind_read_only(errfd, MASK_DIR, proc_masked_dirs[i]);
}

/*
 * Leaves the sandbox with no privilege on the host: the unprivileged uid and gid, no
 * supplementary groups, all five capability sets empty, no_new_privs, and the seccomp filter.
 * Raw system calls: glibc's set*id wrappers would signal every thread of the parent that
 * cloned us, and none of them exists here.
 */
void drop_privileges(int errfd, uid_t uid, gid_t gid, const struct sock_fprog *filter)
{
        for (unsigned long cap = 0; cap < 64; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        sandbox_die(errfd, "dropping the capability bounding set");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                sandbox_die(errfd, "clearing ambient capabilities");
        if (syscall(SYS_setgroups, 0, NULL) < 0)
                sandbox_die(errfd, "setgroups");
        if (syscall(SYS_setresgid, gid, gid, gid) < 0)
                sandbox_die(errfd, "setresgid");
        if (syscall(SYS_setresuid, uid, uid, uid) < 0)
                sandbox_die(errfd, "setresuid");
        /* Leaving uid 0 emptied the permitted and effective sets; the inheritable one stays. */
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3] = {{0}};
        if (syscall(SYS_capset, &hdr, none) < 0)
                sandbox_die(errfd, "capset");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                sandbox_die(errfd, "no_new_privs");
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, filter) < 0)
                sandbox_die(errfd, "seccomp");
}

void proc_submounts_detach(void)
{
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_dirs); i++)
                umount2(proc_masked_dirs[i], MNT_DETACH);
        for (size_t i = 0; i < ELEMENTSOF(proc_masked_files); i++)
                umount2(proc_masked_files[i], MNT_DETACH);
        for (size_t i = 0; i < ELEMENTSOF(proc_read_only); i++)
                umount2(proc_read_only[i], MNT_DETACH);
}

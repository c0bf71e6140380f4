/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox's seccomp-bpf filter, written out as classic BPF (no libseccomp at run time: the
 * filter is installed between clone() and exec(), where nothing may allocate).
 *
 * Shape: a foreign architecture (i386 through int 0x80, which numbers syscalls differently) and
 * the x32 ABI are refused as a whole; then come the calls refused only for some arguments (clone
 * with namespace flags, device nodes, personality flags that weaken ASLR); then the calls refused
 * outright; everything else is allowed. A deny list rather than the runtimes' allow list, because
 * the sandbox also has no capabilities: what a deny list misses still meets the kernel's
 * permission checks, and an allow list would break the next runtime that needs a new syscall.
 */
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "internal.h"
#include "seccomp.h"

#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#define X32_SYSCALL_BIT 0x40000000u
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "no seccomp filter for this architecture"
#endif

/* Newer than Debian 12's headers; the same number on every architecture. */
#ifndef __NR_lsm_set_self_attr
#define __NR_lsm_set_self_attr 460
#endif
#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467
#endif

#define NS_CLONE_FLAGS                                                                             \
        (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
         CLONE_NEWCGROUP)

#define RET_ERRNO(e) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
#define RET_ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
/* The low 32 bits of an argument (little-endian): all the flag words checked here fit in them. */
#define LOAD_ARG(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))

/* Refused outright with EPERM: what a container runtime refuses a process without CAP_SYS_ADMIN,
 * and what reaches the host or another sandbox through the kernel. */
static const int denied[] = {
        /* mounts and the root */
        __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_move_mount, __NR_fsopen,
        __NR_fsconfig, __NR_fsmount, __NR_fspick, __NR_open_tree, __NR_open_tree_attr,
        __NR_mount_setattr,
        /* file handles reach the whole filesystem behind any mount */
        __NR_open_by_handle_at, __NR_name_to_handle_at,
        /* namespaces */
        __NR_unshare, __NR_setns,
        /* the kernel itself */
        __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_kexec_load,
        __NR_kexec_file_load, __NR_bpf, __NR_perf_event_open, __NR_reboot, __NR_swapon,
        __NR_swapoff, __NR_acct, __NR_quotactl, __NR_quotactl_fd, __NR_syslog, __NR_lookup_dcookie,
        __NR_sethostname, __NR_setdomainname, __NR_vhangup, __NR_fanotify_init,
        __NR_lsm_set_self_attr,
        /* other processes */
        __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev, __NR_kcmp, __NR_pidfd_getfd,
        __NR_process_madvise,
        /* keyrings are not namespaced */
        __NR_keyctl, __NR_add_key, __NR_request_key,
        /* page-fault handling in user space widens kernel races */
        __NR_userfaultfd,
        /* clocks */
        __NR_settimeofday, __NR_clock_settime, __NR_clock_adjtime, __NR_adjtimex,
#if defined(__x86_64__)
        __NR_iopl, __NR_ioperm, __NR_uselib, __NR_ustat, __NR_sysfs, __NR__sysctl, __NR_nfsservctl,
        __NR_create_module, __NR_get_kernel_syms, __NR_query_module,
#endif
};

/* Refused with ENOSYS so that callers fall back: glibc's clone3 to clone (whose flags, unlike
 * clone3's, can be checked), libuv's io_uring to epoll. */
static const int unavailable[] = {
        __NR_clone3, __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
};

/* personality(2) values the runtimes allow: Linux, with or without 32-bit mode or UNAME26, and the
 * query; anything else (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weakens the address space. */
static const uint32_t personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

#define MAX_INSNS 256

typedef struct program {
        struct sock_filter insns[MAX_INSNS];
        size_t n;
} program;

static void emit(program *p, struct sock_filter insn)
{
        if (p->n < MAX_INSNS)
                p->insns[p->n++] = insn;
}

/* nr: clone with any namespace flag is refused, any other clone allowed. */
static void emit_clone(program *p)
{
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4));
#if defined(__s390x__)
        emit(p, (struct sock_filter)LOAD_ARG(1));
#else
        emit(p, (struct sock_filter)LOAD_ARG(0));
#endif
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_CLONE_FLAGS, 0, 1));
        emit(p, (struct sock_filter)RET_ERRNO(EPERM));
        emit(p, (struct sock_filter)RET_ALLOW);
}

/* nr with its mode in argument arg: character and block devices refused; FIFOs, sockets and
 * regular files allowed. S_IFMT is compared whole: S_IFBLK and S_IFLNK share S_IFCHR's bit. */
static void emit_mknod(program *p, int nr, int arg)
{
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 6));
        emit(p, (struct sock_filter)LOAD_ARG(arg));
        emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, S_IFMT));
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, S_IFCHR, 2, 0));
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, S_IFBLK, 1, 0));
        emit(p, (struct sock_filter)RET_ALLOW);
        emit(p, (struct sock_filter)RET_ERRNO(EPERM));
}

static void emit_personality(program *p)
{
        const uint8_t n = ELEMENTSOF(personalities);
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, n + 3));
        emit(p, (struct sock_filter)LOAD_ARG(0));
        for (uint8_t i = 0; i < n; i++) /* a match jumps over the rest and the refusal */
                emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, personalities[i],
                                                     (uint8_t)(n - i), 0));
        emit(p, (struct sock_filter)RET_ERRNO(EPERM));
        emit(p, (struct sock_filter)RET_ALLOW);
}

static void emit_list(program *p, const int *nrs, size_t n, int error)
{
        for (size_t i = 0; i < n; i++) {
                emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nrs[i], 0, 1));
                emit(p, (struct sock_filter)RET_ERRNO(error));
        }
}

/* A template parent's filter differs in what it needs to make its children's sandboxes: clone3
 * (for CLONE_INTO_CGROUP and CLONE_PIDFD) and clone into new namespaces, mount (its children's
 * /tmp and /proc). Every child adds the sandbox's filter on top before any function code runs. */
static bool parent_allows(int nr)
{
        return nr == __NR_mount || nr == __NR_clone3;
}

static void emit_list_except(program *p, const int *nrs, size_t n, int error, bool parent)
{
        for (size_t i = 0; i < n; i++)
                if (!parent || !parent_allows(nrs[i]))
                        emit_list(p, &nrs[i], 1, error);
}

static void build(program *p, struct sock_fprog *fprog, bool parent)
{
        emit(p, (struct sock_filter)LOAD(arch));
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_AUDIT_ARCH, 1, 0));
        emit(p, (struct sock_filter)RET_ERRNO(EPERM));
        emit(p, (struct sock_filter)LOAD(nr));
#ifdef X32_SYSCALL_BIT
        /* x32 shares the x86-64 audit arch: without this its numbers would bypass the list. */
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1));
        emit(p, (struct sock_filter)RET_ERRNO(EPERM));
#endif
        /* Each argument check reloads the accumulator and ends in a return, so nr stays loaded
         * for whatever follows a check that did not match. */
        if (!parent)
                emit_clone(p);
#ifdef __NR_mknod
        emit_mknod(p, __NR_mknod, 1);
#endif
        emit_mknod(p, __NR_mknodat, 2);
        emit_personality(p);
        emit_list_except(p, denied, ELEMENTSOF(denied), EPERM, parent);
        emit_list_except(p, unavailable, ELEMENTSOF(unavailable), ENOSYS, parent);
        emit(p, (struct sock_filter)RET_ALLOW);
        *fprog = (struct sock_fprog){.len = (unsigned short)p->n, .filter = p->insns};
}

static program sandbox_program, parent_program;
static struct sock_fprog sandbox_fprog, parent_fprog;

static void build_both(void)
{
        build(&sandbox_program, &sandbox_fprog, false);
        build(&parent_program, &parent_fprog, true);
}

static pthread_once_t built = PTHREAD_ONCE_INIT;

const struct sock_fprog *sandbox_seccomp_filter(void)
{
        pthread_once(&built, build_both);
        return &sandbox_fprog;
}

const struct sock_fprog *parent_seccomp_filter(void)
{
        pthread_once(&built, build_both);
        return &parent_fprog;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox's parts that need no CRIU: the credentials rewrite of core images (creds_image.h),
 * the uid pool shared by engines (uids.h), the seccomp filter (seccomp.h), installed for real
 * in a forked child and tried with the system calls it must refuse and the ones it must allow, and
 * the host's check of a restored instance's sandbox (sandbox_check.h) on processes sandboxed here
 * by hand, whole and with one part missing.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "creds_image.h"
#include "sandbox_check.h"
#include "sandbox_inside.h"
#include "seccomp.h"
#include "uids.h"
#include "unit.h"

/* ---------------------------------------------------------------- protobuf, for the tests */

typedef struct pb {
        uint8_t b[512];
        size_t n;
} pb;

static void pb_varint(pb *p, uint64_t v)
{
        do {
                p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
}

static void pb_uint(pb *p, unsigned field, uint64_t v)
{
        pb_varint(p, field << 3);
        pb_varint(p, v);
}

static void pb_bytes(pb *p, unsigned field, const void *data, size_t n)
{
        pb_varint(p, field << 3 | 2);
        pb_varint(p, n);
        memcpy(p->b + p->n, data, n);
        p->n += n;
}

/* creds_entry as CRIU writes it, with every uid field uid and every gid field gid. */
static pb creds(uint32_t uid, uint32_t gid)
{
        pb c = {.n = 0};
        for (unsigned f = 1; f <= 8; f++)
                pb_uint(&c, f, f % 2 ? uid : gid);
        for (unsigned f = 9; f <= 12; f++) { /* cap_inh .. cap_bnd: two words each */
                pb_uint(&c, f, 0);
                pb_uint(&c, f, 0);
        }
        pb_uint(&c, 13, 0);   /* secbits */
        pb_uint(&c, 18, 1);   /* no_new_privs */
        return c;
}

/* A core image: magics, then one core_entry framed by its length. */
static pb core_image(uint32_t uid, uint32_t gid)
{
        pb cr = creds(uid, gid), tc = {.n = 0}, core = {.n = 0}, img = {.n = 0};
        pb_uint(&tc, 1, 0x7f0000001000);         /* futex_rla */
        pb_uint(&tc, 2, 24);                     /* futex_rla_len */
        pb_bytes(&tc, 10, cr.b, cr.n);           /* creds */
        pb_bytes(&tc, 13, "python3", 7);         /* comm */
        pb_uint(&core, 1, 1);                    /* mtype X86_64 */
        pb_bytes(&core, 3, "\x08\x01", 2);       /* tc: some task_core_entry */
        pb_bytes(&core, 5, tc.b, tc.n);          /* thread_core */
        const uint32_t head[] = {0x54564319u, 0x55053847u, (uint32_t)core.n};
        memcpy(img.b, head, sizeof(head));
        img.n = sizeof(head);
        memcpy(img.b + img.n, core.b, core.n);
        img.n += core.n;
        return img;
}

START_TEST(test_core_rewrite)
{
        /* From a one-byte uid to a five-byte one and back: the enclosing lengths follow. */
        const uint32_t from[] = {0, 1879048192u, 1879113727u};
        const uint32_t to[] = {1879048193u, 5, 1879048192u};
        for (size_t k = 0; k < ELEMENTSOF(from); k++) {
                pb in = core_image(from[k], from[k]), want = core_image(to[k], to[k]);
                uint8_t *out = NULL;
                size_t n = 0;
                uid_t old = 12345;
                ck_assert_int_eq(core_image_set_creds(in.b, in.n, to[k], to[k], &out, &n, &old), 0);
                ck_assert_uint_eq(old, from[k]);
                ck_assert_uint_eq(n, want.n);
                ck_assert_mem_eq(out, want.b, n);
                free(out);
        }
        /* uid and gid are told apart. */
        pb in = core_image(7, 7), want = core_image(100, 200);
        uint8_t *out = NULL;
        size_t n = 0;
        uid_t old;
        ck_assert_int_eq(core_image_set_creds(in.b, in.n, 100, 200, &out, &n, &old), 0);
        ck_assert_mem_eq(out, want.b, want.n);
        free(out);
}
END_TEST

START_TEST(test_core_rewrite_refuses)
{
        pb img = core_image(1, 1);
        uint8_t *out = NULL;
        size_t n;
        uid_t old;
        /* Another image's magic, a truncated one, a length past the end, no credentials at all. */
        pb bad = img;
        bad.b[4] ^= 0xff;
        ck_assert_int_eq(core_image_set_creds(bad.b, bad.n, 2, 2, &out, &n, &old), -EBADMSG);
        ck_assert_int_eq(core_image_set_creds(img.b, img.n - 5, 2, 2, &out, &n, &old), -EBADMSG);
        bad = img;
        bad.b[8] = 0xff;
        ck_assert_int_eq(core_image_set_creds(bad.b, bad.n, 2, 2, &out, &n, &old), -EBADMSG);
        pb core = {.n = 0};
        pb_uint(&core, 1, 1);
        const uint32_t head[] = {0x54564319u, 0x55053847u, (uint32_t)core.n};
        pb none = {.n = sizeof(head)};
        memcpy(none.b, head, sizeof(head));
        memcpy(none.b + none.n, core.b, core.n);
        none.n += core.n;
        ck_assert_int_eq(core_image_set_creds(none.b, none.n, 2, 2, &out, &n, &old), -EBADMSG);
        ck_assert_ptr_null(out);
}
END_TEST

/* ---------------------------------------------------------------- uid pool */

START_TEST(test_uid_pool)
{
        pw_err err;
        uid_pool *a = NULL, *b = NULL;
        /* A range of its own, so that engines running elsewhere on the machine do not interfere. */
        const unsigned base = 1879048192u + 60000 + (unsigned)(getpid() % 1000) * 4;
        ck_assert_int_eq(uid_pool_new(base, 4, &a, &err), 0);
        ck_assert_int_eq(uid_pool_new(base, 4, &b, &err), 0);
        ck_assert_uint_eq(uid_builder(a), base + 3);
        uid_t x, y, z, w;
        ck_assert_int_eq(uid_take(a, &x, &err), 0);
        ck_assert_int_eq(uid_take(b, &y, &err), 0);
        ck_assert_int_eq(uid_take(a, &z, &err), 0);
        /* Three uids to hand out (the fourth is the builders'), one per taker, across pools. */
        ck_assert(x != y && y != z && x != z);
        ck_assert(uid_in_range(a, x) && uid_in_range(a, y) && uid_in_range(a, z));
        ck_assert(x != base + 3 && y != base + 3 && z != base + 3);
        ck_assert_int_eq(uid_take(b, &w, &err), -EAGAIN);
        ck_assert_int_eq(uid_take(a, &w, &err), -EAGAIN);
        uid_release(a, z);
        ck_assert_int_eq(uid_take(b, &w, &err), 0);
        ck_assert_uint_eq(w, z);
        /* A pool that goes away (an engine that died) frees what it held. */
        uid_pool_free(a);
        ck_assert_int_eq(uid_take(b, &w, &err), 0);
        uid_pool_free(b);
}
END_TEST

START_TEST(test_uid_pool_ranges)
{
        pw_err err;
        uid_pool *p = NULL;
        ck_assert_int_eq(uid_pool_new(4294967000u, 1000, &p, &err), -EINVAL);
        ck_assert_int_eq(uid_pool_new(100000, 1, &p, &err), -EINVAL);
        ck_assert_ptr_null(p);
        setenv("PREWARM_UID_RANGE", "1879048192x", 1);
        ck_assert_int_eq(uid_pool_new(0, 0, &p, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "PREWARM_UID_RANGE"));
        setenv("PREWARM_UID_RANGE", "200000:16", 1);
        ck_assert_int_eq(uid_pool_new(0, 0, &p, &err), 0);
        uid_t base;
        unsigned count;
        uid_range(p, &base, &count);
        ck_assert_uint_eq(base, 200000);
        ck_assert_uint_eq(count, 16);
        uid_pool_free(p);
        unsetenv("PREWARM_UID_RANGE");
        ck_assert_int_eq(uid_pool_new(0, 0, &p, &err), 0);
        uid_range(p, &base, &count);
        ck_assert_uint_eq(base, PW_DEFAULT_UID_BASE);
        ck_assert_uint_eq(count, PW_DEFAULT_UID_COUNT);
        uid_pool_free(p);
}
END_TEST

/* ---------------------------------------------------------------- seccomp */

/* In a child under the filter: 0 when every check held, else the number of the first that did not
 * (1 when the filter could not be installed). */
static int filtered_child(void)
{
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, sandbox_seccomp_filter()) < 0)
                return 1;
        int bad = 0, n = 1;
#define EXPECT_ERRNO(call, e) do { n++; errno = 0; if (!((call) < 0 && errno == (e)) && !bad) bad = n; } while (0)
#define EXPECT_OK(call) do { n++; if ((call) < 0 && !bad) bad = n; } while (0)
        EXPECT_ERRNO(mount("tmpfs", "/mnt", "tmpfs", 0, NULL), EPERM);
        EXPECT_ERRNO(umount2("/", MNT_DETACH), EPERM);
        EXPECT_ERRNO(unshare(CLONE_NEWUSER), EPERM);
        EXPECT_ERRNO(syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0), EPERM);
        EXPECT_ERRNO(syscall(SYS_clone3, NULL, 0), ENOSYS);
        EXPECT_ERRNO(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0), EPERM);
        EXPECT_ERRNO(syscall(SYS_mknodat, AT_FDCWD, "/tmp/x", S_IFCHR | 0600, 0), EPERM);
        EXPECT_ERRNO(syscall(SYS_mknodat, AT_FDCWD, "/tmp/x", S_IFBLK | 0600, 0), EPERM);
        EXPECT_ERRNO(personality(ADDR_NO_RANDOMIZE), EPERM);
        EXPECT_ERRNO(syscall(SYS_ptrace, 0, 0, 0, 0), EPERM);
        EXPECT_ERRNO(syscall(SYS_io_uring_setup, 1, NULL), ENOSYS);
        /* The x32 ABI's getpid: refused as a whole. */
        EXPECT_ERRNO(syscall(0x40000000 | SYS_getpid), EPERM);
        EXPECT_OK(getpid());
        EXPECT_OK(personality(0xffffffff));
        pid_t pid = fork(); /* clone without namespace flags */
        if (pid == 0)
                _exit(0);
        EXPECT_OK(pid);
        if (pid > 0)
                waitpid(pid, NULL, 0);
        /* A FIFO is no device: allowed (it fails here only for the missing directory). */
        EXPECT_ERRNO(syscall(SYS_mknodat, AT_FDCWD, "/nonexistent/fifo", S_IFIFO | 0600, 0), ENOENT);
        return bad;
}

START_TEST(test_seccomp_filter)
{
        const struct sock_fprog *f = sandbox_seccomp_filter();
        ck_assert_ptr_eq(f, sandbox_seccomp_filter()); /* built once */
        ck_assert_uint_gt(f->len, 100);
        ck_assert_uint_lt(f->len, 256);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(filtered_child());
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "check number %d did not hold",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

/* ---------------------------------------------------------------- the host's check */

#define SANDBOX_UID 61234 /* no account's: a uid only these processes use */

/* The grandchild: pid 1 of its namespace (if it has one), with a /tmp and a /proc of its own, as
 * SANDBOX_UID with no privilege; says so on ready and waits for its SIGKILL. */
_Noreturn static void sandboxed_init(int ready)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        mount_or_die(ready, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        mount_or_die(ready, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m");
        mount_or_die(ready, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        drop_privileges(ready, SANDBOX_UID, SANDBOX_UID, sandbox_seccomp_filter());
        if (write(ready, "r", 1) != 1)
                _exit(1);
        for (;;)
                pause();
}

/* A process sandboxed in every namespace of flags, as the host sees it (its pid here); killed by
 * the caller, and with this test's process if the test fails first. */
static pid_t sandboxed(int flags)
{
        int ready[2], pid_pipe[2];
        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(pid_pipe, O_CLOEXEC), 0);
        pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (unshare(flags) < 0)
                        _exit(1);
                pid_t init = fork(); /* the first child after CLONE_NEWPID is pid 1 there */
                if (init == 0)
                        sandboxed_init(ready[1]);
                if (write(pid_pipe[1], &init, sizeof(init)) != sizeof(init))
                        _exit(1);
                waitpid(init, NULL, 0);
                _exit(0);
        }
        close(ready[1]);
        close(pid_pipe[1]);
        pid_t init = -1;
        char c[256] = "";
        ck_assert_int_eq(read(pid_pipe[0], &init, sizeof(init)), sizeof(init));
        ssize_t n = read(ready[0], c, sizeof(c) - 1);
        ck_assert_msg(n == 1 && c[0] == 'r', "sandboxing the test process failed: %s", n > 0 ? c : "no answer");
        close(ready[0]);
        close(pid_pipe[0]);
        return init;
}

/* Kills init and reaps this process's children: its intermediate, and any other whose init is
 * gone already. */
static void unsandbox(pid_t init)
{
        kill(init, SIGKILL);
        while (waitpid(-1, NULL, 0) > 0) /* the intermediate child, once its init is gone */
                ;
}

/* Restored instances: every namespace but the user one is their own, /tmp and /proc too, and
 * they run as their own uid without privilege; each missing part is named. */
START_TEST(test_restored_check)
{
        const int all = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC;
        pid_t p = sandboxed(all);
        const char *wrong = restored_sandbox_wrong(p, SANDBOX_UID);
        ck_assert_msg(!wrong, "a whole sandbox failed: %s", wrong ? wrong : "");
        ck_assert_str_eq(restored_sandbox_wrong(p, SANDBOX_UID + 1), "it does not run as its own uid and gid");
        unsandbox(p);

        static const struct {
                int without;
                const char *reason;
        } missing[] = {
                {CLONE_NEWPID, "it is not in a pid namespace of its own"},
                {CLONE_NEWNET, "it shares its net namespace"},
                {CLONE_NEWUTS, "it shares its uts namespace"},
                {CLONE_NEWIPC, "it shares its ipc namespace"},
        };
        for (size_t k = 0; k < ELEMENTSOF(missing); k++) {
                p = sandboxed(all & ~missing[k].without);
                wrong = restored_sandbox_wrong(p, SANDBOX_UID);
                ck_assert_msg(wrong && !strcmp(wrong, missing[k].reason), "case %zu: '%s', not '%s'", k,
                              wrong ? wrong : "(passed)", missing[k].reason);
                unsandbox(p);
        }
        /* The engine itself is root with every capability; a process gone cannot be checked. */
        ck_assert_str_eq(restored_sandbox_wrong(getpid(), 0), "it kept capabilities");
        ck_assert_str_eq(restored_sandbox_wrong(999999999, SANDBOX_UID), "its /proc entries cannot be read");
}
END_TEST

/* An engine that runs under a filter of its own (a service manager's): the sandbox's must come
 * on top of it. Check runs each test in a process of its own, which may take a filter. */
START_TEST(test_restored_check_counts_filters)
{
        const int all = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC;
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        const struct sock_fprog engine_filter = {1, &allow};
        pid_t before = sandboxed(all); /* one filter, the sandbox's */
        ck_assert_int_eq(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &engine_filter), 0);
        ck_assert_str_eq(restored_sandbox_wrong(before, SANDBOX_UID), "it lacks the sandbox's seccomp filter");
        pid_t after = sandboxed(all);  /* the engine's, inherited, and the sandbox's */
        const char *wrong = restored_sandbox_wrong(after, SANDBOX_UID);
        ck_assert_msg(!wrong, "a sandbox under the engine's filter failed: %s", wrong ? wrong : "");
        kill(after, SIGKILL); /* unsandbox waits for every child: both inits go first */
        unsandbox(before);
}
END_TEST

static Suite *parts_suite(void)
{
        Suite *s = suite_create("sandbox-parts");
        TCase *tc = tcase_create("creds");
        tcase_add_test(tc, test_core_rewrite);
        tcase_add_test(tc, test_core_rewrite_refuses);
        suite_add_tcase(s, tc);
        tc = tcase_create("uids");
        tcase_add_test(tc, test_uid_pool);
        tcase_add_test(tc, test_uid_pool_ranges);
        suite_add_tcase(s, tc);
        tc = tcase_create("seccomp");
        tcase_add_test(tc, test_seccomp_filter);
        suite_add_tcase(s, tc);
        tc = tcase_create("check");
        tcase_add_test(tc, test_restored_check);
        tcase_add_test(tc, test_restored_check_counts_filters);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(parts_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cgroup.h on this machine's hierarchy (v1: the memory and pids controllers; v2: one directory):
 * where a sandbox's cgroup goes, its limits as the kernel reads them back, a process moved in,
 * killed there, and nothing left after. Needs root, as the engine does. */
#include <signal.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "unit.h"

static char *knob_text(const char *dir, const char *name)
{
        char *path = strdup_printf("%s/%s", dir, name), *text = NULL;
        size_t n;
        ck_assert_int_eq(read_file(path, 4096, &text, &n), 0);
        free(path);
        text[strcspn(text, "\n")] = '\0';
        return text;
}

static char name[64];

static void expect_paths(const cgroup *cg)
{
        char want[128];
        if (cg->v2) {
                snprintf(want, sizeof(want), "/sys/fs/cgroup/" CGROUP_PARENT "/%s", name);
                ck_assert_str_eq(cg->dirs[0], want);
                return;
        }
        snprintf(want, sizeof(want), "/sys/fs/cgroup/memory/" CGROUP_PARENT "/%s", name);
        ck_assert_str_eq(cg->dirs[0], want);
        snprintf(want, sizeof(want), "/sys/fs/cgroup/pids/" CGROUP_PARENT "/%s", name);
        ck_assert_str_eq(cg->dirs[1], want);
}

static void expect_limits(const cgroup *cg, unsigned memory_mb, unsigned pids)
{
        char mem[32], pid_text[32];
        snprintf(mem, sizeof(mem), "%llu", (unsigned long long)memory_mb << 20);
        snprintf(pid_text, sizeof(pid_text), "%u", pids);
        char *m = knob_text(cg->dirs[0], cg->v2 ? "memory.max" : "memory.limit_in_bytes");
        char *p = knob_text(cg->v2 ? cg->dirs[0] : cg->dirs[1], "pids.max");
        ck_assert_str_eq(m, mem);
        ck_assert_str_eq(p, pid_text);
        free(m);
        free(p);
}

START_TEST(test_lifecycle)
{
        snprintf(name, sizeof(name), "unit-cgroup-%d", (int)getpid());
        pw_err err = {""};
        cgroup *cg = NULL;
        const cgroup_limits limits = {64, 16};
        ck_assert_msg(cgroup_create(name, &limits, &cg, &err) == 0, "%s", err.msg);
        expect_paths(cg);
        expect_limits(cg, 64, 16);
        ck_assert_int_eq(cgroup_set_memory(cg, 96), 0);
        expect_limits(cg, 96, 16);

        pid_t child = fork();
        if (child == 0) {
                pause();
                _exit(0);
        }
        ck_assert_int_eq(cgroup_attach(cg, child), 0);
        char *path = strdup_printf("/proc/%d/cgroup", (int)child), *text = NULL;
        size_t n;
        ck_assert_int_eq(read_file(path, 1 << 16, &text, &n), 0);
        ck_assert_msg(strstr(text, name), "the child is not in %s: %s", name, text);
        ck_assert_uint_eq(cgroup_oom_kills(cg), 0);
        cgroup_kill(cg);
        int status;
        ck_assert_int_eq(waitpid(child, &status, 0), child);
        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        char *dir0 = strdup(cg->dirs[0]), *dir1 = cg->dirs[1] ? strdup(cg->dirs[1]) : NULL;
        cgroup_destroy(cg);
        ck_assert(!path_exists(dir0));
        ck_assert(!dir1 || !path_exists(dir1));
        free(dir0);
        free(dir1);
        free(path);
        free(text);
}
END_TEST

START_TEST(test_refusals)
{
        pw_err err = {""};
        cgroup *cg = NULL;
        snprintf(name, sizeof(name), "unit-cgroup-%d-zero", (int)getpid());
        ck_assert_msg(cgroup_create(name, &(cgroup_limits){64, 16}, &cg, &err) == 0, "%s", err.msg);
        /* A limit under what the cgroup holds cannot be set; an empty cgroup holds nothing. */
        ck_assert_int_eq(cgroup_set_memory(cg, 1), 0);
        cgroup_destroy(cg);
        cg = NULL;
        ck_assert_int_lt(cgroup_create("../escape", &(cgroup_limits){64, 16}, &cg, &err), 0);
        ck_assert_ptr_null(cg);
}
END_TEST

/* Where cgroups go on either version, whichever this machine runs. */
START_TEST(test_paths_v1_and_v2)
{
        char *v2 = cgroup_controller_root(true, "memory"), *v1m = cgroup_controller_root(false, "memory");
        char *v1p = cgroup_controller_root(false, "pids");
        ck_assert_str_eq(v2, "/sys/fs/cgroup");
        ck_assert_str_eq(v1m, "/sys/fs/cgroup/memory");
        ck_assert_str_eq(v1p, "/sys/fs/cgroup/pids");
        char *a = cgroup_dir(v2, "python3-12-3"), *b = cgroup_dir(v1m, "python3-12-3"), *c = cgroup_dir(v1p, "build-x-9");
        ck_assert_str_eq(a, "/sys/fs/cgroup/" CGROUP_PARENT "/python3-12-3");
        ck_assert_str_eq(b, "/sys/fs/cgroup/memory/" CGROUP_PARENT "/python3-12-3");
        ck_assert_str_eq(c, "/sys/fs/cgroup/pids/" CGROUP_PARENT "/build-x-9");
        const char *bad[] = {"", ".", "..", "../x", "a/b", NULL};
        for (const char **n = bad; *n; n++)
                ck_assert_msg(!cgroup_dir(v2, *n), "'%s' became a cgroup directory", *n);
        ck_assert_ptr_null(cgroup_dir(v2, NULL));
        free(v2);
        free(v1m);
        free(v1p);
        free(a);
        free(b);
        free(c);
}
END_TEST

static Suite *cgroup_suite(void)
{
        Suite *s = suite_create("cgroup");
        TCase *tc = tcase_create("cgroup");
        tcase_add_test(tc, test_paths_v1_and_v2);
        tcase_add_test(tc, test_lifecycle);
        tcase_add_test(tc, test_refusals);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "unit-cgroup needs root\n");
                return 77; /* meson: skipped */
        }
        return run_suite(cgroup_suite());
}

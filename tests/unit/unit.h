/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers of the unit tests: a scratch directory per test and small file helpers.
 *
 * Check runs each test in a forked child, and a failed assertion ends that child at once, so a
 * checked teardown never runs after a failure. Each test case therefore gets a base directory from
 * an unchecked fixture (set up and torn down in the parent, whatever the tests do) and each test a
 * directory of its own below it from a checked fixture. */
#pragma once

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define UNUSED_ __attribute__((unused))

static char tmp_base[PATH_MAX] UNUSED_; /* per test case, removed by the parent */
static char tmp_dir[PATH_MAX] UNUSED_;  /* per test, below tmp_base */

static inline void tmp_base_setup(void)
{
        const char *t = getenv("TMPDIR");
        int n = snprintf(tmp_base, sizeof(tmp_base), "%s/prewarm-unit-XXXXXX", t && *t ? t : "/tmp");
        if (n <= 0 || (size_t)n >= sizeof(tmp_base) || !mkdtemp(tmp_base)) {
                perror("mkdtemp");
                abort();
        }
}

static inline void tmp_base_teardown(void)
{
        if (tmp_base[0] && rm_rf(tmp_base) < 0)
                fprintf(stderr, "cannot remove %s\n", tmp_base);
}

static inline void tmp_dir_setup(void)
{
        int n = snprintf(tmp_dir, sizeof(tmp_dir), "%s/t-XXXXXX", tmp_base);
        ck_assert(n > 0 && (size_t)n < sizeof(tmp_dir));
        ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static inline void tmp_dir_teardown(void)
{
        ck_assert_int_eq(rm_rf(tmp_dir), 0);
}

/* Gives every test of tc a fresh tmp_dir. */
static inline void tcase_add_tmp_dir(TCase *tc)
{
        tcase_add_unchecked_fixture(tc, tmp_base_setup, tmp_base_teardown);
        tcase_add_checked_fixture(tc, tmp_dir_setup, tmp_dir_teardown);
}

/* tmp_dir/name; the caller frees. */
static inline char *tmp_path(const char *name)
{
        char *p = strdup_printf("%s/%s", tmp_dir, name);
        ck_assert_ptr_nonnull(p);
        return p;
}

/* Creates or truncates path with exactly n bytes of data. */
static inline void put_file(const char *path, const void *data, size_t n)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
        ck_assert_int_eq(write_full(fd, data, n), 0);
        ck_assert_int_eq(close(fd), 0);
}

static inline void put_text(const char *path, const char *text)
{
        put_file(path, text, strlen(text));
}

static inline bool path_exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

/* Runs the suite; the exit status of a test program. */
static inline int run_suite(Suite *s)
{
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

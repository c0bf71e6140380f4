/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* host_files.h on this machine: what a process maps of /usr, with sizes and ELF build ids, the
 * check another node makes of them, and their place in manifest.json. */
#include <errno.h>
#include <sys/stat.h>

#include "host_files.h"
#include "manifest.h"
#include "unit.h"

/* What this test process maps of /usr (Debian's libraries are there, /lib being a link). */
static host_file *own_files(size_t *n)
{
        host_file *files = NULL;
        pw_err err = {""};
        ck_assert_msg(host_files_of(getpid(), &files, n, &err) == 0, "%s", err.msg);
        ck_assert_uint_gt(*n, 0);
        return files;
}

static const host_file *find_libc(const host_file *files, size_t n)
{
        for (size_t k = 0; k < n; k++)
                if (strstr(files[k].path, "/libc.so"))
                        return &files[k];
        ck_abort_msg("libc is not among the mapped files");
        return NULL;
}

START_TEST(test_own_mappings)
{
        size_t n;
        host_file *files = own_files(&n);
        for (size_t k = 0; k < n; k++) {
                ck_assert_msg(!strncmp(files[k].path, "/usr/", 5), "%s is not under /usr", files[k].path);
                struct stat st;
                ck_assert_int_eq(stat(files[k].path, &st), 0);
                ck_assert_uint_eq(files[k].size, (uint64_t)st.st_size);
                if (k)
                        ck_assert_msg(strcmp(files[k - 1].path, files[k].path) < 0, "not sorted, or twice");
        }
        const host_file *libc = find_libc(files, n);
        ck_assert_uint_eq(strlen(libc->build_id), 40); /* Debian builds with --build-id (SHA-1) */
        pw_err err = {""};
        ck_assert_msg(host_files_check(files, n, &err) == 0, "%s", err.msg);
        host_files_free(files, n);
}
END_TEST

/* Each difference another node's /usr can have is named, with the file. */
START_TEST(test_check_names_the_difference)
{
        size_t n;
        host_file *files = own_files(&n);
        host_file *libc = (host_file *)find_libc(files, n);
        pw_err err = {""};

        libc->size++;
        ck_assert_int_eq(host_files_check(files, n, &err), -EXDEV);
        ck_assert_msg(strstr(err.msg, libc->path) && strstr(err.msg, "bytes"), "%s", err.msg);
        libc->size--;

        char saved[41];
        memcpy(saved, libc->build_id, sizeof(saved));
        libc->build_id[0] = libc->build_id[0] == '0' ? '1' : '0';
        ck_assert_int_eq(host_files_check(files, n, &err), -EXDEV);
        ck_assert_msg(strstr(err.msg, libc->path) && strstr(err.msg, "build id"), "%s", err.msg);
        memcpy(libc->build_id, saved, sizeof(saved));

        host_file missing = {.path = "/usr/lib/prewarm-no-such-library.so.1", .size = 1};
        ck_assert_int_eq(host_files_check(&missing, 1, &err), -EXDEV);
        ck_assert_msg(strstr(err.msg, "lacks") && strstr(err.msg, missing.path), "%s", err.msg);

        ck_assert_int_eq(host_files_check(files, n, &err), 0);
        host_files_free(files, n);
}
END_TEST

static const char *manifest_with(const char *host_files)
{
        static char text[2048];
        snprintf(text, sizeof(text),
                 "{\"format\": 1, \"name\": \"t\", \"definition_sha256\": \"d\", \"runtime\": \"r\","
                 " \"criu_version\": \"4.1\", \"kernel\": \"k\", \"created\": 1,"
                 " \"control_pipes\": {\"in_inode\": 1, \"out_inode\": 2},"
                 " \"limits\": {\"memory_mb\": 1, \"pids_max\": 1, \"tmp_mb\": 1},"
                 " \"images\": {\"core-1.img\": {\"size\": 1, \"sha256\": \"%064d\"}}%s%s}", 0,
                 host_files ? ", \"host_files\": " : "", host_files ? host_files : "");
        return text;
}

/* manifest.json keeps them; one that names a file outside /usr is refused, as a pulled manifest
 * must not make a node look at whatever it names. */
START_TEST(test_manifest_round_trip)
{
        pw_err err = {""};
        manifest *m = NULL;
        ck_assert_msg(manifest_from_json(manifest_with("[{\"path\": \"/usr/lib/a.so\", \"size\": 7, \"build_id\": \"ab\"},"
                                                       " {\"path\": \"/usr/share/b.dat\", \"size\": 0}]"), &m, &err) == 0,
                      "%s", err.msg);
        ck_assert_uint_eq(m->n_host_files, 2);
        ck_assert_str_eq(m->host_files[0].path, "/usr/lib/a.so");
        ck_assert_uint_eq(m->host_files[0].size, 7);
        ck_assert_str_eq(m->host_files[0].build_id, "ab");
        ck_assert_str_eq(m->host_files[1].build_id, "");
        char *text = manifest_to_json(m);
        manifest *back = NULL;
        ck_assert_int_eq(manifest_from_json(text, &back, &err), 0);
        ck_assert_uint_eq(back->n_host_files, 2);
        ck_assert_str_eq(back->host_files[1].path, "/usr/share/b.dat");
        free(text);
        manifest_free(back);
        manifest_free(m);

        ck_assert_int_eq(manifest_from_json(manifest_with(NULL), &m, &err), 0); /* built before them */
        ck_assert_uint_eq(m->n_host_files, 0);
        manifest_free(m);

        const char *bad[] = {"[{\"path\": \"/etc/shadow\", \"size\": 1}]", "[{\"path\": \"/usr/../etc/shadow\", \"size\": 1}]",
                             "[{\"path\": \"/usr/lib/..\", \"size\": 1}]",
                             "[{\"path\": \"/usr/lib/a.so\", \"size\": -1}]", "[{\"size\": 1}]", "{}",
                             "[{\"path\": \"/usr/lib/a.so\", \"size\": 1, \"build_id\": \"" /* 41 characters */
                             "00000000000000000000000000000000000000000\"}]"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                m = NULL;
                ck_assert_msg(manifest_from_json(manifest_with(bad[k]), &m, &err) == -EUCLEAN, "%s taken", bad[k]);
                ck_assert_ptr_null(m);
        }
}
END_TEST

int main(void)
{
        Suite *s = suite_create("host-files");
        TCase *tc = tcase_create("host-files");
        tcase_add_test(tc, test_own_mappings);
        tcase_add_test(tc, test_check_names_the_difference);
        tcase_add_test(tc, test_manifest_round_trip);
        suite_add_tcase(s, tc);
        return run_suite(s);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* util.h: string vectors, names, hex, files and directory trees. */
#include <dirent.h>

#include "config.h"
#include "prewarm.h"
#include "unit.h"

static size_t count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

/* The header's version macros, the library's pw_version() and meson's project version agree. */
START_TEST(test_version)
{
        char header[32];
        snprintf(header, sizeof(header), "%d.%d.%d", PW_VERSION_MAJOR, PW_VERSION_MINOR, PW_VERSION_PATCH);
        ck_assert_str_eq(pw_version(), PW_VERSION);
        ck_assert_str_eq(header, PW_VERSION);
}
END_TEST

START_TEST(test_strv_split_ws)
{
        _cleanup_strv_free_ char **v = strv_split_ws("  alpha\tbeta \n gamma  ");
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(strv_length(v), 3);
        ck_assert_str_eq(v[0], "alpha");
        ck_assert_str_eq(v[1], "beta");
        ck_assert_str_eq(v[2], "gamma");
        ck_assert_ptr_null(v[3]);

        _cleanup_strv_free_ char **one = strv_split_ws("/usr/bin/python3");
        ck_assert_ptr_nonnull(one);
        ck_assert_uint_eq(strv_length(one), 1);
        ck_assert_str_eq(one[0], "/usr/bin/python3");

        /* Nothing but whitespace gives an empty vector, not NULL. */
        _cleanup_strv_free_ char **empty = strv_split_ws("");
        ck_assert_ptr_nonnull(empty);
        ck_assert_ptr_null(empty[0]);
        _cleanup_strv_free_ char **blank = strv_split_ws(" \t\r\n ");
        ck_assert_ptr_nonnull(blank);
        ck_assert_uint_eq(strv_length(blank), 0);
}
END_TEST

START_TEST(test_strv_push)
{
        _cleanup_strv_free_ char **v = NULL;
        ck_assert_uint_eq(strv_length(v), 0);
        char word[] = "first";
        ck_assert_int_eq(strv_push(&v, word), 0);
        word[0] = 'X'; /* the vector holds a copy */
        ck_assert_int_eq(strv_push(&v, "second"), 0);
        ck_assert_int_eq(strv_push(&v, ""), 0);
        ck_assert_uint_eq(strv_length(v), 3);
        ck_assert_str_eq(v[0], "first");
        ck_assert_str_eq(v[1], "second");
        ck_assert_str_eq(v[2], "");
        ck_assert_ptr_null(v[3]);
        strv_free(NULL); /* accepted */
}
END_TEST

START_TEST(test_str_has_suffix)
{
        ck_assert(str_has_suffix("handler.py", ".py"));
        ck_assert(str_has_suffix(".py", ".py"));
        ck_assert(str_has_suffix("app.zip", ""));
        ck_assert(str_has_suffix("", ""));
        ck_assert(!str_has_suffix("py", ".py"));
        ck_assert(!str_has_suffix("handler.pyc", ".py"));
        ck_assert(!str_has_suffix("", ".py"));
        ck_assert(!str_has_suffix("app.ZIP", ".zip"));
}
END_TEST

START_TEST(test_path_within)
{
        ck_assert(path_within("/srv/code", "/srv/code"));
        ck_assert(path_within("/srv/code/", "/srv/code"));
        ck_assert(path_within("/srv/code/a/b.py", "/srv/code"));
        ck_assert(path_within("/anything", "/"));
        ck_assert(path_within("/", "/"));
        ck_assert(!path_within("/srv/codex", "/srv/code")); /* a sibling sharing a prefix */
        ck_assert(!path_within("/srv/cod", "/srv/code"));
        ck_assert(!path_within("/srv", "/srv/code"));
        ck_assert(!path_within("/etc/passwd", "/srv/code"));
}
END_TEST

START_TEST(test_name_is_valid)
{
        static const char *const good[] = {"python3", "python3-data", "a", "Z", "0", "a.b_c-d",
                                           "fn.v2", "x-"};
        static const char *const bad[] = {"", ".", "..", ".hidden", "-flag", "a/b", "/abs",
                                          "a b", "tab\t", "new\nline", "caf\xc3\xa9", "a:b",
                                          "a*", "a$b"};
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ck_assert_msg(name_is_valid(good[i]), "'%s' should be valid", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(!name_is_valid(bad[i]), "'%s' should be invalid", bad[i]);
        ck_assert(!name_is_valid(NULL));

        char name[66];
        memset(name, 'n', 64);
        name[64] = '\0';
        ck_assert(name_is_valid(name)); /* 64 is the longest */
        name[64] = 'n';
        name[65] = '\0';
        ck_assert(!name_is_valid(name));
}
END_TEST

START_TEST(test_hex_encode)
{
        const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
        char out[2 * sizeof(in) + 1];
        memset(out, '?', sizeof(out));
        hex_encode(in, sizeof(in), out);
        ck_assert_str_eq(out, "00017f80abff");

        char none[1] = {'?'};
        hex_encode(in, 0, none);
        ck_assert_str_eq(none, "");
}
END_TEST

START_TEST(test_read_file_regular)
{
        _cleanup_free_ char *path = tmp_path("data");
        char content[100];
        for (size_t i = 0; i < sizeof(content); i++)
                content[i] = (char)('a' + i % 26);
        content[50] = '\0'; /* binary-safe: the size counts, not the first NUL */
        put_file(path, content, sizeof(content));

        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        ck_assert_int_eq(read_file(path, 100, &buf, &size), 0);
        ck_assert_uint_eq(size, 100);
        ck_assert_mem_eq(buf, content, 100);
        ck_assert_int_eq(buf[100], '\0');

        /* one byte over the maximum */
        char *untouched = (char *)"sentinel";
        char *ret = untouched;
        size = 7;
        ck_assert_int_eq(read_file(path, 99, &ret, &size), -EFBIG);
        ck_assert_ptr_eq(ret, untouched);
        ck_assert_uint_eq(size, 7);

        /* an empty file */
        _cleanup_free_ char *empty_path = tmp_path("empty");
        put_file(empty_path, "", 0);
        _cleanup_free_ char *empty = NULL;
        ck_assert_int_eq(read_file(empty_path, 0, &empty, &size), 0);
        ck_assert_uint_eq(size, 0);
        ck_assert_str_eq(empty, "");

        _cleanup_free_ char *missing = tmp_path("missing");
        ck_assert_int_eq(read_file(missing, 100, &ret, NULL), -ENOENT);
        ck_assert_int_eq(read_file(tmp_dir, 100, &ret, NULL), -EISDIR);
        ck_assert_ptr_eq(ret, untouched);
}
END_TEST

START_TEST(test_read_file_proc)
{
        /* proc files report size 0: read_file must read them to the end anyway. */
        struct stat st;
        ck_assert_int_eq(stat("/proc/self/status", &st), 0);
        ck_assert_int_eq(st.st_size, 0);

        _cleanup_free_ char *status = NULL;
        size_t size = 0;
        ck_assert_int_eq(read_file("/proc/self/status", 1 << 20, &status, &size), 0);
        ck_assert_uint_gt(size, 0);
        ck_assert_uint_eq(strlen(status), size);
        ck_assert_msg(!strncmp(status, "Name:\t", 6), "status starts with '%.20s'", status);
        char pid_line[64];
        snprintf(pid_line, sizeof(pid_line), "\nPid:\t%d\n", (int)getpid());
        ck_assert_ptr_nonnull(strstr(status, pid_line));
        ck_assert_int_eq(status[size - 1], '\n');

        /* More than the first 4 KiB guess: the buffer grows. */
        _cleanup_free_ char *smaps = NULL;
        ck_assert_int_eq(read_file("/proc/self/smaps", 16 << 20, &smaps, &size), 0);
        ck_assert_uint_gt(size, 8192);
        ck_assert_uint_eq(strlen(smaps), size);
        ck_assert_int_eq(smaps[size - 1], '\n');

        /* The maximum holds for pseudo-files too. */
        char *ret = NULL;
        ck_assert_int_eq(read_file("/proc/self/status", 10, &ret, &size), -EFBIG);
        ck_assert_ptr_null(ret);
        ck_assert_int_eq(read_file("/proc/self/smaps", 5000, &ret, &size), -EFBIG);
        ck_assert_ptr_null(ret);
}
END_TEST

START_TEST(test_write_file_atomic)
{
        umask(022);
        _cleanup_free_ char *path = tmp_path("manifest.json");
        const char first[] = "{\"first\": \"version, the longer one\"}\n";
        ck_assert_int_eq(write_file_atomic(path, first, strlen(first), 0640), 0);

        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        ck_assert_int_eq(read_file(path, 4096, &buf, &size), 0);
        ck_assert_uint_eq(size, strlen(first));
        ck_assert_str_eq(buf, first);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0640);
        ck_assert(S_ISREG(st.st_mode));

        /* Replacing with shorter content leaves nothing of the old one. */
        const char second[] = "{}";
        ck_assert_int_eq(write_file_atomic(path, second, 2, 0600), 0);
        free(buf);
        buf = NULL;
        ck_assert_int_eq(read_file(path, 4096, &buf, &size), 0);
        ck_assert_uint_eq(size, 2);
        ck_assert_str_eq(buf, "{}");
        ck_assert_uint_eq(count_entries(tmp_dir), 1); /* no temporary file left behind */

        _cleanup_free_ char *nodir = tmp_path("no/such/dir/file");
        ck_assert_int_eq(write_file_atomic(nodir, "x", 1, 0644), -ENOENT);
        ck_assert_uint_eq(count_entries(tmp_dir), 1);

        /* A failed rename leaves no temporary file behind either. */
        _cleanup_free_ char *dir = tmp_path("a-directory");
        _cleanup_free_ char *inside = tmp_path("a-directory/entry");
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        put_text(inside, "keeps the directory non-empty");
        ck_assert_int_eq(write_file_atomic(dir, "x", 1, 0644), -EISDIR);
        ck_assert_uint_eq(count_entries(tmp_dir), 2);
        ck_assert_uint_eq(count_entries(dir), 1);
}
END_TEST

START_TEST(test_mkdir_p)
{
        _cleanup_free_ char *deep = tmp_path("a/b/c/d");
        ck_assert_int_eq(mkdir_p(deep, 0755), 0);
        struct stat st;
        ck_assert_int_eq(stat(deep, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(mkdir_p(deep, 0755), 0); /* existing is fine */

        _cleanup_free_ char *slash = tmp_path("x/y/");
        ck_assert_int_eq(mkdir_p(slash, 0700), 0);
        _cleanup_free_ char *y = tmp_path("x/y");
        ck_assert_int_eq(stat(y, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));

        /* A regular file in the way of a parent. */
        _cleanup_free_ char *file = tmp_path("file");
        put_text(file, "x");
        _cleanup_free_ char *under = tmp_path("file/sub/dir");
        ck_assert_int_eq(mkdir_p(under, 0755), -ENOTDIR);
        /* The path itself is a file, and the empty path. */
        ck_assert_int_eq(mkdir_p(file, 0755), -ENOTDIR);
        ck_assert_int_eq(mkdir_p("", 0755), -EINVAL);
}
END_TEST

START_TEST(test_rm_rf)
{
        /* outside/keep must survive removing tree, which holds a symlink to outside. */
        _cleanup_free_ char *outside = tmp_path("outside");
        _cleanup_free_ char *keep = tmp_path("outside/keep");
        _cleanup_free_ char *tree = tmp_path("tree");
        _cleanup_free_ char *nested = tmp_path("tree/a/b");
        _cleanup_free_ char *f1 = tmp_path("tree/top");
        _cleanup_free_ char *f2 = tmp_path("tree/a/b/deep");
        _cleanup_free_ char *f3 = tmp_path("tree/a/.hidden");
        _cleanup_free_ char *link = tmp_path("tree/a/link-to-outside");
        _cleanup_free_ char *flink = tmp_path("tree/file-link");
        ck_assert_int_eq(mkdir_p(outside, 0755), 0);
        ck_assert_int_eq(mkdir_p(nested, 0755), 0);
        put_text(keep, "precious");
        put_text(f1, "1");
        put_text(f2, "2");
        put_text(f3, "3");
        ck_assert_int_eq(symlink(outside, link), 0);
        ck_assert_int_eq(symlink(keep, flink), 0);
        _cleanup_free_ char *fifo = tmp_path("tree/a/fifo");
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);

        ck_assert_int_eq(rm_rf(tree), 0);
        ck_assert(!path_exists(tree));
        ck_assert(path_exists(outside));
        _cleanup_free_ char *text = NULL;
        ck_assert_int_eq(read_file(keep, 100, &text, NULL), 0);
        ck_assert_str_eq(text, "precious");

        /* A symlink given as the path itself is removed, not followed. */
        _cleanup_free_ char *top_link = tmp_path("top-link");
        ck_assert_int_eq(symlink(outside, top_link), 0);
        ck_assert_int_eq(rm_rf(top_link), 0);
        ck_assert(!path_exists(top_link));
        ck_assert(path_exists(keep));

        /* A plain file, and something missing. */
        ck_assert_int_eq(rm_rf(keep), 0);
        ck_assert(!path_exists(keep));
        ck_assert_int_eq(rm_rf(keep), 0);
        ck_assert(path_exists(outside));
}
END_TEST

START_TEST(test_str_copy)
{
        char small[4];
        memset(small, 'x', sizeof(small));
        str_copy(small, sizeof(small), "abcdef");
        ck_assert_str_eq(small, "abc");

        str_copy(small, sizeof(small), "ab");
        ck_assert_str_eq(small, "ab");

        str_copy(small, sizeof(small), "abc"); /* exactly fits */
        ck_assert_str_eq(small, "abc");

        char one[1] = {'x'};
        str_copy(one, 1, "anything");
        ck_assert_str_eq(one, "");

        char big[16];
        str_copy(big, sizeof(big), "");
        ck_assert_str_eq(big, "");
}
END_TEST

START_TEST(test_strdup_printf_now_us)
{
        _cleanup_free_ char *s = strdup_printf("%s/%d", "dir", 42);
        ck_assert_str_eq(s, "dir/42");
        uint64_t a = now_us();
        usleep(20000);
        uint64_t b = now_us();
        ck_assert_uint_ge(b - a, 20000);
        ck_assert_uint_lt(b - a, 5000000);
}
END_TEST

static Suite *util_suite(void)
{
        Suite *s = suite_create("util");

        TCase *tc = tcase_create("strings");
        tcase_add_test(tc, test_version);
        tcase_add_test(tc, test_strv_split_ws);
        tcase_add_test(tc, test_strv_push);
        tcase_add_test(tc, test_str_has_suffix);
        tcase_add_test(tc, test_path_within);
        tcase_add_test(tc, test_name_is_valid);
        tcase_add_test(tc, test_hex_encode);
        tcase_add_test(tc, test_str_copy);
        tcase_add_test(tc, test_strdup_printf_now_us);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_tmp_dir(tc);
        tcase_add_test(tc, test_read_file_regular);
        tcase_add_test(tc, test_read_file_proc);
        tcase_add_test(tc, test_write_file_atomic);
        tcase_add_test(tc, test_mkdir_p);
        tcase_add_test(tc, test_rm_rf);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(util_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The native agent's archive readers (src/agent-native/archive*.c) on what Python's tarfile and
 * zipfile write in each of their formats (ustar's prefix field, GNU long names, pax headers,
 * stored and deflated zip members, gzip streams end to end), and on damaged archives. The rules
 * on hostile members are tested through the sandbox in tests/integration/test-native.c.
 */
#include <spawn.h>
#include <sys/wait.h>

#include "archive.h"
#include "unit.h"

extern char **environ;

/* A path of over 100 characters, which a plain tar header cannot hold. */
#define LONG_DIR "a-directory-name-long-enough-to-need-more-room-than-the-hundred-bytes-of-a-tar-name/"
#define LONG_PATH LONG_DIR "and-a-file-in-it.txt"

/* Runs Python's script with argv[1] = out; fails the test unless it succeeds. */
static void python_makes(const char *script, const char *out)
{
        char *argv[] = {"/usr/bin/python3", "-c", (char *)script, (char *)out, NULL};
        pid_t pid;
        ck_assert_int_eq(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "python3 failed on %s", out);
}

/* Unpacks the archive file into tmp_dir/out; returns archive_unpack's result, its reason in why. */
static int unpack(const char *archive, archive_kind kind, char why[512])
{
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        ck_assert_int_eq(read_file(archive, 64 << 20, &data, &size), 0);
        _cleanup_free_ char *out = tmp_path("out");
        ck_assert_int_eq(mkdir(out, 0700), 0);
        _cleanup_close_ int dir_fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(dir_fd, 0);
        why[0] = '\0';
        return archive_unpack(data, size, kind, dir_fd, why, 512);
}

static void assert_unpacked(const char *archive, archive_kind kind)
{
        char why[512];
        int r = unpack(archive, kind, why);
        ck_assert_msg(r == 0, "unpacking %s: %d %s", archive, r, why);
}

static void assert_file(const char *rel, const char *want, bool executable)
{
        _cleanup_free_ char *path = strdup_printf("%s/out/%s", tmp_dir, rel);
        _cleanup_free_ char *text = NULL;
        ck_assert_msg(read_file(path, 1 << 20, &text, NULL) == 0, "%s was not unpacked", rel);
        ck_assert_str_eq(text, want);
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_msg(!!(st.st_mode & 0100) == executable, "%s has mode %o", rel, st.st_mode & 07777);
}

/* A tar of the given format: a directory, a long path in it, an executable, a short file. */
static const char tar_script[] =
        "import io, sys, tarfile\n"
        "fmt = {'ustar': tarfile.USTAR_FORMAT, 'gnu': tarfile.GNU_FORMAT, 'pax': tarfile.PAX_FORMAT}[sys.argv[2]]\n"
        "mode = 'w:gz' if sys.argv[1].endswith('gz') else 'w'\n"
        "with tarfile.open(sys.argv[1], mode, format=fmt) as t:\n"
        "    def add(name, data=None, mode=0o644):\n"
        "        i = tarfile.TarInfo(name)\n"
        "        i.mode = mode\n"
        "        if data is None:\n"
        "            i.type = tarfile.DIRTYPE\n"
        "            t.addfile(i)\n"
        "        else:\n"
        "            i.size = len(data)\n"
        "            t.addfile(i, io.BytesIO(data))\n"
        "    add('" LONG_DIR "', None, 0o755)\n"
        "    add('" LONG_PATH "', b'long and deep')\n"
        "    add('run.sh', b'#!/bin/sh\\n', 0o755)\n"
        "    add('short.txt', b'x' * 1000)\n";

static void tar_of_format(const char *name, const char *format, archive_kind kind)
{
        _cleanup_free_ char *archive = tmp_path(name);
        _cleanup_free_ char *script = strdup_printf("import sys; sys.argv.append('%s')\n%s", format, tar_script);
        python_makes(script, archive);
        assert_unpacked(archive, kind);
        assert_file(LONG_PATH, "long and deep", false);
        assert_file("run.sh", "#!/bin/sh\n", true);
        _cleanup_free_ char *thousand = calloc(1, 1001);
        memset(thousand, 'x', 1000);
        assert_file("short.txt", thousand, false);
}

START_TEST(test_tar_ustar_prefix)
{
        tar_of_format("ustar.tar", "ustar", ARCHIVE_TAR); /* the long path goes into prefix + name */
}
END_TEST

START_TEST(test_tar_gnu_long_name)
{
        tar_of_format("gnu.tar.gz", "gnu", ARCHIVE_TAR_GZ); /* ././@LongLink, type 'L' */
}
END_TEST

START_TEST(test_tar_pax_path)
{
        tar_of_format("pax.tgz", "pax", ARCHIVE_TAR_GZ); /* an 'x' header with path= */
}
END_TEST

/* A gzip file may be several gzip streams end to end (gzip -c a b, pigz): one tar. */
START_TEST(test_gzip_members_end_to_end)
{
        _cleanup_free_ char *archive = tmp_path("split.tgz");
        python_makes("import gzip, io, sys, tarfile\n"
                     "b = io.BytesIO()\n"
                     "with tarfile.open(fileobj=b, mode='w') as t:\n"
                     "    for n in ('one', 'two'):\n"
                     "        i = tarfile.TarInfo(n + '.txt'); d = n.encode(); i.size = len(d)\n"
                     "        t.addfile(i, io.BytesIO(d))\n"
                     "data = b.getvalue()\n"
                     "open(sys.argv[1], 'wb').write(gzip.compress(data[:700]) + gzip.compress(data[700:]))\n",
                     archive);
        assert_unpacked(archive, ARCHIVE_TAR_GZ);
        assert_file("one.txt", "one", false);
        assert_file("two.txt", "two", false);
}
END_TEST

START_TEST(test_zip_stored_and_deflated)
{
        _cleanup_free_ char *archive = tmp_path("both.zip");
        python_makes("import sys, zipfile\n"
                     "with zipfile.ZipFile(sys.argv[1], 'w') as z:\n"
                     "    z.writestr('sub/', '')\n"
                     "    z.writestr('sub/stored.txt', 'kept as is', zipfile.ZIP_STORED)\n"
                     "    z.writestr('deflated.txt', 'squeezed ' * 100, zipfile.ZIP_DEFLATED)\n"
                     "    z.writestr('empty.txt', '')\n"
                     "    z.comment = b'a comment at the end, PK\\x05\\x06 in it'\n",
                     archive);
        assert_unpacked(archive, ARCHIVE_ZIP);
        assert_file("sub/stored.txt", "kept as is", false);
        _cleanup_free_ char *squeezed = calloc(1, 901);
        for (int k = 0; k < 100; k++)
                memcpy(squeezed + 9 * k, "squeezed ", 9);
        assert_file("deflated.txt", squeezed, false);
        assert_file("empty.txt", "", false);
}
END_TEST

/* Damaged archives, each refused with a reason. */
START_TEST(test_damaged)
{
        static const struct {
                const char *name, *script, *reason;
                archive_kind kind;
        } bad[] = {
                {"sum.tar", "import io, sys, tarfile\n"
                            "b = io.BytesIO(); t = tarfile.open(fileobj=b, mode='w')\n"
                            "i = tarfile.TarInfo('a'); i.size = 1; t.addfile(i, io.BytesIO(b'a')); t.close()\n"
                            "d = bytearray(b.getvalue()); d[0] ^= 1; open(sys.argv[1], 'wb').write(d)\n",
                 "not a tar file", ARCHIVE_TAR},
                {"short.tar", "import io, sys, tarfile\n"
                              "b = io.BytesIO(); t = tarfile.open(fileobj=b, mode='w')\n"
                              "i = tarfile.TarInfo('a'); i.size = 4000; t.addfile(i, io.BytesIO(b'a' * 4000)); t.close()\n"
                              "open(sys.argv[1], 'wb').write(b.getvalue()[:2048])\n",
                 "truncated", ARCHIVE_TAR},
                {"crc.zip", "import sys, zipfile\n"
                            "with zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('a.txt', 'stored', zipfile.ZIP_STORED)\n"
                            "d = bytearray(open(sys.argv[1], 'rb').read()); d[d.index(b'stored')] ^= 1\n"
                            "open(sys.argv[1], 'wb').write(d)\n",
                 "damaged (size or CRC)", ARCHIVE_ZIP},
                {"locked.zip", "import sys, zipfile\n"
                               "with zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('a.txt', 'x')\n"
                               "d = bytearray(open(sys.argv[1], 'rb').read()); c = d.index(b'PK\\x01\\x02')\n"
                               "d[c + 8] |= 1; open(sys.argv[1], 'wb').write(d)\n",
                 "is encrypted", ARCHIVE_ZIP},
                {"bz.zip", "import sys, zipfile\n"
                           "with zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('a.txt', 'x' * 100, zipfile.ZIP_BZIP2)\n",
                 "compression method 12", ARCHIVE_ZIP},
                {"cut.zip", "import sys, zipfile\n"
                            "with zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('a.txt', 'x')\n"
                            "d = open(sys.argv[1], 'rb').read(); open(sys.argv[1], 'wb').write(d[:len(d) - 30])\n",
                 "not a zip file", ARCHIVE_ZIP},
        };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                _cleanup_free_ char *archive = tmp_path(bad[k].name);
                _cleanup_free_ char *out = tmp_path("out");
                python_makes(bad[k].script, archive);
                char why[512];
                ck_assert_int_eq(unpack(archive, bad[k].kind, why), -EINVAL);
                ck_assert_msg(strstr(why, bad[k].reason), "%s: expected \"%s\" in \"%s\"", bad[k].name, bad[k].reason, why);
                ck_assert_int_eq(rm_rf(out), 0);
        }
}
END_TEST

static Suite *native_archive_suite(void)
{
        Suite *s = suite_create("native-archive");
        TCase *tc = tcase_create("formats");
        tcase_add_tmp_dir(tc);
        tcase_add_test(tc, test_tar_ustar_prefix);
        tcase_add_test(tc, test_tar_gnu_long_name);
        tcase_add_test(tc, test_tar_pax_path);
        tcase_add_test(tc, test_gzip_members_end_to_end);
        tcase_add_test(tc, test_zip_stored_and_deflated);
        tcase_add_test(tc, test_damaged);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(native_archive_suite());
}

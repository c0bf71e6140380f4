/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* template_archive.h: a template's layer written and unpacked, and hostile layers refused. Hostile
 * archives are made with Python's tarfile and the zstd tool, as another writer would make them. */
#include <sys/wait.h>

#include "template_archive.h"
#include "unit.h"

static const char *const parts[] = {"images", "rootfs", NULL};

static void make_template(const char *dir)
{
        char *p;
        ck_assert_int_eq(mkdir_p((p = strdup_printf("%s/images", dir)), 0700), 0);
        free(p);
        ck_assert_int_eq(mkdir_p((p = strdup_printf("%s/rootfs/etc/deep/er", dir)), 0755), 0);
        free(p);
        static char pages[300000];
        for (size_t i = 0; i < sizeof(pages); i++)
                pages[i] = (char)(i * 7 + i / 4096);
        put_file((p = strdup_printf("%s/images/pages-1.img", dir)), pages, sizeof(pages));
        free(p);
        put_text((p = strdup_printf("%s/images/empty.img", dir)), "");
        free(p);
        put_text((p = strdup_printf("%s/rootfs/etc/passwd", dir)), "root:x:0:0::/:/bin/sh\n");
        free(p);
        put_text((p = strdup_printf("%s/rootfs/etc/deep/er/tool", dir)), "#!/bin/sh\n");
        ck_assert_int_eq(chmod(p, 0755), 0);
        free(p);
        ck_assert_int_eq(symlink("usr/bin", (p = strdup_printf("%s/rootfs/bin", dir))), 0);
        free(p);
        put_text((p = strdup_printf("%s/manifest.json", dir)), "{}"); /* not a part: stays out */
        free(p);
}

static int write_archive(const char *dir, const char *out, char sha[65], uint64_t *size)
{
        pw_err err = {""};
        char *images = strdup_printf("%s/images", dir), *rootfs = strdup_printf("%s/rootfs", dir);
        const template_archive_part written[] = {{"images", images}, {"rootfs", rootfs}};
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        int r = template_archive_write(written, 2, fd, sha, size, &err);
        free(images);
        free(rootfs);
        ck_assert_msg(r == 0, "write: %s", err.msg);
        close(fd);
        return r;
}

static int extract(const char *archive, const char *dir, uint64_t max, pw_err *err)
{
        ck_assert_int_eq(mkdir_p(dir, 0700), 0);
        int fd = open(archive, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        int r = template_archive_extract(fd, dir, parts, max, err);
        close(fd);
        return r;
}

static bool same_file(const char *a, const char *b)
{
        char *cmd = strdup_printf("cmp -s '%s' '%s'", a, b);
        int r = system(cmd);
        free(cmd);
        return r == 0;
}

START_TEST(test_round_trip)
{
        char *src = tmp_path("src"), *out = tmp_path("layer.tar.zst"), *dst = tmp_path("dst");
        make_template(src);
        char sha[65], again[65];
        uint64_t size, size2;
        write_archive(src, out, sha, &size);
        ck_assert_uint_gt(size, 0);
        ck_assert_uint_lt(size, 300000); /* the pages compress */
        write_archive(src, out, again, &size2);
        ck_assert_str_eq(sha, again); /* the same template, the same bytes */
        pw_err err = {""};
        ck_assert_msg(extract(out, dst, 1 << 20, &err) == 0, "extract: %s", err.msg);

        const char *files[] = {"images/pages-1.img", "images/empty.img", "rootfs/etc/passwd", "rootfs/etc/deep/er/tool"};
        for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
                char *a = strdup_printf("%s/%s", src, files[k]), *b = strdup_printf("%s/%s", dst, files[k]);
                ck_assert_msg(same_file(a, b), "%s differs", files[k]);
                free(a);
                free(b);
        }
        char *tool = strdup_printf("%s/rootfs/etc/deep/er/tool", dst), *bin = strdup_printf("%s/rootfs/bin", dst);
        char *manifest = strdup_printf("%s/manifest.json", dst);
        struct stat st;
        ck_assert_int_eq(stat(tool, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0777, 0755);
        char link[64] = {0};
        ck_assert_int_eq(readlink(bin, link, sizeof(link) - 1), 7);
        ck_assert_str_eq(link, "usr/bin");
        ck_assert(!path_exists(manifest));
        free(tool);
        free(bin);
        free(manifest);
        free(src);
        free(out);
        free(dst);
}
END_TEST

START_TEST(test_bound)
{
        char *src = tmp_path("src"), *out = tmp_path("layer.tar.zst"), *dst = tmp_path("dst");
        make_template(src);
        char sha[65];
        uint64_t size;
        write_archive(src, out, sha, &size);
        pw_err err = {""};
        ck_assert_int_eq(extract(out, dst, 1000, &err), -EFBIG);
        ck_assert_msg(strstr(err.msg, "more than"), "%s", err.msg);
        free(src);
        free(out);
        free(dst);
}
END_TEST

/* tmp_dir/NAME.tar.zst, made by Python's tarfile from a script that adds members to `t`. */
static char *hostile(const char *name, const char *adds)
{
        char *tar = strdup_printf("%s/%s.tar", tmp_dir, name), *zst = strdup_printf("%s/%s.tar.zst", tmp_dir, name);
        char *script = strdup_printf("import io, tarfile\n"
                                     "def data(n, text):\n"
                                     "    i = tarfile.TarInfo(n); b = text.encode(); i.size = len(b); return i, io.BytesIO(b)\n"
                                     "def kind(n, k, **kw):\n"
                                     "    i = tarfile.TarInfo(n); i.type = k\n"
                                     "    for a, v in kw.items(): setattr(i, a, v)\n"
                                     "    return i, None\n"
                                     "t = tarfile.open('%s', 'w', format=tarfile.USTAR_FORMAT)\n"
                                     "%s\n"
                                     "t.close()\n", tar, adds);
        char *argv[] = {"/usr/bin/python3", "-c", script, NULL};
        pid_t pid = fork();
        if (pid == 0) {
                execv(argv[0], argv);
                _exit(127);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "python3 failed for %s", name);
        char *cmd = strdup_printf("zstd -q -f '%s' -o '%s'", tar, zst);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
        free(script);
        free(tar);
        return zst;
}

static void refused(const char *name, const char *adds, int expected, const char *reason)
{
        char *archive = hostile(name, adds), *dst = strdup_printf("%s/out-%s", tmp_dir, name);
        pw_err err = {""};
        int r = extract(archive, dst, 1 << 20, &err);
        ck_assert_msg(r == expected, "%s: %d (%s), expected %d", name, r, err.msg, expected);
        ck_assert_msg(strstr(err.msg, reason), "%s: '%s' lacks '%s'", name, err.msg, reason);
        free(archive);
        free(dst);
}

START_TEST(test_hostile)
{
        refused("dotdot", "t.addfile(*data('images/../../evil', 'x'))", -EPERM, "leads out");
        refused("absolute", "t.addfile(*data('/tmp/evil', 'x'))", -EPERM, "absolute");
        refused("outside", "t.addfile(*data('etc/passwd', 'x'))", -EPERM, "not part of a template");
        refused("device", "t.addfile(*kind('rootfs/null', tarfile.CHRTYPE, devmajor=1, devminor=3))", -EPERM, "device");
        refused("hardlink", "t.addfile(*data('rootfs/a', 'x'))\nt.addfile(*kind('rootfs/b', tarfile.LNKTYPE, linkname='rootfs/a'))",
                -EPERM, "hard link");
        refused("through-link", "t.addfile(*kind('rootfs/l', tarfile.SYMTYPE, linkname='/tmp'))\n"
                                "t.addfile(*data('rootfs/l/evil', 'x'))", -EPERM, "through a link");
        refused("twice", "t.addfile(*data('rootfs/a', 'x'))\nt.addfile(*data('rootfs/a', 'y'))", -EEXIST, "creating a");
        /* The files refused were never written where they pointed. */
        ck_assert(!path_exists("/tmp/evil"));
}
END_TEST

START_TEST(test_damaged)
{
        char *src = tmp_path("src"), *out = tmp_path("layer.tar.zst");
        make_template(src);
        char sha[65];
        uint64_t size;
        write_archive(src, out, sha, &size);
        pw_err err = {""};
        ck_assert_int_eq(truncate(out, (off_t)size / 2), 0);
        char *dst = tmp_path("half");
        ck_assert_int_eq(extract(out, dst, 1 << 20, &err), -EBADMSG);
        char *junk = tmp_path("junk.tar.zst"), *dst2 = tmp_path("junk");
        put_text(junk, "this is not zstd at all, not even close to it................");
        err.msg[0] = '\0';
        ck_assert_int_eq(extract(junk, dst2, 1 << 20, &err), -EBADMSG);
        free(src);
        free(out);
        free(dst);
        free(junk);
        free(dst2);
}
END_TEST

static Suite *archive_suite(void)
{
        Suite *s = suite_create("template-archive");
        TCase *tc = tcase_create("archive");
        tcase_add_tmp_dir(tc);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_bound);
        tcase_add_test(tc, test_hostile);
        tcase_add_test(tc, test_damaged);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(archive_suite());
}

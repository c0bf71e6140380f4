/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* staging.h on this machine (root, io_uring): a template's images read ahead by the stager thread
 * and pinned in memory, then unpinned and dropped from the page cache; the engine's flags that
 * turn it off. */
#include <sys/mman.h>

#include "staging.h"
#include "unit.h"

#define FILES 3
#define FILE_BYTES (1u << 20)

/* ASan's interceptor makes mlock() a no-op: under it the stager's work shows in the page cache
 * only, not in VmLck. */
#ifdef __SANITIZE_ADDRESS__
#define MLOCK_WORKS 0
#else
#define MLOCK_WORKS 1
#endif

/* The process's locked memory, in kB (VmLck of /proc/self/status). */
static unsigned long locked_kb(void)
{
        char *text = NULL;
        size_t n;
        ck_assert_int_eq(read_file("/proc/self/status", 1 << 16, &text, &n), 0);
        const char *line = strstr(text, "VmLck:");
        unsigned long kb = line ? strtoul(line + 6, NULL, 10) : 0;
        free(text);
        return kb;
}

/* How many of the file's pages are in the page cache. */
static size_t resident_pages(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        void *map = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
        ck_assert(map != MAP_FAILED);
        size_t pages = FILE_BYTES / (size_t)sysconf(_SC_PAGESIZE), n = 0;
        unsigned char *vec = calloc(pages, 1);
        ck_assert_int_eq(mincore(map, FILE_BYTES, vec), 0);
        for (size_t k = 0; k < pages; k++)
                n += vec[k] & 1;
        free(vec);
        munmap(map, FILE_BYTES);
        close(fd);
        return n;
}

static char *make_images(void)
{
        char *images = tmp_path("images");
        ck_assert_int_eq(mkdir(images, 0700), 0);
        static char data[FILE_BYTES];
        for (int k = 0; k < FILES; k++) {
                for (size_t i = 0; i < sizeof(data); i++)
                        data[i] = (char)(i * 31 + (size_t)k);
                char *path = strdup_printf("%s/pages-%d.img", images, k + 1);
                put_file(path, data, sizeof(data));
                free(path);
        }
        return images;
}

static pw_engine *engine(unsigned flags)
{
        pw_engine *e = NULL;
        char *state = tmp_path("state");
        int r = pw_engine_new(&(pw_options){.state_dir = state, .flags = flags}, &e);
        free(state);
        ck_assert_msg(r == 0, "pw_engine_new: %s", strerror(-r));
        return e;
}

START_TEST(test_stage_and_unstage)
{
        char *images = make_images(), *first = strdup_printf("%s/pages-1.img", images);
        pw_engine *e = engine(0);
        pw_err err = {""};
        /* Out of the page cache first, so that what comes back is the stager's doing. */
        ck_assert_msg(unstage_template(e, images, &err) == 0, "%s", err.msg);
        unsigned long before = locked_kb();
        int fd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_msg(stage_template(e, images, fd, &err) == 0, "%s", err.msg);
        close(fd);
        /* The stager works in the background, at the lowest CPU priority after a pause: its pins
         * show in VmLck once it is done, which on a loaded machine takes seconds. Up to 45 s,
         * inside the case's 60. */
        unsigned long want = before + FILES * (FILE_BYTES >> 10);
        size_t all = FILE_BYTES / (size_t)sysconf(_SC_PAGESIZE);
        for (int k = 0; k < 4500 && !(MLOCK_WORKS ? locked_kb() >= want : resident_pages(first) == all); k++)
                usleep(10 * 1000);
        if (MLOCK_WORKS)
                ck_assert_msg(locked_kb() >= want, "VmLck %lu kB, wanted %lu", locked_kb(), want);
        ck_assert_uint_eq(resident_pages(first), all);

        ck_assert_msg(unstage_template(e, images, &err) == 0, "%s", err.msg);
        ck_assert_uint_le(locked_kb(), before);
        ck_assert_uint_lt(resident_pages(first), all);
        pw_engine_free(e);
        free(first);
        free(images);
}
END_TEST

START_TEST(test_off_by_flags)
{
        char *images = make_images();
        const unsigned flags[] = {PW_ENGINE_NO_IO_URING, PW_ENGINE_NOTHING_AHEAD};
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++) {
                pw_engine *e = engine(flags[k]);
                pw_err err = {""};
                unsigned long before = locked_kb();
                int fd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                ck_assert_int_eq(stage_template(e, images, fd, &err), 0);
                close(fd);
                staging_engine_done(e); /* would wait for a stager, if one had started */
                ck_assert_uint_eq(locked_kb(), before);
                pw_engine_free(e);
        }
        free(images);
}
END_TEST

START_TEST(test_missing)
{
        pw_engine *e = engine(0);
        pw_err err = {""};
        char *nowhere = tmp_path("nowhere");
        ck_assert_int_lt(unstage_template(e, nowhere, &err), 0);
        ck_assert_msg(strstr(err.msg, "nowhere"), "'%s'", err.msg);
        free(nowhere);
        pw_engine_free(e);
}
END_TEST

static Suite *staging_suite(void)
{
        Suite *s = suite_create("staging");
        TCase *tc = tcase_create("staging");
        tcase_add_tmp_dir(tc);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_stage_and_unstage);
        tcase_add_test(tc, test_off_by_flags);
        tcase_add_test(tc, test_missing);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "unit-staging needs root\n");
                return 77;
        }
        return run_suite(staging_suite());
}

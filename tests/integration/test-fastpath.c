/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fast path (docs/performance.md) keeps every instance as isolated as before: network
 * namespaces made ahead of time are fresh, one per instance, with loopback up; staged and
 * evicted templates restore alike; CRIU's feature cache lives where the engine put it; and the
 * benchmark's baselines (stock `criu restore`, no io_uring) restore working instances too; and an
 * instance's memory limit can be changed for the function it will run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

static json_int_t netns_of_loopback_probe(pw_instance *i)
{
        t_specialize(i, "loopback.py");
        json_t *res = t_invoke(i, "{}");
        ck_assert_str_eq(json_string_value(json_object_get(res, "echoed")), "ping");
        json_int_t ino = json_integer_value(json_object_get(res, "netns"));
        json_decref(res);
        return ino;
}

static ino_t netns_inode(pid_t pid)
{
        char path[64];
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
        return st.st_ino;
}

/* More instances than the pool holds: each one its own namespace, none the host's. */
START_TEST(test_namespaces_are_fresh)
{
        enum { N = 6 };
        pw_instance *inst[N];
        json_int_t seen[N];
        ino_t host = netns_inode(getpid());
        for (int k = 0; k < N; k++) {
                inst[k] = t_restore("python3");
                seen[k] = netns_of_loopback_probe(inst[k]);
                ck_assert_int_eq((ino_t)seen[k], netns_inode(pw_instance_pid(inst[k])));
                ck_assert_msg((ino_t)seen[k] != host, "instance %d runs in the host's network namespace", k);
                for (int j = 0; j < k; j++)
                        ck_assert_msg(seen[j] != seen[k], "instances %d and %d share a network namespace", j, k);
        }
        for (int k = 0; k < N; k++)
                t_destroy(inst[k]);
}
END_TEST

static double resident_fraction(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        ck_assert(m != MAP_FAILED);
        size_t pages = ((size_t)st.st_size + 4095) / 4096, in = 0;
        unsigned char *vec = malloc(pages);
        ck_assert_int_eq(mincore(m, (size_t)st.st_size, vec), 0);
        for (size_t k = 0; k < pages; k++)
                in += vec[k] & 1;
        free(vec);
        munmap(m, (size_t)st.st_size);
        return (double)in / (double)pages;
}

/* After a restore the stager pins the images; eviction lets them go; both restore alike. */
START_TEST(test_staging_and_eviction)
{
        char *pages = strdup_printf("%s/templates/python3/images/pages-1.img", t_state);
        t_destroy(t_restore("python3"));
        double staged = 0;
        for (int k = 0; k < 200 && (staged = resident_fraction(pages)) < 0.99; k++)
                usleep(10000); /* the stager works in the background */
        ck_assert_msg(staged >= 0.99, "only %.0f%% of the page image is resident after staging", staged * 100);

        ck_assert_int_eq(pw_template_evict(t_engine, "python3"), 0);
        double evicted = resident_fraction(pages);
        printf("  page image resident: %.0f%% staged, %.0f%% after eviction\n", staged * 100, evicted * 100);
        ck_assert_msg(evicted < 0.5, "%.0f%% of the page image is still resident after eviction", evicted * 100);

        pw_instance *i = t_restore("python3"); /* from the disk */
        t_specialize(i, "hello.py");
        json_decref(t_invoke_hello(i, "cold"));
        t_destroy(i);
        free(pages);
}
END_TEST

START_TEST(test_evict_errors)
{
        ck_assert_int_eq(pw_template_evict(t_engine, "no-such-template"), -ENOENT);
        ck_assert_msg(strstr(pw_engine_last_error(t_engine), "no-such-template"), "%s", pw_engine_last_error(t_engine));
        ck_assert_int_eq(pw_template_evict(t_engine, "../etc"), -EINVAL);
        ck_assert_int_eq(pw_template_evict(NULL, "python3"), -EINVAL);
}
END_TEST

/* The benchmark's baseline without io_uring must restore real, working, isolated instances (its
 * stock `criu restore` baseline is the bench's own, exercised by integration-bench). */
START_TEST(test_baselines_restore)
{
        setenv("PREWARM_NO_IO_URING", "1", 1);
        pw_engine *plain = t_engine_new(NULL);
        unsetenv("PREWARM_NO_IO_URING");
        ck_assert(plain);
        pw_instance *i = NULL;
        int r = pw_instance_restore(plain, "python3", &i);
        ck_assert_msg(r == 0, "restore without io_uring: %s", pw_engine_last_error(plain));
        netns_of_loopback_probe(i);
        pw_instance_destroy(i);
        pw_engine_free(plain);
}
END_TEST

/* Where /run is not a tmpfs, CRIU's feature cache is kept on /dev/shm for the next restores. */
START_TEST(test_kdat_cache)
{
        struct statfs fs;
        ck_assert_int_eq(statfs("/run", &fs), 0);
        t_destroy(t_restore("python3"));
        struct stat st;
        bool kept = stat("/dev/shm/prewarm-criu-run/criu.kdat", &st) == 0 && st.st_size > 0;
        if (fs.f_type == 0x01021994) /* TMPFS_MAGIC: CRIU keeps its own */
                ck_assert(!kept || st.st_size > 0);
        else
                ck_assert_msg(kept, "no CRIU feature cache in /dev/shm/prewarm-criu-run after a restore");
}
END_TEST

/* A function's own memory limit replaces the template's, down and up. */
START_TEST(test_memory_limit)
{
        /* Restored, not cloned: a clone's cgroup is charged only the pages it made its own, which
         * may be fewer than 4 MiB. */
        pw_instance *i = t_restore_full("python3");
        ck_assert_int_eq(pw_instance_set_memory_limit(i, 0), -EINVAL);
        ck_assert_int_eq(pw_instance_set_memory_limit(i, 4), -EBUSY); /* it uses more already */
        ck_assert_msg(strstr(pw_instance_last_error(i), "4 MiB"), "%s", pw_instance_last_error(i));
        ck_assert_int_eq(pw_instance_set_memory_limit(i, 512), 0);   /* above the template's 256 */
        ck_assert_int_eq(pw_instance_set_memory_limit(i, 96), 0);
        t_specialize(i, "hog.py");
        char *result = NULL;
        int r = pw_instance_invoke(i, "{}", 60000, &result);
        ck_assert_msg(r == -ENOMEM, "hog under a 96 MiB limit: %d %s", r, pw_instance_last_error(i));
        ck_assert_msg(strstr(pw_instance_last_error(i), "96 MiB"), "%s", pw_instance_last_error(i));
        ck_assert_int_eq(pw_instance_set_memory_limit(i, 128), -ESRCH);
        t_destroy(i);
}
END_TEST

static Suite *fastpath_suite(void)
{
        Suite *s = suite_create("fastpath");
        TCase *tc = t_tcase("fastpath");
        tcase_add_test(tc, test_namespaces_are_fresh);
        tcase_add_test(tc, test_staging_and_eviction);
        tcase_add_test(tc, test_evict_errors);
        tcase_add_test(tc, test_baselines_restore);
        tcase_add_test(tc, test_kdat_cache);
        tcase_add_test(tc, test_memory_limit);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(fastpath_suite, "python3", NULL);
}

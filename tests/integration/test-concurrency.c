/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Many instances at once: eight alive side by side, driven stage by stage, restores racing
 * each other from several threads of one engine (each thread with its own instance, as the API
 * allows), failures in several threads at once, each of which must read its own reason, and two
 * threads rebuilding the same template.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "util.h"

#define N_ALIVE 8
#define N_THREADS 4
#define ROUNDS 3

START_TEST(test_eight_alive)
{
        pw_instance *inst[N_ALIVE];
        pid_t pids[N_ALIVE];
        uint64_t t0 = now_us();
        for (int k = 0; k < N_ALIVE; k++) {
                inst[k] = t_restore("python3");
                pids[k] = pw_instance_pid(inst[k]);
                ck_assert_int_gt(pids[k], 0);
        }
        uint64_t t1 = now_us();
        /* All alive at once, each its own process tree. */
        for (int k = 0; k < N_ALIVE; k++) {
                ck_assert_msg(t_pid_alive(pids[k]), "instance %d (pid %d) is gone", k, (int)pids[k]);
                for (int m = 0; m < k; m++)
                        ck_assert_int_ne(pids[k], pids[m]);
        }
        for (int k = 0; k < N_ALIVE; k++)
                t_specialize(inst[k], "hello.py");
        char name[16];
        for (int k = 0; k < N_ALIVE; k++) {
                snprintf(name, sizeof(name), "n%d", k);
                json_decref(t_invoke_hello(inst[k], name));
        }
        /* A second round in reverse order: no instance answers for another. */
        for (int k = N_ALIVE - 1; k >= 0; k--) {
                snprintf(name, sizeof(name), "again%d", k);
                json_decref(t_invoke_hello(inst[k], name));
                ck_assert_int_eq(pw_instance_pid(inst[k]), pids[k]);
        }
        printf("  %d restores in %.0f ms\n", N_ALIVE, (t1 - t0) / 1000.0);
        for (int k = 0; k < N_ALIVE; k++)
                t_destroy(inst[k]);
        for (int k = 0; k < N_ALIVE; k++)
                ck_assert_msg(!t_pid_alive(pids[k]), "pid %d still exists after destroy", (int)pids[k]);
}
END_TEST

typedef struct worker {
        pthread_barrier_t *start;
        int index, round;
        int restore_r, specialize_r, invoke_r;
        pid_t pid;
        bool pid_alive_after_destroy;
        char error[512];
        char *result;
} worker;

/* No Check assertions here: they must run on the test's own thread. */
static void *work(void *arg)
{
        worker *w = arg;
        pthread_barrier_wait(w->start);
        pw_instance *i = NULL;
        w->restore_r = pw_instance_restore(t_engine, "python3", &i);
        if (w->restore_r < 0) {
                snprintf(w->error, sizeof(w->error), "restore: %s", pw_engine_last_error(t_engine));
                return NULL;
        }
        w->pid = pw_instance_pid(i);
        char *path = strdup_printf("%s/hello.py", FIXTURES_DIR);
        const pw_function fn = {.code_uri = path};
        w->specialize_r = pw_instance_specialize(i, &fn);
        free(path);
        if (w->specialize_r < 0)
                snprintf(w->error, sizeof(w->error), "specialize: %s", pw_instance_last_error(i));
        else {
                char args[64];
                snprintf(args, sizeof(args), "{\"name\": \"t%d.%d\"}", w->index, w->round);
                w->invoke_r = pw_instance_invoke(i, args, 30000, &w->result);
                if (w->invoke_r < 0)
                        snprintf(w->error, sizeof(w->error), "invoke: %s", pw_instance_last_error(i));
        }
        pw_instance_destroy(i);
        w->pid_alive_after_destroy = t_pid_alive(w->pid);
        return NULL;
}

START_TEST(test_threads_restore_concurrently)
{
        for (int round = 0; round < ROUNDS; round++) {
                pthread_barrier_t start;
                pthread_barrier_init(&start, NULL, N_THREADS);
                worker w[N_THREADS] = {0};
                pthread_t th[N_THREADS];
                uint64_t t0 = now_us();
                for (int k = 0; k < N_THREADS; k++) {
                        w[k] = (worker){.start = &start, .index = k, .round = round};
                        ck_assert_int_eq(pthread_create(&th[k], NULL, work, &w[k]), 0);
                }
                for (int k = 0; k < N_THREADS; k++)
                        pthread_join(th[k], NULL);
                pthread_barrier_destroy(&start);
                printf("  round %d: %d threads restored, ran and destroyed in %.0f ms\n", round, N_THREADS,
                       (now_us() - t0) / 1000.0);

                for (int k = 0; k < N_THREADS; k++) {
                        ck_assert_msg(w[k].restore_r == 0 && w[k].specialize_r == 0 && w[k].invoke_r == 0,
                                      "round %d thread %d: restore %d, specialize %d, invoke %d: %s", round, k,
                                      w[k].restore_r, w[k].specialize_r, w[k].invoke_r, w[k].error);
                        char name[32];
                        snprintf(name, sizeof(name), "t%d.%d", k, round);
                        json_t *res = json_loads(w[k].result, 0, NULL);
                        ck_assert_msg(res, "thread %d: result is not JSON: %s", k, w[k].result);
                        t_assert_greeting(res, name);
                        json_decref(res);
                        free(w[k].result);
                        ck_assert_int_gt(w[k].pid, 0);
                        ck_assert_msg(!w[k].pid_alive_after_destroy, "thread %d: pid %d survived destroy", k,
                                      (int)w[k].pid);
                        for (int m = 0; m < k; m++)
                                ck_assert_int_ne(w[k].pid, w[m].pid);
                }
        }
}
END_TEST

/* Failures in several threads at once: each thread reads its own reason, whole. */
#define FAILURES_PER_THREAD 2000

typedef struct failing {
        int index;
        pthread_barrier_t *start;
        int wrong_errno, foreign, torn;
        char example[1024];
} failing;

static void *fail_restores(void *arg)
{
        failing *f = arg;
        char name[32];
        snprintf(name, sizeof(name), "missing-%d", f->index);
        pthread_barrier_wait(f->start);
        for (int n = 0; n < FAILURES_PER_THREAD; n++) {
                pw_instance *i = NULL;
                int r = pw_instance_restore(t_engine, name, &i);
                if (r != -ENOENT) {
                        f->wrong_errno++;
                        pw_instance_destroy(i);
                        continue;
                }
                char why[1024];
                snprintf(why, sizeof(why), "%s", pw_engine_last_error(t_engine));
                /* "restore of template missing-K: not built (no STATE/templates/missing-K/manifest.json)" */
                const char *first = strstr(why, "missing-");
                const char *second = first ? strstr(first + 1, "templates/missing-") : NULL;
                bool whole = !first || !second || first[8] == second[18]; /* both names the same one */
                bool own = first && !strncmp(first, name, strlen(name)) && first[strlen(name)] == ':';
                if (!whole)
                        f->torn++;
                else if (!own)
                        f->foreign++;
                if ((!whole || !own) && !f->example[0])
                        snprintf(f->example, sizeof(f->example), "%s", why);
        }
        return NULL;
}

START_TEST(test_threads_errors_are_their_own)
{
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, N_THREADS);
        failing f[N_THREADS];
        pthread_t th[N_THREADS];
        for (int k = 0; k < N_THREADS; k++) {
                f[k] = (failing){.index = k, .start = &start};
                ck_assert_int_eq(pthread_create(&th[k], NULL, fail_restores, &f[k]), 0);
        }
        for (int k = 0; k < N_THREADS; k++)
                pthread_join(th[k], NULL);
        pthread_barrier_destroy(&start);
        for (int k = 0; k < N_THREADS; k++) {
                ck_assert_msg(f[k].wrong_errno == 0, "thread %d: %d restores of a missing template did not give -ENOENT",
                              k, f[k].wrong_errno);
                ck_assert_msg(f[k].torn == 0,
                              "thread %d: %d of %d reasons were torn (two messages mixed), e.g. \"%s\"", k, f[k].torn,
                              FAILURES_PER_THREAD, f[k].example);
                ck_assert_msg(f[k].foreign == 0,
                              "thread %d: %d of %d reasons were another thread's, e.g. \"%s\"", k, f[k].foreign,
                              FAILURES_PER_THREAD, f[k].example);
        }
}
END_TEST

/* Two threads rebuild the same template at once: the store must end up with a working
 * template and at least one build must succeed (serialized, or the loser told why). */
typedef struct builder {
        pthread_barrier_t *start;
        int r;
        char why[1024];
} builder;

static void *build_python3(void *arg)
{
        builder *b = arg;
        pthread_barrier_wait(b->start);
        b->r = pw_template_build(t_engine, "python3");
        if (b->r < 0)
                snprintf(b->why, sizeof(b->why), "%s", pw_engine_last_error(t_engine));
        return NULL;
}

START_TEST(test_threads_build_same_template)
{
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        builder b[2] = {{.start = &start}, {.start = &start}};
        pthread_t th[2];
        for (int k = 0; k < 2; k++)
                ck_assert_int_eq(pthread_create(&th[k], NULL, build_python3, &b[k]), 0);
        for (int k = 0; k < 2; k++)
                pthread_join(th[k], NULL);
        pthread_barrier_destroy(&start);
        for (int k = 0; k < 2; k++)
                printf("  build %d: %d%s%s\n", k, b[k].r, b[k].r ? " " : "", b[k].why);

        /* Whatever happened, python3 must restore and run. */
        pw_instance *i = t_restore("python3");
        t_specialize(i, "hello.py");
        json_decref(t_invoke_hello(i, "after the race"));
        t_destroy(i);
        ck_assert_msg(b[0].r == 0 || b[1].r == 0, "both concurrent builds failed: %d \"%s\" and %d \"%s\"", b[0].r,
                      b[0].why, b[1].r, b[1].why);
}
END_TEST

static void *restore_python3(void *arg)
{
        pw_instance **ret = arg;
        if (pw_instance_restore(t_engine, "python3", ret) < 0)
                *ret = NULL;
        return NULL;
}

/* An instance belongs to the process, not to the thread that restored it: a worker thread that
 * ends must not take its instances along (a parent-death signal in the checkpoint would). */
START_TEST(test_instance_outlives_restoring_thread)
{
        pw_instance *i = NULL;
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, restore_python3, &i), 0);
        pthread_join(th, NULL);
        ck_assert_msg(i, "restore in a thread failed: %s", pw_engine_last_error(t_engine));
        usleep(100 * 1000);
        ck_assert_msg(t_pid_alive(pw_instance_pid(i)), "the instance died with the thread that restored it");
        char *path = t_fixture("hello.py");
        const pw_function fn = {.code_uri = path};
        int r = pw_instance_specialize(i, &fn);
        free(path);
        if (r == 0)
                json_decref(t_invoke_hello(i, "orphan"));
        const char *why = r < 0 ? pw_instance_last_error(i) : "";
        char reason[512];
        snprintf(reason, sizeof(reason), "%s", why);
        pw_instance_destroy(i);
        ck_assert_msg(r == 0, "specialize after the thread ended: %d %s", r, reason);
}
END_TEST

/* Rebuilding a template while instances run on it must not pull their root from under them; the
 * old template goes once the last of them is destroyed (the leak check looks for .old-*). */
START_TEST(test_rebuild_keeps_live_instances)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "files.py");
        ck_assert_int_eq(t_build("python3"), 0);
        json_t *res = t_invoke(i, "{}");
        ck_assert(json_is_true(json_object_get(res, "/etc/hosts")));
        ck_assert(json_is_true(json_object_get(res, "/dev/null")));
        ck_assert(json_is_true(json_object_get(res, "/prewarm")));
        json_decref(res);
        t_destroy(i);

        /* And the rebuilt template serves new instances. */
        pw_instance *j = t_restore("python3");
        t_specialize(j, "hello.py");
        json_decref(t_invoke_hello(j, "rebuilt"));
        t_destroy(j);
}
END_TEST

/* Instance ids name cgroups: two engines in one process must not collide. */
START_TEST(test_two_engines_one_process)
{
        pw_engine *second = t_engine_new(NULL);
        ck_assert_ptr_nonnull(second);
        pw_instance *a = t_restore("python3"), *b = NULL;
        int r = pw_instance_restore(second, "python3", &b);
        char reason[512];
        snprintf(reason, sizeof(reason), "%s", pw_engine_last_error(second));
        if (r == 0) {
                ck_assert_int_ne(pw_instance_pid(a), pw_instance_pid(b));
                pw_instance_destroy(b);
        }
        pw_engine_free(second);
        t_destroy(a);
        ck_assert_msg(r == 0, "restore through a second engine: %d %s", r, reason);
}
END_TEST

static Suite *concurrency_suite(void)
{
        Suite *s = suite_create("concurrency");
        TCase *tc = t_tcase("concurrency");
        tcase_add_test(tc, test_eight_alive);
        tcase_add_test(tc, test_threads_restore_concurrently);
        tcase_add_test(tc, test_threads_errors_are_their_own);
        tcase_add_test(tc, test_threads_build_same_template);
        tcase_add_test(tc, test_instance_outlives_restoring_thread);
        tcase_add_test(tc, test_rebuild_keeps_live_instances);
        tcase_add_test(tc, test_two_engines_one_process);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(concurrency_suite, "python3", NULL);
}

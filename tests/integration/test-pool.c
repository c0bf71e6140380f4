/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pools through the public API, with real CRIU: zygote hits, misses and refills, warm reuse,
 * scale to zero, dead instances replaced, the cold-start fallback when a restore fails, the memory
 * budget, listing and destroying instances, and several threads invoking at once. No assert is
 * about time: the background threads are waited for by polling the pool's own stats.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

static pw_pool *pool;
static pw_engine *pool_engine;      /* the pool's engine: t_engine unless a test sets its own */
static const char *pool_template = "python3";

static void pool_teardown(void)
{
        pool = pw_pool_free(pool);
        if (pool_engine != t_engine)
                pw_engine_free(pool_engine);
        pool_engine = NULL;
        pool_template = "python3";
}

static pw_pool *pool_new(const pw_pool_options *o)
{
        if (!pool_engine)
                pool_engine = t_engine;
        int r = pw_pool_new(pool_engine, o, &pool);
        ck_assert_msg(r == 0, "pw_pool_new: %s", strerror(-r));
        return pool;
}

static void set_function(const char *key, const char *fixture, unsigned keepalive_s, unsigned max_concurrency)
{
        char *path = t_fixture(fixture);
        const pw_pool_function f = {.template_name = pool_template, .fn = {.code_uri = path}, .timeout_ms = 30000,
                                    .keepalive_s = keepalive_s, .max_concurrency = max_concurrency};
        int r = pw_pool_set_function(pool, key, &f);
        free(path);
        ck_assert_msg(r == 0, "set_function %s: %s", key, pw_pool_last_error(pool));
}

static pw_pool_stats stats(void)
{
        pw_pool_stats s = {.size = sizeof(s)};
        ck_assert_int_eq(pw_pool_stats_get(pool, &s), 0);
        return s;
}

/* Polls until the stat reaches want (or 60 s pass, then fails): the pool's threads are slow or
 * fast as the machine is, and the tests only care that they get there. */
#define wait_for(field, cmp, want)                                                                 \
        do {                                                                                       \
                pw_pool_stats _s = stats();                                                        \
                for (int _k = 0; _k < 6000 && !(_s.field cmp(want)); _k++) {                       \
                        usleep(10000);                                                             \
                        _s = stats();                                                              \
                }                                                                                  \
                ck_assert_msg(_s.field cmp(want), "%s is %llu, waited for %s %llu", #field,        \
                              (unsigned long long)_s.field, #cmp, (unsigned long long)(want));     \
        } while (0)

/* Invokes hello.py through the pool as NAME; returns the info. */
static pw_invoke_info invoke_hello(const char *key, const char *name)
{
        char args[128], *result = NULL, *logs = NULL;
        snprintf(args, sizeof(args), "{\"name\": \"%s\"}", name);
        pw_invoke_info info = {.size = sizeof(info)};
        int r = pw_pool_invoke(pool, key, args, &result, &logs, &info);
        ck_assert_msg(r == 0, "pool invoke %s: %d %s", key, r, pw_pool_last_error(pool));
        json_t *obj = json_loads(result, 0, NULL);
        ck_assert_ptr_nonnull(obj);
        t_assert_greeting(obj, name);
        json_decref(obj);
        free(result);
        free(logs);
        ck_assert_uint_ge(info.total_us, info.invoke_us);
        ck_assert_str_ne(info.instance_id, "");
        return info;
}

typedef struct listing {
        unsigned zygotes, idle, busy;
        char id[96];
        pid_t pid;
} listing;

static int count_one(const pw_pool_instance_info *info, void *userdata)
{
        listing *l = userdata;
        ck_assert_str_eq(info->template_name, "python3");
        if (!strcmp(info->state, "zygote")) {
                ck_assert_ptr_null(info->function);
                l->zygotes++;
        } else {
                ck_assert_ptr_nonnull(info->function);
                l->idle += !strcmp(info->state, "idle");
                l->busy += !strcmp(info->state, "busy");
                str_copy(l->id, sizeof(l->id), info->id);
                l->pid = info->pid;
        }
        ck_assert_int_gt(info->pid, 0);
        return 0;
}

static listing list(void)
{
        listing l = {0};
        ck_assert_int_eq(pw_pool_foreach_instance(pool, count_one, &l), 0);
        return l;
}

START_TEST(test_zygote_hit_and_refill)
{
        pool_new(&(pw_pool_options){.zygotes_min = 1, .zygotes_max = 1});
        ck_assert_int_eq(pw_pool_prewarm(pool, "python3"), 0);
        wait_for(zygotes_ready, ==, 1);
        ck_assert_uint_eq(list().zygotes, 1);
        set_function("hello", "hello.py", 600, 1);

        pw_invoke_info info = invoke_hello("hello", "first");
        ck_assert_int_eq(info.source, PW_SOURCE_ZYGOTE);
        ck_assert_uint_eq(info.restore_us, 0); /* restored ahead, not for this request */
        ck_assert_uint_gt(info.specialize_us, 0);
        pw_pool_stats s = stats();
        ck_assert_uint_eq(s.zygote_hits, 1);
        ck_assert_uint_eq(s.zygote_misses, 0);
        ck_assert_uint_eq(s.warm_instances, 1);
        ck_assert_uint_eq(s.busy_instances, 0);
        /* The refiller restores the taken zygote's successor. */
        wait_for(zygotes_ready, ==, 1);

        /* A zygote taken out belongs to the caller, who specializes and destroys it. */
        pw_instance *z = NULL;
        enum pw_instance_source source = PW_SOURCE_WARM;
        ck_assert_int_eq(pw_pool_take_zygote(pool, "python3", &z, &source), 0);
        ck_assert_int_eq(source, PW_SOURCE_ZYGOTE);
        t_specialize(z, "hello.py");
        json_decref(t_invoke_hello(z, "taken"));
        pw_instance_destroy(z);
        wait_for(zygotes_ready, ==, 1);
        ck_assert_uint_eq(stats().memory_mb, 2 * 256); /* one zygote, one warm instance */
}
END_TEST

START_TEST(test_miss_restores_then_warm_reuse)
{
        /* No zygotes kept: every first invocation restores on demand. */
        pool_new(&(pw_pool_options){.zygotes_min = 0, .zygotes_max = 1});
        set_function("hello", "hello.py", 600, 1);
        pw_invoke_info first = invoke_hello("hello", "one");
        ck_assert_int_eq(first.source, PW_SOURCE_CLONE); /* from the template's parent */
        ck_assert_uint_gt(first.restore_us, 0);
        ck_assert_uint_gt(first.specialize_us, 0);

        pw_invoke_info second = invoke_hello("hello", "two");
        ck_assert_int_eq(second.source, PW_SOURCE_WARM);
        ck_assert_str_eq(second.instance_id, first.instance_id);
        ck_assert_uint_eq(second.restore_us, 0);
        ck_assert_uint_eq(second.specialize_us, 0);

        pw_pool_stats s = stats();
        ck_assert_uint_eq(s.zygote_misses, 1);
        ck_assert_uint_eq(s.zygote_hits, 0);
        ck_assert_uint_eq(s.warm_hits, 1);
        ck_assert_uint_eq(s.zygotes_ready, 0);
        ck_assert_uint_eq(s.warm_instances, 1);

        /* Errors: unknown function, a handler that raises (the instance stays warm). */
        char *result = NULL;
        ck_assert_failure(pw_pool_invoke(pool, "nope", NULL, &result, NULL, NULL), -ENOENT,
                          pw_pool_last_error(pool), "nope");
        ck_assert_int_eq(pw_pool_remove_function(pool, "nope"), -ENOENT);
        set_function("raises", "modes.py", 600, 1);
        ck_assert_failure(pw_pool_invoke(pool, "raises", "{\"mode\": \"raise\"}", &result, NULL, NULL),
                          -EREMOTEIO, pw_pool_last_error(pool), "raises");
        ck_assert_ptr_null(result);
        ck_assert_uint_eq(stats().warm_instances, 2);
        ck_assert_uint_eq(stats().instances_replaced, 0);
}
END_TEST

START_TEST(test_scale_to_zero)
{
        pool_new(&(pw_pool_options){.zygotes_min = 0, .zygotes_max = 1});
        set_function("hello", "hello.py", 1, 1);
        invoke_hello("hello", "brief");
        ck_assert_uint_eq(list().idle, 1);
        /* After its 1 s keep-alive the reaper destroys it. */
        wait_for(warm_instances, ==, 0);
        listing l = list();
        ck_assert_uint_eq(l.idle + l.busy + l.zygotes, 0);
        ck_assert_uint_eq(stats().memory_mb, 0);
        /* And the next invocation starts one again. */
        ck_assert_int_eq(invoke_hello("hello", "again").source, PW_SOURCE_CLONE);
}
END_TEST

START_TEST(test_dead_instance_replaced)
{
        pool_new(&(pw_pool_options){.zygotes_min = 0, .zygotes_max = 1});
        set_function("hello", "hello.py", 600, 1);
        invoke_hello("hello", "before");
        listing l = list();
        ck_assert_uint_eq(l.idle, 1);

        /* Killed while idle: noticed before use, never handed out. */
        ck_assert_int_eq(kill(l.pid, SIGKILL), 0);
        for (int k = 0; k < 6000 && t_pid_alive(l.pid); k++)
                usleep(10000); /* SIGKILL is delivered asynchronously */
        pw_invoke_info info = invoke_hello("hello", "after");
        ck_assert_int_ne(info.source, PW_SOURCE_WARM);
        ck_assert_str_ne(info.instance_id, l.id);
        ck_assert_uint_eq(stats().instances_replaced, 1);

        /* Died in an invocation: the error is the caller's, the instance goes. */
        set_function("exit", "exit.py", 600, 1);
        char *result = NULL;
        ck_assert_failure(pw_pool_invoke(pool, "exit", "{\"status\": 3}", &result, NULL, NULL), -ECHILD,
                          pw_pool_last_error(pool), "exit", "died");
        ck_assert_uint_eq(stats().instances_replaced, 2);
        ck_assert_uint_eq(stats().warm_instances, 1); /* hello's */
        /* Registering hello again retires the older version's warm instance. */
        set_function("hello", "hello.py", 600, 1);
        ck_assert_uint_eq(stats().warm_instances, 0);
        invoke_hello("hello", "replaced");
}
END_TEST

/* Flips one byte of a template image in place (same size): the digest check fails the restore. */
static void flip_byte(const char *path)
{
        FILE *f = fopen(path, "r+");
        ck_assert_ptr_nonnull(f);
        int c = fgetc(f);
        ck_assert_int_ne(c, EOF);
        ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
        fputc(c ^ 0xff, f);
        fclose(f);
}

START_TEST(test_cold_start)
{
        /* On its own: an unspecialized instance that behaves as a restored one. */
        pw_instance *i = NULL;
        int r = pw_instance_cold_start(t_engine, "python3", &i);
        ck_assert_msg(r == 0, "cold start: %s", pw_engine_last_error(t_engine));
        pw_timings t = {.size = sizeof(t)};
        ck_assert_int_eq(pw_instance_timings(i, &t), 0);
        ck_assert_uint_gt(t.restore_us, 0);
        ck_assert_int_gt(pw_instance_pid(i), 0);
        t_specialize(i, "hello.py");
        json_decref(t_invoke_hello(i, "cold"));
        json_decref(t_invoke_hello(i, "cold again"));
        ck_assert_int_eq(t_specialize_fixture(i, "hello.py", NULL), -EALREADY);
        pw_instance_destroy(i);
        i = NULL;
        ck_assert_engine_error(t_engine, pw_instance_cold_start(t_engine, "not-built", &i), -ENOENT, "not-built");
        ck_assert_engine_error(t_engine, pw_instance_cold_start(t_engine, "../x", &i), -EINVAL, "invalid");
}
END_TEST

START_TEST(test_cold_start_fallback)
{
        /* A template of its own, "pycopy" (python3's agent, fewer preloads), built by an engine
         * with its own definitions, then corrupted: its restores fail the digest check. */
        char *defs = strdup_printf("%s/definitions", t_state);
        char *dir = strdup_printf("%s/pycopy", defs);
        char *conf_path = strdup_printf("%s/template.conf", dir);
        char *conf = strdup_printf("runtime = /usr/bin/python3 -B -s\nagent = %s/python3/agent.py\npreload = json\n",
                                   TEMPLATES_DIR);
        ck_assert_int_eq(mkdir_p(dir, 0755), 0);
        t_write_file(conf_path, conf);
        pool_engine = t_engine_new(defs);
        ck_assert_ptr_nonnull(pool_engine);
        pool_template = "pycopy";
        ck_assert_msg(pw_template_build(pool_engine, "pycopy") == 0, "build: %s", pw_engine_last_error(pool_engine));
        char *pages = strdup_printf("%s/templates/pycopy/images/pages-1.img", t_state);
        flip_byte(pages);

        pool_new(&(pw_pool_options){.zygotes_min = 0, .zygotes_max = 1});
        set_function("hello", "hello.py", 600, 1);
        pw_invoke_info info = invoke_hello("hello", "fallback");
        ck_assert_int_eq(info.source, PW_SOURCE_COLD_START);
        ck_assert_uint_gt(info.restore_us, 0);
        ck_assert_uint_eq(stats().cold_start_fallbacks, 1);
        ck_assert_int_eq(invoke_hello("hello", "warm").source, PW_SOURCE_WARM);

        pw_instance *z = NULL;
        enum pw_instance_source source = PW_SOURCE_WARM;
        ck_assert_int_eq(pw_pool_take_zygote(pool, "pycopy", &z, &source), 0);
        ck_assert_int_eq(source, PW_SOURCE_COLD_START);
        pw_instance_destroy(z);
        ck_assert_uint_eq(stats().cold_start_fallbacks, 2);
        pool = pw_pool_free(pool);

        /* The refiller falls back too: zygotes still come, booted. */
        pool_new(&(pw_pool_options){.zygotes_min = 1, .zygotes_max = 1});
        ck_assert_int_eq(pw_pool_prewarm(pool, "pycopy"), 0);
        wait_for(zygotes_ready, ==, 1);
        ck_assert_uint_eq(stats().cold_start_fallbacks, 1);
        pool = pw_pool_free(pool);

        /* Without the fallback the restore's error reaches the caller. */
        pool_new(&(pw_pool_options){.zygotes_min = 0, .zygotes_max = 1, .cold_start_fallback = PW_COLD_START_FALLBACK_OFF});
        set_function("hello", "hello.py", 600, 1);
        char *result = NULL;
        ck_assert_failure(pw_pool_invoke(pool, "hello", NULL, &result, NULL, NULL), -EUCLEAN,
                          pw_pool_last_error(pool), "pages-1.img");
        ck_assert_uint_eq(stats().cold_start_fallbacks, 0);
        flip_byte(pages);
        ck_assert_int_eq(invoke_hello("hello", "whole again").source, PW_SOURCE_CLONE);
        free(pages);
        free(conf);
        free(conf_path);
        free(dir);
        free(defs);
}
END_TEST

START_TEST(test_budget)
{
        /* Room for one python3 instance (256 MiB): the zygote makes way for the warm instance. */
        pool_new(&(pw_pool_options){.zygotes_min = 1, .zygotes_max = 1, .memory_budget_mb = 256});
        ck_assert_int_eq(pw_pool_prewarm(pool, "python3"), 0);
        wait_for(zygotes_ready, ==, 1);
        set_function("hello", "hello.py", 600, 1);
        invoke_hello("hello", "budget");
        pw_pool_stats s = stats();
        ck_assert_uint_le(s.memory_mb, 256);
        ck_assert_uint_eq(s.warm_instances, 1);
        ck_assert_uint_eq(s.zygotes_ready, 0);
        /* A second function evicts the first one's warm instance. */
        set_function("hello2", "hello.py", 600, 1);
        invoke_hello("hello2", "second");
        s = stats();
        ck_assert_uint_le(s.memory_mb, 256);
        ck_assert_uint_eq(s.warm_instances, 1);
}
END_TEST

START_TEST(test_list_and_destroy)
{
        pool_new(&(pw_pool_options){.zygotes_min = 0, .zygotes_max = 1});
        set_function("hello", "hello.py", 600, 1);
        invoke_hello("hello", "listed");
        listing l = list();
        ck_assert_uint_eq(l.idle, 1);
        ck_assert_int_eq(pw_pool_destroy_instance(pool, "no-such-id"), -ENOENT);
        ck_assert_int_eq(pw_pool_destroy_instance(pool, l.id), 0);
        ck_assert_msg(!t_pid_alive(l.pid), "destroyed instance %d still runs", (int)l.pid);
        ck_assert_uint_eq(list().idle, 0);
        invoke_hello("hello", "anew");
        ck_assert_int_eq(pw_pool_remove_function(pool, "hello"), 0);
        ck_assert_uint_eq(stats().warm_instances, 0);
        ck_assert_int_eq(pw_pool_invoke(pool, "hello", NULL, NULL, NULL, NULL), -ENOENT);
}
END_TEST

#define THREADS 4
#define CALLS 4

static void *invoker(void *userdata)
{
        const char *key = userdata;
        intptr_t failures = 0;
        for (int k = 0; k < CALLS; k++) {
                char args[64], *result = NULL;
                snprintf(args, sizeof(args), "{\"name\": \"%d\"}", k);
                int r = pw_pool_invoke(pool, key, args, &result, NULL, NULL);
                failures += r < 0 || !result || !strstr(result, "Hello");
                if (r < 0)
                        fprintf(stderr, "invoke %s: %s\n", key, pw_pool_last_error(pool));
                free(result);
        }
        return (void *)failures;
}

static void run_threads(const char *key)
{
        pthread_t th[THREADS];
        for (int k = 0; k < THREADS; k++)
                ck_assert_int_eq(pthread_create(&th[k], NULL, invoker, (void *)key), 0);
        intptr_t failures = 0;
        for (int k = 0; k < THREADS; k++) {
                void *f;
                pthread_join(th[k], &f);
                failures += (intptr_t)f;
        }
        ck_assert_int_eq(failures, 0);
        pw_pool_stats s = stats();
        ck_assert_uint_eq(s.busy_instances, 0);
}

typedef struct call {
        const char *args;
        int r;
} call;

static void *call_main(void *userdata)
{
        call *c = userdata;
        char *result = NULL;
        c->r = pw_pool_invoke(pool, "sleepy", c->args, &result, NULL, NULL);
        free(result);
        return NULL;
}

START_TEST(test_queue_on_dying_instance)
{
        /* Invocations queued behind an instance that dies are not lost with it: they go on to
         * another instance. */
        pool_new(&(pw_pool_options){.zygotes_min = 1, .zygotes_max = 1});
        set_function("sleepy", "sleep_exit.py", 600, 3);
        call first = {"{\"sleep\": 1, \"exit\": true}", 1}, queued[2] = {{"{}", 1}, {"{}", 1}};
        pthread_t th[3];
        ck_assert_int_eq(pthread_create(&th[0], NULL, call_main, &first), 0);
        wait_for(busy_instances, ==, 1);
        for (int k = 0; k < 2; k++)
                ck_assert_int_eq(pthread_create(&th[k + 1], NULL, call_main, &queued[k]), 0);
        for (int k = 0; k < 3; k++)
                pthread_join(th[k], NULL);
        ck_assert_int_eq(first.r, -ECHILD);
        ck_assert_int_eq(queued[0].r, 0);
        ck_assert_int_eq(queued[1].r, 0);
        pw_pool_stats s = stats();
        ck_assert_uint_eq(s.instances_replaced, 1);
        ck_assert_uint_eq(s.busy_instances, 0);
        ck_assert_uint_ge(s.warm_instances, 1);
}
END_TEST

START_TEST(test_threads)
{
        pool_new(&(pw_pool_options){.zygotes_min = 1, .zygotes_max = 4, .adaptive = true});
        set_function("one-each", "hello.py", 600, 1);
        set_function("shared", "hello.py", 600, THREADS);
        run_threads("one-each");
        pw_pool_stats s = stats();
        ck_assert_uint_eq(s.zygote_hits + s.zygote_misses + s.warm_hits, THREADS * CALLS);
        ck_assert_uint_le(s.warm_instances, THREADS);
        /* Queueing on one instance: never more instances than with one each. */
        run_threads("shared");
        s = stats();
        ck_assert_uint_le(s.warm_instances, 2 * THREADS);
        ck_assert_uint_eq(s.instances_replaced, 0);
}
END_TEST

static int collect_idle(const pw_pool_instance_info *info, void *userdata)
{
        char ***ids = userdata;
        if (!strcmp(info->state, "idle"))
                ck_assert_int_eq(strv_push(ids, info->id), 0);
        return 0;
}

/* Destroys every idle warm instance, so that the next invocation misses. */
static void destroy_idle(void)
{
        char **ids = NULL;
        ck_assert_int_eq(pw_pool_foreach_instance(pool, collect_idle, &ids), 0);
        for (char **id = ids; id && *id; id++)
                ck_assert_int_eq(pw_pool_destroy_instance(pool, *id), 0);
        strv_free(ids);
        ck_assert_uint_eq(stats().warm_instances, 0);
}

static json_int_t invoke_counter(const char *key, int want_source)
{
        char *result = NULL;
        pw_invoke_info info = {.size = sizeof(info)};
        int r = pw_pool_invoke(pool, key, NULL, &result, NULL, &info);
        ck_assert_msg(r == 0, "pool invoke %s: %s", key, pw_pool_last_error(pool));
        ck_assert_int_eq(info.source, want_source);
        json_t *obj = json_loads(result, 0, NULL);
        ck_assert(json_is_true(json_object_get(obj, "mark")));
        json_int_t n = json_integer_value(json_object_get(obj, "count"));
        json_decref(obj);
        free(result);
        return n;
}

/* Entries of the store for second-level templates: templates, or with dot files (locks, retired
 * or unfinished ones) too. */
static unsigned second_level_templates_in_store(bool dot_files)
{
        char *dir = strdup_printf("%s/templates", t_state);
        DIR *d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        unsigned n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                n += strstr(de->d_name, ".l2-") && (dot_files || de->d_name[0] != '.');
        closedir(d);
        free(dir);
        return n;
}

START_TEST(test_second_level)
{
        pool_new(&(pw_pool_options){.zygotes_min = 0, .zygotes_max = 1});
        char *path = t_fixture("counter.py");
        const pw_pool_function f = {.template_name = "python3", .fn = {.code_uri = path}, .timeout_ms = 30000,
                                    .second_level = PW_SECOND_LEVEL_ALWAYS};
        ck_assert_int_eq(pw_pool_set_function(pool, "counter", &f), 0);
        free(path);
        ck_assert_int_eq(invoke_counter("counter", PW_SOURCE_CLONE), 1);
        /* The refiller checkpoints a restored copy of the function (the warm instance is a clone,
         * which CRIU does not dump) and keeps the copy it timed as a second warm instance. */
        wait_for(second_level_templates, ==, 1);
        wait_for(warm_instances, ==, 2);
        ck_assert_uint_eq(second_level_templates_in_store(false), 1);
        destroy_idle();

        /* A miss now restores the checkpoint: specialized, with the state of a freshly loaded
         * function. */
        pw_invoke_info info = {.size = sizeof(info)};
        char *result = NULL;
        ck_assert_int_eq(pw_pool_invoke(pool, "counter", NULL, &result, NULL, &info), 0);
        ck_assert_int_eq(info.source, PW_SOURCE_SECOND_LEVEL);
        ck_assert_uint_gt(info.restore_us, 0);
        ck_assert_uint_eq(info.specialize_us, 0);
        json_t *obj = json_loads(result, 0, NULL);
        ck_assert_int_eq(json_integer_value(json_object_get(obj, "count")), 1);
        json_decref(obj);
        free(result);
        ck_assert_int_eq(invoke_counter("counter", PW_SOURCE_WARM), 2);
        pw_pool_stats s = stats();
        ck_assert_uint_eq(s.second_level_restores, 1);
        ck_assert_uint_eq(s.zygote_misses, 1);

        /* Its template goes with the function. */
        ck_assert_int_eq(pw_pool_remove_function(pool, "counter"), 0);
        ck_assert_uint_eq(second_level_templates_in_store(true), 0);
        ck_assert_uint_eq(stats().second_level_templates, 0);
}
END_TEST

START_TEST(test_second_level_auto)
{
        pool_new(&(pw_pool_options){.zygotes_min = 1, .zygotes_max = 1});
        char *path = t_fixture("slow_load.py");
        const pw_pool_function f = {.template_name = "python3", .fn = {.code_uri = path}, .timeout_ms = 30000,
                                    .second_level = PW_SECOND_LEVEL_AUTO};
        ck_assert_int_eq(pw_pool_set_function(pool, "slow", &f), 0);
        free(path);
        pw_invoke_info info = {.size = sizeof(info)};
        ck_assert_int_eq(pw_pool_invoke(pool, "slow", NULL, NULL, NULL, &info), 0);
        ck_assert_int_ne(info.source, PW_SOURCE_SECOND_LEVEL);
        /* Its specialize (5 s of loading) outlasts any restore: the pool checkpoints it. */
        wait_for(second_level_templates, ==, 1);
        wait_for(warm_instances, ==, 2);
        destroy_idle();
        ck_assert_int_eq(pw_pool_invoke(pool, "slow", NULL, NULL, NULL, &info), 0);
        ck_assert_int_eq(info.source, PW_SOURCE_SECOND_LEVEL);
        ck_assert_uint_eq(info.specialize_us, 0);
}
END_TEST

START_TEST(test_adaptive_prewarm)
{
        /* A timer-like function (a call every 700 ms, keep-alive 3 s: 50 ms bins): once the
         * histogram has enough idle periods, all in one place, the pool unloads the instance after
         * each call and pre-warms a new one shortly before the next is expected. */
        pool_new(&(pw_pool_options){.zygotes_min = 1, .zygotes_max = 2, .adaptive = true});
        set_function("timer", "hello.py", 3, 1);
        for (int k = 0; k < 14; k++) {
                invoke_hello("timer", "tick");
                usleep(700 * 1000);
        }
        /* Loaded again by the refiller ahead of the calls... */
        wait_for(prewarms, >=, 1);
        /* ...and unloaded after each, or gone after its keep-alive window. */
        wait_for(warm_instances, ==, 0);
        ck_assert_uint_eq(stats().instances_replaced, 0);
}
END_TEST

static Suite *pool_suite(void)
{
        Suite *s = suite_create("pool");
        TCase *tc = t_tcase("pool");
        tcase_add_checked_fixture(tc, NULL, pool_teardown); /* runs before the leak check */
        tcase_add_test(tc, test_zygote_hit_and_refill);
        tcase_add_test(tc, test_miss_restores_then_warm_reuse);
        tcase_add_test(tc, test_scale_to_zero);
        tcase_add_test(tc, test_dead_instance_replaced);
        tcase_add_test(tc, test_cold_start);
        tcase_add_test(tc, test_cold_start_fallback);
        tcase_add_test(tc, test_budget);
        tcase_add_test(tc, test_list_and_destroy);
        tcase_add_test(tc, test_threads);
        tcase_add_test(tc, test_queue_on_dying_instance);
        tcase_add_test(tc, test_adaptive_prewarm);
        tcase_add_test(tc, test_second_level);
        tcase_add_test(tc, test_second_level_auto);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(pool_suite, "python3", NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The life of an instance through the public API, with real CRIU, namespaces and cgroups:
 * build, list, restore, specialize (file:// and plain paths, .py and .zip, entry points, env),
 * invoke (results, logs, repeats), the sandbox seen from the inside, per-copy randomness,
 * the data template, and template removal.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "leaks.h"
#include "util.h"

static const char *json_str(json_t *obj, const char *key)
{
        const char *s = json_string_value(json_object_get(obj, key));
        ck_assert_msg(s, "result has no string \"%s\": %s", key, json_dumps(obj, JSON_COMPACT));
        return s;
}

static void assert_hello(pw_instance *i, const char *name)
{
        json_t *res = t_invoke_hello(i, name);
        ck_assert_int_eq(json_object_size(res), 1);
        json_decref(res);
}

/* ---------------------------------------------------------------- restore / specialize / invoke */

START_TEST(test_hello_file_uri)
{
        pw_instance *i = t_restore("python3");
        pw_timings t = {.size = sizeof(t)};
        ck_assert_int_eq(pw_instance_timings(i, &t), 0);
        ck_assert_uint_gt(t.restore_us, 0);
        ck_assert_uint_eq(t.specialize_us, 0);
        ck_assert_uint_eq(t.invoke_us, 0);

        pid_t pid = pw_instance_pid(i);
        ck_assert_int_gt(pid, 0);
        ck_assert_msg(t_pid_alive(pid), "instance pid %d does not exist", (int)pid);
        ck_assert_str_eq(pw_instance_last_error(i), "");

        char *uri = t_fixture_uri("hello.py");
        int r = t_specialize_code(i, uri, NULL);
        free(uri);
        ck_assert_msg(r == 0, "specialize: %s", pw_instance_last_error(i));
        ck_assert_int_eq(pw_instance_timings(i, &t), 0);
        ck_assert_uint_gt(t.specialize_us, 0);
        ck_assert_uint_eq(t.invoke_us, 0);

        /* The raw result text is a JSON object with exactly the handler's answer. */
        char *result = NULL;
        r = pw_instance_invoke(i, "{\"name\":\"x\"}", 10000, &result);
        ck_assert_msg(r == 0, "invoke: %s", pw_instance_last_error(i));
        json_t *obj = json_loads(result, 0, NULL);
        json_t *want = json_pack("{s:s}", "greeting", "Hello, x!");
        ck_assert_msg(obj && json_equal(obj, want), "unexpected result %s", result);
        json_decref(obj);
        json_decref(want);
        free(result);
        ck_assert_int_eq(pw_instance_timings(i, &t), 0);
        ck_assert_uint_gt(t.restore_us, 0);
        ck_assert_uint_gt(t.specialize_us, 0);
        ck_assert_uint_gt(t.invoke_us, 0);
        printf("  hello: restore %.2f ms, specialize %.2f ms, invoke %.2f ms\n", t.restore_us / 1000.0,
               t.specialize_us / 1000.0, t.invoke_us / 1000.0);

        /* Invoking again, and with NULL args meaning {}. */
        assert_hello(i, "second");
        assert_hello(i, "third");
        obj = t_invoke(i, NULL);
        ck_assert_str_eq(json_str(obj, "greeting"), "Hello, stranger!");
        json_decref(obj);
        ck_assert_int_eq(pw_instance_pid(i), pid);

        t_destroy(i);
        ck_assert_msg(!t_pid_alive(pid), "instance pid %d still exists after destroy", (int)pid);
        ck_assert_int_eq(kill(pid, 0), -1);
        ck_assert_int_eq(errno, ESRCH);
}
END_TEST

START_TEST(test_hello_plain_path)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "hello.py");
        assert_hello(i, "plain path");
        t_destroy(i);
}
END_TEST

START_TEST(test_destroy_null_and_unspecialized)
{
        ck_assert_ptr_null(pw_instance_destroy(NULL));
        /* An instance that was never specialized is destroyed just as well. */
        pw_instance *i = t_restore("python3");
        pid_t pid = pw_instance_pid(i);
        ck_assert_int_gt(pid, 0);
        t_destroy(i);
        ck_assert(!t_pid_alive(pid));
}
END_TEST

START_TEST(test_logs)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "logs.py");
        for (int n = 1; n <= 2; n++) {
                char args[32], line[64];
                snprintf(args, sizeof(args), "{\"n\": %d}", n);
                snprintf(line, sizeof(line), "stdout line from the handler %d\n", n);
                char *result = NULL, *logs = NULL;
                int r = pw_instance_invoke_logs(i, args, 10000, &result, &logs);
                ck_assert_msg(r == 0, "invoke: %s", pw_instance_last_error(i));
                ck_assert_ptr_nonnull(result);
                ck_assert_contains(result, "\"printed\"");
                ck_assert_ptr_nonnull(logs);
                ck_assert_contains(logs, line);
                ck_assert_contains(logs, "stderr line from the handler\n");
                /* Each stream apart, too. */
                const char *out = NULL, *err = NULL;
                ck_assert_int_eq(pw_instance_output(i, &out, &err), 0);
                ck_assert_ptr_nonnull(out);
                ck_assert_ptr_nonnull(err);
                ck_assert_str_eq(out, line);
                ck_assert_str_eq(err, "stderr line from the handler\n");
                /* Each invoke returns its own output only. */
                ck_assert_ptr_null(strstr(logs, n == 2 ? "handler 1" : "handler 2"));
                free(result);
                free(logs);
        }
        /* A handler that prints nothing gives NULL logs. */
        pw_instance *quiet = t_restore("python3");
        t_specialize(quiet, "hello.py");
        char *result = NULL, *logs = (char *)"unset";
        ck_assert_int_eq(pw_instance_invoke_logs(quiet, "{}", 10000, &result, &logs), 0);
        ck_assert_ptr_null(logs);
        const char *out = "unset", *err = "unset";
        ck_assert_int_eq(pw_instance_output(quiet, &out, &err), 0);
        ck_assert_ptr_null(out);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(pw_instance_output(NULL, &out, NULL), -EINVAL);
        free(result);
        t_destroy(quiet);
        t_destroy(i);
}
END_TEST

START_TEST(test_env)
{
        pw_instance *i = t_restore("python3");
        const char *const env[] = {"PW_TEST_GREETING=bonjour tout le monde", "PW_TEST_SECRET=s=3cr=t", NULL};
        t_specialize_with(i, "env.py", &(pw_function){.env = env});
        json_t *res = t_invoke(i, "{}");
        ck_assert_str_eq(json_str(res, "greeting"), "bonjour tout le monde");
        ck_assert_str_eq(json_str(res, "secret"), "s=3cr=t");
        ck_assert_str_eq(json_str(res, "at_load"), "bonjour tout le monde");
        json_decref(res);
        t_destroy(i);

        /* Another instance without env does not see the first one's. */
        i = t_restore("python3");
        t_specialize(i, "env.py");
        res = t_invoke(i, "{}");
        ck_assert(json_is_null(json_object_get(res, "greeting")));
        json_decref(res);
        t_destroy(i);
}
END_TEST

START_TEST(test_entry_point)
{
        pw_instance *i = t_restore("python3");
        t_specialize_with(i, "entry.py", &(pw_function){.main = "handle"});
        json_t *res = t_invoke(i, "{\"x\": [1, 2]}");
        ck_assert_str_eq(json_str(res, "via"), "handle");
        json_t *want = json_pack("[i,i]", 1, 2);
        ck_assert(json_equal(json_object_get(res, "echo"), want));
        json_decref(want);
        json_decref(res);
        t_destroy(i);

        /* The default entry point of the same file is "main"; "" means the default too. */
        i = t_restore("python3");
        t_specialize_with(i, "entry.py", &(pw_function){.main = ""});
        res = t_invoke(i, NULL);
        ck_assert_str_eq(json_str(res, "via"), "main");
        json_decref(res);
        t_destroy(i);
}
END_TEST

/* The zip action's files as a .tgz: the engine names it by its suffix, the agent unpacks it. */
START_TEST(test_tar_gz_archive)
{
        char *tgz = strdup_printf("%s/action.tgz", t_state);
        char *main_py = t_fixture("zipapp/__main__.py"), *helper = t_fixture("zipapp/helper.py");
        char *argv[] = {"/usr/bin/python3", "-c",
                        "import os, sys, tarfile\n"
                        "with tarfile.open(sys.argv[1], 'w:gz') as t:\n"
                        "    for f in sys.argv[2:]:\n"
                        "        t.add(f, arcname=os.path.basename(f))\n",
                        tgz, main_py, helper, NULL};
        ck_assert_int_eq(t_run_program(argv), 0);
        pw_instance *i = t_restore("python3");
        int r = t_specialize_code(i, tgz, NULL);
        ck_assert_msg(r == 0, "specialize %s: %s", tgz, pw_instance_last_error(i));
        json_t *res = t_invoke(i, "{\"word\": \"archive\"}");
        ck_assert_str_eq(json_str(res, "from_zip"), "ARCHIVE!");
        json_decref(res);
        t_destroy(i);
        unlink(tgz);
        free(tgz);
        free(main_py);
        free(helper);
}
END_TEST

START_TEST(test_zip_archive)
{
        char *zip = t_fixture_zip("action.zip", "zipapp/__main__.py", "zipapp/helper.py", NULL);
        struct stat st;
        ck_assert_int_eq(stat(zip, &st), 0);
        ck_assert_int_gt(st.st_size, 0);

        pw_instance *i = t_restore("python3");
        char *uri = strdup_printf("file://%s", zip);
        int r = t_specialize_code(i, uri, NULL);
        ck_assert_msg(r == 0, "specialize %s: %s", uri, pw_instance_last_error(i));
        json_t *res = t_invoke(i, "{\"word\": \"archive\"}");
        ck_assert_str_eq(json_str(res, "from_zip"), "ARCHIVE!");
        ck_assert(json_is_true(json_object_get(res, "file")));
        json_decref(res);
        t_destroy(i);
        unlink(zip);
        free(uri);
        free(zip);
}
END_TEST

/* ---------------------------------------------------------------- the sandbox from the inside */

static void assert_str_field(json_t *res, const char *key, const char *want)
{
        const char *got = json_string_value(json_object_get(res, key));
        ck_assert_msg(got && !strcmp(got, want), "%s: expected \"%s\", got \"%s\"", key, want, got ? got : "(none)");
}

START_TEST(test_isolation)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "isolation.py");
        json_t *res = t_invoke(i, "{}");
        char *text = json_dumps(res, JSON_COMPACT);
        printf("  inside the sandbox: %s\n", text);

        /* pid namespace: the agent is pid 1 of its own (pid 2 in a clone, beside the clone's init)
         * and /proc shows nothing else. */
        bool clone = pw_instance_source(i) == PW_SOURCE_CLONE;
        ck_assert_int_eq(json_integer_value(json_object_get(res, "pid")), clone ? 2 : 1);
        json_t *only_ours = clone ? json_pack("[i, i]", 1, 2) : json_pack("[i]", 1);
        ck_assert_msg(json_equal(json_object_get(res, "pids"), only_ours), "/proc lists other processes: %s", text);
        json_decref(only_ours);
        /* uts namespace */
        assert_str_field(res, "hostname", "prewarm");
        /* net namespace: loopback only, and no route out */
        json_t *lo = json_pack("[s]", "lo");
        ck_assert_msg(json_equal(json_object_get(res, "interfaces"), lo), "interfaces other than lo: %s", text);
        json_decref(lo);
        assert_str_field(res, "udp_route", "ENETUNREACH");
        assert_str_field(res, "tcp_route", "ENETUNREACH");
        /* mounts: read-only root and /usr, a writable /tmp of the template's 64 MiB */
        assert_str_field(res, "root_write", "EROFS");
        assert_str_field(res, "usr_write", "EROFS");
        ck_assert(json_is_true(json_object_get(res, "root_rdonly")));
        ck_assert(json_is_true(json_object_get(res, "usr_rdonly")));
        assert_str_field(res, "tmp_write", "writable");
        json_int_t tmp_bytes = json_integer_value(json_object_get(res, "tmp_bytes"));
        ck_assert_msg(tmp_bytes >= (json_int_t)60 << 20 && tmp_bytes <= (json_int_t)68 << 20,
                      "/tmp is %lld bytes, expected about 64 MiB", (long long)tmp_bytes);
        /* nothing of the host's /etc */
        ck_assert(json_is_false(json_object_get(res, "shadow_exists")));
        free(text);
        json_decref(res);
        t_destroy(i);
}
END_TEST

/* The template's pids_max (32) holds inside the sandbox, and whatever a handler leaves running
 * goes with the instance (the teardown's leak check sees to the cgroups). */
START_TEST(test_pids_limit_and_orphans)
{
        pw_instance *i = t_restore("python3");
        pid_t pid = pw_instance_pid(i);
        t_specialize(i, "spawn.py");
        json_t *res = t_invoke(i, "{\"max\": 64}");
        char *text = json_dumps(res, JSON_COMPACT);
        json_int_t started = json_integer_value(json_object_get(res, "started"));
        json_int_t alive = json_integer_value(json_object_get(res, "alive"));
        const char *error = json_string_value(json_object_get(res, "error"));
        ck_assert_msg(started >= 8 && started < 32, "started %lld processes under pids_max 32: %s",
                      (long long)started, text);
        ck_assert_int_eq(alive, started);
        ck_assert_msg(error && strstr(error, "Resource temporarily unavailable"), "no EAGAIN at the limit: %s", text);
        free(text);
        json_decref(res);

        /* The agent still answers with its children around. */
        res = t_invoke(i, "{\"max\": 0}");
        ck_assert_int_eq(json_integer_value(json_object_get(res, "alive")), started);
        json_decref(res);
        t_destroy(i);
        ck_assert(!t_pid_alive(pid));
}
END_TEST

START_TEST(test_random_differs_between_copies)
{
        pw_instance *a = t_restore("python3");
        pw_instance *b = t_restore("python3");
        ck_assert_int_ne(pw_instance_pid(a), pw_instance_pid(b));
        t_specialize(a, "rand.py");
        t_specialize(b, "rand.py");
        json_t *ra = t_invoke(a, "{}");
        json_t *rb = t_invoke(b, "{}");
        json_t *sa = json_object_get(ra, "random"), *sb = json_object_get(rb, "random");
        ck_assert_int_eq(json_array_size(sa), 4);
        ck_assert_int_eq(json_array_size(sb), 4);
        char *ta = json_dumps(sa, JSON_COMPACT), *tb = json_dumps(sb, JSON_COMPACT);
        ck_assert_msg(!json_equal(sa, sb), "two copies of one template share their random sequence: %s", ta);
        /* Not a single value in common, not just a different order. */
        for (size_t k = 0; k < 4; k++)
                for (size_t m = 0; m < 4; m++)
                        ck_assert_msg(json_real_value(json_array_get(sa, k)) != json_real_value(json_array_get(sb, m)),
                                      "shared random values: %s vs %s", ta, tb);
        free(ta);
        free(tb);
        json_decref(ra);
        json_decref(rb);
        t_destroy(a);
        t_destroy(b);
}
END_TEST

/* ---------------------------------------------------------------- python3-data */

START_TEST(test_data_template)
{
        pw_instance *a = t_restore("python3-data");
        pw_instance *b = t_restore("python3-data");
        t_specialize(a, "data.py");
        t_specialize(b, "data.py");
        json_t *ra = t_invoke(a, "{\"xs\": [1, 2, 3, 4]}");
        ck_assert_int_eq(json_integer_value(json_object_get(ra, "sum_x")), 10);
        ck_assert_int_eq(json_integer_value(json_object_get(ra, "sum_y")), 20);
        ck_assert_double_eq_tol(json_real_value(json_object_get(ra, "mean")), 2.5, 1e-9);
        ck_assert_double_eq_tol(json_real_value(json_object_get(ra, "dot")), 60.0, 1e-9);
        /* numpy's generator is reseeded per copy as well. */
        json_t *rb = t_invoke(b, "{\"xs\": [5]}");
        ck_assert_int_eq(json_integer_value(json_object_get(rb, "sum_x")), 5);
        ck_assert_msg(json_real_value(json_object_get(ra, "random")) != json_real_value(json_object_get(rb, "random")),
                      "numpy.random is the same in two copies");
        pw_timings t = {.size = sizeof(t)};
        pw_instance_timings(a, &t);
        printf("  python3-data: restore %.2f ms, specialize %.2f ms, invoke %.2f ms\n", t.restore_us / 1000.0,
               t.specialize_us / 1000.0, t.invoke_us / 1000.0);
        json_decref(ra);
        json_decref(rb);
        t_destroy(a);
        t_destroy(b);
}
END_TEST

/* ---------------------------------------------------------------- the template store */

typedef struct listing {
        char names[8][64];
        size_t n;
        bool python3_ok;
        char problem[512];
} listing;

static int collect(const pw_template_info *info, void *userdata)
{
        listing *l = userdata;
        if (l->n < 8)
                snprintf(l->names[l->n], sizeof(l->names[0]), "%s", info->name);
        l->n++;
        if (!strcmp(info->name, "python3")) {
                struct utsname u;
                uname(&u);
                time_t now = time(NULL);
                if (!info->runtime || strncmp(info->runtime, "Python 3.", 9))
                        snprintf(l->problem, sizeof(l->problem), "runtime '%s'", info->runtime);
                else if (!info->criu_version || !*info->criu_version)
                        snprintf(l->problem, sizeof(l->problem), "no CRIU version");
                else if (!info->kernel || strcmp(info->kernel, u.release))
                        snprintf(l->problem, sizeof(l->problem), "kernel '%s', host runs '%s'", info->kernel, u.release);
                else if (info->created <= 0 || info->created > now + 5 || info->created < now - 3600)
                        snprintf(l->problem, sizeof(l->problem), "created %lld, now %lld", (long long)info->created,
                                 (long long)now);
                else if (info->image_bytes < 4096)
                        snprintf(l->problem, sizeof(l->problem), "image_bytes %llu",
                                 (unsigned long long)info->image_bytes);
                else
                        l->python3_ok = true;
        }
        return 0;
}

static int stop_at_first(const pw_template_info *info, void *userdata)
{
        (*(int *)userdata)++;
        return 42;
}

START_TEST(test_list_templates)
{
        listing l = {0};
        ck_assert_int_eq(pw_template_foreach(t_engine, collect, &l), 0);
        ck_assert_msg(l.n == 2, "expected python3 and python3-data, got %zu templates", l.n);
        /* name order */
        ck_assert_str_eq(l.names[0], "python3");
        ck_assert_str_eq(l.names[1], "python3-data");
        ck_assert_msg(l.python3_ok, "python3's info is wrong: %s", l.problem);

        int calls = 0;
        ck_assert_int_eq(pw_template_foreach(t_engine, stop_at_first, &calls), 42);
        ck_assert_int_eq(calls, 1);
}
END_TEST

START_TEST(test_remove_template)
{
        ck_assert_errno(pw_template_remove(t_engine, "python3"), 0, pw_engine_last_error(t_engine));
        pw_instance *i = NULL;
        ck_assert_engine_error(t_engine, pw_instance_restore(t_engine, "python3", &i), -ENOENT, "python3", "not built");
        ck_assert_ptr_null(i);
        ck_assert_engine_error(t_engine, pw_template_remove(t_engine, "python3"), -ENOENT, "not built");

        listing l = {0};
        ck_assert_int_eq(pw_template_foreach(t_engine, collect, &l), 0);
        ck_assert_int_eq(l.n, 1);
        ck_assert_str_eq(l.names[0], "python3-data");

        /* Built again, it works again. */
        ck_assert_int_eq(t_build("python3"), 0);
        i = t_restore("python3");
        t_specialize(i, "hello.py");
        assert_hello(i, "rebuilt");
        t_destroy(i);
}
END_TEST

/* The zombies in the pid namespace of process pid. */
static int zombies_beside(pid_t pid)
{
        char path[300];
        struct stat own, st;
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
        ck_assert_int_eq(stat(path, &own), 0);
        DIR *proc = opendir("/proc");
        ck_assert_ptr_nonnull(proc);
        int n = 0;
        for (struct dirent *d; (d = readdir(proc));) {
                char state = 0;
                snprintf(path, sizeof(path), "/proc/%s/ns/pid", d->d_name);
                if (atoi(d->d_name) > 0 && stat(path, &st) == 0 && st.st_ino == own.st_ino &&
                    proc_stat(atoi(d->d_name), &state, NULL, NULL, 0) && state == 'Z')
                        n++;
        }
        closedir(proc);
        return n;
}

/* A restored copy (not a clone), whose agent started as pid 1 of its namespace, goes on under an
 * init from its specialize: the function's orphans are reaped, pw_instance_pid is the agent, and
 * its abort() is the signal it is, as in a clone. */
START_TEST(test_restored_copy_has_an_init)
{
        pw_instance *i = t_restore_full("python3");
        t_specialize(i, "orphans.py");
        for (int k = 0; k < 5; k++) {
                json_t *r = t_invoke(i, "{}");
                ck_assert_int_gt(json_integer_value(json_object_get(r, "pid")), 1); /* not its namespace's init */
                json_decref(r);
        }
        int left = zombies_beside(pw_instance_pid(i));
        for (int k = 0; k < 500 && left; k++) { /* the orphans sleep a moment before they exit */
                usleep(10 * 1000);
                left = zombies_beside(pw_instance_pid(i));
        }
        ck_assert_msg(left == 0, "%d zombies of the function's orphans are left", left);
        char state;
        char comm[32] = "";
        ck_assert(proc_stat(pw_instance_pid(i), &state, NULL, comm, sizeof(comm)));
        ck_assert_str_eq(comm, "python3");
        char *result = NULL;
        ck_assert_int_eq(pw_instance_invoke(i, "{\"abort\": true}", 10000, &result), -ECHILD);
        ck_assert_contains(pw_instance_last_error(i), "signal 6");
        t_destroy(i);
}
END_TEST

static Suite *lifecycle_suite(void)
{
        Suite *s = suite_create("lifecycle");
        TCase *tc = t_tcase("instance");
        tcase_add_test(tc, test_hello_file_uri);
        tcase_add_test(tc, test_hello_plain_path);
        tcase_add_test(tc, test_destroy_null_and_unspecialized);
        tcase_add_test(tc, test_logs);
        tcase_add_test(tc, test_restored_copy_has_an_init);
        tcase_add_test(tc, test_env);
        tcase_add_test(tc, test_entry_point);
        tcase_add_test(tc, test_zip_archive);
        tcase_add_test(tc, test_tar_gz_archive);
        tcase_add_test(tc, test_isolation);
        tcase_add_test(tc, test_pids_limit_and_orphans);
        tcase_add_test(tc, test_random_differs_between_copies);
        tcase_add_test(tc, test_data_template);
        suite_add_tcase(s, tc);

        TCase *store = t_tcase("store");
        tcase_add_test(store, test_list_templates);
        tcase_add_test(store, test_remove_template); /* last: it removes python3 (and rebuilds it) */
        suite_add_tcase(s, store);
        return s;
}

int main(void)
{
        return t_main(lifecycle_suite, "python3", "python3-data", NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox against a hostile function, through every path of the C API that hands code to an
 * instance: restores (prepared ahead and not), the cold-start fallback, and copies of a
 * second-level template. The function (tests/hostile/probe.py) tries what a tenant would try to
 * reach the host, the engine or another function and reports each errno; every attempt must end
 * as probe.py's EXPECTED says, and the posture (uid, capabilities, no_new_privs, seccomp) must
 * hold. Templates checkpointed before the hardened sandbox must never be restored.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

#ifndef HOSTILE_PROBE
#error "HOSTILE_PROBE must point at tests/hostile/probe.py"
#endif

#define SANDBOX_UID_BASE 1879048192u
#define SANDBOX_UID_COUNT 65536u

static unsigned long instance_uid(pw_instance *i)
{
        char path[64], *text = NULL;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pw_instance_pid(i));
        ck_assert_int_ge(read_file(path, 1 << 16, &text, NULL), 0);
        const char *line = strstr(text, "\nUid:");
        ck_assert_ptr_nonnull(line);
        unsigned long uid = strtoul(line + 5, NULL, 10);
        free(text);
        return uid;
}

static void assert_sandbox_uid(unsigned long uid)
{
        ck_assert_msg(uid >= SANDBOX_UID_BASE && uid < SANDBOX_UID_BASE + SANDBOX_UID_COUNT,
                      "uid %lu is not a sandbox uid", uid);
}

/* Runs the probe in i (specialized with it) and asserts that every attempt ended as expected. */
static void assert_probe_holds(pw_instance *i, const char *args_json)
{
        json_t *res = t_invoke(i, args_json);
        json_t *results = json_object_get(res, "results"), *expected = json_object_get(res, "expected");
        json_t *failures = json_object_get(res, "failures");
        ck_assert(json_is_object(results) && json_is_object(expected) && json_is_array(failures));
        /* Every expectation was tried, and there are enough of them to mean something. */
        ck_assert_uint_ge(json_object_size(expected), 50);
        ck_assert_uint_eq(json_object_size(results), json_object_size(expected));
        if (json_array_size(failures)) {
                size_t k;
                json_t *name;
                json_array_foreach(failures, k, name) {
                        const char *probe = json_string_value(name);
                        char *want = json_dumps(json_object_get(expected, probe), JSON_ENCODE_ANY);
                        fprintf(stderr, "  probe %s: %s, expected %s\n", probe,
                                json_string_value(json_object_get(results, probe)), want ? want : "?");
                        free(want);
                }
        }
        ck_assert_msg(json_array_size(failures) == 0, "%zu attempts did not end as expected",
                      json_array_size(failures));
        /* The headline ones, read here as well as in the probe. */
        const char *escape = json_string_value(json_object_get(results, "open_by_handle_at_host_root"));
        const char *remount = json_string_value(json_object_get(results, "remount_usr_rw"));
        ck_assert_str_eq(escape, "EPERM");
        ck_assert_str_eq(remount, "EPERM");
        json_t *status = json_object_get(res, "status");
        ck_assert_str_eq(json_string_value(json_object_get(status, "CapEff")), "0000000000000000");
        ck_assert_str_eq(json_string_value(json_object_get(status, "CapBnd")), "0000000000000000");
        ck_assert_str_eq(json_string_value(json_object_get(status, "NoNewPrivs")), "1");
        ck_assert_str_eq(json_string_value(json_object_get(status, "Seccomp")), "2");
        assert_sandbox_uid((unsigned long)json_integer_value(json_object_get(res, "uid")));
        json_decref(res);
}

static char *probe_args(pw_instance *sibling, const char *sibling_file)
{
        return strdup_printf("{\"sibling_pid\": %d, \"sibling_file\": \"%s\", \"state_dir\": \"%s\"}",
                             (int)pw_instance_pid(sibling), sibling_file, t_state);
}

/* A sibling that keeps a secret in its own /tmp. */
static pw_instance *secret_keeper(const char *path)
{
        pw_instance *b = t_restore("python3");
        ck_assert_int_eq(t_specialize_code(b, HOSTILE_PROBE, NULL), 0);
        char *args = strdup_printf("{\"mode\": \"write_secret\", \"path\": \"%s\"}", path);
        json_decref(t_invoke(b, args));
        free(args);
        return b;
}

/* Hands the probe to a, fresh from wherever it came, and aims it at the sibling b. */
static void probe_beside(pw_instance *a, pw_instance *b)
{
        ck_assert_int_eq(t_specialize_code(a, HOSTILE_PROBE, NULL), 0);
        char *args = probe_args(b, "/tmp/secret-b");
        assert_probe_holds(a, args);
        free(args);
        ck_assert_uint_ne(instance_uid(a), instance_uid(b));
}

START_TEST(test_restored_instance)
{
        pw_instance *b = secret_keeper("/tmp/secret-b");
        /* Twice: a restore prepared ahead of the request and one prepared on it. */
        for (int round = 0; round < 2; round++) {
                if (round == 1)
                        pw_engine_trim(t_engine);
                pw_instance *a = t_restore("python3");
                probe_beside(a, b);
                t_destroy(a);
        }
        t_destroy(b);
}
END_TEST

START_TEST(test_cold_start)
{
        pw_instance *b = secret_keeper("/tmp/secret-b");
        pw_instance *a = NULL;
        int r = pw_instance_cold_start(t_engine, "python3", &a);
        ck_assert_msg(r == 0, "cold start: %s", pw_engine_last_error(t_engine));
        probe_beside(a, b);
        pw_instance_destroy(a);
        t_destroy(b);
}
END_TEST

START_TEST(test_second_level_copies)
{
        pw_instance *b = secret_keeper("/tmp/secret-b");
        pw_instance *parent = t_restore_full("python3");
        ck_assert_int_eq(t_specialize_code(parent, HOSTILE_PROBE, NULL), 0);
        int r = pw_instance_checkpoint(parent, "probe-l2");
        ck_assert_msg(r == 0, "checkpoint: %s", pw_instance_last_error(parent));
        pw_instance *copy1 = t_restore("probe-l2"), *copy2 = t_restore("probe-l2");
        char *args = probe_args(b, "/tmp/secret-b");
        assert_probe_holds(copy1, args);
        assert_probe_holds(copy2, args);
        free(args);
        /* Copies of one checkpoint do not share the uid it was taken with, nor each other's. */
        unsigned long uids[] = {instance_uid(parent), instance_uid(copy1), instance_uid(copy2), instance_uid(b)};
        for (size_t x = 0; x < ELEMENTSOF(uids); x++)
                for (size_t y = x + 1; y < ELEMENTSOF(uids); y++)
                        ck_assert_uint_ne(uids[x], uids[y]);
        t_destroy(copy1);
        t_destroy(copy2);
        t_destroy(parent);
        t_destroy(b);
        ck_assert_int_eq(pw_template_remove(t_engine, "probe-l2"), 0);
}
END_TEST

/* A zip action unpacked into /tmp before the checkpoint: its copies, each with a uid of its own,
 * still own the files it left there. */
START_TEST(test_second_level_tmp_files)
{
        char *zip = t_fixture_zip("writer.zip", "zipwriter/__main__.py", NULL);
        pw_instance *parent = t_restore_full("python3");
        ck_assert_int_eq(t_specialize_code(parent, zip, NULL), 0);
        json_decref(t_invoke(parent, NULL));
        int r = pw_instance_checkpoint(parent, "writer-l2");
        ck_assert_msg(r == 0, "checkpoint: %s", pw_instance_last_error(parent));
        pw_instance *copy = t_restore("writer-l2");
        json_t *res = t_invoke(copy, NULL);
        json_int_t uid = json_integer_value(json_object_get(res, "uid"));
        ck_assert_uint_eq((unsigned long)uid, instance_uid(copy));
        ck_assert_uint_ne((unsigned long)uid, instance_uid(parent));
        ck_assert_int_eq(json_integer_value(json_object_get(res, "owner")), uid);
        ck_assert_int_eq(json_integer_value(json_object_get(res, "note_owner")), uid);
        json_decref(res);
        t_destroy(copy);
        t_destroy(parent);
        ck_assert_int_eq(pw_template_remove(t_engine, "writer-l2"), 0);
        unlink(zip);
        free(zip);
}
END_TEST

START_TEST(test_kill_all_spares_the_outside)
{
        pid_t sentinel = fork();
        if (sentinel == 0) {
                pause();
                _exit(0);
        }
        ck_assert_int_gt(sentinel, 0);
        pw_instance *b = t_restore("python3");
        t_specialize(b, "hello.py");
        pw_instance *a = t_restore("python3");
        ck_assert_int_eq(t_specialize_code(a, HOSTILE_PROBE, NULL), 0);
        json_t *res = t_invoke(a, "{\"mode\": \"kill_all\"}");
        /* pid 1 of its namespace signals everything in it but itself: here, nothing. */
        const char *outcome = json_string_value(json_object_get(res, "kill_all"));
        ck_assert_msg(outcome && (!strcmp(outcome, "ok") || !strcmp(outcome, "ESRCH")), "kill(-1): %s", outcome);
        json_decref(res);
        ck_assert(t_pid_alive(sentinel));
        ck_assert(t_pid_alive(getpid()));
        json_decref(t_invoke_hello(b, "sibling"));
        json_decref(t_invoke(a, "{\"mode\": \"kill_all\"}")); /* the agent itself survived too */
        kill(sentinel, SIGKILL);
        waitpid(sentinel, NULL, 0);
        t_destroy(a);
        t_destroy(b);
}
END_TEST

START_TEST(test_uids_distinct)
{
        pw_instance *live[8];
        unsigned long uids[ELEMENTSOF(live)];
        for (size_t k = 0; k < ELEMENTSOF(live); k++) {
                live[k] = t_restore("python3");
                uids[k] = instance_uid(live[k]);
                assert_sandbox_uid(uids[k]);
                for (size_t j = 0; j < k; j++)
                        ck_assert_uint_ne(uids[j], uids[k]);
        }
        /* A second engine on the machine hands out other uids than the first one's live ones. */
        pw_engine *other = t_engine_new(NULL);
        ck_assert_ptr_nonnull(other);
        pw_instance *o = NULL;
        ck_assert_int_eq(pw_instance_restore(other, "python3", &o), 0);
        unsigned long other_uid = instance_uid(o);
        for (size_t k = 0; k < ELEMENTSOF(live); k++)
                ck_assert_uint_ne(other_uid, uids[k]);
        pw_instance_destroy(o);
        pw_engine_free(other);
        for (size_t k = 0; k < ELEMENTSOF(live); k++)
                t_destroy(live[k]);
}
END_TEST

/* The manifest with its sandbox version removed, as a template built before it would have it. */
static char *manifest_without_sandbox(const char *name)
{
        char *path = strdup_printf("%s/templates/%s/manifest.json", t_state, name), *text = NULL;
        ck_assert_int_ge(read_file(path, 1 << 20, &text, NULL), 0);
        json_t *root = json_loads(text, 0, NULL);
        ck_assert_ptr_nonnull(root);
        ck_assert_int_eq(json_integer_value(json_object_get(root, "sandbox")), 1);
        json_object_del(root, "sandbox");
        char *old = json_dumps(root, JSON_INDENT(2));
        t_write_file(path, old);
        json_decref(root);
        free(old);
        free(path);
        return text;
}

START_TEST(test_old_template_refused)
{
        pw_engine_trim(t_engine); /* a restore prepared ahead read the manifest before the change */
        char *saved = manifest_without_sandbox("python3");
        pw_instance *i = NULL;
        const char *message = "template python3 was built without the hardened sandbox; rebuild it with "
                              "`prewarm template build python3`";
        ck_assert_engine_error(t_engine, pw_instance_restore(t_engine, "python3", &i), -EUCLEAN, message);
        ck_assert_ptr_null(i);
        ck_assert_engine_error(t_engine, pw_instance_cold_start(t_engine, "python3", &i), -EUCLEAN, message);
        ck_assert_ptr_null(i);
        char *path = strdup_printf("%s/templates/python3/manifest.json", t_state);
        t_write_file(path, saved);
        free(path);
        free(saved);
        t_destroy(t_restore("python3"));
}
END_TEST

START_TEST(test_state_dirs_private)
{
        const char *dirs[] = {"", "/templates", "/run"};
        for (size_t k = 0; k < ELEMENTSOF(dirs); k++) {
                char *dir = strdup_printf("%s%s", t_state, dirs[k]);
                struct stat st;
                ck_assert_int_eq(stat(dir, &st), 0);
                ck_assert_msg((st.st_mode & 07777) == 0700 && st.st_uid == 0, "%s: mode %o uid %u", dir,
                              st.st_mode & 07777, st.st_uid);
                free(dir);
        }
}
END_TEST

static Suite *sandbox_suite(void)
{
        Suite *s = suite_create("sandbox");
        TCase *tc = t_tcase("hostile");
        tcase_add_test(tc, test_restored_instance);
        tcase_add_test(tc, test_cold_start);
        tcase_add_test(tc, test_second_level_copies);
        tcase_add_test(tc, test_second_level_tmp_files);
        tcase_add_test(tc, test_kill_all_spares_the_outside);
        suite_add_tcase(s, tc);
        tc = t_tcase("posture");
        tcase_add_test(tc, test_uids_distinct);
        tcase_add_test(tc, test_old_template_refused);
        tcase_add_test(tc, test_state_dirs_private);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(sandbox_suite, "python3", NULL);
}

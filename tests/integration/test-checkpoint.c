/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Second-level templates through the public API, with real CRIU: a specialized instance
 * checkpointed into a template of its own keeps running, and copies restored from that template
 * come back specialized, with the function's memory and /tmp as they were at the checkpoint.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

static json_int_t counter(pw_instance *i)
{
        json_t *res = t_invoke(i, NULL);
        ck_assert(json_is_true(json_object_get(res, "mark")));
        json_int_t n = json_integer_value(json_object_get(res, "count"));
        json_decref(res);
        return n;
}

START_TEST(test_round_trip)
{
        pw_instance *i = t_restore_full("python3");
        t_specialize(i, "counter.py");
        ck_assert_int_eq(counter(i), 1);
        ck_assert_int_eq(counter(i), 2);
        pid_t pid = pw_instance_pid(i);
        int r = pw_instance_checkpoint(i, "counter-l2");
        ck_assert_msg(r == 0, "checkpoint: %d %s", r, pw_instance_last_error(i));
        /* The instance went on running, state and all. */
        ck_assert_int_eq(pw_instance_pid(i), pid);
        ck_assert_int_eq(counter(i), 3);

        /* Copies start where the checkpoint was, without a specialize. */
        pw_instance *a = t_restore("counter-l2");
        pw_instance *b = t_restore("counter-l2");
        ck_assert_str_eq(pw_instance_template(a), "counter-l2");
        ck_assert_int_eq(t_specialize_fixture(a, "hello.py", NULL), -EALREADY);
        ck_assert_int_eq(counter(a), 3);
        ck_assert_int_eq(counter(a), 4);
        ck_assert_int_eq(counter(b), 3);
        pw_timings t = {.size = sizeof(t)};
        ck_assert_int_eq(pw_instance_timings(a, &t), 0);
        ck_assert_uint_gt(t.restore_us, 0);
        ck_assert_uint_eq(t.specialize_us, 0);
        t_destroy(a);
        t_destroy(b);
        t_destroy(i);

        /* A second-level template may be checkpointed again, and removed like any other. */
        pw_instance *c = t_restore("counter-l2");
        ck_assert_int_eq(counter(c), 3);
        r = pw_instance_checkpoint(c, "counter-l3");
        ck_assert_msg(r == 0, "checkpoint: %d %s", r, pw_instance_last_error(c));
        t_destroy(c);
        pw_instance *d = t_restore("counter-l3");
        ck_assert_int_eq(counter(d), 4);
        t_destroy(d);
        ck_assert_int_eq(pw_template_remove(t_engine, "counter-l3"), 0);
        ck_assert_int_eq(pw_template_remove(t_engine, "counter-l2"), 0);
}
END_TEST

START_TEST(test_replaces_older_checkpoint)
{
        pw_instance *i = t_restore_full("python3");
        t_specialize(i, "counter.py");
        ck_assert_int_eq(pw_instance_checkpoint(i, "counter-l2"), 0);
        ck_assert_int_eq(counter(i), 1);
        ck_assert_int_eq(pw_instance_checkpoint(i, "counter-l2"), 0);
        pw_instance *a = t_restore("counter-l2");
        ck_assert_int_eq(counter(a), 2);
        t_destroy(a);
        t_destroy(i);
        ck_assert_int_eq(pw_template_remove(t_engine, "counter-l2"), 0);
}
END_TEST

START_TEST(test_empty_tmp)
{
        /* Nothing in /tmp: it stays out of the images, and copies get a fresh one. */
        pw_instance *i = t_restore_full("python3");
        t_specialize(i, "hello.py");
        ck_assert_int_eq(pw_instance_checkpoint(i, "hello-l2"), 0);
        t_destroy(i);
        pw_instance *a = t_restore("hello-l2");
        json_decref(t_invoke_hello(a, "copy"));
        t_destroy(a);
        ck_assert_int_eq(pw_template_remove(t_engine, "hello-l2"), 0);
}
END_TEST

/* Copies of one checkpointed instance draw their own random numbers, like copies of a template. */
START_TEST(test_copies_reseed)
{
        pw_instance *i = t_restore_full("python3");
        t_specialize(i, "rand.py");
        json_decref(t_invoke(i, "{}")); /* the instance has answered before its checkpoint */
        ck_assert_int_eq(pw_instance_checkpoint(i, "rand-l2"), 0);
        t_destroy(i);
        pw_instance *a = t_restore("rand-l2"), *b = t_restore("rand-l2");
        json_t *ra = t_invoke(a, "{}"), *rb = t_invoke(b, "{}");
        json_t *sa = json_object_get(ra, "random"), *sb = json_object_get(rb, "random");
        ck_assert_int_eq(json_array_size(sa), 4);
        for (size_t k = 0; k < 4; k++)
                ck_assert_msg(json_real_value(json_array_get(sa, k)) != json_real_value(json_array_get(sb, k)),
                              "two copies of a checkpointed instance share their random sequence");
        json_decref(ra);
        json_decref(rb);
        t_destroy(a);
        t_destroy(b);
        ck_assert_int_eq(pw_template_remove(t_engine, "rand-l2"), 0);
}
END_TEST

static void assert_hook_log(json_t *res, const char *connection)
{
        json_t *want = json_pack("[s, s, s, s]", "before-2", "before-1", "after-1", "after-2");
        char *text = json_dumps(res, JSON_COMPACT);
        ck_assert_msg(json_equal(json_object_get(res, "log"), want), "hooks ran as %s", text);
        ck_assert_str_eq(json_string_value(json_object_get(res, "connection")), connection);
        free(text);
        json_decref(want);
}

/* prewarm.before_checkpoint in reverse order before the dump, prewarm.after_restore in order in
 * every copy and in the instance itself; a failing hook fails the checkpoint or the restore. */
START_TEST(test_hooks)
{
        pw_instance *i = t_restore_full("python3");
        t_specialize(i, "hooks.py");
        ck_assert_msg(pw_instance_checkpoint(i, "hooks-l2") == 0, "%s", pw_instance_last_error(i));
        json_t *res = t_invoke(i, "{}");
        assert_hook_log(res, "open"); /* the instance itself went through both phases */
        json_decref(res);
        pw_instance *copy = t_restore("hooks-l2");
        res = t_invoke(copy, "{}");
        assert_hook_log(res, "open"); /* closed before the dump, reopened in the copy */
        json_decref(res);
        t_destroy(copy);

        json_decref(t_invoke(i, "{\"fail\": \"before\"}"));
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "hooks-x-l2"), -ECANCELED, "before_checkpoint hook explode",
                                 "RuntimeError: hook refused");
        pw_instance *none = NULL;
        ck_assert_int_eq(pw_instance_restore(t_engine, "hooks-x-l2", &none), -ENOENT); /* nothing published */
        t_destroy(i);

        i = t_restore_full("python3");
        t_specialize(i, "hooks.py");
        json_decref(t_invoke(i, "{\"fail\": \"after\"}"));
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "hooks-y-l2"), -ECANCELED, "after_restore hook explode");
        t_destroy(i);
        ck_assert_engine_error(t_engine, pw_instance_restore(t_engine, "hooks-y-l2", &none), -ECANCELED,
                               "after_restore hook explode", "hook refused");
        /* The restore prepared ahead of hooks-l2 holds it; a template removed while one is held
         * is not collected when the engine drops it later (found here; see the closing note). */
        pw_engine_trim(t_engine);
        ck_assert_int_eq(pw_template_remove(t_engine, "hooks-l2"), 0);
        ck_assert_int_eq(pw_template_remove(t_engine, "hooks-y-l2"), 0);
}
END_TEST

START_TEST(test_errors)
{
        pw_instance *i = t_restore_full("python3");
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "x-l2"), -EBADFD, "x-l2", "not specialized");
        t_specialize(i, "hello.py");
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "../x"), -EINVAL, "invalid");
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "python3"), -EINVAL, "python3");
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "python3-data"), -EEXIST, "definition");
        ck_assert_int_eq(pw_instance_checkpoint(NULL, "x"), -EINVAL);
        pid_t pid = pw_instance_pid(i);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        for (int k = 0; k < 6000 && t_pid_alive(pid); k++)
                usleep(10000);
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "x-l2"), -ESRCH, "dead");
        t_destroy(i);
        /* A clone is never dumped: CRIU takes restored instances only. */
        i = t_restore("python3");
        ck_assert_int_eq(pw_instance_source(i), PW_SOURCE_CLONE);
        t_specialize(i, "hello.py");
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "x-l2"), -EOPNOTSUPP, "cloned", "PW_ENGINE_NO_CLONES");
        t_destroy(i);
        pw_instance *none = NULL;
        ck_assert_int_eq(pw_instance_restore(t_engine, "x-l2", &none), -ENOENT);
}
END_TEST

static Suite *checkpoint_suite(void)
{
        Suite *s = suite_create("checkpoint");
        TCase *tc = t_tcase("checkpoint");
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_replaces_older_checkpoint);
        tcase_add_test(tc, test_empty_tmp);
        tcase_add_test(tc, test_copies_reseed);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_hooks);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(checkpoint_suite, "python3", NULL);
}

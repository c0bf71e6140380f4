/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* src/daemon/function_def.c: prewarmd's parsing of a function definition (PUT /v1/functions/NAME)
 * and of environments, from nothing but the JSON a client sent. */
#include "function_def.h"
#include "unit.h"

/* Parses text; returns the result and leaves the reason in why. */
static int parse(const char *text, fn_fields *f, pw_err *why)
{
        json_error_t je;
        json_t *body = json_loads(text, JSON_DECODE_ANY, &je);
        ck_assert_msg(body, "test JSON %s: %s", text, je.text);
        why->msg[0] = '\0';
        int r = function_fields_parse(body, f, why);
        json_decref(body);
        return r;
}

static void refused(const char *text, const char *reason)
{
        fn_fields f;
        pw_err why;
        int r = parse(text, &f, &why);
        ck_assert_msg(r == -EINVAL, "%s was taken", text);
        ck_assert_msg(strstr(why.msg, reason), "%s: '%s' lacks '%s'", text, why.msg, reason);
}

START_TEST(test_defaults)
{
        fn_fields f;
        pw_err why;
        json_t *body = json_loads("{\"code\": \"file:///srv/f.py\"}", 0, NULL);
        ck_assert_int_eq(function_fields_parse(body, &f, &why), 0);
        ck_assert_str_eq(f.template_name, FUNCTION_DEFAULT_TEMPLATE);
        ck_assert_str_eq(f.main, "main");
        ck_assert_str_eq(f.code, "file:///srv/f.py");
        ck_assert_ptr_null(f.source);
        ck_assert_int_eq(f.timeout_ms, FUNCTION_DEFAULT_TIMEOUT_MS);
        json_decref(body);
}
END_TEST

START_TEST(test_every_field)
{
        fn_fields f;
        pw_err why;
        json_t *body = json_loads("{\"template\": \"node\", \"source\": \"function main() {}\", \"main\": \"handler\","
                                  " \"env\": {\"A\": \"1\"}, \"memory_mb\": 128, \"timeout_ms\": 0, \"keepalive_s\": 30}",
                                  0, NULL);
        ck_assert_msg(function_fields_parse(body, &f, &why) == 0, "%s", why.msg);
        ck_assert_str_eq(f.template_name, "node");
        ck_assert_str_eq(f.source, "function main() {}");
        ck_assert_str_eq(f.main, "handler");
        ck_assert_int_eq(f.memory_mb, 128);
        ck_assert_int_eq(f.timeout_ms, 0);
        ck_assert_int_eq(f.keepalive_s, 30);
        ck_assert_str_eq(json_string_value(json_object_get(f.env, "A")), "1");
        json_decref(body);
}
END_TEST

START_TEST(test_refusals)
{
        refused("[]", "must be a JSON object");
        refused("\"code\"", "must be a JSON object");
        refused("{\"code\": \"file:///f.py\", \"colour\": \"blue\"}", "bad function definition");
        refused("{\"code\": 7}", "bad function definition");
        refused("{}", "exactly once");
        refused("{\"code\": \"file:///f.py\", \"source\": \"x\"}", "exactly once");
        refused("{\"code\": \"file:///f\\u0001.py\"}", "control character");
        refused("{\"code\": \"file:///f.py\", \"template\": \"../etc\"}", "invalid template name");
        refused("{\"code\": \"file:///f.py\", \"main\": \"\"}", "main must name");
        refused("{\"code\": \"file:///f.py\", \"memory_mb\": -1}", "memory_mb");
        refused("{\"code\": \"file:///f.py\", \"timeout_ms\": 3600001}", "timeout_ms");
        refused("{\"code\": \"file:///f.py\", \"keepalive_s\": 604801}", "keepalive_s");
        refused("{\"code\": \"file:///f.py\", \"env\": {\"A=B\": \"x\"}}", "env");
        refused("{\"code\": \"file:///f.py\", \"env\": {\"A\": 1}}", "env");
        refused("{\"code\": \"file:///f.py\", \"env\": [\"A=1\"]}", "env");
        refused("{\"code\": \"file:///f.py\", \"env\": {\"A\": \"a\\nb\\u001b\"}}", "control character");
}
END_TEST

START_TEST(test_env_to_strv)
{
        json_t *env = json_loads("{\"S\": \"text\", \"N\": 42, \"O\": {\"k\": true}}", 0, NULL);
        char **v = NULL;
        ck_assert_int_eq(env_to_strv(env, &v), 0);
        ck_assert_uint_eq(strv_length(v), 3);
        bool s = false, n = false, o = false;
        for (char **p = v; *p; p++) {
                s = s || !strcmp(*p, "S=text");
                n = n || !strcmp(*p, "N=42");
                o = o || !strcmp(*p, "O={\"k\":true}") || !strcmp(*p, "O={\"k\": true}");
        }
        ck_assert_msg(s && n && o, "strings as they are, the rest as JSON text");
        strv_free(v);
        json_decref(env);

        v = NULL;
        ck_assert_int_eq(env_to_strv(NULL, &v), 0);
        ck_assert_uint_eq(strv_length(v), 0);
        strv_free(v);

        env = json_loads("{\"\": \"x\"}", 0, NULL);
        v = NULL;
        ck_assert_int_eq(env_to_strv(env, &v), -EINVAL);
        json_decref(env);
}
END_TEST

START_TEST(test_env_is_valid)
{
        pw_err why;
        json_t *good = json_loads("{\"PATH\": \"/usr/bin\", \"_X1\": \"\"}", 0, NULL);
        ck_assert(env_is_valid(good, &why));
        ck_assert(!env_is_valid(NULL, &why)); /* an environment is an object */
        const char *bad[] = {"{\"A=B\": \"v\"}", "{\"\": \"v\"}", "{\"A\": 1}", "{\"A\": null}"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                json_t *env = json_loads(bad[k], 0, NULL);
                ck_assert_msg(!env_is_valid(env, &why), "%s taken", bad[k]);
                ck_assert_msg(strstr(why.msg, "env"), "%s: %s", bad[k], why.msg);
                json_decref(env);
        }
        json_decref(good);
}
END_TEST

static Suite *function_def_suite(void)
{
        Suite *s = suite_create("function-def");
        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_every_field);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_env_to_strv);
        tcase_add_test(tc, test_env_is_valid);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(function_def_suite());
}

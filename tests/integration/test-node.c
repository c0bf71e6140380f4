/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The node template (criu-templates/node): its agent in JavaScript behind the same API and the
 * same sandbox as Python's. OpenWhisk's Node conventions (main declared or exported, Promises,
 * packages with package.json), archives and what they may not hold, every way code can fail,
 * the engine's limits, randomness of its own in every clone and restored copy, and the hooks
 * around a second-level checkpoint.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

#define TEMPLATE "node"

static const char *json_str(json_t *obj, const char *key)
{
        const char *s = json_string_value(json_object_get(obj, key));
        ck_assert_msg(s, "result has no string \"%s\": %s", key, json_dumps(obj, JSON_COMPACT));
        return s;
}

/* STATE/NAME made by fixtures/make_archive.py from the members' JSON; caller frees. */
static char *make_archive(const char *name, const char *members_json)
{
        char *out = strdup_printf("%s/%s", t_state, name);
        char *tool = t_fixture("make_archive.py");
        char *argv[] = {"/usr/bin/python3", tool, out, (char *)members_json, NULL};
        ck_assert_int_eq(t_run_program(argv), 0);
        free(tool);
        return out;
}

/* The fixture package (fixtures/node/package) as an archive NAME. */
static char *package_archive(const char *name)
{
        char *pkg = t_fixture("node/package/package.json"), *action = t_fixture("node/package/lib/action.js");
        char *greet = t_fixture("node/package/lib/greet.js"), *data = t_fixture("node/package/data.txt");
        char *members = strdup_printf("[{\"name\": \"package.json\", \"from\": \"%s\"},"
                                      " {\"name\": \"lib\", \"dir\": true},"
                                      " {\"name\": \"lib/action.js\", \"from\": \"%s\"},"
                                      " {\"name\": \"lib/greet.js\", \"from\": \"%s\"},"
                                      " {\"name\": \"data.txt\", \"from\": \"%s\"}]",
                                      pkg, action, greet, data);
        char *out = make_archive(name, members);
        free(members);
        free(pkg);
        free(action);
        free(greet);
        free(data);
        return out;
}

/* Asserts that invoke fails with expected and returns the reason. */
static const char *invoke_fails(pw_instance *i, const char *args, int timeout_ms, int expected)
{
        char *result = NULL;
        int r = pw_instance_invoke(i, args, timeout_ms, &result);
        ck_assert_msg(r == expected, "invoke(%s) returned %d (%s), expected %d (%s); message: %s", args, r,
                      strerror(-r), expected, strerror(-expected), pw_instance_last_error(i));
        ck_assert_ptr_null(result);
        return pw_instance_last_error(i);
}

static void assert_fine(pw_instance *i)
{
        json_t *res = t_invoke(i, "{\"mode\": \"ok\"}");
        ck_assert(json_is_true(json_object_get(res, "fine")));
        json_decref(res);
}

/* ---------------------------------------------------------------- conventions */

START_TEST(test_hello_clone_and_restore)
{
        pw_instance *clone = t_restore(TEMPLATE), *copy = t_restore_full(TEMPLATE);
        ck_assert_int_eq(pw_instance_source(clone), PW_SOURCE_CLONE);
        ck_assert_int_ne(pw_instance_source(copy), PW_SOURCE_CLONE);
        pw_instance *both[] = {clone, copy};
        for (size_t k = 0; k < ELEMENTSOF(both); k++) {
                t_specialize(both[k], "node/hello.js");
                char *result = NULL, *logs = NULL;
                ck_assert_int_eq(pw_instance_invoke_logs(both[k], "{\"name\": \"node\"}", 10000, &result, &logs), 0);
                ck_assert_contains(result, "\"greeting\":\"Hello, node!\"");
                ck_assert_contains(logs, "greeting node");
                free(result);
                free(logs);
                json_decref(t_invoke_hello(both[k], "again")); /* an instance serves many */
        }
        t_destroy(clone);
        t_destroy(copy);

        /* A restored copy's agent forks under an init at its specialize (a clone's is under one
         * already): its event loop and libuv's thread pool go on in the child, and its abort() is
         * the signal it is. */
        copy = t_restore_full(TEMPLATE);
        t_specialize(copy, "node/modes.js");
        const char *modes[] = {"{\"mode\": \"later\"}", "{\"mode\": \"async-fs\"}"};
        for (size_t k = 0; k < ELEMENTSOF(modes); k++)
                json_decref(t_invoke(copy, modes[k]));
        char *result = NULL;
        ck_assert_int_eq(pw_instance_invoke(copy, "{\"mode\": \"abort\"}", 10000, &result), -ECHILD);
        ck_assert_contains(pw_instance_last_error(copy), "signal 6");
        t_destroy(copy);
}
END_TEST

/* exports.NAME with another entry point, an async handler, the function's env, and an npm
 * package the template preloaded. */
START_TEST(test_exported_entry_env_npm)
{
        pw_instance *i = t_restore(TEMPLATE);
        const char *env[] = {"GREETING=hi", NULL};
        t_specialize_with(i, "node/exported.js", &(pw_function){.main = "handler", .env = env});
        json_t *res = t_invoke(i, "{\"text\": \"shout\"}");
        ck_assert_str_eq(json_str(res, "upper"), "SHOUT");
        ck_assert_str_eq(json_str(res, "env"), "hi");
        json_decref(res);
        t_destroy(i);
}
END_TEST

/* package.json's "main" in a zip and in a tar.gz; relative paths reach the unpacked files. */
START_TEST(test_package_archives)
{
        const char *names[] = {"action.zip", "action.tgz", "action.tar"};
        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                char *archive = package_archive(names[k]);
                pw_instance *i = t_restore(TEMPLATE);
                int r = t_specialize_code(i, archive, NULL);
                ck_assert_msg(r == 0, "specialize %s: %s", names[k], pw_instance_last_error(i));
                json_t *res = t_invoke(i, "{\"name\": \"archive\"}");
                ck_assert_str_eq(json_str(res, "greeting"), "Hello, archive!");
                ck_assert_str_eq(json_str(res, "data"), "from the archive");
                json_decref(res);
                t_destroy(i);
                unlink(archive);
                free(archive);
        }
}
END_TEST

/* What an archive may not hold is refused before anything is written. */
START_TEST(test_archives_refused)
{
        static const struct {
                const char *name, *members, *reason;
        } bad[] = {
                {"up.tgz", "[{\"name\": \"index.js\", \"data\": \"\"}, {\"name\": \"../evil.js\", \"data\": \"x\"}]",
                 "leads out of the archive"},
                {"abs.tar", "[{\"name\": \"/tmp/evil.js\", \"data\": \"x\"}]", "leads out of the archive"},
                {"up.zip", "[{\"name\": \"a/../../evil.js\", \"data\": \"x\"}]", "leads out of the archive"},
                {"link.tgz", "[{\"name\": \"index.js\", \"symlink\": \"/etc/passwd\"}]", "is a link"},
                {"link.zip", "[{\"name\": \"index.js\", \"symlink\": \"/etc/passwd\"}]", "is a link"},
                {"dev.tar", "[{\"name\": \"null\", \"device\": true}]", "device"},
                {"many.tar", "[{\"many\": 20001}]", "over the bounds"},
                {"empty.zip", "[{\"name\": \"README\", \"data\": \"no code\"}]", "package.json or index.js"},
        };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                char *archive = make_archive(bad[k].name, bad[k].members);
                pw_instance *i = t_restore(TEMPLATE);
                ck_assert_instance_error(i, t_specialize_code(i, archive, NULL), -ENOEXEC, bad[k].reason);
                t_destroy(i);
                unlink(archive);
                free(archive);
        }
        /* Not an archive at all, under an archive's name. */
        char *junk = strdup_printf("%s/junk.zip", t_state);
        t_write_file(junk, "this is not a zip file");
        pw_instance *i = t_restore(TEMPLATE);
        ck_assert_instance_error(i, t_specialize_code(i, junk, NULL), -ENOEXEC, "file type is unsupported");
        t_destroy(i);
        unlink(junk);
        free(junk);
}
END_TEST

/* ---------------------------------------------------------------- failures */

START_TEST(test_load_errors)
{
        pw_instance *i = t_restore(TEMPLATE);
        ck_assert_instance_error(i, t_specialize_fixture(i, "node/syntax_error.js", NULL), -ENOEXEC, "SyntaxError",
                                 "syntax_error.js:2");
        t_destroy(i);
        i = t_restore(TEMPLATE);
        ck_assert_instance_error(i, t_specialize_fixture(i, "node/load_error.js", NULL), -ENOEXEC,
                                 "Error: cannot start: no config");
        t_destroy(i);
        i = t_restore(TEMPLATE);
        ck_assert_instance_error(i, t_specialize_fixture(i, "node/no_entry.js", NULL), -ENOEXEC, "'main' is not a function");
        t_destroy(i);
        i = t_restore(TEMPLATE);
        ck_assert_instance_error(i, t_specialize_fixture(i, "node/hello.js", &(pw_function){.main = "nowhere"}),
                                 -ENOEXEC, "'nowhere' is not a function");
        t_destroy(i);
}
END_TEST

/* Exceptions, rejected Promises, results that are not objects, process.exit and an exception
 * thrown from a timer fail the invocation only; the instance serves the next one. */
START_TEST(test_handler_errors)
{
        pw_instance *i = t_restore(TEMPLATE);
        t_specialize(i, "node/modes.js");
        static const struct {
                const char *args;
                int expected;
                const char *reason;
        } cases[] = {
                {"{\"mode\": \"throw\"}", -EREMOTEIO, "TypeError: bad input"},
                {"{\"mode\": \"throw-undefined\"}", -EREMOTEIO, "undefined"},
                {"{\"mode\": \"exit\"}", -EREMOTEIO, "process.exit(3)"},
                {"{\"mode\": \"escaped\"}", -EREMOTEIO, "thrown from a timer"},
                {"{\"mode\": \"string\"}", -EPROTO, "string, not an object"},
                {"{\"mode\": \"null\"}", -EPROTO, "null, not an object"},
                {"{\"mode\": \"bigint\"}", -EPROTO, "not JSON"},
                {"{\"mode\": \"cycle\"}", -EPROTO, "not JSON"},
        };
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                ck_assert_contains(invoke_fails(i, cases[k].args, 10000, cases[k].expected), cases[k].reason);
                assert_fine(i);
        }
        /* A Promise that rejects is an application error, as OpenWhisk's Node runtime has it: the
         * result {error: reason}; and a bare return answers {}. */
        json_t *res = t_invoke(i, "{\"mode\": \"reject\"}");
        json_t *error = json_object_get(res, "error");
        ck_assert_str_eq(json_str(error, "name"), "RangeError");
        ck_assert_str_eq(json_str(error, "message"), "rejected on purpose");
        json_decref(res);
        res = t_invoke(i, "{\"mode\": \"reject-string\"}");
        ck_assert_str_eq(json_str(res, "error"), "just a string");
        json_decref(res);
        res = t_invoke(i, "{\"mode\": \"bare-return\"}");
        ck_assert_int_eq(json_object_size(res), 0);
        json_decref(res);
        /* The stack comes back as the logs; Promises and the thread pool's async I/O work. */
        char *logs = NULL;
        ck_assert_int_eq(pw_instance_invoke_logs(i, "{\"mode\": \"throw\"}", 10000, NULL, &logs), -EREMOTEIO);
        ck_assert_contains(logs, "TypeError: bad input", "modes.js");
        free(logs);
        const char *fine[] = {"{\"mode\": \"later\"}", "{\"mode\": \"async-fs\"}"};
        for (size_t k = 0; k < ELEMENTSOF(fine); k++)
                json_decref(t_invoke(i, fine[k]));
        t_destroy(i);
}
END_TEST

/* A busy loop and a Promise that never settles both end at the invoke's timeout, and the
 * instance with them. */
START_TEST(test_timeouts)
{
        const char *modes[] = {"{\"mode\": \"loop\"}", "{\"mode\": \"never\"}"};
        for (size_t k = 0; k < ELEMENTSOF(modes); k++) {
                pw_instance *i = t_restore(TEMPLATE);
                t_specialize(i, "node/modes.js");
                pid_t pid = pw_instance_pid(i);
                ck_assert_contains(invoke_fails(i, modes[k], 500, -ETIMEDOUT), "timed out");
                ck_assert_int_eq(pw_instance_pid(i), -ESRCH);
                ck_assert(!t_pid_alive(pid));
                t_destroy(i);
        }
}
END_TEST

/* Buffers past the template's memory_mb: the cgroup's limit ends that instance only. */
START_TEST(test_memory_limit)
{
        pw_instance *i = t_restore(TEMPLATE), *other = t_restore(TEMPLATE);
        t_specialize(i, "node/modes.js");
        t_specialize(other, "node/modes.js");
        ck_assert_contains(invoke_fails(i, "{\"mode\": \"hog\"}", 60000, -ENOMEM), "memory limit", "256 MiB");
        assert_fine(other);
        t_destroy(i);
        t_destroy(other);
}
END_TEST

/* ---------------------------------------------------------------- randomness */

static const char *random_keys[] = {"random", "uuid", "bytes", "webcrypto", "lodash", "uuidpkg"};

static void assert_unique(json_t *seen[], json_t *res, int n)
{
        for (size_t k = 0; k < ELEMENTSOF(random_keys); k++) {
                char *v = json_dumps(json_object_get(res, random_keys[k]), JSON_ENCODE_ANY);
                ck_assert_msg(v && !json_object_get(seen[k], v), "copy %d repeats %s %s", n, random_keys[k], v);
                json_object_set_new(seen[k], v, json_true());
                free(v);
        }
}

/* 100 clones and 5 restored copies: Math.random, crypto's generators, randomUUID's cached batch
 * and the npm packages that use them all differ in each. */
START_TEST(test_random_unique)
{
        json_t *seen[ELEMENTSOF(random_keys)];
        for (size_t k = 0; k < ELEMENTSOF(random_keys); k++)
                seen[k] = json_object();
        for (int n = 0; n < 105; n++) {
                pw_instance *i = n < 100 ? t_restore(TEMPLATE) : t_restore_full(TEMPLATE);
                t_specialize(i, "node/unique.js");
                json_t *res = t_invoke(i, "{}");
                assert_unique(seen, res, n);
                json_decref(res);
                t_destroy(i);
        }
        for (size_t k = 0; k < ELEMENTSOF(random_keys); k++) {
                ck_assert_uint_eq(json_object_size(seen[k]), 105);
                json_decref(seen[k]);
        }
}
END_TEST

/* ---------------------------------------------------------------- hooks */

static void assert_hook_log(json_t *res)
{
        json_t *want = json_pack("[s, s, s, s]", "before-2", "before-1", "after-1", "after-2");
        char *text = json_dumps(res, JSON_COMPACT);
        ck_assert_msg(json_equal(json_object_get(res, "log"), want), "hooks ran as %s", text);
        ck_assert_str_eq(json_str(res, "connection"), "open");
        free(text);
        json_decref(want);
}

/* require('prewarm').beforeCheckpoint in reverse order (awaited when async) before the dump,
 * afterRestore in order after it; a hook that throws or spins fails the checkpoint. */
START_TEST(test_hooks)
{
        pw_instance *i = t_restore_full(TEMPLATE);
        t_specialize(i, "node/hooks.js");
        ck_assert_msg(pw_instance_checkpoint(i, "node-hooks-l2") == 0, "%s", pw_instance_last_error(i));
        json_t *res = t_invoke(i, "{}");
        assert_hook_log(res);
        json_decref(res);
        pw_instance *copy = t_restore("node-hooks-l2");
        res = t_invoke(copy, "{}");
        assert_hook_log(res);
        json_decref(res);
        t_destroy(copy);
        t_destroy(i);

        static const struct {
                const char *fail, *reason;
        } bad[] = {
                {"{\"fail\": \"before\"}", "before_checkpoint hook explode: Error: hook refused"},
                {"{\"fail\": \"spin\"}", "took longer than 10 s"},
        };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                i = t_restore_full(TEMPLATE);
                t_specialize(i, "node/hooks.js");
                json_decref(t_invoke(i, bad[k].fail));
                ck_assert_instance_error(i, pw_instance_checkpoint(i, "node-hooks-x-l2"), -ECANCELED, bad[k].reason);
                t_destroy(i);
        }
        pw_instance *none = NULL;
        ck_assert_int_eq(pw_instance_restore(t_engine, "node-hooks-x-l2", &none), -ENOENT); /* nothing published */
        pw_engine_trim(t_engine);
        ck_assert_int_eq(pw_template_remove(t_engine, "node-hooks-l2"), 0);
}
END_TEST

static Suite *node_suite(void)
{
        Suite *s = suite_create("node");
        TCase *tc = t_tcase("node");
        tcase_add_test(tc, test_hello_clone_and_restore);
        tcase_add_test(tc, test_exported_entry_env_npm);
        tcase_add_test(tc, test_package_archives);
        tcase_add_test(tc, test_archives_refused);
        tcase_add_test(tc, test_load_errors);
        tcase_add_test(tc, test_handler_errors);
        tcase_add_test(tc, test_timeouts);
        tcase_add_test(tc, test_memory_limit);
        tcase_add_test(tc, test_random_unique);
        tcase_add_test(tc, test_hooks);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(node_suite, TEMPLATE, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The native template (criu-templates/native): C shared objects of the ABI of prewarm-handler.h
 * behind the same API and the same sandbox as the other runtimes. The example function through
 * clones, restores and cold starts; archives and what they may not hold; every way loading and
 * calling can fail, crashes and the engine's limits among them; captured output; environments;
 * and random values of its own in every clone.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

#define TEMPLATE "native"

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

/* Asserts that invoke returns exactly want (compact JSON). */
static void assert_result(pw_instance *i, const char *args, const char *want)
{
        char *result = NULL;
        int r = pw_instance_invoke(i, args, 10000, &result);
        ck_assert_msg(r == 0, "invoke(%s): %s", args ? args : "NULL", pw_instance_last_error(i));
        ck_assert_str_eq(result, want);
        free(result);
}

static pw_instance *with_fixture(pw_instance *i)
{
        int r = t_specialize_code(i, NATIVE_FIXTURE, NULL);
        ck_assert_msg(r == 0, "specialize with the fixture: %s", pw_instance_last_error(i));
        return i;
}

static void assert_serves(pw_instance *i)
{
        assert_result(i, "{\"mode\": \"echo\", \"n\": 1}", "{\"args\":{\"mode\":\"echo\",\"n\":1},\"cwd\":\"/\"}");
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

/* ---------------------------------------------------------------- the example, everywhere */

/* examples/native/hello.so in a clone, a restored copy and a cold-started instance alike. */
START_TEST(test_hello_everywhere)
{
        pw_instance *all[] = {t_restore(TEMPLATE), t_restore_full(TEMPLATE), t_cold_start(TEMPLATE)};
        ck_assert_int_eq(pw_instance_source(all[0]), PW_SOURCE_CLONE);
        for (size_t k = 0; k < ELEMENTSOF(all); k++) {
                int r = t_specialize_code(all[k], NATIVE_HELLO, NULL);
                ck_assert_msg(r == 0, "specialize hello.so: %s", pw_instance_last_error(all[k]));
                assert_result(all[k], "{\"name\": \"Ada\"}", "{\"hello\":\"Ada\",\"args\":{\"name\":\"Ada\"}}");
                assert_result(all[k], NULL, "{\"hello\":\"world\",\"args\":{}}");
                assert_result(all[k], "[1, {\"name\": \"x\"}]", "{\"hello\":\"world\",\"args\":[1,{\"name\":\"x\"}]}");
                assert_result(all[k], "{\"deep\": {\"name\": \"no\"}, \"name\": 7}",
                              "{\"hello\":\"world\",\"args\":{\"deep\":{\"name\":\"no\"},\"name\":7}}");
                ck_assert_errno(t_specialize_code(all[k], NATIVE_HELLO, NULL), -EALREADY, pw_instance_last_error(all[k]));
                t_destroy(all[k]);
        }
}
END_TEST

/* A shared object named otherwise is told by its ELF magic; "main" (the engine's default for
 * every runtime) means pw_handler, another name another symbol. */
START_TEST(test_names_and_entry_points)
{
        char *copy = strdup_printf("%s/function.bin", t_state);
        char *argv[] = {"/bin/cp", NATIVE_FIXTURE, copy, NULL};
        ck_assert_int_eq(t_run_program(argv), 0);
        pw_instance *i = t_restore(TEMPLATE);
        ck_assert_int_eq(t_specialize_code(i, copy, &(pw_function){.main = "main"}), 0);
        assert_serves(i);
        t_destroy(i);
        i = t_restore(TEMPLATE);
        ck_assert_instance_error(i, t_specialize_code(i, copy, &(pw_function){.main = "elsewhere"}), -ENOEXEC,
                                 "handler.so has no symbol 'elsewhere'"); /* the name the engine gave it */
        t_destroy(i);
        unlink(copy);
        free(copy);
}
END_TEST

/* ---------------------------------------------------------------- archives */

/* The handler by name beside another .so, or the only .so; files beside it by relative path. */
START_TEST(test_archives)
{
        static const struct {
                const char *name, *members, *file, *data;
        } good[] = {
                {"action.zip", "[{\"name\": \"handler.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                               " {\"name\": \"other.so\", \"from\": \"" NATIVE_NO_SYMBOL "\"},"
                               " {\"name\": \"data.txt\", \"data\": \"from the zip\\n\"}]",
                 "data.txt", "from the zip"},
                {"action.tgz", "[{\"name\": \"lib\", \"dir\": true},"
                               " {\"name\": \"fn.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                               " {\"name\": \"lib/data.txt\", \"data\": \"from the tgz\"}]",
                 "lib/data.txt", "from the tgz"},
                {"action.tar", "[{\"name\": \"./handler.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                               " {\"name\": \"a/b/c.txt\", \"data\": \"deep in the tar\"}]",
                 "a/b/c.txt", "deep in the tar"},
        };
        for (size_t k = 0; k < ELEMENTSOF(good); k++) {
                char *archive = make_archive(good[k].name, good[k].members);
                pw_instance *i = t_restore(TEMPLATE);
                int r = t_specialize_code(i, archive, NULL);
                ck_assert_msg(r == 0, "specialize %s: %s", good[k].name, pw_instance_last_error(i));
                char args[128], want[128];
                snprintf(args, sizeof(args), "{\"mode\": \"file\", \"path\": \"%s\"}", good[k].file);
                snprintf(want, sizeof(want), "{\"data\":\"%s\"}", good[k].data);
                assert_result(i, args, want);
                json_t *res = t_invoke(i, "{\"mode\": \"echo\"}");
                const char *cwd = json_string_value(json_object_get(res, "cwd"));
                ck_assert_msg(cwd && !strncmp(cwd, "/tmp/action-", 12), "working directory %s", cwd);
                json_decref(res);
                t_destroy(i);
                unlink(archive);
                free(archive);
        }
}
END_TEST

/* A tar of raw ustar headers, for what make_archive.py will not write: a hard link, and a member
 * that declares more than the bounds (and holds nothing). Caller frees. */
static char *raw_tar(const char *name, const char *member, char type, uint64_t size)
{
        char *out = strdup_printf("%s/%s", t_state, name);
        unsigned char h[512] = {0};
        snprintf((char *)h, 100, "%s", member);
        snprintf((char *)h + 100, 8, "%07o", 0644);
        snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
        snprintf((char *)h + 136, 12, "%011o", 0);
        h[156] = (unsigned char)type;
        if (type == '1')
                snprintf((char *)h + 157, 100, "handler.so");
        memcpy(h + 257, "ustar\0" "00", 8);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t k = 0; k < sizeof(h); k++)
                sum += h[k];
        snprintf((char *)h + 148, 8, "%06o", sum);
        unsigned char end[1024] = {0};
        FILE *f = fopen(out, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fwrite(h, 1, sizeof(h), f), sizeof(h));
        ck_assert_int_eq(fwrite(end, 1, sizeof(end), f), sizeof(end));
        ck_assert_int_eq(fclose(f), 0);
        return out;
}

/* A zip whose handler.so says in the central directory that it holds only 100 bytes. */
static char *lying_zip(void)
{
        char *zip = make_archive("lying.zip", "[{\"name\": \"handler.so\", \"from\": \"" NATIVE_FIXTURE "\"}]");
        char *data = NULL;
        size_t size = 0;
        ck_assert_int_eq(read_file(zip, 16 << 20, &data, &size), 0);
        char *entry = memmem(data, size, "PK\x01\x02", 4);
        ck_assert_ptr_nonnull(entry);
        memcpy(entry + 24, "\x64\0\0\0", 4); /* uncompressed size: 100 */
        ck_assert_int_eq(write_file_atomic(zip, data, size, 0644), 0);
        free(data);
        return zip;
}

/* How many files the instance's private code directories hold (and that there is one). */
static size_t files_unpacked(pw_instance *i)
{
        char pattern[96];
        glob_t g;
        snprintf(pattern, sizeof(pattern), "/proc/%d/root/tmp/action-*", (int)pw_instance_pid(i));
        ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
        ck_assert_uint_eq(g.gl_pathc, 1);
        globfree(&g);
        strcat(pattern, "/*");
        int r = glob(pattern, 0, NULL, &g);
        size_t n = r == 0 ? g.gl_pathc : 0;
        if (r == 0)
                globfree(&g);
        return n;
}

/* What an archive may not hold is refused, and nothing of it written: good members first. */
START_TEST(test_archives_refused)
{
        static const struct {
                const char *name, *members, *reason;
                bool unpacked; /* a rule of the handler's, found once it was unpacked */
        } bad[] = {
                {"up.tgz", "[{\"name\": \"handler.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                           " {\"name\": \"../evil.so\", \"data\": \"x\"}]", "leads out of the archive", false},
                {"abs.tar", "[{\"name\": \"handler.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                            " {\"name\": \"/tmp/evil.so\", \"data\": \"x\"}]", "leads out of the archive", false},
                {"up.zip", "[{\"name\": \"handler.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                           " {\"name\": \"a/../../evil.so\", \"data\": \"x\"}]", "leads out of the archive", false},
                {"link.tgz", "[{\"name\": \"handler.so\", \"symlink\": \"/usr/lib/libc.so.6\"}]", "is a link", false},
                {"link.zip", "[{\"name\": \"data.txt\", \"data\": \"x\"}, {\"name\": \"handler.so\", \"symlink\": \"/etc\"}]",
                 "is a link", false},
                {"dev.tar", "[{\"name\": \"data.txt\", \"data\": \"x\"}, {\"name\": \"null\", \"device\": true}]",
                 "device or special file", false},
                {"many.tar", "[{\"many\": 20001}]", "over the bounds", false},
                {"none.zip", "[{\"name\": \"README\", \"data\": \"no code\"}, {\"name\": \"lib\", \"dir\": true},"
                             " {\"name\": \"lib/deep.so\", \"from\": \"" NATIVE_FIXTURE "\"}]",
                 "holds no handler.so", true},
                {"two.tgz", "[{\"name\": \"a.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                            " {\"name\": \"b.so\", \"from\": \"" NATIVE_FIXTURE "\"}]", "2 .so files", true},
        };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                char *archive = make_archive(bad[k].name, bad[k].members);
                pw_instance *i = t_restore(TEMPLATE);
                ck_assert_instance_error(i, t_specialize_code(i, archive, NULL), -ENOEXEC, bad[k].reason);
                if (!bad[k].unpacked) /* refused before anything was written */
                        ck_assert_msg(files_unpacked(i) == 0, "%s left files behind", bad[k].name);
                ck_assert_errno(pw_instance_invoke(i, "{}", 10000, NULL), -EBADFD, pw_instance_last_error(i));
                t_destroy(i);
                unlink(archive);
                free(archive);
        }
        char *made[] = {raw_tar("hard.tar", "other.so", '1', 0), raw_tar("big.tar", "big.so", '0', 600ull << 20),
                        lying_zip()};
        const char *reasons[] = {"is a link", "over the bounds", "holds more than the 100 bytes it declares"};
        for (size_t k = 0; k < ELEMENTSOF(made); k++) {
                pw_instance *i = t_restore(TEMPLATE);
                ck_assert_instance_error(i, t_specialize_code(i, made[k], NULL), -ENOEXEC, reasons[k]);
                t_destroy(i);
                unlink(made[k]);
                free(made[k]);
        }
        char *junk = strdup_printf("%s/junk.tgz", t_state);
        t_write_file(junk, "this is not a gzip file");
        pw_instance *i = t_restore(TEMPLATE);
        ck_assert_instance_error(i, t_specialize_code(i, junk, NULL), -ENOEXEC, "cannot unpack archive");
        t_destroy(i);
        unlink(junk);
        free(junk);
}
END_TEST

/* ---------------------------------------------------------------- failures */

/* Not an ELF file, a missing library, a missing symbol: load errors with the loader's reason. */
START_TEST(test_load_errors)
{
        char *text = strdup_printf("%s/text.so", t_state);
        t_write_file(text, "#!/bin/sh\n# a script, long enough to be read as an ELF header and refused as one\n"
                           "echo not a shared object\n");
        static const struct {
                const char *code, *reason, *more;
        } bad[] = {
                {NULL, "cannot load text.so", "invalid ELF header"},
                {NATIVE_NEEDS_DEP, "cannot load native-needs-dep.so", "libnative-dep.so: cannot open shared object file"},
                {NATIVE_NO_SYMBOL, "native-no-symbol.so has no symbol 'pw_handler'", "undefined symbol: pw_handler"},
        };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                pw_instance *i = t_restore(TEMPLATE);
                ck_assert_instance_error(i, t_specialize_code(i, bad[k].code ? bad[k].code : text, NULL), -ENOEXEC,
                                         bad[k].reason, bad[k].more);
                /* A failed load leaves the instance unable to run anything, and it says so. */
                ck_assert_errno(pw_instance_invoke(i, "{}", 10000, NULL), -EBADFD, pw_instance_last_error(i));
                ck_assert_errno(t_specialize_code(i, NATIVE_HELLO, NULL), -EALREADY, pw_instance_last_error(i));
                t_destroy(i);
        }
        unlink(text);
        free(text);
}
END_TEST

/* A non-zero return with or without a message, and results that are not JSON objects or arrays,
 * fail the invocation only: the instance serves the next one. */
START_TEST(test_handler_errors)
{
        pw_instance *i = with_fixture(t_restore(TEMPLATE));
        static const struct {
                const char *args;
                int expected;
                const char *reason;
        } cases[] = {
                {"{\"mode\": \"fail\", \"why\": \"no such user\"}", -EREMOTEIO, "refused: no such user"},
                {"{\"mode\": \"fail-quiet\"}", -EREMOTEIO, "returned 7 without a message"},
                {"{\"mode\": \"not-json\"}", -EPROTO, "not a JSON object or array"},
                {"{\"mode\": \"string\"}", -EPROTO, "not a JSON object or array"},
                {"{\"mode\": \"nothing\"}", -EPROTO, "returned no result"},
                {"{\"mode\": \"unknown\"}", -EREMOTEIO, "unknown mode"},
        };
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                ck_assert_contains(invoke_fails(i, cases[k].args, 10000, cases[k].expected), cases[k].reason);
                assert_serves(i);
        }
        t_destroy(i);
}
END_TEST

/* A crash ends the instance (-ECHILD with the signal), a clone or a restored copy; the next
 * instance works. A restored copy's agent goes under an init at its specialize, as a clone's is,
 * so its abort() is SIGABRT too (were it its namespace's init, the kernel would keep its own
 * SIGABRT from it and glibc would end it with a SIGSEGV). */
START_TEST(test_crash)
{
        pw_instance *clone = with_fixture(t_restore(TEMPLATE)), *copy = with_fixture(t_restore_full(TEMPLATE));
        ck_assert_contains(invoke_fails(clone, "{\"mode\": \"abort\"}", 10000, -ECHILD), "died", "signal 6");
        ck_assert_int_eq(pw_instance_pid(clone), -ESRCH);
        ck_assert_contains(invoke_fails(copy, "{\"mode\": \"crash\"}", 10000, -ECHILD), "died", "signal 11");
        pw_instance *aborting = with_fixture(t_restore_full(TEMPLATE));
        ck_assert_contains(invoke_fails(aborting, "{\"mode\": \"abort\"}", 10000, -ECHILD), "died", "signal 6");
        t_destroy(aborting);
        ck_assert_errno(pw_instance_invoke(clone, "{}", 10000, NULL), -ESRCH, pw_instance_last_error(clone));
        t_destroy(clone);
        t_destroy(copy);
        pw_instance *next = with_fixture(t_restore(TEMPLATE));
        assert_serves(next);
        t_destroy(next);
}
END_TEST

/* A handler that sleeps past the invoke's timeout is killed with its instance. */
START_TEST(test_timeout)
{
        pw_instance *i = with_fixture(t_restore(TEMPLATE));
        pid_t pid = pw_instance_pid(i);
        ck_assert_contains(invoke_fails(i, "{\"mode\": \"sleep\", \"seconds\": 60}", 500, -ETIMEDOUT), "timed out");
        ck_assert_int_eq(pw_instance_pid(i), -ESRCH);
        ck_assert(!t_pid_alive(pid));
        t_destroy(i);
}
END_TEST

/* Memory past the template's memory_mb: the cgroup's limit ends that instance only. */
START_TEST(test_memory_limit)
{
        pw_instance *i = with_fixture(t_restore(TEMPLATE)), *other = with_fixture(t_restore(TEMPLATE));
        ck_assert_contains(invoke_fails(i, "{\"mode\": \"hog\"}", 60000, -ENOMEM), "memory limit", "128 MiB");
        ck_assert_int_eq(pw_instance_pid(i), -ESRCH);
        assert_serves(other);
        t_destroy(i);
        t_destroy(other);
}
END_TEST

/* ---------------------------------------------------------------- output and environment */

/* stdio in the order it was written, then what went to the descriptors; each call its own. */
START_TEST(test_logs)
{
        pw_instance *i = with_fixture(t_restore(TEMPLATE));
        for (int n = 0; n < 2; n++) {
                char *result = NULL, *logs = NULL;
                ck_assert_int_eq(pw_instance_invoke_logs(i, "{\"mode\": \"print\"}", 10000, &result, &logs), 0);
                ck_assert_str_eq(result, "{\"printed\":true}");
                ck_assert_str_eq(logs, "first on stdout\nthen on stderr\nstdout again\nstraight to fd 1\nstraight to fd 2\n");
                free(result);
                free(logs);
        }
        /* Floods are kept to 1 MiB, and say so. */
        char *result = NULL, *logs = NULL;
        ck_assert_int_eq(pw_instance_invoke_logs(i, "{\"mode\": \"flood\"}", 10000, &result, &logs), 0);
        ck_assert_str_eq(result, "{\"flooded\":true}");
        const char note[] = "\n[prewarm: logs truncated]\n";
        ck_assert_uint_eq(strlen(logs), (1u << 20) + strlen(note));
        ck_assert_str_eq(logs + (1u << 20), note);
        free(result);
        free(logs);
        logs = (char *)"unset";
        ck_assert_int_eq(pw_instance_invoke_logs(i, "{\"mode\": \"echo\"}", 10000, &result, &logs), 0);
        ck_assert_ptr_null(logs); /* nothing printed: nothing kept from before either */
        free(result);
        ck_assert_int_eq(pw_instance_invoke_logs(i, "{\"mode\": \"fail\", \"why\": \"x\"}", 10000, &result, &logs),
                         -EREMOTEIO);
        ck_assert_ptr_null(logs);
        t_destroy(i);
}
END_TEST

/* The function's env, per-call __prewarm_env (set, kept, replaced, unset) and __prewarm_value. */
START_TEST(test_env)
{
        pw_instance *i = t_restore(TEMPLATE);
        const char *env[] = {"GREETING=hi", NULL};
        ck_assert_int_eq(t_specialize_code(i, NATIVE_FIXTURE, &(pw_function){.env = env}), 0);
        assert_result(i, "{\"mode\": \"env\", \"name\": \"GREETING\"}", "{\"value\":\"hi\"}");
        assert_result(i, "{\"mode\": \"env\", \"name\": \"CALL\", \"__prewarm_env\": {\"CALL\": \"one\"}}",
                      "{\"value\":\"one\"}");
        assert_result(i, "{\"mode\": \"env\", \"name\": \"CALL\"}", "{\"value\":\"one\"}");
        assert_result(i, "{\"mode\": \"env\", \"name\": \"CALL\", \"__prewarm_env\": {\"OTHER\": \"two\"}}",
                      "{\"value\":null}");
        assert_result(i, "{\"__prewarm_value\": [1, 2], \"__prewarm_env\": {}}", "{\"args\":[1,2],\"cwd\":\"/\"}");
        assert_result(i, "{\"mode\": \"env\", \"name\": \"OTHER\"}", "{\"value\":null}");
        ck_assert_contains(invoke_fails(i, "{\"__prewarm_env\": {\"A\": 1}}", 10000, -EPROTO), "__prewarm_env");
        t_destroy(i);
}
END_TEST

/* ---------------------------------------------------------------- randomness */

/* 20 clones of one parent, which share its memory, each read values of their own. */
START_TEST(test_random_unique)
{
        json_t *seen = json_object();
        for (int n = 0; n < 20; n++) {
                pw_instance *i = with_fixture(t_restore(TEMPLATE));
                ck_assert_int_eq(pw_instance_source(i), PW_SOURCE_CLONE);
                json_t *res = t_invoke(i, "{\"mode\": \"random\"}");
                const char *v = json_string_value(json_object_get(res, "random"));
                ck_assert_msg(v && strlen(v) == 32, "no random value: %s", json_dumps(res, JSON_COMPACT));
                ck_assert_msg(!json_object_get(seen, v), "clone %d repeats %s", n, v);
                json_object_set_new(seen, v, json_true());
                json_decref(res);
                t_destroy(i);
        }
        ck_assert_uint_eq(json_object_size(seen), 20);
        json_decref(seen);
}
END_TEST

/* ---------------------------------------------------------------- second-level templates */

/* A specialized instance checkpointed: its copies start with the function loaded and serve it, a
 * plain .so past the 1 MiB CRIU would copy of a deleted file, and an unpacked archive with the
 * files beside it. */
START_TEST(test_second_level)
{
        char *archive = make_archive("l2.tgz", "[{\"name\": \"handler.so\", \"from\": \"" NATIVE_FIXTURE "\"},"
                                               " {\"name\": \"data.txt\", \"data\": \"kept\"}]");
        static const struct {
                const char *args, *want;
        } calls[] = {{"{}", "{\"big\":true}"}, {"{\"mode\": \"file\", \"path\": \"data.txt\"}", "{\"data\":\"kept\"}"}};
        const char *codes[] = {NATIVE_BIG, archive};
        for (size_t k = 0; k < ELEMENTSOF(codes); k++) {
                pw_instance *i = t_restore_full(TEMPLATE);
                ck_assert_int_eq(t_specialize_code(i, codes[k], NULL), 0);
                assert_result(i, calls[k].args, calls[k].want);
                ck_assert_msg(pw_instance_checkpoint(i, "native-l2") == 0, "checkpoint: %s", pw_instance_last_error(i));
                pw_instance *copy = t_restore("native-l2");
                ck_assert_errno(t_specialize_code(copy, NATIVE_HELLO, NULL), -EALREADY, pw_instance_last_error(copy));
                assert_result(copy, calls[k].args, calls[k].want);
                t_destroy(copy);
                t_destroy(i);
                pw_engine_trim(t_engine);
                ck_assert_int_eq(pw_template_remove(t_engine, "native-l2"), 0);
        }
        unlink(archive);
        free(archive);
}
END_TEST

/* pw_before_checkpoint before the dump, pw_after_restore after it in the instance and in each
 * copy (which starts with the memory the dump saw); a failing hook fails the checkpoint, named. */
START_TEST(test_hooks)
{
        pw_instance *i = with_fixture(t_restore_full(TEMPLATE));
        assert_result(i, "{\"mode\": \"hooks\"}", "{\"log\":\"\"}");
        ck_assert_msg(pw_instance_checkpoint(i, "native-hooks-l2") == 0, "checkpoint: %s", pw_instance_last_error(i));
        assert_result(i, "{\"mode\": \"hooks\"}", "{\"log\":\"before_checkpoint after_restore \"}");
        pw_instance *copy = t_restore("native-hooks-l2");
        assert_result(copy, "{\"mode\": \"hooks\"}", "{\"log\":\"before_checkpoint after_restore \"}");
        t_destroy(copy);
        t_destroy(i);

        i = with_fixture(t_restore_full(TEMPLATE));
        json_decref(t_invoke(i, "{\"mode\": \"hooks\", \"fail\": \"before_checkpoint\"}"));
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "native-hooks-x-l2"), -ECANCELED,
                                 "before_checkpoint hook pw_before_checkpoint: hook refused");
        assert_serves(i);
        t_destroy(i);
        pw_instance *none = NULL;
        ck_assert_int_eq(pw_instance_restore(t_engine, "native-hooks-x-l2", &none), -ENOENT); /* nothing published */

        /* A hook that never returns is stopped at the agent's limit (10 s, before the engine's 30: the
         * message is the agent's), named, and ends its instance: C code cannot be interrupted and go on. */
        i = with_fixture(t_restore_full(TEMPLATE));
        json_decref(t_invoke(i, "{\"mode\": \"hooks\", \"spin\": \"before_checkpoint\"}"));
        ck_assert_instance_error(i, pw_instance_checkpoint(i, "native-hooks-spin-l2"), -ECANCELED,
                                 "pw_before_checkpoint: it did not return within 10 s");
        ck_assert_errno(pw_instance_invoke(i, "{}", 10000, NULL), -ECHILD, pw_instance_last_error(i));
        t_destroy(i);
        ck_assert_int_eq(pw_instance_restore(t_engine, "native-hooks-spin-l2", &none), -ENOENT);
        pw_engine_trim(t_engine);
        ck_assert_int_eq(pw_template_remove(t_engine, "native-hooks-l2"), 0);
}
END_TEST

static Suite *native_suite(void)
{
        Suite *s = suite_create("native");
        TCase *tc = t_tcase("native");
        tcase_add_test(tc, test_hello_everywhere);
        tcase_add_test(tc, test_names_and_entry_points);
        tcase_add_test(tc, test_archives);
        tcase_add_test(tc, test_archives_refused);
        tcase_add_test(tc, test_load_errors);
        tcase_add_test(tc, test_handler_errors);
        tcase_add_test(tc, test_crash);
        tcase_add_test(tc, test_timeout);
        tcase_add_test(tc, test_memory_limit);
        tcase_add_test(tc, test_logs);
        tcase_add_test(tc, test_env);
        tcase_add_test(tc, test_random_unique);
        tcase_add_test(tc, test_second_level);
        tcase_add_test(tc, test_hooks);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(native_suite, TEMPLATE, NULL);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "leaks.h"
#include "util.h"

extern char **environ;

char *t_state;
pw_engine *t_engine;
/* The same state dir without clones: what t_restore_full restores with (a checkpoint needs a
 * restored instance). */
static pw_engine *t_engine_restoring;

#define MAX_TRACKED 64
static pthread_mutex_t tracked_lock = PTHREAD_MUTEX_INITIALIZER;
static pw_instance *tracked[MAX_TRACKED];
static uint64_t test_started_us;

static void log_to_stderr(enum pw_log_level level, const char *message, void *userdata)
{
        static const char *const names[] = {[PW_LOG_ERROR] = "error", [PW_LOG_WARNING] = "warning",
                                            [PW_LOG_INFO] = "info", [PW_LOG_DEBUG] = "debug"};
        fprintf(stderr, "  [prewarm %s] %s\n", level >= 0 && level <= PW_LOG_DEBUG && names[level] ? names[level] : "?",
                message);
}

static pw_engine *engine_with(const char *templates_dir, unsigned flags)
{
        const pw_options o = {
                .size = sizeof(o),
                .state_dir = t_state,
                .templates_dir = templates_dir ? templates_dir : TEMPLATES_DIR,
                .log = log_to_stderr,
                .log_level = PW_LOG_INFO,
                .flags = flags,
        };
        pw_engine *e = NULL;
        int r = pw_engine_new(&o, &e);
        if (r < 0) {
                fprintf(stderr, "pw_engine_new: %s\n", strerror(-r));
                return NULL;
        }
        return e;
}

pw_engine *t_engine_new(const char *templates_dir)
{
        return engine_with(templates_dir, 0);
}

static void t_init(void)
{
        /* Test output interleaves with the engine's log lines on stderr. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        char dir[] = "/tmp/prewarm-it-XXXXXX";
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                exit(EXIT_FAILURE);
        }
        t_state = strdup(dir);
        t_engine = t_engine_new(NULL);
        /* Both engines before any test: what they keep open is not a test's leak. */
        t_engine_restoring = t_engine ? engine_with(NULL, PW_ENGINE_NO_CLONES) : NULL;
        if (!t_state || !t_engine || !t_engine_restoring) {
                rm_rf(dir);
                exit(EXIT_FAILURE);
        }
        printf("state dir %s\n", t_state);
}

static void t_fini(void)
{
        t_engine = pw_engine_free(t_engine);
        t_engine_restoring = pw_engine_free(t_engine_restoring);
        char report[4096];
        if (leaks_check(t_state, report, sizeof(report)) > 0)
                fprintf(stderr, "leaks at exit:\n%s", report);
        int r = rm_rf(t_state);
        if (r < 0)
                fprintf(stderr, "removing %s: %s\n", t_state, strerror(-r));
        free(t_state);
        t_state = NULL;
}

int t_build(const char *name)
{
        uint64_t t0 = now_us();
        int r = pw_template_build(t_engine, name);
        if (r < 0)
                fprintf(stderr, "building template %s failed (%s): %s\n", name, strerror(-r),
                        pw_engine_last_error(t_engine));
        else
                printf("built template %s in %.0f ms\n", name, (now_us() - t0) / 1000.0);
        return r;
}

char *t_fixture(const char *name)
{
        char *p = strdup_printf("%s/%s", FIXTURES_DIR, name);
        ck_assert_ptr_nonnull(p);
        return p;
}

char *t_fixture_uri(const char *name)
{
        char *p = strdup_printf("file://%s/%s", FIXTURES_DIR, name);
        ck_assert_ptr_nonnull(p);
        return p;
}

static void track(pw_instance *i)
{
        pthread_mutex_lock(&tracked_lock);
        size_t k = 0;
        while (k < MAX_TRACKED && tracked[k])
                k++;
        if (k < MAX_TRACKED)
                tracked[k] = i;
        pthread_mutex_unlock(&tracked_lock);
}

static bool untrack(pw_instance *i)
{
        bool found = false;
        pthread_mutex_lock(&tracked_lock);
        for (size_t k = 0; k < MAX_TRACKED && !found; k++)
                if (tracked[k] == i) {
                        tracked[k] = NULL;
                        found = true;
                }
        pthread_mutex_unlock(&tracked_lock);
        return found;
}

pw_instance *t_restore_try(const char *template_name, int *ret)
{
        pw_instance *i = NULL;
        int r = pw_instance_restore(t_engine, template_name, &i);
        *ret = r;
        if (r < 0)
                return NULL;
        track(i);
        return i;
}

pw_instance *t_restore_full(const char *template_name)
{
        pw_instance *i = NULL;
        ck_assert_ptr_nonnull(t_engine_restoring);
        int r = pw_instance_restore(t_engine_restoring, template_name, &i);
        ck_assert_msg(r == 0 && i, "restore of %s failed: %d (%s): %s", template_name, r, strerror(-r),
                      pw_engine_last_error(t_engine_restoring));
        ck_assert_int_eq(pw_instance_source(i), PW_SOURCE_RESTORE);
        track(i);
        return i;
}

pw_instance *t_restore(const char *template_name)
{
        int r;
        pw_instance *i = t_restore_try(template_name, &r);
        ck_assert_msg(r == 0 && i, "restore of %s failed: %d (%s): %s", template_name, r, strerror(-r),
                      pw_engine_last_error(t_engine));
        return i;
}

pw_instance *t_cold_start(const char *template_name)
{
        pw_instance *i = NULL;
        int r = pw_instance_cold_start(t_engine, template_name, &i);
        ck_assert_msg(r == 0 && i, "cold start of %s failed: %d (%s): %s", template_name, r, strerror(-r),
                      pw_engine_last_error(t_engine));
        ck_assert_int_eq(pw_instance_source(i), PW_SOURCE_COLD_START);
        track(i);
        return i;
}

void t_destroy(pw_instance *i)
{
        untrack(i);
        pw_instance_destroy(i);
}

int t_specialize_code(pw_instance *i, const char *code, const pw_function *fn)
{
        pw_function f = fn ? *fn : (pw_function){0};
        f.code_uri = code;
        return pw_instance_specialize(i, &f);
}

int t_specialize_fixture(pw_instance *i, const char *fixture, const pw_function *fn)
{
        char *path = t_fixture(fixture);
        int r = t_specialize_code(i, path, fn);
        free(path);
        return r;
}

void t_specialize_with(pw_instance *i, const char *fixture, const pw_function *fn)
{
        int r = t_specialize_fixture(i, fixture, fn);
        ck_assert_msg(r == 0, "specialize with %s failed: %d (%s): %s", fixture, r, strerror(-r),
                      pw_instance_last_error(i));
}

void t_specialize(pw_instance *i, const char *fixture)
{
        t_specialize_with(i, fixture, NULL);
}

json_t *t_invoke(pw_instance *i, const char *args_json)
{
        char *result = NULL;
        int r = pw_instance_invoke(i, args_json, 30000, &result);
        ck_assert_msg(r == 0, "invoke(%s) failed: %d (%s): %s", args_json ? args_json : "NULL", r, strerror(-r),
                      pw_instance_last_error(i));
        ck_assert_ptr_nonnull(result);
        json_error_t jerr;
        json_t *obj = json_loads(result, 0, &jerr);
        ck_assert_msg(obj && json_is_object(obj), "result is not a JSON object: %s", result);
        free(result);
        return obj;
}

void t_assert_greeting(json_t *res, const char *name)
{
        char want[128];
        snprintf(want, sizeof(want), "Hello, %s!", name);
        const char *got = json_string_value(json_object_get(res, "greeting"));
        ck_assert_msg(got && !strcmp(got, want), "expected \"%s\", got \"%s\"", want, got ? got : "(none)");
}

json_t *t_invoke_hello(pw_instance *i, const char *name)
{
        char args[128];
        snprintf(args, sizeof(args), "{\"name\": \"%s\"}", name);
        json_t *res = t_invoke(i, args);
        t_assert_greeting(res, name);
        return res;
}

bool t_pid_alive(pid_t pid)
{
        return pid > 0 && process_running(pid); /* a zombie is not running any more */
}

void t_write_file(const char *path, const char *text)
{
        int r = write_file_atomic(path, text, strlen(text), 0644);
        ck_assert_msg(r == 0, "writing %s: %s", path, strerror(-r));
}

int t_run_program(char *const argv[])
{
        pid_t pid;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -1;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void t_setup(void)
{
        leaks_begin();
        test_started_us = now_us();
}

static void t_teardown(void)
{
        size_t left = 0;
        for (size_t k = 0; k < MAX_TRACKED; k++) {
                pthread_mutex_lock(&tracked_lock);
                pw_instance *i = tracked[k];
                tracked[k] = NULL;
                pthread_mutex_unlock(&tracked_lock);
                if (i) {
                        pw_instance_destroy(i);
                        left++;
                }
        }
        char report[8192];
        /* What the engine prepared ahead is its own, not the test's; tests that open engines of
         * their own free them before they end. */
        pw_engine_trim(t_engine);
        if (t_engine_restoring)
                pw_engine_trim(t_engine_restoring);
        int findings = leaks_check(t_state, report, sizeof(report));
        printf("  (test took %.0f ms)\n", (now_us() - test_started_us) / 1000.0);
        if (left)
                fprintf(stderr, "%zu instance(s) were still alive after the test; destroyed them\n", left);
        ck_assert_msg(findings == 0, "%d leak(s) after the test:\n%s", findings, report);
}

TCase *t_tcase(const char *name)
{
        TCase *tc = tcase_create(name);
        tcase_add_checked_fixture(tc, t_setup, t_teardown);
        tcase_set_timeout(tc, 300);
        return tc;
}

const char *t_first_missing(const char *haystack, ...)
{
        const char *missing = NULL;
        va_list ap;
        va_start(ap, haystack);
        for (const char *needle; !missing && (needle = va_arg(ap, const char *));)
                if (!haystack || !strstr(haystack, needle))
                        missing = needle;
        va_end(ap);
        return missing;
}

/* Runs the suite in no-fork mode; returns the number of failed tests. */
static int t_run(Suite *s)
{
        SRunner *sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_VERBOSE);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed;
}

int t_main(Suite *(*make_suite)(void), ...)
{
        t_init();
        bool built = true;
        va_list ap;
        va_start(ap, make_suite);
        for (const char *name; built && (name = va_arg(ap, const char *));)
                built = t_build(name) == 0;
        va_end(ap);
        int failed = built ? t_run(make_suite()) : 1;
        t_fini();
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

char *t_fixture_zip(const char *zip_name, ...)
{
        char *zip = strdup_printf("%s/%s", t_state, zip_name);
        char *argv[16] = {"/usr/bin/python3", "-m", "zipfile", "-c", zip};
        size_t n = 5;
        va_list ap;
        va_start(ap, zip_name);
        for (const char *f; n < ELEMENTSOF(argv) - 1 && (f = va_arg(ap, const char *));)
                argv[n++] = t_fixture(f);
        va_end(ap);
        argv[n] = NULL;
        ck_assert_int_eq(t_run_program(argv), 0);
        for (size_t k = 5; k < n; k++)
                free(argv[k]);
        return zip;
}

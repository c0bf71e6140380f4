/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Shared scaffolding of the integration test programs: a private state dir and engine per
 * program, templates built once before the tests, instances tracked so that a failed test still
 * destroys them, and the leak check after every test (leaks.h).
 *
 * Check runs in no-fork mode (set in t_run, whatever CK_FORK says): restored instances are
 * children of the process that restored them and must be reaped and checked by the same process,
 * and the checked teardown must run even when the test body failed.
 */
#pragma once

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "prewarm.h"

#ifndef FIXTURES_DIR
#error "FIXTURES_DIR must point at tests/integration/fixtures"
#endif

extern char *t_state;      /* this program's state dir, /tmp/prewarm-it-XXXXXX */
extern pw_engine *t_engine; /* engine on t_state with the source tree's templates */

/* The whole main() of a test program: creates the state dir and the engine (exits the program on
 * failure), builds the templates named (up to a NULL), runs make_suite()'s suite in no-fork mode
 * if they all built, frees the engine and removes the state dir. Returns the exit status. */
int t_main(Suite *(*make_suite)(void), ...) __attribute__((sentinel));

/* An engine on t_state with another templates dir; NULL (and a message on stderr) on failure. */
pw_engine *t_engine_new(const char *templates_dir);

/* Builds a template with t_engine and says how long it took; returns the build's result. */
int t_build(const char *name);

/* Absolute path of a fixture file (static buffer per call site is not needed: caller frees). */
char *t_fixture(const char *name);
/* STATE/zip_name, a zip archive of the fixtures named after it (up to a NULL), made with Python's
 * zipfile; fails the test on error. Caller frees. */
char *t_fixture_zip(const char *zip_name, ...) __attribute__((sentinel));
/* "file://" + t_fixture(name); caller frees. */
char *t_fixture_uri(const char *name);

/* Restore / destroy with tracking; t_restore fails the test on error. */
pw_instance *t_restore(const char *template_name);
pw_instance *t_restore_try(const char *template_name, int *ret); /* tracked on success only */
/* Restored with CRIU, never cloned (what a checkpoint needs); fails the test on error. */
pw_instance *t_restore_full(const char *template_name);
/* Booted without CRIU (pw_instance_cold_start), tracked; fails the test on error. */
pw_instance *t_cold_start(const char *template_name);
void t_destroy(pw_instance *i);

/* Specializes with the code at CODE (URI or path) and the other fields of fn (NULL: the defaults;
 * its code_uri is not used); returns what pw_instance_specialize returned. */
int t_specialize_code(pw_instance *i, const char *code, const pw_function *fn);
/* The same with the fixture NAME (plain path). */
int t_specialize_fixture(pw_instance *i, const char *fixture, const pw_function *fn);
/* t_specialize_fixture that fails the test on error. */
void t_specialize_with(pw_instance *i, const char *fixture, const pw_function *fn);
/* Specializes with the fixture NAME and entry point "main"; fails the test on error. */
void t_specialize(pw_instance *i, const char *fixture);
/* Invokes and returns the parsed result object (caller json_decref); fails the test on error. */
json_t *t_invoke(pw_instance *i, const char *args_json);
/* Asserts that res has "greeting": "Hello, NAME!" (what hello.py answers). */
void t_assert_greeting(json_t *res, const char *name);
/* Invokes hello.py with {"name": NAME}, asserts the greeting and returns the result (caller
 * json_decref). */
json_t *t_invoke_hello(pw_instance *i, const char *name);

/* Whether a process with that pid exists (and is not a zombie waiting for us). */
bool t_pid_alive(pid_t pid);

/* Writes a whole file; fails the test on error. */
void t_write_file(const char *path, const char *text);

/* Runs argv[0] with argv (no shell) and returns its exit status, or -1. */
int t_run_program(char *const argv[]);

/* A test case with a checked fixture and a generous timeout. The fixture remembers the open fds;
 * after the test it destroys instances the test left behind and fails the test if anything
 * leaked. */
TCase *t_tcase(const char *name);

/* The first of the strings after haystack (up to a NULL) that haystack does not hold, or NULL. */
const char *t_first_missing(const char *haystack, ...) __attribute__((sentinel));

/* Asserts that haystack holds each of the strings that follow it. */
#define ck_assert_contains(haystack, ...)                                                          \
        do {                                                                                       \
                const char *_h = (haystack), *_n = t_first_missing(_h, __VA_ARGS__, NULL);         \
                ck_assert_msg(!_n, "expected \"%s\" in \"%s\"", _n, _h ? _h : "(null)");         \
        } while (0)

#define ck_assert_errno(expr, expected, message)                                                   \
        do {                                                                                       \
                int _r = (expr);                                                                   \
                ck_assert_msg(_r == (expected), "%s returned %d (%s), expected %d (%s); message: %s", #expr, \
                              _r, strerror(_r < 0 ? -_r : _r), (expected), strerror(-(expected)), (message)); \
        } while (0)

/* Asserts that expr returns `expected` and that reason (read after it) holds each string that
 * follows. */
#define ck_assert_failure(expr, expected, reason, ...)                                             \
        do {                                                                                       \
                ck_assert_errno(expr, expected, reason);                                           \
                ck_assert_contains(reason, __VA_ARGS__);                                           \
        } while (0)
/* The same with the reason of instance i, or of engine e. */
#define ck_assert_instance_error(i, expr, expected, ...)                                           \
        ck_assert_failure(expr, expected, pw_instance_last_error(i), __VA_ARGS__)
#define ck_assert_engine_error(e, expr, expected, ...)                                             \
        ck_assert_failure(expr, expected, pw_engine_last_error(e), __VA_ARGS__)

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

/* Creates the state dir and the engine; exits the program on failure. */
void t_init(void);
/* Frees the engine and removes the state dir. */
void t_fini(void);

/* An engine on t_state with another templates dir; NULL (and a message on stderr) on failure. */
pw_engine *t_engine_new(const char *templates_dir);

/* Builds a template with t_engine and says how long it took; returns the build's result. */
int t_build(const char *name);

/* Absolute path of a fixture file (static buffer per call site is not needed: caller frees). */
char *t_fixture(const char *name);
/* "file://" + t_fixture(name); caller frees. */
char *t_fixture_uri(const char *name);

/* Restore / destroy with tracking; t_restore fails the test on error. */
pw_instance *t_restore(const char *template_name);
pw_instance *t_restore_try(const char *template_name, int *ret); /* tracked on success only */
void t_destroy(pw_instance *i);

/* Specializes with the fixture NAME (plain path) and entry point "main"; fails the test on error. */
void t_specialize(pw_instance *i, const char *fixture);
/* Invokes and returns the parsed result object (caller json_decref); fails the test on error. */
json_t *t_invoke(pw_instance *i, const char *args_json);

/* Whether a process with that pid exists (and is not a zombie waiting for us). */
bool t_pid_alive(pid_t pid);

/* Writes a whole file; fails the test on error. */
void t_write_file(const char *path, const char *text);

/* Runs argv[0] with argv (no shell) and returns its exit status, or -1. */
int t_run_program(char *const argv[]);

/* Checked fixture: remembers the open fds; after the test destroys instances the test left
 * behind and fails the test if anything leaked. */
void t_setup(void);
void t_teardown(void);

/* A test case with the checked fixture and a generous timeout. */
TCase *t_tcase(const char *name);

/* Runs the suite in no-fork mode; returns the number of failed tests. */
int t_run(Suite *s);

#define ck_assert_contains(haystack, needle)                                                       \
        do {                                                                                       \
                const char *_h = (haystack), *_n = (needle);                                       \
                ck_assert_msg(_h && strstr(_h, _n), "expected \"%s\" in \"%s\"", _n, _h ? _h : "(null)"); \
        } while (0)

#define ck_assert_errno(expr, expected, message)                                                   \
        do {                                                                                       \
                int _r = (expr);                                                                   \
                ck_assert_msg(_r == (expected), "%s returned %d (%s), expected %d (%s); message: %s", #expr, \
                              _r, strerror(_r < 0 ? -_r : _r), (expected), strerror(-(expected)), (message)); \
        } while (0)

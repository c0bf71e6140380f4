/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The prewarm command line: one file per subcommand, dispatched from main.c. */
#pragma once

#include <stdbool.h>

#include "prewarm.h"

typedef struct cli_globals {
        const char *state_dir;
        const char *templates_dir;
        bool verbose;
} cli_globals;

/* Opens the engine with the global options; prints the reason and returns NULL on failure. */
pw_engine *cli_engine(const cli_globals *g);

/* Prints "prewarm: MESSAGE" to stderr; returns 1 for `return cli_error(...)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cmd_template(const cli_globals *g, int argc, char **argv);
int cmd_run(const cli_globals *g, int argc, char **argv);
int cmd_doctor(const cli_globals *g, int argc, char **argv);
int cmd_bench(const cli_globals *g, int argc, char **argv);

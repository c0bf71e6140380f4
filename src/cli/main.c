/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static const struct {
        const char *name;
        int (*run)(const cli_globals *g, int argc, char **argv);
        const char *summary;
} commands[] = {
        {"template", cmd_template, "build, list or remove templates"},
        {"run", cmd_run, "restore an instance, specialize it with code and invoke it once"},
        {"doctor", cmd_doctor, "check that this machine can run prewarm"},
        {"bench", cmd_bench, "measure cold starts: exec, stock CRIU, prewarm, fork zygote, warm"},
};

int cli_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("prewarm: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return 1;
}

static void log_to_stderr(enum pw_log_level level, const char *message, void *userdata)
{
        /* Errors reach the user once, through the command's own one-line reason. */
        if (level > PW_LOG_ERROR)
                fprintf(stderr, "prewarm: %s\n", message);
}

pw_engine *cli_engine(const cli_globals *g)
{
        const pw_options opts = {
                .state_dir = g->state_dir,
                .templates_dir = g->templates_dir,
                .log = log_to_stderr,
                .log_level = g->verbose ? PW_LOG_DEBUG : PW_LOG_WARNING,
                /* Every command but bench restores at most once and exits. */
                .flags = PW_ENGINE_NOTHING_AHEAD,
        };
        pw_engine *e = NULL;
        int r = pw_engine_new(&opts, &e);
        if (r < 0) {
                cli_error("cannot open the engine: %s", strerror(-r));
                return NULL;
        }
        return e;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: prewarm [--state-dir DIR] [--templates-dir DIR] [-v] COMMAND [ARGS]\n\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
        fprintf(f, "\nEnvironment: PREWARM_STATE_DIR, PREWARM_TEMPLATES_DIR, PREWARM_CRIU.\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                {"state-dir", required_argument, NULL, 's'},
                {"templates-dir", required_argument, NULL, 't'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {0},
        };
        cli_globals g = {0};
        int c;
        /* "+" stops at the subcommand, whose options are its own. */
        while ((c = getopt_long(argc, argv, "+vh", options, NULL)) != -1) {
                switch (c) {
                case 's': g.state_dir = optarg; break;
                case 't': g.templates_dir = optarg; break;
                case 'v': g.verbose = true; break;
                case 'h': usage(stdout); return 0;
                case 'V': printf("prewarm %s\n", PW_VERSION); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        const char *name = argv[optind];
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(commands[i].name, name)) {
                        int sub_argc = argc - optind;
                        char **sub_argv = argv + optind;
                        optind = 0; /* 0, not 1: GNU getopt then also forgets the "+" mode */
                        return commands[i].run(&g, sub_argc, sub_argv);
                }
        cli_error("unknown command '%s' (try --help)", name);
        return 2;
}

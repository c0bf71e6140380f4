/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* prewarm run: restore, specialize and invoke once; the result JSON goes to stdout. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct run_args {
        const char *template_name;
        pw_function fn;
        const char *payload;
        const char **env;
        size_t n_env;
        int timeout_ms;
        bool timings;
} run_args;

static int parse(int argc, char **argv, run_args *a)
{
        static const struct option options[] = {
                {"template", required_argument, NULL, 't'}, {"code", required_argument, NULL, 'c'},
                {"main", required_argument, NULL, 'm'},     {"payload", required_argument, NULL, 'p'},
                {"env", required_argument, NULL, 'e'},      {"digest", required_argument, NULL, 'd'},
                {"timeout-ms", required_argument, NULL, 'T'}, {"timings", no_argument, NULL, 'i'},
                {0},
        };
        a->env = calloc((size_t)argc + 1, sizeof(char *));
        if (!a->env)
                return cli_error("out of memory");
        int c;
        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case 't': a->template_name = optarg; break;
                case 'c': a->fn.code_uri = optarg; break;
                case 'm': a->fn.main = optarg; break;
                case 'p': a->payload = optarg; break;
                case 'd': a->fn.digest = optarg; break;
                case 'i': a->timings = true; break;
                case 'e':
                        if (!strchr(optarg, '=') || optarg[0] == '=')
                                return cli_error("--env wants KEY=VALUE, got '%s'", optarg);
                        a->env[a->n_env++] = optarg;
                        break;
                case 'T': {
                        char *end;
                        long v = strtol(optarg, &end, 10);
                        if (*end || v <= 0 || v > 24L * 3600 * 1000)
                                return cli_error("--timeout-ms wants a positive number of milliseconds");
                        a->timeout_ms = (int)v;
                        break;
                }
                default:
                        return cli_error("usage: prewarm run --template NAME --code URI [--main NAME] "
                                         "[--payload JSON] [--env K=V]... [--digest sha256:HEX] "
                                         "[--timeout-ms N] [--timings]");
                }
        }
        if (optind < argc)
                return cli_error("run: unexpected argument '%s'", argv[optind]);
        if (!a->template_name || !a->fn.code_uri)
                return cli_error("run: --template and --code are required");
        a->fn.env = a->env;
        return 0;
}

/* The library takes absolute paths only; on the command line a relative one means from here. */
static char *absolute_code_path(const char *uri)
{
        if (strstr(uri, "://") || uri[0] == '/')
                return NULL;
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
                return NULL;
        char *abs = NULL;
        return asprintf(&abs, "%s/%s", cwd, uri) < 0 ? NULL : abs;
}

int cmd_run(const cli_globals *g, int argc, char **argv)
{
        run_args a = {.timeout_ms = 60000};
        int status = parse(argc, argv, &a);
        if (status != 0) {
                free(a.env);
                return status;
        }
        char *abs_code = absolute_code_path(a.fn.code_uri);
        if (abs_code)
                a.fn.code_uri = abs_code;
        pw_engine *e = cli_engine(g);
        if (!e) {
                free(abs_code);
                free(a.env);
                return 1;
        }
        pw_instance *i = NULL;
        char *result = NULL, *logs = NULL;
        if (pw_instance_restore(e, a.template_name, &i) < 0)
                status = cli_error("%s", pw_engine_last_error(e));
        else if (pw_instance_specialize(i, &a.fn) < 0)
                status = cli_error("%s", pw_instance_last_error(i));
        else if (pw_instance_invoke_logs(i, a.payload, a.timeout_ms, &result, &logs) < 0)
                status = cli_error("%s", pw_instance_last_error(i));
        if (logs)
                fputs(logs, stderr);
        if (result)
                printf("%s\n", result);
        if (i && a.timings) {
                pw_timings t = {.size = sizeof(t)};
                pw_instance_timings(i, &t);
                fprintf(stderr, "timings: restore %.2f ms, specialize %.2f ms, invoke %.2f ms\n",
                        t.restore_us / 1000.0, t.specialize_us / 1000.0, t.invoke_us / 1000.0);
        }
        free(result);
        free(logs);
        pw_instance_destroy(i);
        pw_engine_free(e);
        free(abs_code);
        free(a.env);
        return status;
}

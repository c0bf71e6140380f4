/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm bench: the local restore benchmark. Measures, interleaved in one invocation, the time
 * from the request for a new instance to the first response of a specialized handler for a plain
 * exec, stock `criu restore`, prewarm's clone of a template parent (its default path) and its
 * restore (hot, cold, cold without io_uring), a fork zygote and a warm instance; then the cold
 * starts per second of the restore modes at a given concurrency, and the PSS of many instances
 * alive at once, cloned and restored.
 * Modes take turns run by run, so that whatever the machine does meanwhile hits all of them alike.
 */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "config.h"
#include "definition.h"

#define WARMUP_RUNS 1
#define DENSITY_ROUND UINT_MAX /* progress() of the density phase */
#define USAGE "usage: prewarm bench --template NAME [--runs N] [--concurrency C] [--density N] " \
              "[--modes a,b,...] [--handler FILE] [--json FILE] [--plot FILE.svg]"

#define MODES_HELP \
        "modes (default: all), each timed from the request for a new instance to the handler's first answer:\n" \
        "  exec                 exec the template's runtime, import its preloads, load, invoke\n" \
        "  criu_cli             stock `criu restore` exec'd per restore, then specialize and invoke\n" \
        "  prewarm              pw_instance_restore (a clone of the template's parent) + specialize + invoke\n" \
        "  prewarm_restore      the same with a full CRIU restore per instance, template hot\n" \
        "  prewarm_cold         a full restore after pw_template_evict\n" \
        "  prewarm_cold_noring  the same on an engine with PW_ENGINE_NO_IO_URING\n" \
        "  fork_zygote          fork from a running zygote with the preloads imported, load, invoke\n" \
        "  warm                 invoke an instance specialized before the runs\n" \
        "density: --density N instances of prewarm and of prewarm_restore alive at once, their PSS (0: skip)\n" \
        "defaults: --runs 20 --concurrency 2 --density 32 --handler bench/handler.py; see docs/bench.md\n"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        interrupted = 1;
}

typedef struct bench_args {
        const char *template_name;
        unsigned runs, concurrency, density;
        const char *handler, *json_path, *plot_path;
        bool selected[_MODE_MAX];
} bench_args;

typedef struct bench {
        bench_args a;
        bench_ctx ctx;
        bench_report report;
        char *handler_path; /* absolute */
        char *fork_zygote_program;
        unsigned step, steps; /* progress */
        bool tty;
        bench_mode first_mode;
} bench;

static int parse_uint(const char *opt, const char *s, unsigned max, unsigned *ret)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || s[0] == '-' || v < 1 || v > max)
                return cli_error("%s wants a number from 1 to %u, got '%s'", opt, max, s);
        *ret = (unsigned)v;
        return 0;
}

static int parse_modes(const char *list, bool selected[_MODE_MAX])
{
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL;
        if (!copy)
                return cli_error("out of memory");
        memset(selected, 0, _MODE_MAX * sizeof(bool));
        for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
                int m = bench_mode_from_name(name);
                if (m < 0)
                        return cli_error("bench: unknown mode '%s' (modes: exec, criu_cli, prewarm, prewarm_restore, "
                                         "prewarm_cold, prewarm_cold_noring, fork_zygote, warm)", name);
                selected[m] = true;
        }
        for (int m = 0; m < _MODE_MAX; m++)
                if (selected[m])
                        return 0;
        return cli_error("bench: --modes names no mode");
}

static int parse(int argc, char **argv, bench_args *a)
{
        static const struct option options[] = {
                {"template", required_argument, NULL, 't'}, {"runs", required_argument, NULL, 'n'},
                {"concurrency", required_argument, NULL, 'c'}, {"json", required_argument, NULL, 'j'},
                {"plot", required_argument, NULL, 'p'},     {"modes", required_argument, NULL, 'm'},
                {"handler", required_argument, NULL, 'H'},  {"help", no_argument, NULL, 'h'},
                {"density", required_argument, NULL, 'd'},
                {0},
        };
        *a = (bench_args){.runs = 20, .concurrency = 2, .density = 32};
        for (int m = 0; m < _MODE_MAX; m++)
                a->selected[m] = true;
        int c, r = 0;
        while (r == 0 && (c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case 't': a->template_name = optarg; break;
                case 'n': r = parse_uint("--runs", optarg, 100000, &a->runs); break;
                case 'c': r = parse_uint("--concurrency", optarg, 256, &a->concurrency); break;
                case 'j': a->json_path = optarg; break;
                case 'p': a->plot_path = optarg; break;
                case 'm': r = parse_modes(optarg, a->selected); break;
                case 'H': a->handler = optarg; break;
                case 'd': r = strcmp(optarg, "0") ? parse_uint("--density", optarg, 4096, &a->density) : (a->density = 0, 0); break;
                case 'h': printf("%s\n\n%s", USAGE, MODES_HELP); return -1;
                default: return cli_error(USAGE);
                }
        }
        if (r != 0)
                return r;
        if (optind < argc)
                return cli_error("bench: unexpected argument '%s'", argv[optind]);
        if (!a->template_name)
                return cli_error("bench: --template is required (%s)", USAGE);
        return 0;
}

/* bench/ of the source tree, beside criu-templates/: the built-in handler and the fork zygote. */
static char *bench_file(const char *name)
{
        const char *dir = getenv("PREWARM_BENCH_DIR");
        if (dir && *dir)
                return strdup_printf("%s/%s", dir, name);
        return strdup_printf("%s/../bench/%s", PW_SOURCE_TEMPLATES_DIR, name);
}

/* The absolute, canonical path of a file that must exist; a reason on stderr otherwise. */
static char *existing_file(const char *path, const char *what)
{
        char *abs = realpath(path, NULL);
        struct stat st;
        if (!abs || stat(abs, &st) < 0 || !S_ISREG(st.st_mode)) {
                cli_error("bench: %s %s: %s", what, path, abs ? "not a regular file" : strerror(errno));
                free(abs);
                return NULL;
        }
        return abs;
}

/* Output goes where it can be written, which is checked before a minute of measuring, not after. */
static int check_writable(const char *path, const char *what)
{
        _cleanup_free_ char *copy = path ? strdup(path) : NULL;
        if (!path)
                return 0;
        if (!copy)
                return cli_error("out of memory");
        const char *dir = dirname(copy);
        if (access(dir, W_OK) < 0)
                return cli_error("bench: cannot write the %s %s: %s: %m", what, path, dir);
        return 0;
}

static void log_line(enum pw_log_level level, const char *message, void *userdata)
{
        /* Errors reach the user once, through the bench's own reason; the rest below the progress line. */
        if (level > PW_LOG_ERROR)
                fprintf(stderr, "\rprewarm: %s\n", message);
}

static pw_engine *open_engine(const cli_globals *g, unsigned flags)
{
        const pw_options opts = {
                .state_dir = g->state_dir, .templates_dir = g->templates_dir, .log = log_line,
                .log_level = g->verbose ? PW_LOG_DEBUG : PW_LOG_WARNING, .flags = flags,
        };
        pw_engine *e = NULL;
        int r = pw_engine_new(&opts, &e);
        if (r < 0)
                cli_error("cannot open the engine: %s", strerror(-r));
        return r < 0 ? NULL : e;
}

static int is_template(const pw_template_info *t, void *userdata)
{
        return !strcmp(t->name, userdata);
}

static int check_built(pw_engine *e, const char *name)
{
        int r = pw_template_foreach(e, is_template, (void *)name);
        if (r < 0)
                return cli_error("%s", pw_engine_last_error(e));
        if (r == 0)
                return cli_error("template %s is not built: run prewarm template build %s", name, name);
        return 0;
}

static void bench_done(bench *b)
{
        bench_ctx_teardown(&b->ctx);
        b->ctx.def = template_def_free(b->ctx.def);
        pw_engine_free(b->ctx.engine_noring);
        pw_engine_free(b->ctx.engine);
        for (int m = 0; m < _MODE_MAX; m++)
                free(b->report.modes[m].samples);
        free(b->handler_path);
        free(b->fork_zygote_program);
}

/* The built-in handler and fork zygote of the template's language, told by its agent's suffix
 * (agent.py, agent.js). A native agent (no suffix) runs the example function built here and is
 * its own fork zygote. */
static int bench_language_files(const template_def *def, char **ret_handler, char **ret_zygote, bool *ret_is_agent)
{
        const char *slash = strrchr(def->agent_path, '/');
        const char *dot = strrchr(slash ? slash + 1 : def->agent_path, '.');
        *ret_is_agent = !dot;
        if (!dot) {
                *ret_handler = strdup(PW_BUILD_NATIVE_HANDLER);
                *ret_zygote = strdup(def->agent_path);
                return *ret_handler && *ret_zygote ? 0 : cli_error("out of memory");
        }
        _cleanup_free_ char *handler = strdup_printf("handler%s", dot), *zygote = strdup_printf("fork_zygote%s", dot);
        if (!handler || !zygote || !(*ret_handler = bench_file(handler)) || !(*ret_zygote = bench_file(zygote)))
                return cli_error("out of memory");
        return 0;
}

/* Paths, engines, the template check and sample space: everything before the fixtures. */
static int bench_open(const cli_globals *g, bench *b)
{
        _cleanup_free_ char *default_handler = NULL, *zygote = NULL;
        pw_err err = {""};
        if (check_writable(b->a.json_path, "JSON") != 0 || check_writable(b->a.plot_path, "plot") != 0)
                return 1;
        if (!(b->ctx.engine = open_engine(g, 0)))
                return 1;
        if (template_def_load(b->ctx.engine->templates_dir, b->a.template_name, &b->ctx.def, &err) < 0)
                return cli_error("bench: definition of template %s: %s", b->a.template_name, err.msg);
        if (bench_language_files(b->ctx.def, &default_handler, &zygote, &b->ctx.fork_zygote_is_agent) != 0)
                return 1;
        if (!(b->handler_path = existing_file(b->a.handler ? b->a.handler : default_handler, "handler")))
                return 1;
        if (b->a.selected[MODE_FORK_ZYGOTE] && !(b->fork_zygote_program = existing_file(zygote, "fork zygote")))
                return 1;
        if (b->a.selected[MODE_PREWARM_COLD_NORING] && !(b->ctx.engine_noring = open_engine(g, PW_ENGINE_NO_IO_URING)))
                return 1;
        if (check_built(b->ctx.engine, b->a.template_name) != 0)
                return 1;
        b->report = (bench_report){.template_name = b->a.template_name, .handler = b->handler_path,
                                   .runs = b->a.runs, .warmup_runs = WARMUP_RUNS, .concurrency = b->a.concurrency};
        for (int m = 0; m < _MODE_MAX; m++) {
                b->report.modes[m].selected = b->a.selected[m];
                if (b->a.selected[m] && !(b->report.modes[m].samples = calloc(b->a.runs, sizeof(bench_sample))))
                        return cli_error("out of memory");
        }
        return 0;
}

/* One line rewritten in place on a terminal; in a log, a line per round and per throughput mode.
 * round counts from 1; 0 is the throughput phase. */
static void progress(bench *b, unsigned round, bench_mode m)
{
        const char *phase = round == DENSITY_ROUND ? "density" : round == 0 ? "throughput"
                            : round <= WARMUP_RUNS ? "warm-up" : "run";
        b->step++;
        if (b->tty)
                fprintf(stderr, "\r[%3u/%u] %-10s %-20s", b->step, b->steps, phase, bench_mode_name(m));
        else if (round == 0 || round == DENSITY_ROUND)
                fprintf(stderr, "[%3u/%u] %s %s\n", b->step, b->steps, phase, bench_mode_name(m));
        else if (m == b->first_mode)
                fprintf(stderr, "[%3u/%u] %s %u of %u\n", b->step, b->steps, phase,
                        round <= WARMUP_RUNS ? round : round - WARMUP_RUNS,
                        round <= WARMUP_RUNS ? WARMUP_RUNS : b->a.runs);
        fflush(stderr);
}

static void progress_clear(const bench *b)
{
        if (b->tty)
                fprintf(stderr, "\r%-50s\r", "");
}

static int mode_failed(const bench *b, bench_mode m, const char *phase, const pw_err *err)
{
        progress_clear(b);
        if (interrupted)
                return 130;
        return cli_error("bench: %s of mode %s failed: %s", phase, bench_mode_name(m), err->msg);
}

/* Round after round, every selected mode once per round; the first rounds only warm up. */
static int run_latency(bench *b)
{
        for (unsigned round = 0; round < WARMUP_RUNS + b->a.runs; round++)
                for (int k = 0; k < _MODE_MAX; k++) {
                        bench_mode m = bench_round_order[k];
                        bench_mode_result *mr = &b->report.modes[m];
                        bench_sample s;
                        pw_err err = {""};
                        if (!mr->selected)
                                continue;
                        if (interrupted)
                                return 130;
                        progress(b, round + 1, m);
                        if (bench_run_once(&b->ctx, m, &s, &err) < 0)
                                return mode_failed(b, m, "a run", &err);
                        if (round >= WARMUP_RUNS)
                                mr->samples[mr->n_samples++] = s;
                }
        return 0;
}

/* Enough restores per mode that the threads overlap for most of the phase. */
static unsigned throughput_restores(const bench_args *a)
{
        return a->runs > 4 * a->concurrency ? a->runs : 4 * a->concurrency;
}

/* After the runs: the throughput phase of the restore modes, or the density phase. */
static int run_phase(bench *b, bool density)
{
        unsigned total = throughput_restores(&b->a);
        for (int m = 0; m < _MODE_MAX; m++) {
                bench_mode_result *mr = &b->report.modes[m];
                pw_err err = {""};
                bool wanted = density ? b->a.density && bench_mode_density(m) : bench_mode_restores(m);
                if (!mr->selected || !wanted)
                        continue;
                if (interrupted)
                        return 130;
                progress(b, density ? DENSITY_ROUND : 0, m);
                int r = density ? bench_density(&b->ctx, m, b->a.density, mr, &err)
                                : bench_throughput(&b->ctx, m, b->a.concurrency, total, &mr->throughput_wall_s, &err);
                if (r < 0)
                        return mode_failed(b, m, density ? "the density phase" : "the throughput phase", &err);
                if (!density)
                        mr->throughput_restores = total;
        }
        return 0;
}

static int write_outputs(const bench *b)
{
        int r;
        bench_report_print(&b->report, stdout);
        if (b->a.json_path && (r = bench_report_write_json(&b->report, b->a.json_path)) < 0)
                return cli_error("bench: writing %s: %s", b->a.json_path, strerror(-r));
        if (b->a.plot_path && (r = bench_report_write_svg(&b->report, b->a.plot_path)) < 0)
                return cli_error("bench: writing %s: %s", b->a.plot_path, strerror(-r));
        return 0;
}

static int bench_measure(bench *b)
{
        pw_err err = {""};
        unsigned selected = 0, restoring = 0;
        for (int k = _MODE_MAX - 1; k >= 0; k--) {
                bench_mode m = bench_round_order[k];
                if (b->a.selected[m])
                        b->first_mode = m;
                selected += b->a.selected[m];
                restoring += b->a.selected[m] && bench_mode_restores(m);
                restoring += b->a.selected[m] && b->a.density && bench_mode_density(m);
        }
        b->tty = isatty(STDERR_FILENO);
        b->steps = (WARMUP_RUNS + b->a.runs) * selected + restoring;
        fprintf(stderr, "bench: template %s, %u runs of %u modes, then throughput at concurrency %u\n",
                b->a.template_name, b->a.runs, selected, b->a.concurrency);
        if (bench_ctx_setup(&b->ctx, b->a.selected, &err) < 0)
                return interrupted ? 130 : cli_error("bench: preparing the modes: %s", err.msg);
        int status = run_latency(b);
        if (status == 0)
                status = run_phase(b, false);
        if (status == 0)
                status = run_phase(b, true);
        progress_clear(b);
        /* Every instance and process goes before the report: nothing outlives the measurement. */
        bench_ctx_teardown(&b->ctx);
        if (status == 130)
                fprintf(stderr, "prewarm: bench interrupted; everything it started is gone\n");
        return status;
}

int cmd_bench(const cli_globals *g, int argc, char **argv)
{
        bench b = {.ctx = {.zygote = {0, -1}, .interrupted = &interrupted}};
        int status = parse(argc, argv, &b.a);
        if (status != 0)
                return status < 0 ? 0 : status;
        /* No SA_RESTART: a blocking wait returns, and the run loop sees the flag soon after. */
        const struct sigaction sa = {.sa_handler = on_signal};
        struct sigaction old_int, old_term;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);

        b.ctx.template_name = b.a.template_name;
        status = bench_open(g, &b);
        if (status == 0) {
                b.ctx.fn = (pw_function){.code_uri = b.handler_path};
                b.ctx.fork_zygote_program = b.fork_zygote_program;
                status = bench_measure(&b);
        }
        if (status == 0)
                status = write_outputs(&b);
        bench_done(&b);
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        return status;
}

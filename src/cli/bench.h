/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm bench: what bench.c (options, run loop), bench_modes.c (one measured run per mode, the
 * throughput phase) and bench_report.c (statistics, table, JSON, SVG) share.
 *
 * bench_report.c is pure (no engine, no processes): the unit tests link it alone.
 */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "internal.h" /* pw_err, err_set */
#include "prewarm.h"

typedef enum bench_mode {
        MODE_EXEC,
        MODE_CRIU_CLI,
        MODE_PREWARM,
        MODE_PREWARM_RESTORE,
        MODE_PREWARM_COLD,
        MODE_PREWARM_COLD_NORING,
        MODE_FORK_ZYGOTE,
        MODE_WARM,
        _MODE_MAX,
} bench_mode;

#define BENCH_STAGES 3

/* The mode's name as the CLI and the JSON spell it; -EINVAL for an unknown name. */
const char *bench_mode_name(bench_mode m);
int bench_mode_from_name(const char *name);
/* What stage s (0..2) of mode m is called ("restore", "boot", "fork", ...), NULL if m has none. */
const char *bench_stage_name(bench_mode m, unsigned s);
/* Modes that restore an instance per run: they also get a throughput phase. */
bool bench_mode_restores(bench_mode m);

/* One run: request for a new instance to the first response of the specialized function. */
typedef struct bench_sample {
        double total_ms;
        double stage_ms[BENCH_STAGES];
        uint64_t rss_kb, pss_kb; /* of the instance's processes after the first invoke; 0: unknown */
} bench_sample;

typedef struct bench_stats {
        size_t n;
        double min, p25, p50, p75, p90, p99, max, mean;
} bench_stats;

typedef struct bench_mode_result {
        bool selected;
        bench_sample *samples;
        size_t n_samples;
        /* Throughput phase (restore modes only): restores done by the threads over wall time. */
        unsigned throughput_restores;
        double throughput_wall_s; /* 0: not measured */
        /* Density phase (prewarm, prewarm_restore): instances alive at once, each specialized
         * and invoked once, and the PSS of all their processes (and of the template's parent,
         * which the clones share pages with). */
        unsigned density_instances; /* 0: not measured */
        uint64_t density_pss_kb, density_parent_pss_kb;
} bench_mode_result;

typedef struct bench_report {
        const char *template_name;
        const char *handler;
        unsigned runs, warmup_runs, concurrency;
        bench_mode_result modes[_MODE_MAX];
} bench_report;

/* The q-quantile (0 <= q <= 1) of n sorted values, interpolating linearly between the two closest
 * ranks (numpy's default, so the JSON agrees with a notebook's). n must be > 0. */
double bench_quantile(const double *sorted, size_t n, double q);
/* Statistics of n values (any order; not modified). -EINVAL when n == 0, -ENOMEM. */
int bench_stats_compute(const double *values, size_t n, bench_stats *ret);

/* The report as the --json document (see bench_report.c). NULL on -ENOMEM. */
json_t *bench_report_json(const bench_report *r);
int bench_report_write_json(const bench_report *r, const char *path);
/* The human-readable table. */
void bench_report_print(const bench_report *r, FILE *f);
/* An SVG chart of the latency distributions (one strip per mode, log-ms axis). */
int bench_report_svg(const bench_report *r, FILE *f);
int bench_report_write_svg(const bench_report *r, const char *path);

/* ---- bench_modes.c: the measured things ---- */

struct template_def;

typedef struct fork_zygote {
        pid_t pid;   /* leader of its own process group, which its forked children share */
        int control; /* our end of its SOCK_SEQPACKET control socket */
} fork_zygote;

typedef struct bench_ctx {
        pw_engine *engine;        /* hot and cold modes, warm, criu_cli */
        pw_engine *engine_noring; /* prewarm_cold_noring: PW_ENGINE_NO_IO_URING */
        const char *template_name;
        pw_function fn;           /* the handler, the same in every mode */
        struct template_def *def; /* runtime, preloads and env: exec and fork_zygote */
        char **runtime_env;
        const char *fork_zygote_program;
        bool fork_zygote_is_agent; /* a native agent is its own fork zygote (--fork-zygote) */
        char *host_tmp;            /* TMPDIR of the agents exec and fork_zygote run on the host */
        fork_zygote zygote;
        pw_instance *warm;
        bool unstaged; /* the main engine's staging of the template was evicted since its last restore */
        volatile sig_atomic_t *interrupted;
} bench_ctx;

/* Readies what the selected modes need before the runs (not timed): the template definition for
 * exec and fork_zygote, the fork zygote, the warm instance. */
int bench_ctx_setup(bench_ctx *c, const bool selected[_MODE_MAX], pw_err *err);
/* Destroys the warm instance, stops the zygote and its children, frees the rest. Idempotent. */
void bench_ctx_teardown(bench_ctx *c);

/* The order of the modes within a round of runs. The cold modes go first: an eviction also drops
 * the main engine's staging, which prewarm_cold's restore starts again on that engine; the modes
 * that do not read the images run while the stager reads them; prewarm, last, then finds the
 * template staged, as a long-lived engine has it. */
extern const bench_mode bench_round_order[_MODE_MAX];

/* One timed run of mode m; everything it started is gone when it returns. */
int bench_run_once(bench_ctx *c, bench_mode m, bench_sample *ret, pw_err *err);

/* Modes measured with many instances alive at once. */
bool bench_mode_density(bench_mode m);
/* Makes n instances of mode m alive at once, measures their PSS into mr, destroys them. */
int bench_density(bench_ctx *c, bench_mode m, unsigned n, bench_mode_result *mr, pw_err *err);

/* `threads` threads restore+specialize+invoke+destroy `total` instances of mode m between them.
 * *ret_wall_s gets the wall time of the whole phase. */
int bench_throughput(bench_ctx *c, bench_mode m, unsigned threads, unsigned total, double *ret_wall_s,
                     pw_err *err);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool-sim: replays arrivals through the pool's own sizing policy (src/lib/7-pool/pool_policy.c) and
 * reports what it costs and saves, without a single process: cold starts against memory-time.
 *
 * Part 1, one-to-one (warm instances): per function, one instance at a time as in "Serverless in
 * the Wild" (Shahrad et al., ATC'20), under a fixed keep-alive and under the histogram policy
 * (pre-warm + keep-alive windows, falling back to the fixed keep-alive). An arrival is warm when
 * the function's instance is loaded at that moment; memory-time is the time instances are loaded
 * while idle.
 *
 * Part 2, one-to-all (zygotes): the first arrivals that found no warm instance (the adaptive
 * run's cold starts) all ask one template's zygote set, refilled by one thread that takes
 * --refill-ms per restore. Fixed set sizes against the demand-window policy: misses (a restore
 * on the request's path) against zygote memory-time.
 *
 * Arrivals are synthetic, shaped like the Azure Functions trace's classes (timers, steady
 * Poisson traffic, bursts, rare functions; seeded, reproducible), or replayed from a CSV file of
 * "function,arrival_ms[,duration_ms]" lines (--trace).
 *
 * Build: cc -O2 -Isrc/lib bench/pool-sim/{pool-sim,sim}.c src/lib/7-pool/pool_policy.c -lm -o pool-sim
 * (or meson: bench/pool-sim/meson.build).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_policy.h"
#include "sim.h"

static int compare_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

typedef struct policy_row {
        const char *name;
        uint64_t fixed;
        bool adaptive;
} policy_row;

static void report_keepalive(const trace *tr, const policy_row *rows, size_t n_rows, demands *cold_at)
{
        printf("one-to-one: %zu functions, one instance each\n", tr->n);
        printf("  %-28s %9s %10s %12s %14s\n", "policy", "cold %", "p75 app %", "apps 0 cold",
               "idle inst-h");
        double *per_app = calloc(tr->n ? tr->n : 1, sizeof(double));
        for (size_t r = 0; r < n_rows; r++) {
                outcome total = {0};
                unsigned never_cold = 0;
                for (size_t k = 0; k < tr->n; k++) {
                        demands *d = rows[r].adaptive && r == n_rows - 1 ? cold_at : NULL;
                        outcome o = sim_function(&tr->f[k], rows[r].fixed, rows[r].adaptive, d);
                        total.arrivals += o.arrivals;
                        total.cold += o.cold;
                        total.idle_loaded_s += o.idle_loaded_s;
                        per_app[k] = o.arrivals ? 100.0 * o.cold / o.arrivals : 0;
                        never_cold += o.cold <= 1; /* the first is unavoidable */
                }
                qsort(per_app, tr->n, sizeof(double), compare_double);
                printf("  %-28s %9.2f %10.1f %12u %14.1f\n", rows[r].name,
                       total.arrivals ? 100.0 * total.cold / total.arrivals : 0, per_app[tr->n * 3 / 4],
                       never_cold, total.idle_loaded_s / 3600);
        }
        free(per_app);
}

static void report_classes(const trace *tr, const policy_row *rows, size_t n_rows)
{
        static const char *const classes[] = {"timer", "poisson", "bursty", "rare", "trace"};
        printf("\n  cold %% by class (idle instance-hours)\n  %-28s", "policy");
        for (size_t c = 0; c < 5; c++)
                printf(" %18s", classes[c]);
        printf("\n");
        for (size_t r = 0; r < n_rows; r++) {
                printf("  %-28s", rows[r].name);
                for (size_t c = 0; c < 5; c++) {
                        outcome total = {0};
                        for (size_t k = 0; k < tr->n; k++) {
                                if (strcmp(tr->f[k].cls, classes[c]))
                                        continue;
                                outcome o = sim_function(&tr->f[k], rows[r].fixed, rows[r].adaptive, NULL);
                                total.arrivals += o.arrivals;
                                total.cold += o.cold;
                                total.idle_loaded_s += o.idle_loaded_s;
                        }
                        if (!total.arrivals)
                                printf(" %18s", "-");
                        else
                                printf(" %8.2f (%7.1f)", 100.0 * total.cold / total.arrivals,
                                       total.idle_loaded_s / 3600);
                }
                printf("\n");
        }
}

/* --- part 2: one template's zygotes --- */

typedef struct zygote_outcome {
        uint64_t demands, misses;
        double zygote_s; /* zygote-seconds held */
} zygote_outcome;

static int compare_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* The pool's loop in events: demands take a ready zygote or miss; one refiller restores up to the
 * target; the reaper trims above it once a second. adaptive false: the target is min. */
static zygote_outcome simulate_zygotes(const demands *d, uint64_t refill, uint64_t horizon, unsigned min, unsigned max,
                                       bool adaptive)
{
        zygote_outcome o = {0};
        demand_log log = {0};
        unsigned ready = 0;
        bool refilling = false;
        uint64_t refill_done = 0, now = 0, tick = S;
        size_t k = 0;
        for (;;) {
                uint64_t next_demand = k < d->n ? d->t[k] : UINT64_MAX;
                uint64_t next = next_demand < tick ? next_demand : tick;
                if (refilling && refill_done < next)
                        next = refill_done;
                if (next == UINT64_MAX || k >= d->n)
                        break;
                o.zygote_s += ready * (double)(next - now) / S;
                now = next;
                unsigned target = adaptive ? policy_zygote_target(&log, now, refill, horizon, min, max) : min;
                if (refilling && now == refill_done) {
                        refilling = false;
                        ready++;
                } else if (now == next_demand) {
                        demand_record(&log, now);
                        o.demands++;
                        if (ready)
                                ready--;
                        else
                                o.misses++;
                        k++;
                        target = adaptive ? policy_zygote_target(&log, now, refill, horizon, min, max) : min;
                } else {
                        tick += S;
                        if (ready > target)
                                ready = target; /* the reaper trims */
                }
                if (!refilling && ready < target) {
                        refilling = true;
                        refill_done = now + refill;
                }
        }
        return o;
}

/* Scale-out waves: a caller that needs k instances at once (a burst of concurrent requests),
 * every few minutes, over a trickle of single demands. */
static void gen_scaleout(demands *d, uint64_t span)
{
        for (double t = sim_rng_exp(3 * MIN); t < span; t += sim_rng_exp(3 * MIN)) {
                unsigned k = 2 + (unsigned)(sim_rng_unit() * 10);
                double at = t;
                for (unsigned j = 0; j < k; j++, at += sim_rng_exp(10 * MS))
                        sim_demands_push(d, (uint64_t)at);
        }
        for (double t = sim_rng_exp(20 * S); t < span; t += sim_rng_exp(20 * S))
                sim_demands_push(d, (uint64_t)t);
}

static void report_zygotes(const char *what, demands *d, uint64_t refill, unsigned mem_mb)
{
        qsort(d->t, d->n, sizeof(*d->t), compare_u64);
        printf("\none-to-all: %zu zygote demands (%s), refill %.0f ms\n", d->n, what, refill / (double)MS);
        printf("  %-28s %9s %14s\n", "zygote set", "miss %", "zygote GiB-h");
        static const struct {
                const char *name;
                unsigned min, max;
                bool adaptive;
                uint64_t horizon;
        } rows[] = {
                {"fixed 1", 1, 1, false, 0}, {"fixed 4", 4, 4, false, 0},
                {"adaptive 0..4, 1 min", 0, 4, true, MIN}, {"adaptive 1..4, 1 min", 1, 4, true, MIN},
                {"adaptive 1..4, 10 min", 1, 4, true, 10 * MIN}, {"adaptive 1..8, 1 min", 1, 8, true, MIN},
                {"adaptive 1..8, 10 min", 1, 8, true, 10 * MIN},
        };
        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
                zygote_outcome o = simulate_zygotes(d, refill, rows[r].horizon, rows[r].min, rows[r].max,
                                                    rows[r].adaptive);
                printf("  %-28s %9.2f %14.1f\n", rows[r].name, o.demands ? 100.0 * o.misses / o.demands : 0,
                       o.zygote_s / 3600 * mem_mb / 1024);
        }
}

static void usage(FILE *out)
{
        fprintf(out, "usage: pool-sim [--functions N] [--days D] [--seed S] [--trace FILE.csv]\n"
                     "                [--refill-ms MS] [--memory-mb MB]\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"functions", required_argument, NULL, 'n'}, {"days", required_argument, NULL, 'd'},
                {"seed", required_argument, NULL, 's'}, {"trace", required_argument, NULL, 't'},
                {"refill-ms", required_argument, NULL, 'r'}, {"memory-mb", required_argument, NULL, 'm'},
                {"help", no_argument, NULL, 'h'}, {0},
        };
        unsigned n = 200, mem_mb = 256;
        double days = 7, refill_ms = 40;
        const char *trace_path = NULL;
        unsigned long long seed = 42;
        for (int c; (c = getopt_long(argc, argv, "n:d:s:t:r:m:h", opts, NULL)) != -1;) {
                switch (c) {
                case 'n': n = (unsigned)atoi(optarg); break;
                case 'd': days = atof(optarg); break;
                case 's': seed = strtoull(optarg, NULL, 10); break;
                case 't': trace_path = optarg; break;
                case 'r': refill_ms = atof(optarg); break;
                case 'm': mem_mb = (unsigned)atoi(optarg); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        trace tr = {0};
        if (trace_path) {
                int r = sim_trace_load(&tr, trace_path);
                if (r < 0) {
                        fprintf(stderr, "pool-sim: %s: %s\n", trace_path, strerror(-r));
                        return 1;
                }
        } else {
                sim_seed(seed);
                sim_trace_synthetic(&tr, n, (uint64_t)(days * 24 * HOUR));
        }
        const policy_row rows[] = {
                {"fixed 10 min", 10 * MIN, false}, {"fixed 20 min", 20 * MIN, false},
                {"fixed 60 min", 60 * MIN, false}, {"adaptive (fallback 10 min)", 10 * MIN, true},
                {"adaptive (fallback 60 min)", 60 * MIN, true},
        };
        size_t n_rows = sizeof(rows) / sizeof(rows[0]);
        demands cold_at = {0};
        if (!trace_path)
                printf("synthetic trace: %u functions over %.1f days, seed %llu\n", n, days, seed);
        report_keepalive(&tr, rows, n_rows, &cold_at);
        report_classes(&tr, rows, n_rows);
        report_zygotes("the adaptive run's cold starts", &cold_at, (uint64_t)(refill_ms * MS), mem_mb);
        demands waves = {0};
        gen_scaleout(&waves, tr.n && !trace_path ? (uint64_t)(days * 24 * HOUR) : 7 * 24 * HOUR);
        report_zygotes("scale-out waves of 2-11 within ~10 ms every ~3 min, one every ~20 s between",
                       &waves, (uint64_t)(refill_ms * MS), mem_mb);
        free(waves.t);
        sim_trace_free(&tr);
        free(cold_at.t);
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool-sim: replays arrivals through the pool's own sizing policy (src/lib/pool_policy.c) and
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
 * Build: cc -O2 -Isrc/lib bench/pool-sim/pool-sim.c src/lib/pool_policy.c -lm -o pool-sim
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

#define MS 1000ull
#define S 1000000ull
#define MIN (60 * S)
#define HOUR (60 * MIN)

typedef struct arrival {
        uint64_t t, duration;
} arrival;

typedef struct function {
        char name[64];
        const char *cls;
        arrival *a;
        size_t n, cap;
} function;

typedef struct trace {
        function *f;
        size_t n, cap;
} trace;

/* --- a small deterministic generator: splitmix64 --- */
static uint64_t rng_state = 42;
static uint64_t rng_next(void)
{
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}
static double rng_unit(void) { return (rng_next() >> 11) * (1.0 / 9007199254740992.0); }
static double rng_exp(double mean) { return -mean * log(1.0 - rng_unit()); }

static void push(function *f, uint64_t t, uint64_t duration)
{
        if (f->n == f->cap) {
                f->cap = f->cap ? 2 * f->cap : 64;
                f->a = realloc(f->a, f->cap * sizeof(*f->a));
                if (!f->a)
                        abort();
        }
        f->a[f->n++] = (arrival){t, duration};
}

static function *add_function(trace *tr, const char *name, const char *cls)
{
        if (tr->n == tr->cap) {
                tr->cap = tr->cap ? 2 * tr->cap : 64;
                tr->f = realloc(tr->f, tr->cap * sizeof(*tr->f));
                if (!tr->f)
                        abort();
        }
        function *f = &tr->f[tr->n++];
        memset(f, 0, sizeof(*f));
        snprintf(f->name, sizeof(f->name), "%s", name);
        f->cls = cls;
        return f;
}

static uint64_t duration_sample(void) { return (uint64_t)(20 * MS + rng_exp(80 * MS)); }

/* The classes, in proportions that follow the trace's shape: most functions are rare or timers,
 * most invocations come from a few busy ones. */
static void gen_timer(function *f, uint64_t span)
{
        static const uint64_t periods[] = {1 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR};
        uint64_t period = periods[rng_next() % 6], t = rng_next() % period;
        double jitter = rng_unit() < 0.5 ? 0.01 : 0.1;
        for (; t < span; t += (uint64_t)(period * (1 + jitter * (2 * rng_unit() - 1))))
                push(f, t, duration_sample());
}

static void gen_poisson(function *f, uint64_t span)
{
        double mean = (5 + rng_unit() * 115) * S; /* one every 5 s to 2 min */
        for (double t = rng_exp(mean); t < span; t += rng_exp(mean))
                push(f, (uint64_t)t, duration_sample());
}

static void gen_bursty(function *f, uint64_t span)
{
        double off = (20 + rng_unit() * 100) * MIN; /* quiet for 20 min to 2 h */
        for (double t = rng_exp(off); t < span; t += rng_exp(off)) {
                unsigned k = 3 + (unsigned)(rng_unit() * 30);
                for (unsigned j = 0; j < k && t < span; j++, t += rng_exp(2 * S))
                        push(f, (uint64_t)t, duration_sample());
        }
}

static void gen_rare(function *f, uint64_t span)
{
        double mean = (2 + rng_unit() * 22) * HOUR; /* a few times a day or less */
        for (double t = rng_exp(mean); t < span; t += rng_exp(mean))
                push(f, (uint64_t)t, duration_sample());
}

static void gen_synthetic(trace *tr, unsigned n, uint64_t span)
{
        static const struct {
                const char *cls;
                double share;
                void (*gen)(function *, uint64_t);
        } classes[] = {
                {"timer", 0.30, gen_timer}, {"poisson", 0.20, gen_poisson},
                {"bursty", 0.20, gen_bursty}, {"rare", 0.30, gen_rare},
        };
        for (size_t c = 0; c < 4; c++) {
                unsigned count = (unsigned)(n * classes[c].share + 0.5);
                for (unsigned k = 0; k < count; k++) {
                        char name[64];
                        snprintf(name, sizeof(name), "%s-%u", classes[c].cls, k);
                        classes[c].gen(add_function(tr, name, classes[c].cls), span);
                }
        }
}

static int compare_arrivals(const void *a, const void *b)
{
        uint64_t x = ((const arrival *)a)->t, y = ((const arrival *)b)->t;
        return x < y ? -1 : x > y;
}

static int load_trace(trace *tr, const char *path)
{
        FILE *in = fopen(path, "re");
        if (!in)
                return -errno;
        char line[512], name[64];
        double t_ms, d_ms;
        while (fgets(line, sizeof(line), in)) {
                int got = sscanf(line, "%63[^,],%lf,%lf", name, &t_ms, &d_ms);
                if (got < 2)
                        continue; /* header or blank */
                function *f = NULL;
                for (size_t k = 0; k < tr->n && !f; k++)
                        if (!strcmp(tr->f[k].name, name))
                                f = &tr->f[k];
                if (!f)
                        f = add_function(tr, name, "trace");
                push(f, (uint64_t)(t_ms * MS), got == 3 ? (uint64_t)(d_ms * MS) : 100 * MS);
        }
        fclose(in);
        for (size_t k = 0; k < tr->n; k++)
                qsort(tr->f[k].a, tr->f[k].n, sizeof(arrival), compare_arrivals);
        return 0;
}

/* --- part 1: one instance per function --- */

typedef struct outcome {
        uint64_t arrivals, cold;
        double idle_loaded_s; /* instance-seconds loaded while idle */
} outcome;

typedef struct demands {
        uint64_t *t;
        size_t n, cap;
} demands;

static void demands_push(demands *d, uint64_t t)
{
        if (!d)
                return;
        if (d->n == d->cap) {
                d->cap = d->cap ? 2 * d->cap : 1024;
                d->t = realloc(d->t, d->cap * sizeof(*d->t));
                if (!d->t)
                        abort();
        }
        d->t[d->n++] = t;
}

/* One function under fixed keep-alive (adaptive false) or the histogram policy. Cold starts are
 * appended to cold_at when given. */
static outcome simulate_function(const function *f, uint64_t fixed_keepalive, bool adaptive, demands *cold_at)
{
        outcome o = {0};
        idle_histogram h;
        idle_histogram_init(&h, fixed_keepalive);
        const keepalive_params params = keepalive_params_default(fixed_keepalive);
        keepalive_windows w = {0};
        uint64_t end = 0;  /* end of the latest invocation */
        bool ran = false;
        for (size_t k = 0; k < f->n; k++) {
                uint64_t t = f->a[k].t;
                bool warm;
                if (ran && t < end) {
                        warm = true; /* still running: the single instance is there */
                } else if (ran) {
                        uint64_t from = end + w.prewarm_us, until = from + w.keepalive_us;
                        warm = t >= from && t <= until;
                        uint64_t to = t < until ? t : until;
                        if (to > from)
                                o.idle_loaded_s += (to - from) / (double)S;
                } else {
                        warm = false;
                }
                o.arrivals++;
                if (!warm) {
                        o.cold++;
                        demands_push(cold_at, t);
                }
                idle_histogram_arrival(&h, t);
                uint64_t e = t + f->a[k].duration;
                if (e > end)
                        end = e;
                ran = true;
                w = adaptive ? policy_keepalive(&h, &params) : (keepalive_windows){0, fixed_keepalive, false};
                idle_histogram_done(&h, e);
        }
        if (ran) /* the last instance lives out its window */
                o.idle_loaded_s += w.keepalive_us / (double)S;
        return o;
}

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
                        outcome o = simulate_function(&tr->f[k], rows[r].fixed, rows[r].adaptive, d);
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
                                outcome o = simulate_function(&tr->f[k], rows[r].fixed, rows[r].adaptive, NULL);
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
        for (double t = rng_exp(3 * MIN); t < span; t += rng_exp(3 * MIN)) {
                unsigned k = 2 + (unsigned)(rng_unit() * 10);
                double at = t;
                for (unsigned j = 0; j < k; j++, at += rng_exp(10 * MS))
                        demands_push(d, (uint64_t)at);
        }
        for (double t = rng_exp(20 * S); t < span; t += rng_exp(20 * S))
                demands_push(d, (uint64_t)t);
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
        unsigned long long seed = rng_state;
        for (int c; (c = getopt_long(argc, argv, "n:d:s:t:r:m:h", opts, NULL)) != -1;) {
                switch (c) {
                case 'n': n = (unsigned)atoi(optarg); break;
                case 'd': days = atof(optarg); break;
                case 's': seed = rng_state = strtoull(optarg, NULL, 10); break;
                case 't': trace_path = optarg; break;
                case 'r': refill_ms = atof(optarg); break;
                case 'm': mem_mb = (unsigned)atoi(optarg); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        trace tr = {0};
        if (trace_path) {
                int r = load_trace(&tr, trace_path);
                if (r < 0) {
                        fprintf(stderr, "pool-sim: %s: %s\n", trace_path, strerror(-r));
                        return 1;
                }
        } else {
                gen_synthetic(&tr, n, (uint64_t)(days * 24 * HOUR));
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
        for (size_t k = 0; k < tr.n; k++)
                free(tr.f[k].a);
        free(tr.f);
        free(cold_at.t);
        return 0;
}

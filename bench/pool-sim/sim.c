/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_policy.h"
#include "sim.h"

/* --- a small deterministic generator: splitmix64 --- */
static uint64_t rng_state = 42;

void sim_seed(uint64_t seed) { rng_state = seed; }
static uint64_t rng_next(void)
{
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}
double sim_rng_unit(void) { return (rng_next() >> 11) * (1.0 / 9007199254740992.0); }
double sim_rng_exp(double mean) { return -mean * log(1.0 - sim_rng_unit()); }

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

static uint64_t duration_sample(void) { return (uint64_t)(20 * MS + sim_rng_exp(80 * MS)); }

/* The classes, in proportions that follow the trace's shape: most functions are rare or timers,
 * most invocations come from a few busy ones. */
static void gen_timer(function *f, uint64_t span)
{
        static const uint64_t periods[] = {1 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR};
        uint64_t period = periods[rng_next() % 6], t = rng_next() % period;
        double jitter = sim_rng_unit() < 0.5 ? 0.01 : 0.1;
        for (; t < span; t += (uint64_t)(period * (1 + jitter * (2 * sim_rng_unit() - 1))))
                push(f, t, duration_sample());
}

static void gen_poisson(function *f, uint64_t span)
{
        double mean = (5 + sim_rng_unit() * 115) * S; /* one every 5 s to 2 min */
        for (double t = sim_rng_exp(mean); t < span; t += sim_rng_exp(mean))
                push(f, (uint64_t)t, duration_sample());
}

static void gen_bursty(function *f, uint64_t span)
{
        double off = (20 + sim_rng_unit() * 100) * MIN; /* quiet for 20 min to 2 h */
        for (double t = sim_rng_exp(off); t < span; t += sim_rng_exp(off)) {
                unsigned k = 3 + (unsigned)(sim_rng_unit() * 30);
                for (unsigned j = 0; j < k && t < span; j++, t += sim_rng_exp(2 * S))
                        push(f, (uint64_t)t, duration_sample());
        }
}

static void gen_rare(function *f, uint64_t span)
{
        double mean = (2 + sim_rng_unit() * 22) * HOUR; /* a few times a day or less */
        for (double t = sim_rng_exp(mean); t < span; t += sim_rng_exp(mean))
                push(f, (uint64_t)t, duration_sample());
}

void sim_trace_synthetic(trace *tr, unsigned n, uint64_t span)
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

int sim_trace_load(trace *tr, const char *path)
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

void sim_trace_free(trace *tr)
{
        for (size_t k = 0; k < tr->n; k++)
                free(tr->f[k].a);
        free(tr->f);
        *tr = (trace){0};
}

void sim_demands_push(demands *d, uint64_t t)
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

outcome sim_function(const function *f, uint64_t fixed_keepalive, bool adaptive, demands *cold_at)
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
                        sim_demands_push(cold_at, t);
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

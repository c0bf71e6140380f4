/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replay: the synthetic trace of pool-sim played against a real pool (real CRIU, hello.py),
 * compressed in time, once with a fixed keep-alive and once adaptive, next to what the
 * one-instance model of pool-sim predicts for the same arrivals. It checks that the pool does
 * what its policy says, with restores, threads and several instances per function in the way.
 *
 * Time runs --scale times faster than the trace (default 200: 10 simulated minutes are 3 s), so
 * the functions' keep-alive is 600 s / scale. Each arrival is one pw_pool_invoke on a thread of
 * its own at its (scaled) time; a sampler reads the pool's stats every 10 ms. Reported in trace
 * time: warm-set misses (the invocation did not find a warm instance: it took a zygote, restored
 * or cold-started) and the instance-hours of warm instances held while idle.
 *
 * Usage: replay --state-dir DIR [--functions N] [--hours H] [--scale X] [--seed S]  (root)
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prewarm.h"
#include "sim.h"

static uint64_t mono_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void sleep_until(uint64_t when_us)
{
        uint64_t now = mono_us();
        if (when_us > now)
                usleep((useconds_t)(when_us - now));
}

typedef struct run {
        pw_pool *pool;
        atomic_uint in_flight;
        atomic_uint sources[5], failures;
        atomic_bool stop;
        double idle_instance_s; /* real seconds x idle warm instances */
        double zygote_s;
} run;

typedef struct call {
        run *r;
        char key[64];
} call;

static void *call_main(void *userdata)
{
        call *c = userdata;
        pw_invoke_info info = {.size = sizeof(info)};
        char *result = NULL;
        if (pw_pool_invoke(c->r->pool, c->key, NULL, &result, NULL, &info) == 0 && info.source >= 0 && info.source < 5)
                atomic_fetch_add(&c->r->sources[info.source], 1);
        else
                atomic_fetch_add(&c->r->failures, 1);
        free(result);
        atomic_fetch_sub(&c->r->in_flight, 1);
        free(c);
        return NULL;
}

static void *sampler_main(void *userdata)
{
        run *r = userdata;
        uint64_t last = mono_us();
        while (!atomic_load(&r->stop)) {
                usleep(10000);
                pw_pool_stats s = {.size = sizeof(s)};
                uint64_t now = mono_us();
                if (pw_pool_stats_get(r->pool, &s) == 0) {
                        r->idle_instance_s += s.warm_instances * (now - last) / 1e6;
                        r->zygote_s += s.zygotes_ready * (now - last) / 1e6;
                }
                last = now;
        }
        return NULL;
}

typedef struct event {
        uint64_t t;
        size_t fn;
} event;

static int compare_events(const void *a, const void *b)
{
        uint64_t x = ((const event *)a)->t, y = ((const event *)b)->t;
        return x < y ? -1 : x > y;
}

static event *merge(const trace *tr, size_t *ret_n)
{
        size_t n = 0, k = 0;
        for (size_t f = 0; f < tr->n; f++)
                n += tr->f[f].n;
        event *ev = calloc(n ? n : 1, sizeof(*ev));
        for (size_t f = 0; ev && f < tr->n; f++)
                for (size_t a = 0; a < tr->f[f].n; a++)
                        ev[k++] = (event){tr->f[f].a[a].t, f};
        if (ev)
                qsort(ev, n, sizeof(*ev), compare_events);
        *ret_n = n;
        return ev;
}

static int play(pw_engine *e, const trace *tr, const event *ev, size_t n, double scale, bool adaptive, run *r)
{
        const pw_pool_options o = {.zygotes_min = 1, .zygotes_max = 4, .adaptive = adaptive};
        if (pw_pool_new(e, &o, &r->pool) < 0)
                return -1;
        unsigned keepalive_s = (unsigned)(600 / scale + 0.5) ? (unsigned)(600 / scale + 0.5) : 1;
        for (size_t f = 0; f < tr->n; f++) {
                const pw_pool_function pf = {.template_name = "python3",
                                             .fn = {.code_uri = FUNCTIONS_DIR "/hello.py"},
                                             .timeout_ms = 30000, .keepalive_s = keepalive_s};
                pw_pool_set_function(r->pool, tr->f[f].name, &pf);
        }
        pw_pool_prewarm(r->pool, "python3");
        pthread_t sampler;
        pthread_create(&sampler, NULL, sampler_main, r);
        uint64_t start = mono_us() + 500000;
        for (size_t k = 0; k < n; k++) {
                sleep_until(start + (uint64_t)(ev[k].t / scale));
                call *c = calloc(1, sizeof(*c));
                if (!c)
                        continue;
                c->r = r;
                snprintf(c->key, sizeof(c->key), "%s", tr->f[ev[k].fn].name);
                atomic_fetch_add(&r->in_flight, 1);
                pthread_t th;
                if (pthread_create(&th, NULL, call_main, c) == 0) {
                        pthread_detach(th);
                } else {
                        atomic_fetch_sub(&r->in_flight, 1);
                        free(c);
                }
        }
        while (atomic_load(&r->in_flight) > 0)
                usleep(10000);
        atomic_store(&r->stop, true);
        pthread_join(sampler, NULL);
        r->pool = pw_pool_free(r->pool);
        return 0;
}

static void report(const char *name, const run *r, double scale, const outcome *model)
{
        unsigned total = r->failures, warm = r->sources[PW_SOURCE_WARM];
        for (int s = 0; s < 5; s++)
                total += r->sources[s];
        printf("  %-9s %6u %7.2f %%  (zygote %u, restore %u, cold %u, failed %u)  %8.2f inst-h  %6.2f zyg-h"
               "   model: %6.2f %%  %8.2f inst-h\n",
               name, total, total ? 100.0 * (total - warm) / total : 0, r->sources[PW_SOURCE_ZYGOTE],
               r->sources[PW_SOURCE_RESTORE], r->sources[PW_SOURCE_COLD_START], r->failures,
               r->idle_instance_s * scale / 3600, r->zygote_s * scale / 3600,
               model->arrivals ? 100.0 * model->cold / model->arrivals : 0, model->idle_loaded_s / 3600);
}

static outcome model_of(const trace *tr, bool adaptive)
{
        outcome total = {0};
        for (size_t f = 0; f < tr->n; f++) {
                outcome o = sim_function(&tr->f[f], 600 * S, adaptive, NULL);
                total.arrivals += o.arrivals;
                total.cold += o.cold;
                total.idle_loaded_s += o.idle_loaded_s;
        }
        return total;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"state-dir", required_argument, NULL, 'd'}, {"functions", required_argument, NULL, 'n'},
                {"hours", required_argument, NULL, 'H'}, {"scale", required_argument, NULL, 'x'},
                {"seed", required_argument, NULL, 's'}, {0},
        };
        const char *state = getenv("PREWARM_STATE_DIR");
        unsigned n = 12;
        double hours = 3, scale = 200;
        unsigned long long seed = 42;
        for (int c; (c = getopt_long(argc, argv, "d:n:H:x:s:", opts, NULL)) != -1;) {
                switch (c) {
                case 'd': state = optarg; break;
                case 'n': n = (unsigned)atoi(optarg); break;
                case 'H': hours = atof(optarg); break;
                case 'x': scale = atof(optarg) > 1 ? atof(optarg) : 1; break;
                case 's': seed = strtoull(optarg, NULL, 10); break;
                default: return 2;
                }
        }
        if (!state)
                return fprintf(stderr, "replay: give --state-dir (or PREWARM_STATE_DIR)\n"), 2;
        const pw_options eo = {.state_dir = state};
        pw_engine *e = NULL;
        if (pw_engine_new(&eo, &e) < 0 || pw_template_build(e, "python3") < 0)
                return fprintf(stderr, "replay: %s\n", e ? pw_engine_last_error(e) : "no engine"), 1;

        trace tr = {0};
        sim_seed(seed);
        sim_trace_synthetic(&tr, n, (uint64_t)(hours * HOUR));
        size_t n_events = 0;
        event *ev = merge(&tr, &n_events);
        printf("%zu functions, %zu invocations over %.1f trace hours, played %.0fx faster (%.0f s), keep-alive 600 s\n",
               tr.n, n_events, hours, scale, hours * 3600 / scale);
        printf("  %-9s %6s %9s %56s %14s %10s\n", "policy", "calls", "misses", "", "idle warm", "zygotes");
        static const char *const names[] = {"fixed", "adaptive"};
        for (int a = 0; a < 2 && ev; a++) {
                run r = {0};
                if (play(e, &tr, ev, n_events, scale, a == 1, &r) < 0)
                        return 1;
                outcome model = model_of(&tr, a == 1);
                report(names[a], &r, scale, &model);
        }
        free(ev);
        sim_trace_free(&tr);
        pw_engine_free(e);
        return 0;
}

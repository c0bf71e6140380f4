/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What pool-sim and replay share: arrival traces (synthetic, shaped like the Azure Functions
 * trace's classes, or loaded from CSV) and the one-instance-per-function model of keep-alive
 * policies over them, driven by the pool's own policy code (src/lib/7-pool/pool_policy.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS 1000ull
#define S 1000000ull
#define MIN (60 * S)
#define HOUR (60 * MIN)

typedef struct arrival {
        uint64_t t, duration;
} arrival;

typedef struct function {
        char name[64];
        const char *cls;  /* "timer", "poisson", "bursty", "rare" or "trace" */
        arrival *a;
        size_t n, cap;
} function;

typedef struct trace {
        function *f;
        size_t n, cap;
} trace;

/* The generator is deterministic: seed it, then draw. */
void sim_seed(uint64_t seed);
double sim_rng_unit(void);
double sim_rng_exp(double mean);

/* n functions over span microseconds, in the classes' proportions. */
void sim_trace_synthetic(trace *tr, unsigned n, uint64_t span);
/* "function,arrival_ms[,duration_ms]" lines; arrivals sorted per function. Negative errno. */
int sim_trace_load(trace *tr, const char *path);
void sim_trace_free(trace *tr);

typedef struct outcome {
        uint64_t arrivals, cold;
        double idle_loaded_s; /* instance-seconds loaded while idle */
} outcome;

typedef struct demands {
        uint64_t *t;
        size_t n, cap;
} demands;

void sim_demands_push(demands *d, uint64_t t);

/* One function with one instance under a fixed keep-alive (adaptive false) or the histogram
 * policy. Cold starts are appended to cold_at when given. */
outcome sim_function(const function *f, uint64_t fixed_keepalive, bool adaptive, demands *cold_at);

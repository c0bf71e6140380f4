/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How big the pool's sets should be: pure decisions over observed arrivals, free of processes,
 * locks and clocks (every time is passed in, in microseconds), so that the unit tests and the
 * simulator in bench/pool-sim drive them with synthetic time. docs/pools.md explains the choices.
 *
 * One-to-one (a function's warm instances): a histogram of the function's idle times, the gaps
 * between the end of one invocation and the next arrival, as in "Serverless in the Wild"
 * (Shahrad et al., ATC'20). Its head gives a pre-warm window (unload after use, load again just
 * before the next arrival is expected), its tail the keep-alive window. A histogram that is not
 * representative (few samples, flat, or mostly beyond its range) falls back to the fixed
 * keep-alive.
 *
 * One-to-all (a template's zygotes): the largest number of zygote demands that fell into any
 * window as long as one refill (a restore) over a recent horizon: the burst one refilling thread
 * cannot keep up with, so the one the ready set must absorb.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDLE_BINS 240
/* Bins span 4 x the fixed keep-alive: the paper's 4 hours of 1-minute bins for its 1-hour
 * keep-alive, scaled to whatever keep-alive a function has. */
#define IDLE_RANGE_FACTOR 4

typedef struct idle_histogram {
        uint64_t bin_us;            /* width of one bin */
        uint32_t bins[IDLE_BINS];
        uint32_t samples;           /* idle periods recorded, in range or not */
        uint32_t out_of_range;      /* idle periods longer than the histogram's range */
        uint64_t last_end_us;       /* end of the last invocation; 0 before the first */
        unsigned in_flight;         /* invocations running now */
} idle_histogram;

/* An empty histogram for a function whose fixed keep-alive is fixed_keepalive_us. */
void idle_histogram_init(idle_histogram *h, uint64_t fixed_keepalive_us);
/* An invocation arrived at now: ends an idle period when nothing was running. */
void idle_histogram_arrival(idle_histogram *h, uint64_t now);
/* An invocation ended at now. */
void idle_histogram_done(idle_histogram *h, uint64_t now);

typedef struct keepalive_windows {
        /* 0: keep the instance loaded after use. Else unload it at once and load it again this
         * long after the end of the last invocation. */
        uint64_t prewarm_us;
        /* How long an instance stays loaded: after use, or after the pre-warm when there is one. */
        uint64_t keepalive_us;
        bool from_histogram;        /* false: the fixed keep-alive, the histogram says too little */
} keepalive_windows;

typedef struct keepalive_params {
        uint64_t fixed_keepalive_us;
        unsigned min_samples;       /* fewer idle periods: not representative (default 10) */
        double min_cv;              /* coefficient of variation of the bin counts below which the
                                     * histogram is too flat to trust (default 2, as the paper) */
        double max_out_of_range;    /* fraction of idle periods beyond the range (default 0.5) */
        unsigned head_pct, tail_pct;/* percentiles for the two windows (default 5, 99) */
        double margin;              /* widens both windows (default 0.1) */
} keepalive_params;

/* The paper's defaults around fixed_keepalive_us. */
keepalive_params keepalive_params_default(uint64_t fixed_keepalive_us);

/* The windows for the function whose histogram is h. */
keepalive_windows policy_keepalive(const idle_histogram *h, const keepalive_params *p);

#define DEMAND_LOG 256

/* When zygotes were asked for (a taken zygote or a miss), newest last, DEMAND_LOG at most. */
typedef struct demand_log {
        uint64_t t[DEMAND_LOG];
        unsigned head, n;
} demand_log;

void demand_record(demand_log *d, uint64_t now);

/* How many zygotes a template should keep ready: the most demands within any refill_us over the
 * last horizon_us before now, clamped to [min, max]. */
unsigned policy_zygote_target(const demand_log *d, uint64_t now, uint64_t refill_us, uint64_t horizon_us,
                              unsigned min, unsigned max);

/* Shares budget_mb (0: no limit) among n templates that want want[k] zygotes of mem_mb[k] each:
 * first one zygote each, in turn, then the next one each, until the wants or the budget run out.
 * Writes ret_target[k]. */
void policy_fit_budget(const unsigned *want, const unsigned *mem_mb, size_t n, uint64_t budget_mb,
                       unsigned *ret_target);

/* A smoothed refill time: weight 1/4 to the new sample, the first sample taken as is. */
uint64_t policy_refill_estimate(uint64_t old_us, uint64_t sample_us);

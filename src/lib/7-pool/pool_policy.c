/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pool's sizing policy, pure computation on synthetic time: keep-alive windows from idle-time
 * histograms, zygote targets from demand bursts, and fitting them in a memory budget.
 */
#include <string.h>

#include "pool_policy.h"

void idle_histogram_init(idle_histogram *h, uint64_t fixed_keepalive_us)
{
        memset(h, 0, sizeof(*h));
        h->bin_us = fixed_keepalive_us * IDLE_RANGE_FACTOR / IDLE_BINS;
        if (h->bin_us == 0)
                h->bin_us = 1;
}

void idle_histogram_arrival(idle_histogram *h, uint64_t now)
{
        /* Arrivals while another invocation runs end no idle period: the function was busy. */
        if (h->in_flight++ > 0 || h->last_end_us == 0)
                return;
        uint64_t gap = now > h->last_end_us ? now - h->last_end_us : 0;
        uint64_t bin = gap / h->bin_us;
        h->samples++;
        if (bin >= IDLE_BINS)
                h->out_of_range++;
        else
                h->bins[bin]++;
}

void idle_histogram_done(idle_histogram *h, uint64_t now)
{
        if (h->in_flight > 0)
                h->in_flight--;
        if (h->in_flight == 0)
                h->last_end_us = now ? now : 1; /* 0 means "never ran" */
}

keepalive_params keepalive_params_default(uint64_t fixed_keepalive_us)
{
        return (keepalive_params){
                .fixed_keepalive_us = fixed_keepalive_us, .min_samples = 10, .min_cv = 2.0,
                .max_out_of_range = 0.5, .head_pct = 5, .tail_pct = 99, .margin = 0.1,
        };
}

/* Is the histogram peaked enough to predict from? The paper's test: the coefficient of variation
 * of the bin counts. A flat histogram (arrivals at random) has a low one. */
static bool peaked(const idle_histogram *h, uint32_t in_range, double min_cv)
{
        double mean = (double)in_range / IDLE_BINS, var = 0;
        for (size_t k = 0; k < IDLE_BINS; k++)
                var += ((double)h->bins[k] - mean) * ((double)h->bins[k] - mean);
        var /= IDLE_BINS;
        return var >= min_cv * min_cv * mean * mean; /* sqrt(var) / mean >= min_cv */
}

/* The first bin at which the cumulative count reaches pct percent of total. */
static size_t percentile_bin(const idle_histogram *h, uint32_t total, unsigned pct)
{
        uint64_t want = ((uint64_t)total * pct + 99) / 100, seen = 0;
        if (want == 0)
                want = 1;
        for (size_t k = 0; k < IDLE_BINS; k++) {
                seen += h->bins[k];
                if (seen >= want)
                        return k;
        }
        return IDLE_BINS - 1;
}

keepalive_windows policy_keepalive(const idle_histogram *h, const keepalive_params *p)
{
        const keepalive_windows fixed = {0, p->fixed_keepalive_us, false};
        uint32_t in_range = h->samples - h->out_of_range;
        if (h->samples < p->min_samples || in_range == 0 ||
            h->out_of_range > p->max_out_of_range * h->samples || !peaked(h, in_range, p->min_cv))
                return fixed;

        uint64_t head = percentile_bin(h, in_range, p->head_pct) * h->bin_us;        /* lower edge */
        uint64_t tail = (percentile_bin(h, in_range, p->tail_pct) + 1) * h->bin_us;  /* upper edge */
        keepalive_windows w = {.from_histogram = true};
        w.prewarm_us = (uint64_t)(head * (1.0 - p->margin));
        /* Unloading for less than a bin saves nothing worth a reload. */
        if (w.prewarm_us < h->bin_us)
                w.prewarm_us = 0;
        w.keepalive_us = (uint64_t)((tail - w.prewarm_us) * (1.0 + p->margin));
        if (w.keepalive_us < h->bin_us)
                w.keepalive_us = h->bin_us;
        return w;
}

void demand_record(demand_log *d, uint64_t now)
{
        d->t[(d->head + d->n) % DEMAND_LOG] = now;
        if (d->n < DEMAND_LOG)
                d->n++;
        else
                d->head = (d->head + 1) % DEMAND_LOG;
}

static unsigned clamp(unsigned v, unsigned lo, unsigned hi)
{
        return v < lo ? lo : v > hi ? hi : v;
}

unsigned policy_zygote_target(const demand_log *d, uint64_t now, uint64_t refill_us, uint64_t horizon_us,
                              unsigned min, unsigned max)
{
        uint64_t since = now > horizon_us ? now - horizon_us : 0;
        unsigned best = 0, first = 0;
        if (refill_us == 0)
                refill_us = 1;
        /* Sliding window over the chronological log: [first, k] spans less than one refill. */
        for (unsigned k = 0; k < d->n; k++) {
                uint64_t t = d->t[(d->head + k) % DEMAND_LOG];
                if (t < since) {
                        first = k + 1;
                        continue;
                }
                while (t - d->t[(d->head + first) % DEMAND_LOG] >= refill_us)
                        first++;
                if (k + 1 - first > best)
                        best = k + 1 - first;
        }
        return clamp(best, min, max);
}

void policy_fit_budget(const unsigned *want, const unsigned *mem_mb, size_t n, uint64_t budget_mb,
                       unsigned *ret_target)
{
        uint64_t left = budget_mb;
        for (size_t k = 0; k < n; k++)
                ret_target[k] = budget_mb ? 0 : want[k];
        if (!budget_mb)
                return;
        /* Round robin, one zygote per template per round: every template gets its first zygote
         * before any gets its second. */
        for (bool progress = true; progress;) {
                progress = false;
                for (size_t k = 0; k < n; k++) {
                        if (ret_target[k] >= want[k] || mem_mb[k] > left)
                                continue;
                        ret_target[k]++;
                        left -= mem_mb[k];
                        progress = true;
                }
        }
}

uint64_t policy_refill_estimate(uint64_t old_us, uint64_t sample_us)
{
        return old_us ? (3 * old_us + sample_us) / 4 : sample_us;
}

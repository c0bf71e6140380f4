/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pool_policy.h: the pool's sizing decisions, driven with synthetic time. */
#include "pool_policy.h"
#include "unit.h"

#define MS 1000ull
#define S 1000000ull

/* Feeds the histogram invocations of 1 ms starting at each of the arrival times. */
static void feed(idle_histogram *h, const uint64_t *arrivals, size_t n)
{
        for (size_t k = 0; k < n; k++) {
                idle_histogram_arrival(h, arrivals[k]);
                idle_histogram_done(h, arrivals[k] + 1 * MS);
        }
}

START_TEST(test_histogram_records_idle_periods)
{
        idle_histogram h;
        idle_histogram_init(&h, 600 * S);
        ck_assert_uint_eq(h.bin_us, 600 * S * IDLE_RANGE_FACTOR / IDLE_BINS); /* 10 s */
        /* The first arrival ends no idle period. */
        idle_histogram_arrival(&h, 100 * S);
        ck_assert_uint_eq(h.samples, 0);
        idle_histogram_done(&h, 101 * S);
        /* 25 s idle: bin 2. */
        idle_histogram_arrival(&h, 126 * S);
        ck_assert_uint_eq(h.samples, 1);
        ck_assert_uint_eq(h.bins[2], 1);
        /* An arrival while one runs is no idle period. */
        idle_histogram_arrival(&h, 127 * S);
        ck_assert_uint_eq(h.samples, 1);
        idle_histogram_done(&h, 128 * S);
        idle_histogram_done(&h, 130 * S);
        /* Beyond the range (40 min): counted apart. */
        idle_histogram_arrival(&h, 130 * S + 3000 * S);
        ck_assert_uint_eq(h.samples, 2);
        ck_assert_uint_eq(h.out_of_range, 1);

        idle_histogram_init(&h, 0);
        ck_assert_uint_eq(h.bin_us, 1);
}
END_TEST

START_TEST(test_keepalive_falls_back)
{
        const keepalive_params p = keepalive_params_default(600 * S);
        idle_histogram h;
        idle_histogram_init(&h, 600 * S);
        /* Too few samples. */
        uint64_t t[400];
        for (size_t k = 0; k < 5; k++)
                t[k] = k * 60 * S + S;
        feed(&h, t, 5);
        keepalive_windows w = policy_keepalive(&h, &p);
        ck_assert(!w.from_histogram);
        ck_assert_uint_eq(w.prewarm_us, 0);
        ck_assert_uint_eq(w.keepalive_us, 600 * S);

        /* Flat: idle times spread evenly over the whole range. */
        idle_histogram_init(&h, 600 * S);
        uint64_t now = S;
        for (size_t k = 0; k < 400; k++) {
                t[k] = now;
                now += (k * 7919 % IDLE_BINS) * h.bin_us + h.bin_us / 2;
        }
        feed(&h, t, 400);
        ck_assert(!policy_keepalive(&h, &p).from_histogram);

        /* Mostly beyond the range. */
        idle_histogram_init(&h, 1 * S);
        for (size_t k = 0; k < 40; k++)
                t[k] = S + k * 10 * S;
        feed(&h, t, 40);
        ck_assert_uint_eq(h.out_of_range, 39);
        ck_assert(!policy_keepalive(&h, &p).from_histogram);
}
END_TEST

START_TEST(test_keepalive_periodic)
{
        const keepalive_params p = keepalive_params_default(600 * S);
        idle_histogram h;
        idle_histogram_init(&h, 600 * S);
        /* A timer every 5 minutes: unload after use, load again shortly before the next. */
        uint64_t t[50];
        for (size_t k = 0; k < 50; k++)
                t[k] = S + k * 300 * S;
        feed(&h, t, 50);
        keepalive_windows w = policy_keepalive(&h, &p);
        ck_assert(w.from_histogram);
        ck_assert_uint_gt(w.prewarm_us, 200 * S);
        ck_assert_uint_lt(w.prewarm_us, 300 * S);
        /* Loaded in time for the next arrival, and not much longer than needed. */
        ck_assert_uint_ge(w.prewarm_us + w.keepalive_us, 300 * S);
        ck_assert_uint_lt(w.keepalive_us, 100 * S);
}
END_TEST

START_TEST(test_keepalive_frequent)
{
        const keepalive_params p = keepalive_params_default(600 * S);
        idle_histogram h;
        idle_histogram_init(&h, 600 * S);
        /* Arrivals within a few seconds of each other: keep loaded (no pre-warm), short keep-alive. */
        uint64_t t[100], now = S;
        for (size_t k = 0; k < 100; k++) {
                t[k] = now;
                now += (1 + k % 3) * S;
        }
        feed(&h, t, 100);
        keepalive_windows w = policy_keepalive(&h, &p);
        ck_assert(w.from_histogram);
        ck_assert_uint_eq(w.prewarm_us, 0);
        ck_assert_uint_ge(w.keepalive_us, 3 * S);
        ck_assert_uint_lt(w.keepalive_us, 600 * S);
}
END_TEST

START_TEST(test_zygote_target)
{
        demand_log d = {0};
        uint64_t refill = 100 * MS, horizon = 60 * S;
        ck_assert_uint_eq(policy_zygote_target(&d, 10 * S, refill, horizon, 1, 4), 1);
        ck_assert_uint_eq(policy_zygote_target(&d, 10 * S, refill, horizon, 0, 4), 0);
        /* One demand per second: one refill keeps up. */
        for (uint64_t k = 0; k < 10; k++)
                demand_record(&d, S + k * S);
        ck_assert_uint_eq(policy_zygote_target(&d, 11 * S, refill, horizon, 0, 4), 1);
        /* A burst of three within one refill. */
        demand_record(&d, 12 * S);
        demand_record(&d, 12 * S + 10 * MS);
        demand_record(&d, 12 * S + 20 * MS);
        ck_assert_uint_eq(policy_zygote_target(&d, 13 * S, refill, horizon, 0, 4), 3);
        ck_assert_uint_eq(policy_zygote_target(&d, 13 * S, refill, horizon, 0, 2), 2);
        /* Forgotten after the horizon. */
        ck_assert_uint_eq(policy_zygote_target(&d, 100 * S, refill, horizon, 1, 4), 1);
        /* The log keeps the newest DEMAND_LOG. */
        for (uint64_t k = 0; k < 3 * DEMAND_LOG; k++)
                demand_record(&d, 200 * S + k * S);
        ck_assert_uint_eq(d.n, DEMAND_LOG);
        ck_assert_uint_eq(policy_zygote_target(&d, 200 * S + 3 * DEMAND_LOG * S, refill, horizon, 0, 8), 1);
        /* No refill measured as 0 µs: every demand is its own burst. */
        ck_assert_uint_eq(policy_zygote_target(&d, 200 * S + 3 * DEMAND_LOG * S, 0, horizon, 0, 8), 1);
}
END_TEST

START_TEST(test_fit_budget)
{
        const unsigned want[] = {3, 2, 1}, mem[] = {256, 512, 128};
        unsigned target[3];
        policy_fit_budget(want, mem, 3, 0, target);
        ck_assert_uint_eq(target[0], 3);
        ck_assert_uint_eq(target[1], 2);
        ck_assert_uint_eq(target[2], 1);
        /* Each gets its first before any gets a second. */
        policy_fit_budget(want, mem, 3, 1024, target);
        ck_assert_uint_eq(target[0], 1);
        ck_assert_uint_eq(target[1], 1);
        ck_assert_uint_eq(target[2], 1);
        policy_fit_budget(want, mem, 3, 1280, target);
        ck_assert_uint_eq(target[0], 2);
        ck_assert_uint_eq(target[1], 1);
        ck_assert_uint_eq(target[2], 1);
        /* Too little for the big one: the others still get theirs. */
        policy_fit_budget(want, mem, 3, 400, target);
        ck_assert_uint_eq(target[0], 1);
        ck_assert_uint_eq(target[1], 0);
        ck_assert_uint_eq(target[2], 1);
}
END_TEST

START_TEST(test_refill_estimate)
{
        ck_assert_uint_eq(policy_refill_estimate(0, 80 * MS), 80 * MS);
        ck_assert_uint_eq(policy_refill_estimate(80 * MS, 160 * MS), 100 * MS);
}
END_TEST

static Suite *pool_policy_suite(void)
{
        Suite *s = suite_create("pool-policy");
        TCase *tc = tcase_create("keepalive");
        tcase_add_test(tc, test_histogram_records_idle_periods);
        tcase_add_test(tc, test_keepalive_falls_back);
        tcase_add_test(tc, test_keepalive_periodic);
        tcase_add_test(tc, test_keepalive_frequent);
        suite_add_tcase(s, tc);
        tc = tcase_create("zygotes");
        tcase_add_test(tc, test_zygote_target);
        tcase_add_test(tc, test_fit_budget);
        tcase_add_test(tc, test_refill_estimate);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(pool_policy_suite());
}

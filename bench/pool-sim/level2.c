/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * level2: is a second-level template worth it? For each function in bench/pool-sim/functions,
 * times, over --rounds rounds (median reported):
 *   zygote path   restore of the base template + specialize + first invoke (a pool miss), and
 *                 specialize + first invoke alone (a pool zygote hit: the restore ran ahead);
 *   level-2 path  restore of the function's second-level template + first invoke.
 * Real CRIU, the public API only. Reports, never asserts.
 *
 * Usage: level2 [--rounds N] [--state-dir DIR] [FUNCTION.py...]   (root; builds python3 there)
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "prewarm.h"

static uint64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int compare(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), compare);
        return v[n / 2] / 1000.0;
}

static int die(pw_engine *e, const char *what, int r)
{
        fprintf(stderr, "level2: %s: %s (%s)\n", what, strerror(-r), pw_engine_last_error(e));
        return 1;
}

typedef struct sample {
        uint64_t miss_us, hit_us, l2_us, restore_us, specialize_us, l2_restore_us;
} sample;

/* One round of the zygote path: restore, specialize, invoke; times taken from the instance. */
static int zygote_round(pw_engine *e, const pw_function *fn, sample *s, pw_instance **keep)
{
        pw_instance *i = NULL;
        char *result = NULL;
        uint64_t t0 = now_us();
        int r = pw_instance_restore(e, "python3", &i);
        if (r < 0)
                return die(e, "restore", r);
        uint64_t t1 = now_us();
        if ((r = pw_instance_specialize(i, fn)) < 0 || (r = pw_instance_invoke(i, NULL, 60000, &result)) < 0) {
                fprintf(stderr, "level2: %s\n", pw_instance_last_error(i));
                pw_instance_destroy(i);
                return 1;
        }
        uint64_t t2 = now_us();
        free(result);
        pw_timings t = {.size = sizeof(t)};
        pw_instance_timings(i, &t);
        s->miss_us = t2 - t0;
        s->hit_us = t2 - t1;
        s->restore_us = t.restore_us;
        s->specialize_us = t.specialize_us;
        if (keep && !*keep)
                *keep = i;
        else
                pw_instance_destroy(i);
        return 0;
}

static int level2_round(pw_engine *e, const char *l2, sample *s)
{
        pw_instance *i = NULL;
        char *result = NULL;
        uint64_t t0 = now_us();
        int r = pw_instance_restore(e, l2, &i);
        if (r < 0)
                return die(e, "restore of the second-level template", r);
        if ((r = pw_instance_invoke(i, NULL, 60000, &result)) < 0) {
                fprintf(stderr, "level2: %s\n", pw_instance_last_error(i));
                pw_instance_destroy(i);
                return 1;
        }
        s->l2_us = now_us() - t0;
        free(result);
        pw_timings t = {.size = sizeof(t)};
        pw_instance_timings(i, &t);
        s->l2_restore_us = t.restore_us;
        pw_instance_destroy(i);
        return 0;
}

static int measure(pw_engine *e, const char *path, int rounds)
{
        char uri[4096];
        if (!realpath(path, uri))
                return fprintf(stderr, "level2: %s: not found\n", path), 1;
        const pw_function fn = {.code_uri = uri};
        sample *s = calloc((size_t)rounds, sizeof(*s));
        pw_instance *first = NULL;
        int failed = 0;
        for (int k = 0; k < rounds && !failed; k++)
                failed = zygote_round(e, &fn, &s[k], &first);
        int r = failed ? 0 : pw_instance_checkpoint(first, "level2-bench");
        if (r < 0)
                fprintf(stderr, "level2: checkpoint: %s\n", pw_instance_last_error(first));
        pw_instance_destroy(first);
        for (int k = 0; k < rounds && !failed && r == 0; k++)
                failed = level2_round(e, "level2-bench", &s[k]);
        if (failed || r < 0) {
                free(s);
                return 1;
        }
        uint64_t v[6][rounds];
        for (int k = 0; k < rounds; k++) {
                v[0][k] = s[k].miss_us, v[1][k] = s[k].hit_us, v[2][k] = s[k].l2_us;
                v[3][k] = s[k].restore_us, v[4][k] = s[k].specialize_us, v[5][k] = s[k].l2_restore_us;
        }
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        printf("%-16s %9.2f %9.2f %9.2f %12.2f %9.2f %12.2f\n", base, median_ms(v[3], rounds), median_ms(v[4], rounds),
               median_ms(v[0], rounds), median_ms(v[1], rounds), median_ms(v[5], rounds), median_ms(v[2], rounds));
        pw_template_remove(e, "level2-bench");
        free(s);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"rounds", required_argument, NULL, 'n'}, {"state-dir", required_argument, NULL, 's'}, {0},
        };
        int rounds = 11;
        const char *state = getenv("PREWARM_STATE_DIR");
        for (int c; (c = getopt_long(argc, argv, "n:s:", opts, NULL)) != -1;) {
                if (c == 'n')
                        rounds = atoi(optarg) > 0 ? atoi(optarg) : 1;
                else if (c == 's')
                        state = optarg;
                else
                        return 2;
        }
        if (!state) {
                fprintf(stderr, "level2: give --state-dir (or PREWARM_STATE_DIR): it builds python3 there\n");
                return 2;
        }
        const pw_options o = {.state_dir = state};
        pw_engine *e = NULL;
        int r = pw_engine_new(&o, &e);
        if (r < 0)
                return fprintf(stderr, "level2: engine: %s\n", strerror(-r)), 1;
        if ((r = pw_template_build(e, "python3")) < 0)
                return die(e, "build of python3", r);
        printf("medians of %d rounds, ms\n", rounds);
        printf("%-16s %9s %9s %9s %12s %9s %12s\n", "function", "restore", "special.", "miss path",
               "hit path", "L2 restore", "L2 path");
        int failed = 0;
        if (optind == argc) {
                failed |= measure(e, FUNCTIONS_DIR "/hello.py", rounds);
                failed |= measure(e, FUNCTIONS_DIR "/heavy_init.py", rounds);
        }
        for (int k = optind; k < argc; k++)
                failed |= measure(e, argv[k], rounds);
        pw_engine_free(e);
        return failed;
}

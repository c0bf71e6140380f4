/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * paths: what each way of getting an instance costs a request, through the pool (real CRIU):
 * a warm hit, a zygote hit (specialize only), a miss (restore + specialize), a miss that falls
 * back to a cold start (no CRIU: boot + preloads + specialize). Medians of --rounds invocations
 * of hello.py, total_us of pw_invoke_info. Reports, never asserts.
 *
 * Usage: paths [--rounds N] --state-dir DIR   (root; builds python3 there)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prewarm.h"

static int compare(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static int destroy_one(const pw_pool_instance_info *info, void *userdata)
{
        char **ids = userdata;
        for (int k = 0; k < 64; k++)
                if (!ids[k]) {
                        ids[k] = strdup(info->id);
                        break;
                }
        return 0;
}

/* Destroys every instance of the pool, so that the next invocation misses its warm set. */
static void drain(pw_pool *p)
{
        char *ids[64] = {0};
        pw_pool_foreach_instance(p, destroy_one, ids);
        for (int k = 0; k < 64 && ids[k]; k++) {
                pw_pool_destroy_instance(p, ids[k]);
                free(ids[k]);
        }
}

static void wait_zygotes(pw_pool *p, unsigned n)
{
        pw_pool_stats s = {.size = sizeof(s)};
        for (int k = 0; k < 3000 && pw_pool_stats_get(p, &s) == 0 && s.zygotes_ready < n; k++)
                usleep(10000);
}

/* One path: rounds invocations, each after preparing the pool for it. */
static double path_ms(pw_engine *e, const pw_pool_options *o, int rounds, enum pw_instance_source want, bool warm_first)
{
        pw_pool *p = NULL;
        if (pw_pool_new(e, o, &p) < 0)
                return -1;
        const pw_pool_function f = {.template_name = "python3", .fn = {.code_uri = FUNCTIONS_DIR "/hello.py"}};
        pw_pool_set_function(p, "hello", &f);
        uint64_t v[rounds];
        int n = 0;
        for (int k = 0; k < rounds; k++) {
                pw_invoke_info info = {.size = sizeof(info)};
                if (warm_first)
                        pw_pool_invoke(p, "hello", NULL, NULL, NULL, NULL);
                else
                        drain(p);
                if (o->zygotes_min)
                        wait_zygotes(p, o->zygotes_min);
                if (pw_pool_invoke(p, "hello", NULL, NULL, NULL, &info) == 0 && info.source == want)
                        v[n++] = info.total_us;
        }
        pw_pool_free(p);
        if (!n)
                return -1;
        qsort(v, (size_t)n, sizeof(*v), compare);
        return v[n / 2] / 1000.0;
}

int main(int argc, char **argv)
{
        int rounds = 11;
        const char *state = getenv("PREWARM_STATE_DIR");
        static const struct option opts[] = {
                {"rounds", required_argument, NULL, 'n'}, {"state-dir", required_argument, NULL, 's'}, {0},
        };
        for (int c; (c = getopt_long(argc, argv, "n:s:", opts, NULL)) != -1;) {
                if (c == 'n')
                        rounds = atoi(optarg) > 0 ? atoi(optarg) : 1;
                else if (c == 's')
                        state = optarg;
                else
                        return 2;
        }
        if (!state)
                return fprintf(stderr, "paths: give --state-dir (or PREWARM_STATE_DIR)\n"), 2;
        const pw_options eo = {.state_dir = state};
        pw_engine *e = NULL;
        if (pw_engine_new(&eo, &e) < 0 || pw_template_build(e, "python3") < 0)
                return fprintf(stderr, "paths: %s\n", e ? pw_engine_last_error(e) : "no engine"), 1;
        const pw_pool_options none = {.zygotes_min = 0, .zygotes_max = 1};
        const pw_pool_options one = {.zygotes_min = 1, .zygotes_max = 1};
        printf("medians of %d invocations of hello.py through a pool, request to result, ms\n", rounds);
        printf("  warm hit       %8.2f\n", path_ms(e, &none, rounds, PW_SOURCE_WARM, true));
        printf("  zygote hit     %8.2f\n", path_ms(e, &one, rounds, PW_SOURCE_ZYGOTE, false));
        printf("  miss (restore) %8.2f\n", path_ms(e, &none, rounds, PW_SOURCE_RESTORE, false));

        /* The fallback: make every restore fail (a flipped byte in a page image), then mend it. */
        char *pages = NULL;
        if (asprintf(&pages, "%s/templates/python3/images/pages-1.img", state) < 0)
                return 1;
        FILE *f = fopen(pages, "r+");
        int c = f ? fgetc(f) : EOF;
        if (c != EOF) {
                fseek(f, 0, SEEK_SET);
                fputc(c ^ 0xff, f);
                fflush(f);
                printf("  miss (cold)    %8.2f\n", path_ms(e, &none, rounds, PW_SOURCE_COLD_START, false));
                fseek(f, 0, SEEK_SET);
                fputc(c, f);
        }
        if (f)
                fclose(f);
        free(pages);
        pw_engine_free(e);
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm bench, the pure part: statistics over the runs, the table, the JSON document and the SVG
 * chart. No engine and no processes here, so the unit tests can check it alone.
 *
 * The JSON document:
 *   {"template": NAME, "handler": PATH, "runs": N, "warmup_runs": W, "concurrency": C,
 *    "modes": {MODE: {"samples": N, "p50_ms", "p90_ms", "p99_ms", "max_ms", "min_ms", "mean_ms",
 *                     "stages": {STAGE: {"p50_ms", "p90_ms", "p99_ms", "max_ms"}, ...},
 *                     "memory": {"rss_mib", "pss_mib"},                 (when measured)
 *                     "restores_per_s", "throughput": {...},            (restore modes)
 *                     "ratios": {"speedup_vs_exec", "speedup_vs_criu_cli"}}}}
 * A ratio is the baseline's p50 over this mode's p50: 10 means ten times faster than the baseline.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const struct {
        const char *name;
        const char *stages[BENCH_STAGES];
        bool restores;
        const char *color;
} modes[_MODE_MAX] = {
        [MODE_EXEC] = {"exec", {"boot", "load", "invoke"}, false, "#d62728"},
        [MODE_CRIU_CLI] = {"criu_cli", {"restore", "specialize", "invoke"}, true, "#ff7f0e"},
        [MODE_PREWARM] = {"prewarm", {"clone", "specialize", "invoke"}, true, "#2ca02c"},
        [MODE_PREWARM_RESTORE] = {"prewarm_restore", {"restore", "specialize", "invoke"}, true, "#8c564b"},
        [MODE_PREWARM_COLD] = {"prewarm_cold", {"restore", "specialize", "invoke"}, true, "#1f77b4"},
        [MODE_PREWARM_COLD_NORING] = {"prewarm_cold_noring", {"restore", "specialize", "invoke"}, true, "#17becf"},
        [MODE_FORK_ZYGOTE] = {"fork_zygote", {"fork", "load", "invoke"}, false, "#9467bd"},
        [MODE_WARM] = {"warm", {NULL, NULL, "invoke"}, false, "#7f7f7f"},
};

const char *bench_mode_name(bench_mode m)
{
        return m < _MODE_MAX ? modes[m].name : NULL;
}

int bench_mode_from_name(const char *name)
{
        for (int m = 0; m < _MODE_MAX; m++)
                if (!strcmp(modes[m].name, name))
                        return m;
        return -EINVAL;
}

const char *bench_stage_name(bench_mode m, unsigned s)
{
        return m < _MODE_MAX && s < BENCH_STAGES ? modes[m].stages[s] : NULL;
}

bool bench_mode_restores(bench_mode m)
{
        return m < _MODE_MAX && modes[m].restores;
}

bool bench_mode_density(bench_mode m)
{
        return m == MODE_PREWARM || m == MODE_PREWARM_RESTORE;
}

/* ------------------------------------------------------------------ statistics */

double bench_quantile(const double *sorted, size_t n, double q)
{
        if (n == 1 || q <= 0)
                return sorted[0];
        if (q >= 1)
                return sorted[n - 1];
        double pos = q * (double)(n - 1);
        size_t lo = (size_t)pos;
        double frac = pos - (double)lo;
        return lo + 1 < n ? sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]) : sorted[lo];
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

int bench_stats_compute(const double *values, size_t n, bench_stats *ret)
{
        if (n == 0)
                return -EINVAL;
        _cleanup_free_ double *v = malloc(n * sizeof(double));
        if (!v)
                return -ENOMEM;
        memcpy(v, values, n * sizeof(double));
        qsort(v, n, sizeof(double), cmp_double);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += v[i];
        *ret = (bench_stats){
                .n = n, .min = v[0], .max = v[n - 1], .mean = sum / (double)n,
                .p25 = bench_quantile(v, n, 0.25), .p50 = bench_quantile(v, n, 0.50),
                .p75 = bench_quantile(v, n, 0.75), .p90 = bench_quantile(v, n, 0.90),
                .p99 = bench_quantile(v, n, 0.99),
        };
        return 0;
}

/* Statistics of one field of a mode's samples: stage -1 is the total. */
static int sample_stats(const bench_mode_result *mr, int stage, bench_stats *ret)
{
        if (mr->n_samples == 0)
                return -EINVAL;
        _cleanup_free_ double *v = malloc(mr->n_samples * sizeof(double));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < mr->n_samples; i++)
                v[i] = stage < 0 ? mr->samples[i].total_ms : mr->samples[i].stage_ms[stage];
        return bench_stats_compute(v, mr->n_samples, ret);
}

/* The median memory of the runs that measured it, in MiB; false when none did. */
static bool memory_median(const bench_mode_result *mr, double *ret_rss, double *ret_pss)
{
        _cleanup_free_ double *rss = malloc((mr->n_samples + 1) * sizeof(double));
        _cleanup_free_ double *pss = malloc((mr->n_samples + 1) * sizeof(double));
        size_t n = 0;
        if (!rss || !pss)
                return false;
        for (size_t i = 0; i < mr->n_samples; i++)
                if (mr->samples[i].rss_kb > 0) {
                        rss[n] = (double)mr->samples[i].rss_kb / 1024.0;
                        pss[n++] = (double)mr->samples[i].pss_kb / 1024.0;
                }
        bench_stats s;
        if (n == 0 || bench_stats_compute(rss, n, &s) < 0)
                return false;
        *ret_rss = s.p50;
        if (bench_stats_compute(pss, n, &s) < 0)
                return false;
        *ret_pss = s.p50;
        return true;
}

static double p50_of(const bench_report *r, bench_mode m)
{
        bench_stats s;
        if (!r->modes[m].selected || sample_stats(&r->modes[m], -1, &s) < 0)
                return NAN;
        return s.p50;
}

static double restores_per_s(const bench_mode_result *mr)
{
        return mr->throughput_wall_s > 0 ? mr->throughput_restores / mr->throughput_wall_s : NAN;
}

/* ------------------------------------------------------------------ JSON */

/* v to `decimals` places: more digits than the measurement has would only be noise in the file. */
static json_t *json_rounded(double v, int decimals)
{
        double scale = pow(10, decimals);
        return json_real(round(v * scale) / scale);
}

/* Microseconds: all the clock gives. */
static json_t *json_ms(double v)
{
        return json_rounded(v, 3);
}

static int set_new(json_t *obj, const char *key, json_t *value)
{
        return value && json_object_set_new(obj, key, value) == 0 ? 0 : -ENOMEM;
}

static int put_quantiles(json_t *obj, const bench_stats *s)
{
        if (set_new(obj, "p50_ms", json_ms(s->p50)) < 0 || set_new(obj, "p90_ms", json_ms(s->p90)) < 0 ||
            set_new(obj, "p99_ms", json_ms(s->p99)) < 0 || set_new(obj, "max_ms", json_ms(s->max)) < 0)
                return -ENOMEM;
        return 0;
}

static json_t *stages_json(const bench_report *r, bench_mode m)
{
        json_auto_t *stages = json_object();
        if (!stages)
                return NULL;
        for (unsigned st = 0; st < BENCH_STAGES; st++) {
                bench_stats s;
                if (!modes[m].stages[st])
                        continue;
                json_t *one = json_object();
                if (!one || json_object_set_new(stages, modes[m].stages[st], one) < 0 ||
                    sample_stats(&r->modes[m], (int)st, &s) < 0 || put_quantiles(one, &s) < 0)
                        return NULL;
        }
        return json_incref(stages);
}

static json_t *ratios_json(const bench_report *r, double p50)
{
        json_auto_t *ratios = json_object();
        double exec = p50_of(r, MODE_EXEC), criu = p50_of(r, MODE_CRIU_CLI);
        if (!ratios)
                return NULL;
        if (isfinite(exec) && p50 > 0 && set_new(ratios, "speedup_vs_exec", json_rounded(exec / p50, 2)) < 0)
                return NULL;
        if (isfinite(criu) && p50 > 0 && set_new(ratios, "speedup_vs_criu_cli", json_rounded(criu / p50, 2)) < 0)
                return NULL;
        double fork = p50_of(r, MODE_FORK_ZYGOTE);
        if (isfinite(fork) && fork > 0 && set_new(ratios, "times_fork_zygote", json_rounded(p50 / fork, 2)) < 0)
                return NULL;
        return json_incref(ratios);
}

static int put_throughput(json_t *obj, const bench_report *r, const bench_mode_result *mr)
{
        json_t *t = json_pack("{s:I, s:I, s:f}", "restores", (json_int_t)mr->throughput_restores,
                              "threads", (json_int_t)r->concurrency, "wall_s", round(mr->throughput_wall_s * 1e3) / 1e3);
        if (set_new(obj, "throughput", t) < 0)
                return -ENOMEM;
        return set_new(obj, "restores_per_s", json_rounded(restores_per_s(mr), 2));
}

static double kb_to_mib(uint64_t kb)
{
        return (double)kb / 1024.0;
}

static int put_density(json_t *obj, const bench_mode_result *mr)
{
        json_t *d = json_pack("{s:I, s:o, s:o, s:o}", "instances", (json_int_t)mr->density_instances,
                              "pss_total_mib", json_rounded(kb_to_mib(mr->density_pss_kb + mr->density_parent_pss_kb), 1),
                              "pss_per_instance_mib",
                              json_rounded(kb_to_mib(mr->density_pss_kb + mr->density_parent_pss_kb) / mr->density_instances, 2),
                              "parent_pss_mib", json_rounded(kb_to_mib(mr->density_parent_pss_kb), 1));
        return set_new(obj, "density", d);
}

static json_t *mode_json(const bench_report *r, bench_mode m)
{
        const bench_mode_result *mr = &r->modes[m];
        bench_stats s;
        if (sample_stats(mr, -1, &s) < 0)
                return NULL;
        json_auto_t *obj = json_object();
        if (!obj || set_new(obj, "samples", json_integer((json_int_t)s.n)) < 0 || put_quantiles(obj, &s) < 0 ||
            set_new(obj, "min_ms", json_ms(s.min)) < 0 || set_new(obj, "mean_ms", json_ms(s.mean)) < 0 ||
            set_new(obj, "stages", stages_json(r, m)) < 0 || set_new(obj, "ratios", ratios_json(r, s.p50)) < 0)
                return NULL;
        double rss, pss;
        if (memory_median(mr, &rss, &pss) &&
            set_new(obj, "memory", json_pack("{s:o, s:o}", "rss_mib", json_rounded(rss, 2),
                                              "pss_mib", json_rounded(pss, 2))) < 0)
                return NULL;
        if (mr->throughput_wall_s > 0 && put_throughput(obj, r, mr) < 0)
                return NULL;
        if (mr->density_instances && put_density(obj, mr) < 0)
                return NULL;
        return json_incref(obj);
}

json_t *bench_report_json(const bench_report *r)
{
        json_auto_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:I}", "template", r->template_name,
                                     "handler", r->handler ? r->handler : "", "runs", (json_int_t)r->runs,
                                     "warmup_runs", (json_int_t)r->warmup_runs,
                                     "concurrency", (json_int_t)r->concurrency);
        json_t *by_mode = json_object();
        if (!doc || set_new(doc, "modes", by_mode) < 0)
                return NULL;
        for (int m = 0; m < _MODE_MAX; m++)
                if (r->modes[m].selected && r->modes[m].n_samples > 0 &&
                    set_new(by_mode, modes[m].name, mode_json(r, m)) < 0)
                        return NULL;
        return json_incref(doc);
}

int bench_report_write_json(const bench_report *r, const char *path)
{
        json_auto_t *doc = bench_report_json(r);
        if (!doc)
                return -ENOMEM;
        return json_dump_file(doc, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) == 0 ? 0 : negative_errno();
}

/* ------------------------------------------------------------------ table */

/* Three significant figures or so: 0.062, 1.35, 12.4, 205. */
static const char *fmt_ms(double v, char *buf, size_t n)
{
        snprintf(buf, n, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : v >= 1 ? "%.2f" : "%.3f", v);
        return buf;
}

static void print_stages(const bench_report *r, bench_mode m, FILE *f)
{
        char line[128] = "", num[32];
        size_t used = 0;
        for (unsigned st = 0; st < BENCH_STAGES; st++) {
                bench_stats s;
                if (!modes[m].stages[st] || sample_stats(&r->modes[m], (int)st, &s) < 0)
                        continue;
                int w = snprintf(line + used, sizeof(line) - used, "%s%s %s", used ? " + " : "",
                                 modes[m].stages[st], fmt_ms(s.p50, num, sizeof(num)));
                if (w > 0 && (size_t)w < sizeof(line) - used)
                        used += (size_t)w;
        }
        fprintf(f, "  %-48s", line);
}

static void print_ratio(double baseline, double p50, FILE *f)
{
        if (isfinite(baseline) && p50 > 0)
                fprintf(f, " %8.1fx", baseline / p50);
        else
                fprintf(f, " %9s", "-");
}

static void print_row(const bench_report *r, bench_mode m, FILE *f)
{
        const bench_mode_result *mr = &r->modes[m];
        bench_stats s;
        char a[32], b[32], c[32], d[32];
        if (sample_stats(mr, -1, &s) < 0)
                return;
        fprintf(f, "%-20s %8s %8s %8s %8s", modes[m].name, fmt_ms(s.p50, a, sizeof(a)),
                fmt_ms(s.p90, b, sizeof(b)), fmt_ms(s.p99, c, sizeof(c)), fmt_ms(s.max, d, sizeof(d)));
        print_stages(r, m, f);
        print_ratio(p50_of(r, MODE_EXEC), s.p50, f);
        print_ratio(p50_of(r, MODE_CRIU_CLI), s.p50, f);
        double fork = p50_of(r, MODE_FORK_ZYGOTE); /* how many fork_zygotes this mode takes */
        if (isfinite(fork) && fork > 0 && m != MODE_FORK_ZYGOTE)
                fprintf(f, " %8.2fx", s.p50 / fork);
        else
                fprintf(f, " %9s", "-");
        double rps = restores_per_s(mr), rss, pss;
        if (isfinite(rps))
                fprintf(f, " %10.1f", rps);
        else
                fprintf(f, " %10s", "-");
        if (memory_median(mr, &rss, &pss))
                fprintf(f, " %7.1f %7.1f\n", rss, pss);
        else
                fprintf(f, " %7s %7s\n", "-", "-");
}

/* PSS per live instance with many alive, the parent's share included for clones. */
static void print_density(const bench_report *r, FILE *f)
{
        double per[_MODE_MAX] = {0};
        bool any = false;
        for (int m = 0; m < _MODE_MAX; m++) {
                const bench_mode_result *mr = &r->modes[m];
                if (!mr->selected || !mr->density_instances)
                        continue;
                if (!any)
                        fprintf(f, "\n%-20s %9s %14s %14s %12s\n", "density", "instances", "PSS total MiB",
                                "per instance", "parent MiB");
                any = true;
                double total = kb_to_mib(mr->density_pss_kb + mr->density_parent_pss_kb);
                per[m] = total / mr->density_instances;
                fprintf(f, "%-20s %9u %14.1f %14.2f %12.1f\n", modes[m].name, mr->density_instances, total, per[m],
                        kb_to_mib(mr->density_parent_pss_kb));
        }
        if (per[MODE_PREWARM] > 0 && per[MODE_PREWARM_RESTORE] > 0)
                fprintf(f, "PSS per instance, prewarm / prewarm_restore: %.2f\n",
                        per[MODE_PREWARM] / per[MODE_PREWARM_RESTORE]);
}

void bench_report_print(const bench_report *r, FILE *f)
{
        fprintf(f, "template %s, handler %s: %u runs per mode (after %u warm-up), throughput at "
                "concurrency %u\n\n", r->template_name, r->handler ? r->handler : "-", r->runs,
                r->warmup_runs, r->concurrency);
        fprintf(f, "%-20s %8s %8s %8s %8s  %-48s %9s %9s %9s %10s %7s %7s\n", "mode (ms)", "p50", "p90", "p99",
                "max", "stages (p50 ms)", "vs exec", "vs criu", "of fork", "restores/s", "RSS MiB", "PSS MiB");
        for (int m = 0; m < _MODE_MAX; m++)
                if (r->modes[m].selected)
                        print_row(r, m, f);
        fprintf(f, "\nlatency: request for a new instance to the first response of the specialized "
                "handler; vs: speedup of p50; of fork: p50 over fork_zygote's\n");
        print_density(r, f);
}

/* ------------------------------------------------------------------ SVG */

enum { SVG_W = 1000, SVG_LEFT = 190, SVG_RIGHT = 215, SVG_TOP = 74, SVG_ROW = 48, SVG_BOTTOM = 56 };

typedef struct axis {
        int lo_decade, hi_decade; /* the axis spans 10^lo .. 10^hi ms */
} axis;

/* The smallest value a log axis shows: a zero stage time would be -inf. */
#define SVG_FLOOR_MS 0.001

static double svg_x(const axis *a, double ms)
{
        double v = log10(ms > SVG_FLOOR_MS ? ms : SVG_FLOOR_MS);
        double span = (double)(a->hi_decade - a->lo_decade);
        return SVG_LEFT + (v - a->lo_decade) / span * (SVG_W - SVG_LEFT - SVG_RIGHT);
}

static axis svg_axis(const bench_report *r)
{
        double lo = INFINITY, hi = 0;
        for (int m = 0; m < _MODE_MAX; m++)
                for (size_t i = 0; r->modes[m].selected && i < r->modes[m].n_samples; i++) {
                        double v = r->modes[m].samples[i].total_ms;
                        v = v > SVG_FLOOR_MS ? v : SVG_FLOOR_MS;
                        lo = v < lo ? v : lo;
                        hi = v > hi ? v : hi;
                }
        if (!isfinite(lo))
                lo = 1, hi = 1000;
        axis a = {(int)floor(log10(lo)), (int)ceil(log10(hi))};
        if (a.hi_decade <= a.lo_decade)
                a.hi_decade = a.lo_decade + 1;
        return a;
}

static void svg_escape(FILE *f, const char *s)
{
        for (; *s; s++)
                switch (*s) {
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '&': fputs("&amp;", f); break;
                case '"': fputs("&quot;", f); break;
                default: fputc(*s, f);
                }
}

static void svg_grid(const axis *a, int height, FILE *f)
{
        static const int steps[] = {1, 2, 5};
        int bottom = height - SVG_BOTTOM;
        char num[32];
        for (int d = a->lo_decade; d <= a->hi_decade; d++)
                for (size_t k = 0; k < ELEMENTSOF(steps) && (d < a->hi_decade || k == 0); k++) {
                        double v = steps[k] * pow(10, d);
                        double x = svg_x(a, v);
                        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", x,
                                SVG_TOP - 6, x, bottom, k == 0 ? "#bbb" : "#e4e4e4");
                        snprintf(num, sizeof(num), "%g", v);
                        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n",
                                x, bottom + 16, num);
                }
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#444\">milliseconds, log scale"
                "</text>\n", (SVG_W - SVG_RIGHT + SVG_LEFT) / 2, bottom + 36);
}

/* One mode: whiskers min..max, box p25..p75, a bar at p50, a dot per run, and the p50 label. */
static void svg_row(const bench_report *r, bench_mode m, const axis *a, int row, FILE *f)
{
        const bench_mode_result *mr = &r->modes[m];
        bench_stats s;
        char p50[32], p99[32];
        if (sample_stats(mr, -1, &s) < 0)
                return;
        int y = SVG_TOP + row * SVG_ROW + SVG_ROW / 2;
        const char *color = modes[m].color;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-weight=\"bold\">%s</text>\n",
                SVG_LEFT - 12, y + 5, modes[m].name);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", svg_x(a, s.min), y,
                svg_x(a, s.max), y, color);
        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"20\" fill=\"%s\" fill-opacity=\"0.25\" "
                "stroke=\"%s\"/>\n", svg_x(a, s.p25), y - 10, svg_x(a, s.p75) - svg_x(a, s.p25), color, color);
        for (size_t i = 0; i < mr->n_samples; i++) {
                /* Deterministic jitter (golden-ratio sequence) so that equal times stay visible. */
                double jitter = fmod((double)i * 0.618034, 1.0) * 16.0 - 8.0;
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\" fill-opacity=\"0.6\"/>\n",
                        svg_x(a, mr->samples[i].total_ms), y + jitter, color);
        }
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#000\" stroke-width=\"3\"/>\n",
                svg_x(a, s.p50), y - 13, svg_x(a, s.p50), y + 13);
        fprintf(f, "<text x=\"%d\" y=\"%d\">p50 <tspan font-weight=\"bold\">%s ms</tspan>, p99 %s ms</text>\n",
                SVG_W - SVG_RIGHT + 14, y + 5, fmt_ms(s.p50, p50, sizeof(p50)), fmt_ms(s.p99, p99, sizeof(p99)));
}

int bench_report_svg(const bench_report *r, FILE *f)
{
        int rows = 0;
        for (int m = 0; m < _MODE_MAX; m++)
                rows += r->modes[m].selected && r->modes[m].n_samples > 0;
        int height = SVG_TOP + rows * SVG_ROW + SVG_BOTTOM;
        axis a = svg_axis(r);
        fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"sans-serif\" font-size=\"13\">\n", SVG_W, height, SVG_W, height);
        fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n<text x=\"%d\" y=\"26\" "
                "font-size=\"17\" font-weight=\"bold\">prewarm bench: template ", 20);
        svg_escape(f, r->template_name);
        fprintf(f, ", request to first response (%u runs per mode)</text>\n", r->runs);
        fprintf(f, "<text x=\"%d\" y=\"48\" fill=\"#555\">dots: runs, box: p25 to p75, black bar: p50, "
                "line: min to max</text>\n", 20);
        /* Stripes first: the grid must stay visible across them. */
        for (int row = 0; row < rows; row += 2)
                fprintf(f, "<rect x=\"0\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f5f5f5\"/>\n",
                        SVG_TOP + row * SVG_ROW, SVG_W, SVG_ROW);
        svg_grid(&a, height, f);
        int row = 0;
        for (int m = 0; m < _MODE_MAX; m++)
                if (r->modes[m].selected && r->modes[m].n_samples > 0)
                        svg_row(r, m, &a, row++, f);
        fputs("</svg>\n", f);
        return ferror(f) ? -EIO : 0;
}

int bench_report_write_svg(const bench_report *r, const char *path)
{
        _cleanup_fclose_ FILE *f = fopen(path, "we");
        if (!f)
                return negative_errno();
        int r_svg = bench_report_svg(r, f);
        if (r_svg < 0)
                return r_svg;
        int r_close = fclose(TAKE_PTR(f));
        return r_close == 0 ? 0 : negative_errno();
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench_report.c: quantiles and statistics, the mode table, the JSON document's shape and the SVG
 * chart's well-formedness. The numbers below are test inputs, not measurements. */
#include <math.h>

#include "bench.h"
#include "unit.h"

#define EPS 1e-9

static const char *const all_modes[] = {"exec", "criu_cli", "prewarm", "prewarm_restore", "prewarm_cold",
                                         "prewarm_cold_noring", "fork_zygote", "warm"};

START_TEST(test_quantile)
{
        const double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        ck_assert_double_eq_tol(bench_quantile(v, 10, 0.0), 1, EPS);
        ck_assert_double_eq_tol(bench_quantile(v, 10, 0.5), 5.5, EPS);
        ck_assert_double_eq_tol(bench_quantile(v, 10, 0.9), 9.1, EPS);
        ck_assert_double_eq_tol(bench_quantile(v, 10, 0.99), 9.91, EPS);
        ck_assert_double_eq_tol(bench_quantile(v, 10, 1.0), 10, EPS);
        const double one[] = {42};
        ck_assert_double_eq_tol(bench_quantile(one, 1, 0.5), 42, EPS);
        ck_assert_double_eq_tol(bench_quantile(one, 1, 0.99), 42, EPS);
        const double two[] = {10, 20};
        ck_assert_double_eq_tol(bench_quantile(two, 2, 0.25), 12.5, EPS);
}
END_TEST

START_TEST(test_stats)
{
        const double v[] = {9, 1, 5, 3, 7}; /* unsorted on purpose */
        bench_stats s;
        ck_assert_int_eq(bench_stats_compute(v, 5, &s), 0);
        ck_assert_uint_eq(s.n, 5);
        ck_assert_double_eq_tol(s.min, 1, EPS);
        ck_assert_double_eq_tol(s.max, 9, EPS);
        ck_assert_double_eq_tol(s.p50, 5, EPS);
        ck_assert_double_eq_tol(s.p25, 3, EPS);
        ck_assert_double_eq_tol(s.p75, 7, EPS);
        ck_assert_double_eq_tol(s.mean, 5, EPS);
        ck_assert_double_eq_tol(s.p99, 8.92, EPS);
        ck_assert(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.max);
        ck_assert_double_eq(v[0], 9); /* the input is left alone */
        ck_assert_int_eq(bench_stats_compute(v, 0, &s), -EINVAL);
}
END_TEST

START_TEST(test_mode_names)
{
        for (int m = 0; m < _MODE_MAX; m++) {
                ck_assert_str_eq(bench_mode_name(m), all_modes[m]);
                ck_assert_int_eq(bench_mode_from_name(all_modes[m]), m);
                ck_assert_ptr_nonnull(bench_stage_name(m, 2));
        }
        ck_assert_int_eq(bench_mode_from_name("criu"), -EINVAL);
        ck_assert_int_eq(bench_mode_from_name(""), -EINVAL);
        ck_assert_ptr_null(bench_stage_name(MODE_WARM, 0));
        ck_assert_str_eq(bench_stage_name(MODE_PREWARM, 0), "clone");
        ck_assert_str_eq(bench_stage_name(MODE_PREWARM_RESTORE, 0), "restore");
        ck_assert(bench_mode_density(MODE_PREWARM) && bench_mode_density(MODE_PREWARM_RESTORE) &&
                  !bench_mode_density(MODE_EXEC) && !bench_mode_density(MODE_PREWARM_COLD));
        ck_assert_str_eq(bench_stage_name(MODE_EXEC, 0), "boot");
        ck_assert(bench_mode_restores(MODE_CRIU_CLI) && bench_mode_restores(MODE_PREWARM_COLD_NORING));
        ck_assert(!bench_mode_restores(MODE_EXEC) && !bench_mode_restores(MODE_WARM) &&
                  !bench_mode_restores(MODE_FORK_ZYGOTE));
}
END_TEST

/* A report of n runs per selected mode: mode m's run i takes (m + 1) * 10 + i ms. */
static bench_sample samples[_MODE_MAX][16];

static bench_report make_report(const char *template_name, const bool selected[_MODE_MAX], size_t n)
{
        bench_report r = {.template_name = template_name, .handler = "/h.py", .runs = (unsigned)n,
                          .warmup_runs = 1, .concurrency = 2};
        for (int m = 0; m < _MODE_MAX; m++) {
                r.modes[m].selected = selected[m];
                r.modes[m].samples = samples[m];
                r.modes[m].n_samples = selected[m] ? n : 0;
                for (size_t i = 0; i < n; i++)
                        samples[m][i] = (bench_sample){.total_ms = (m + 1) * 10.0 + (double)i,
                                                       .stage_ms = {m + 5.0, 2, 0.1},
                                                       .rss_kb = 20480, .pss_kb = 10240};
                if (selected[m] && bench_mode_density(m)) {
                        r.modes[m].density_instances = 4;
                        r.modes[m].density_pss_kb = 4096;
                        r.modes[m].density_parent_pss_kb = m == MODE_PREWARM ? 1024 : 0;
                }
                if (selected[m] && bench_mode_restores(m)) {
                        r.modes[m].throughput_restores = 8;
                        r.modes[m].throughput_wall_s = 0.5;
                }
        }
        return r;
}

static const bool every_mode[_MODE_MAX] = {true, true, true, true, true, true, true, true};

static double number(json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);
        ck_assert_msg(json_is_number(v), "%s is not a number", key);
        return json_number_value(v);
}

START_TEST(test_json_shape)
{
        bench_report r = make_report("python3", every_mode, 5);
        json_auto_t *doc = bench_report_json(&r);
        ck_assert_ptr_nonnull(doc);
        ck_assert_str_eq(json_string_value(json_object_get(doc, "template")), "python3");
        ck_assert_int_eq(json_integer_value(json_object_get(doc, "runs")), 5);
        ck_assert_int_eq(json_integer_value(json_object_get(doc, "concurrency")), 2);
        json_t *by_mode = json_object_get(doc, "modes");
        ck_assert_uint_eq(json_object_size(by_mode), _MODE_MAX);
        for (int m = 0; m < _MODE_MAX; m++) {
                json_t *mode = json_object_get(by_mode, all_modes[m]);
                ck_assert_msg(json_is_object(mode), "mode %s missing", all_modes[m]);
                ck_assert_double_eq_tol(number(mode, "p50_ms"), (m + 1) * 10.0 + 2, 1e-6);
                ck_assert_double_eq_tol(number(mode, "max_ms"), (m + 1) * 10.0 + 4, 1e-6);
                ck_assert(number(mode, "p90_ms") <= number(mode, "p99_ms"));
                json_t *stages = json_object_get(mode, "stages");
                ck_assert_uint_eq(json_object_size(stages), m == MODE_WARM ? 1 : 3);
                ck_assert_double_eq_tol(number(json_object_get(stages, "invoke"), "p50_ms"), 0.1, 1e-6);
                json_t *ratios = json_object_get(mode, "ratios");
                ck_assert_double_eq_tol(number(ratios, "speedup_vs_exec"), round(1200.0 / number(mode, "p50_ms")) / 100, 1e-6);
                ck_assert(json_is_number(json_object_get(ratios, "speedup_vs_criu_cli")));
                ck_assert_double_eq_tol(number(json_object_get(mode, "memory"), "rss_mib"), 20, 1e-6);
                ck_assert_double_eq_tol(number(json_object_get(mode, "memory"), "pss_mib"), 10, 1e-6);
                if (bench_mode_restores(m))
                        ck_assert_double_eq_tol(number(mode, "restores_per_s"), 16, 1e-6);
                else
                        ck_assert_ptr_null(json_object_get(mode, "restores_per_s"));
                json_t *density = json_object_get(mode, "density");
                if (bench_mode_density(m)) /* (4096 KiB + the parent's) / 4 instances */
                        ck_assert_double_eq_tol(number(density, "pss_per_instance_mib"),
                                                m == MODE_PREWARM ? 1.25 : 1.0, 1e-6);
                else
                        ck_assert_ptr_null(density);
                if (m != MODE_FORK_ZYGOTE) /* p50 over fork_zygote's (70 ms + 2) */
                        ck_assert_double_eq_tol(number(ratios, "times_fork_zygote"),
                                                round(number(mode, "p50_ms") / 72.0 * 100) / 100, 1e-6);
        }
        ck_assert_double_eq_tol(number(json_object_get(json_object_get(by_mode, "exec"), "ratios"), "speedup_vs_exec"), 1, EPS);
}
END_TEST

START_TEST(test_json_without_baselines)
{
        const bool only_prewarm[_MODE_MAX] = {[MODE_PREWARM] = true};
        bench_report r = make_report("python3", only_prewarm, 3);
        json_auto_t *doc = bench_report_json(&r);
        ck_assert_ptr_nonnull(doc);
        json_t *by_mode = json_object_get(doc, "modes");
        ck_assert_uint_eq(json_object_size(by_mode), 1);
        json_t *ratios = json_object_get(json_object_get(by_mode, "prewarm"), "ratios");
        ck_assert(json_is_object(ratios));
        ck_assert_uint_eq(json_object_size(ratios), 0);
}
END_TEST

START_TEST(test_json_file)
{
        bench_report r = make_report("python3", every_mode, 4);
        _cleanup_free_ char *path = tmp_path("bench.json");
        ck_assert_int_eq(bench_report_write_json(&r, path), 0);
        json_error_t jerr;
        json_auto_t *doc = json_load_file(path, 0, &jerr);
        ck_assert_msg(doc != NULL, "%s", jerr.text);
        ck_assert_uint_eq(json_object_size(json_object_get(doc, "modes")), _MODE_MAX);
        ck_assert_int_lt(bench_report_write_json(&r, "/nonexistent/dir/bench.json"), 0);
}
END_TEST

/* Just enough XML to catch what a hand-written SVG gets wrong: unbalanced or crossed tags,
 * unquoted attributes, raw '<' or '&' in text and values, more than one root. */
static bool entity_ok(const char *p)
{
        static const char *const entities[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
        for (size_t i = 0; i < ELEMENTSOF(entities); i++)
                if (!strncmp(p, entities[i], strlen(entities[i])))
                        return true;
        return false;
}

static const char *tag_end(const char *p)
{
        char quote = 0;
        for (; *p; p++) {
                if (quote) {
                        if (*p == quote)
                                quote = 0;
                        else if (*p == '<' || (*p == '&' && !entity_ok(p)))
                                return NULL;
                } else if (*p == '"' || *p == '\'')
                        quote = *p;
                else if (*p == '=' && p[1] != '"' && p[1] != '\'')
                        return NULL;
                else if (*p == '>')
                        return p;
        }
        return NULL;
}

static bool xml_well_formed(const char *doc)
{
        char stack[64][32];
        int depth = 0, roots = 0;
        const char *p = doc;
        if (!strncmp(p, "<?xml", 5) && !(p = strstr(p, "?>")))
                return false;
        while (*p) {
                if (*p == '&' && !entity_ok(p))
                        return false;
                if (*p != '<') {
                        p++;
                        continue;
                }
                const char *end = tag_end(p + 1);
                bool closing = p[1] == '/';
                bool empty = end && end[-1] == '/';
                char name[32];
                if (!end || sscanf(p + 1 + closing, "%31[A-Za-z0-9:_-]", name) != 1)
                        return false;
                if (closing && (depth == 0 || strcmp(stack[--depth], name)))
                        return false;
                if (!closing && depth == 0)
                        roots++;
                if (!closing && !empty) {
                        if (depth == 64)
                                return false;
                        str_copy(stack[depth++], sizeof(stack[0]), name);
                }
                p = end + 1;
        }
        return depth == 0 && roots == 1;
}

START_TEST(test_xml_checker)
{
        ck_assert(xml_well_formed("<?xml version=\"1.0\"?>\n<a><b x=\"1\"/>t &amp; u</a>\n"));
        ck_assert(!xml_well_formed("<a><b></a></b>"));
        ck_assert(!xml_well_formed("<a>x & y</a>"));
        ck_assert(!xml_well_formed("<a x=1></a>"));
        ck_assert(!xml_well_formed("<a></a><b></b>"));
        ck_assert(!xml_well_formed("<a>"));
}
END_TEST

static char *render_svg(const bench_report *r)
{
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(bench_report_svg(r, f), 0);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

START_TEST(test_svg)
{
        bench_report r = make_report("python3", every_mode, 6);
        _cleanup_free_ char *svg = render_svg(&r);
        ck_assert_msg(xml_well_formed(svg), "not well-formed:\n%s", svg);
        ck_assert_ptr_nonnull(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
        for (int m = 0; m < _MODE_MAX; m++) {
                char label[64];
                snprintf(label, sizeof(label), ">%s</text>", all_modes[m]);
                ck_assert_msg(strstr(svg, label), "no row for %s", all_modes[m]);
        }
        ck_assert_ptr_nonnull(strstr(svg, "p50 <tspan font-weight=\"bold\">12.5 ms</tspan>"));
        ck_assert_ptr_null(strstr(svg, "nan"));
        ck_assert_ptr_null(strstr(svg, "inf"));
}
END_TEST

START_TEST(test_svg_escapes_and_edge_cases)
{
        const bool two[_MODE_MAX] = {[MODE_WARM] = true, [MODE_EXEC] = true};
        bench_report r = make_report("a<b&\"c\"", two, 1);
        samples[MODE_WARM][0].total_ms = 0; /* below the log axis' floor */
        _cleanup_free_ char *svg = render_svg(&r);
        ck_assert_msg(xml_well_formed(svg), "not well-formed:\n%s", svg);
        ck_assert_ptr_nonnull(strstr(svg, "a&lt;b&amp;&quot;c&quot;"));
        ck_assert_ptr_null(strstr(svg, "nan"));
        ck_assert_ptr_null(strstr(svg, "inf"));

        const bool none[_MODE_MAX] = {0};
        bench_report empty = make_report("python3", none, 0);
        _cleanup_free_ char *svg_empty = render_svg(&empty);
        ck_assert(xml_well_formed(svg_empty));
}
END_TEST

START_TEST(test_table)
{
        bench_report r = make_report("python3", every_mode, 5);
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        ck_assert_ptr_nonnull(f);
        bench_report_print(&r, f);
        ck_assert_int_eq(fclose(f), 0);
        for (int m = 0; m < _MODE_MAX; m++) {
                char line_start[64];
                snprintf(line_start, sizeof(line_start), "\n%s ", all_modes[m]);
                ck_assert_msg(strstr(buf, line_start), "no row for %s in:\n%s", all_modes[m], buf);
        }
        ck_assert_ptr_nonnull(strstr(buf, "clone 7.00 + specialize 2.00 + invoke 0.100"));
        ck_assert_ptr_nonnull(strstr(buf, "restore 8.00 + specialize 2.00 + invoke 0.100")); /* prewarm_restore */
        ck_assert_ptr_nonnull(strstr(buf, "16.0")); /* restores/s: 8 over 0.5 s */
        /* density: 4 instances, 5 MiB with the parent's 1 MiB, against 4 MiB restored */
        ck_assert_msg(strstr(buf, "\nprewarm                      4            5.0           1.25          1.0\n"), "%s", buf);
        ck_assert_ptr_nonnull(strstr(buf, "prewarm / prewarm_restore: 1.25"));
        free(buf);
}
END_TEST

static Suite *bench_report_suite(void)
{
        Suite *s = suite_create("bench-report");
        TCase *tc = tcase_create("stats");
        tcase_add_test(tc, test_quantile);
        tcase_add_test(tc, test_stats);
        tcase_add_test(tc, test_mode_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("output");
        tcase_add_tmp_dir(tc);
        tcase_add_test(tc, test_json_shape);
        tcase_add_test(tc, test_json_without_baselines);
        tcase_add_test(tc, test_json_file);
        tcase_add_test(tc, test_xml_checker);
        tcase_add_test(tc, test_svg);
        tcase_add_test(tc, test_svg_escapes_and_edge_cases);
        tcase_add_test(tc, test_table);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(bench_report_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* definition.h: parsing template.conf text, loading the repository's definitions. */
#include <ctype.h>

#include "config.h"
#include "definition.h"
#include "digest.h"
#include "unit.h"

#define MINIMAL "runtime = /usr/bin/python3 -B -s\nagent = agent.py\n"

static template_def *parse_ok(const char *text, const char *dir, const char *dir_name)
{
        pw_err err = {""};
        template_def *d = NULL;
        int r = template_def_parse(text, dir, dir_name, &d, &err);
        ck_assert_msg(r == 0, "parse failed: %d %s", r, err.msg);
        ck_assert_ptr_nonnull(d);
        return d;
}

/* Parses text expecting -EINVAL with exactly the message want. */
static void parse_fails(const char *text, const char *dir_name, const char *want)
{
        pw_err err = {""};
        template_def *sentinel = (template_def *)0x1, *d = sentinel;
        int r = template_def_parse(text, "/t/dir", dir_name, &d, &err);
        ck_assert_msg(r == -EINVAL, "expected -EINVAL for <<%s>>, got %d", text, r);
        ck_assert_ptr_eq(d, sentinel); /* not written on failure */
        ck_assert_str_eq(err.msg, want);
}

static void assert_strv(char **v, const char *const *want, size_t n)
{
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(strv_length(v), n);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(v[i], want[i]);
}

static bool is_lower_hex64(const char *s)
{
        if (strlen(s) != 64)
                return false;
        for (const char *p = s; *p; p++)
                if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
                        return false;
        return true;
}

START_TEST(test_defaults)
{
        _cleanup_def_ template_def *d = parse_ok(MINIMAL, "/srv/templates/py", "py");
        ck_assert_str_eq(d->name, "py"); /* from the directory's name */
        ck_assert_ptr_null(d->description);
        static const char *const runtime[] = {"/usr/bin/python3", "-B", "-s"};
        assert_strv(d->runtime, runtime, 3);
        ck_assert_str_eq(d->agent_path, "/srv/templates/py/agent.py");
        assert_strv(d->preload, NULL, 0); /* empty, never NULL */
        assert_strv(d->env, NULL, 0);
        ck_assert_uint_eq(d->memory_mb, 256);
        ck_assert_uint_eq(d->pids_max, 64);
        ck_assert_uint_eq(d->tmp_mb, 64);
        ck_assert_uint_eq(d->ready_timeout_ms, 30000);
        ck_assert_str_eq(d->sha256, ""); /* only template_def_load hashes */
}
END_TEST

START_TEST(test_all_keys)
{
        const char *text = "name = fancy-name\n"
                           "description = A template = with an equals sign\n"
                           "runtime = /opt/rt/bin/node   --jitless\n"
                           "agent = /opt/agents/agent.js\n"
                           "memory_mb = 512\n"
                           "pids_max = 32\n"
                           "tmp_mb = 8\n"
                           "ready_timeout_ms = 1500\n";
        _cleanup_def_ template_def *d = parse_ok(text, "/srv/templates/dir", "dir");
        ck_assert_str_eq(d->name, "fancy-name");
        ck_assert_str_eq(d->description, "A template = with an equals sign");
        static const char *const runtime[] = {"/opt/rt/bin/node", "--jitless"};
        assert_strv(d->runtime, runtime, 2);
        ck_assert_str_eq(d->agent_path, "/opt/agents/agent.js"); /* absolute: kept as is */
        ck_assert_uint_eq(d->memory_mb, 512);
        ck_assert_uint_eq(d->pids_max, 32);
        ck_assert_uint_eq(d->tmp_mb, 8);
        ck_assert_uint_eq(d->ready_timeout_ms, 1500);
}
END_TEST

START_TEST(test_comments_blank_lines)
{
        const char *text = "# a comment\n"
                           "\n"
                           "   \t \n"
                           "    # an indented comment = with equals\n"
                           "\tname\t=\tspaced   \r\n"
                           "runtime=/bin/sh\n"
                           "agent=agent.sh"; /* no final newline */
        _cleanup_def_ template_def *d = parse_ok(text, "/d", "dirname");
        ck_assert_str_eq(d->name, "spaced");
        static const char *const runtime[] = {"/bin/sh"};
        assert_strv(d->runtime, runtime, 1);
        ck_assert_str_eq(d->agent_path, "/d/agent.sh");

        /* Only comments and blank lines: the agent is missing (a runtime is optional). */
        parse_fails("# nothing\n\n#at all\n", "x", "'agent' is missing");
}
END_TEST

START_TEST(test_accumulate)
{
        const char *text = MINIMAL
                "preload = json csv\n"
                "env = A=1\n"
                "preload = re\n"
                "preload =   html.parser    xml.etree.ElementTree  \n"
                "env = B=x=y\n"
                "env = EMPTY=\n";
        _cleanup_def_ template_def *d = parse_ok(text, "/d", "x");
        static const char *const preload[] = {"json", "csv", "re", "html.parser",
                                              "xml.etree.ElementTree"};
        assert_strv(d->preload, preload, 5);
        static const char *const env[] = {"A=1", "B=x=y", "EMPTY="};
        assert_strv(d->env, env, 3);
}
END_TEST

START_TEST(test_repeated_scalars)
{
        /* Later scalar settings win; runtime is replaced, not appended to. */
        const char *text = "runtime = /bin/a -x\nruntime = /bin/b\nagent = one.py\nagent = two.py\n"
                           "memory_mb = 100\nmemory_mb = 200\nname = first\nname = second\n";
        _cleanup_def_ template_def *d = parse_ok(text, "/d", "x");
        static const char *const runtime[] = {"/bin/b"};
        assert_strv(d->runtime, runtime, 1);
        ck_assert_str_eq(d->agent_path, "/d/two.py");
        ck_assert_uint_eq(d->memory_mb, 200);
        ck_assert_str_eq(d->name, "second");
}
END_TEST

START_TEST(test_agent_paths)
{
        _cleanup_def_ template_def *rel = parse_ok("runtime = /bin/sh\nagent = ../python3/agent.py\n",
                                                   "/repo/criu-templates/python3-data", "python3-data");
        ck_assert_str_eq(rel->agent_path, "/repo/criu-templates/python3-data/../python3/agent.py");

        _cleanup_def_ template_def *sub = parse_ok("runtime = /bin/sh\nagent = lib/agent.py\n", "/t", "t");
        ck_assert_str_eq(sub->agent_path, "/t/lib/agent.py");

        _cleanup_def_ template_def *abs = parse_ok("runtime = /bin/sh\nagent = /usr/share/agent.py\n", "/t", "t");
        ck_assert_str_eq(abs->agent_path, "/usr/share/agent.py");
}
END_TEST

START_TEST(test_number_bounds)
{
        static const struct {
                const char *key;
                unsigned min, max;
        } limits[] = {
                {"memory_mb", 16, 1u << 20},
                {"pids_max", 4, 1u << 16},
                {"tmp_mb", 1, 1u << 20},
                {"ready_timeout_ms", 100, 3600000},
        };
        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                const char *key = limits[i].key;
                unsigned values[] = {limits[i].min, limits[i].max};
                for (size_t j = 0; j < 2; j++) {
                        _cleanup_free_ char *text = strdup_printf(MINIMAL "%s = %u\n", key, values[j]);
                        _cleanup_def_ template_def *d = parse_ok(text, "/d", "x");
                        unsigned got = !strcmp(key, "memory_mb") ? d->memory_mb :
                                       !strcmp(key, "pids_max")  ? d->pids_max :
                                       !strcmp(key, "tmp_mb")    ? d->tmp_mb :
                                                                   d->ready_timeout_ms;
                        ck_assert_uint_eq(got, values[j]);
                }
                /* one below the minimum, one above the maximum: line 3 */
                unsigned outside[] = {limits[i].min - 1, limits[i].max + 1};
                for (size_t j = 0; j < 2; j++) {
                        _cleanup_free_ char *text = strdup_printf(MINIMAL "%s = %u\n", key, outside[j]);
                        _cleanup_free_ char *want = strdup_printf("line 3: bad value '%u' for %s",
                                                                  outside[j], key);
                        parse_fails(text, "x", want);
                }
        }
}
END_TEST

START_TEST(test_bad_numbers)
{
        static const char *const bad[] = {"-1", "abc", "12abc", "1.5", "0x20", "256 MB",
                                          "99999999999999999999", "-0", "", "4294967552"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = strdup_printf("# c\n" MINIMAL "memory_mb = %s\n", bad[i]);
                _cleanup_free_ char *want = strdup_printf("line 4: bad value '%s' for memory_mb", bad[i]);
                parse_fails(text, "x", want);
        }
        parse_fails(MINIMAL "pids_max = -5\n", "x", "line 3: bad value '-5' for pids_max");
        parse_fails("tmp_mb = lots\n" MINIMAL, "x", "line 1: bad value 'lots' for tmp_mb");
}
END_TEST

START_TEST(test_syntax_errors)
{
        parse_fails("runtime = /bin/sh\n\nbogus = 1\nagent = a\n", "x", "line 3: unknown key 'bogus'");
        parse_fails("Name = x\n", "x", "line 1: unknown key 'Name'"); /* keys are case-sensitive */
        parse_fails("runtime = /bin/sh\njust some words\n", "x", "line 2: expected 'key = value'");
        parse_fails("# first\n\n\n\nagent agent.py\n", "x", "line 5: expected 'key = value'");
        parse_fails(" = value\n", "x", "line 1: unknown key ''");
        parse_fails(MINIMAL "env = NOEQUALS\n", "x", "line 3: env wants KEY=VALUE, got 'NOEQUALS'");
        parse_fails(MINIMAL "env = =value\n", "x", "line 3: env wants KEY=VALUE, got '=value'");
        parse_fails(MINIMAL "env =\n", "x", "line 3: env wants KEY=VALUE, got ''");
}
END_TEST

START_TEST(test_missing_required)
{
        parse_fails("runtime = python3 -B\nagent = agent.py\n", "x",
                    "'runtime' must name an absolute program path");
        parse_fails("runtime = ./python3\nagent = agent.py\n", "x",
                    "'runtime' must name an absolute program path");
        parse_fails("runtime = /usr/bin/python3\n", "x", "'agent' is missing");
        parse_fails("runtime = /usr/bin/python3\nagent =\n", "x", "'agent' is missing");
}
END_TEST

/* Without a runtime (or with an empty one) the agent is the program: an empty argv, never NULL. */
START_TEST(test_no_runtime)
{
        const char *texts[] = {"agent = prewarm-agent-native\n", "runtime =\nagent = prewarm-agent-native\n",
                               "runtime = /bin/sh\nruntime =\nagent = prewarm-agent-native\n"};
        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_def_ template_def *d = parse_ok(texts[i], "/t/native", "native");
                assert_strv(d->runtime, NULL, 0);
                ck_assert_str_eq(d->agent_path, "/t/native/prewarm-agent-native");
                ck_assert(d->agent_bare);
        }
        /* Only a name without a directory may be a built agent. */
        _cleanup_def_ template_def *sub = parse_ok("agent = lib/agent\n", "/t", "t");
        ck_assert(!sub->agent_bare);
        _cleanup_def_ template_def *abs = parse_ok("agent = /opt/agent\n", "/t", "t");
        ck_assert(!abs->agent_bare);
}
END_TEST

START_TEST(test_invalid_names)
{
        parse_fails("name = bad/name\n" MINIMAL, "x", "invalid template name 'bad/name'");
        parse_fails("name = .hidden\n" MINIMAL, "x", "invalid template name '.hidden'");
        parse_fails("name = has space\n" MINIMAL, "x", "invalid template name 'has space'");
        parse_fails("name =\n" MINIMAL, "x", "invalid template name ''");
        /* The directory's name is checked when no name is given ... */
        parse_fails(MINIMAL, "-dash", "invalid template name '-dash'");
        /* ... and not when one is. */
        _cleanup_def_ template_def *d = parse_ok("name = good\n" MINIMAL, "/d", "-dash");
        ck_assert_str_eq(d->name, "good");
}
END_TEST

/* The repository's own definitions. */

static void assert_repo_template(const char *name, template_def **ret)
{
        pw_err err = {""};
        template_def *d = NULL;
        int r = template_def_load(PW_SOURCE_TEMPLATES_DIR, name, &d, &err);
        ck_assert_msg(r == 0, "loading %s: %d %s", name, r, err.msg);
        ck_assert_str_eq(d->name, name);
        ck_assert_uint_ge(strv_length(d->runtime), 1);
        ck_assert_int_eq(d->runtime[0][0], '/');
        ck_assert_msg(is_lower_hex64(d->sha256), "sha256 '%s'", d->sha256);
        ck_assert_uint_gt(strv_length(d->preload), 0);
        ck_assert_ptr_nonnull(d->env);
        struct stat st;
        ck_assert_msg(stat(d->agent_path, &st) == 0 && S_ISREG(st.st_mode), "agent %s", d->agent_path);

        /* Loading again, nothing changed: the same digest. */
        _cleanup_def_ template_def *again = NULL;
        ck_assert_int_eq(template_def_load(PW_SOURCE_TEMPLATES_DIR, name, &again, &err), 0);
        ck_assert_str_eq(again->sha256, d->sha256);
        *ret = d;
}

START_TEST(test_load_repo_python3)
{
        _cleanup_def_ template_def *d = NULL;
        assert_repo_template("python3", &d);
        ck_assert_str_eq(d->agent_path, PW_SOURCE_TEMPLATES_DIR "/python3/agent.py");
        ck_assert_str_eq(d->runtime[0], "/usr/bin/python3");
        bool has_json = false;
        for (char **p = d->preload; *p; p++)
                has_json = has_json || !strcmp(*p, "json");
        ck_assert(has_json);

        /* The digest covers the definition text followed by the agent. */
        _cleanup_free_ char *text = NULL, *agent = NULL;
        size_t text_size = 0, agent_size = 0;
        ck_assert_int_eq(read_file(PW_SOURCE_TEMPLATES_DIR "/python3/template.conf", 1 << 20, &text,
                                   &text_size), 0);
        ck_assert_int_eq(read_file(d->agent_path, 16 << 20, &agent, &agent_size), 0);
        _cleanup_free_ char *both = malloc(text_size + agent_size);
        ck_assert_ptr_nonnull(both);
        memcpy(both, text, text_size);
        memcpy(both + text_size, agent, agent_size);
        char want[65];
        ck_assert_int_eq(sha256_buffer_hex(both, text_size + agent_size, want), 0);
        ck_assert_str_eq(d->sha256, want);
}
END_TEST

START_TEST(test_load_repo_python3_data)
{
        _cleanup_def_ template_def *data = NULL, *plain = NULL;
        assert_repo_template("python3-data", &data);
        assert_repo_template("python3", &plain);
        /* shares python3's agent through a relative path */
        ck_assert_str_eq(data->agent_path, PW_SOURCE_TEMPLATES_DIR "/python3-data/../python3/agent.py");
        ck_assert_str_ne(data->sha256, plain->sha256);
}
END_TEST

/* The native template's agent is the build's, found beside the (build tree's) clone helper's
 * directory's sibling src/agent-native/. */
START_TEST(test_load_repo_native)
{
        unsetenv("PREWARM_ZYGOTE_HELPER");
        pw_err err = {""};
        _cleanup_def_ template_def *d = NULL;
        int r = template_def_load(PW_SOURCE_TEMPLATES_DIR, "native", &d, &err);
        ck_assert_msg(r == 0, "loading native: %d %s", r, err.msg);
        ck_assert_str_eq(d->name, "native");
        assert_strv(d->runtime, NULL, 0);
        ck_assert_str_eq(d->agent_path, PW_BUILD_AGENT_DIR "/prewarm-agent-native");
        ck_assert_msg(access(d->agent_path, X_OK) == 0, "agent %s is not executable", d->agent_path);
        ck_assert(is_lower_hex64(d->sha256));
}
END_TEST

/* template_def_load on a scratch templates directory. */

static void make_template(const char *name, const char *conf, const char *agent)
{
        _cleanup_free_ char *dir = tmp_path(name);
        ck_assert_int_eq(mkdir_p(dir, 0755), 0);
        _cleanup_free_ char *conf_path = strdup_printf("%s/template.conf", dir);
        put_text(conf_path, conf);
        if (agent) {
                _cleanup_free_ char *agent_path = strdup_printf("%s/agent.py", dir);
                put_text(agent_path, agent);
        }
}

static void load_sha(const char *name, char out[65])
{
        pw_err err = {""};
        _cleanup_def_ template_def *d = NULL;
        int r = template_def_load(tmp_dir, name, &d, &err);
        ck_assert_msg(r == 0, "load: %d %s", r, err.msg);
        ck_assert(is_lower_hex64(d->sha256));
        memcpy(out, d->sha256, 65);
}

START_TEST(test_load_sha_tracks_changes)
{
        make_template("t1", MINIMAL, "print('agent')\n");
        char a[65], b[65], c[65], d[65];
        load_sha("t1", a);
        load_sha("t1", b);
        ck_assert_str_eq(a, b);

        make_template("t1", MINIMAL, "print('agent 2')\n"); /* agent changed */
        load_sha("t1", c);
        ck_assert_str_ne(c, a);

        make_template("t1", MINIMAL "# just a comment\n", "print('agent 2')\n"); /* text changed */
        load_sha("t1", d);
        ck_assert_str_ne(d, c);
        ck_assert_str_ne(d, a);
}
END_TEST

START_TEST(test_load_errors)
{
        pw_err err = {""};
        template_def *sentinel = (template_def *)0x1, *d = sentinel;

        ck_assert_int_eq(template_def_load(tmp_dir, "absent", &d, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "absent/template.conf"));

        ck_assert_int_eq(template_def_load(tmp_dir, "../escape", &d, &err), -EINVAL);
        ck_assert_str_eq(err.msg, "invalid template name '../escape'");
        ck_assert_int_eq(template_def_load(tmp_dir, NULL, &d, &err), -EINVAL);

        make_template("noagent", MINIMAL, NULL);
        ck_assert_int_eq(template_def_load(tmp_dir, "noagent", &d, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "cannot read agent"));
        ck_assert_ptr_nonnull(strstr(err.msg, "noagent/agent.py"));

        make_template("broken", "runtime = /bin/sh\nfoo = bar\n", "x");
        ck_assert_int_eq(template_def_load(tmp_dir, "broken", &d, &err), -EINVAL);
        _cleanup_free_ char *want = strdup_printf("%s/broken/template.conf: line 2: unknown key 'foo'", tmp_dir);
        ck_assert_str_eq(err.msg, want);
        ck_assert_ptr_eq(d, sentinel);
}
END_TEST

/* A bare agent name is looked for beside the clone helper when the template's directory has no
 * such file; the template's own file wins, and a name with a directory is never looked for. */
START_TEST(test_load_built_agent)
{
        _cleanup_free_ char *helper_dir = tmp_path("libexec");
        _cleanup_free_ char *helper = strdup_printf("%s/libprewarm-zygote.so", helper_dir);
        _cleanup_free_ char *built = strdup_printf("%s/my-agent", helper_dir);
        ck_assert_int_eq(mkdir_p(helper_dir, 0755), 0);
        put_text(helper, "helper");
        put_text(built, "built agent");
        ck_assert_int_eq(setenv("PREWARM_ZYGOTE_HELPER", helper, 1), 0);
        make_template("bi", "agent = my-agent\n", NULL);
        pw_err err = {""};
        template_def *d = NULL;
        ck_assert_msg(template_def_load(tmp_dir, "bi", &d, &err) == 0, "%s", err.msg);
        ck_assert_str_eq(d->agent_path, built);
        template_def_free(d);

        _cleanup_free_ char *own = strdup_printf("%s/bi/my-agent", tmp_dir);
        put_text(own, "the template's own");
        ck_assert_int_eq(template_def_load(tmp_dir, "bi", &d, &err), 0);
        ck_assert_str_eq(d->agent_path, own);
        template_def_free(d);

        make_template("sub", "agent = lib/my-agent\n", NULL);
        ck_assert_int_eq(template_def_load(tmp_dir, "sub", &d, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "sub/lib/my-agent"));

        make_template("nowhere", "agent = no-such-agent\n", NULL);
        ck_assert_int_eq(template_def_load(tmp_dir, "nowhere", &d, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "no-such-agent"));
        ck_assert_ptr_nonnull(strstr(err.msg, "beside the clone helper"));
}
END_TEST

static Suite *definition_suite(void)
{
        Suite *s = suite_create("definition");

        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_all_keys);
        tcase_add_test(tc, test_comments_blank_lines);
        tcase_add_test(tc, test_accumulate);
        tcase_add_test(tc, test_repeated_scalars);
        tcase_add_test(tc, test_agent_paths);
        tcase_add_test(tc, test_number_bounds);
        tcase_add_test(tc, test_bad_numbers);
        tcase_add_test(tc, test_syntax_errors);
        tcase_add_test(tc, test_missing_required);
        tcase_add_test(tc, test_no_runtime);
        tcase_add_test(tc, test_invalid_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("load");
        tcase_add_tmp_dir(tc);
        tcase_add_test(tc, test_load_repo_python3);
        tcase_add_test(tc, test_load_repo_python3_data);
        tcase_add_test(tc, test_load_repo_native);
        tcase_add_test(tc, test_load_built_agent);
        tcase_add_test(tc, test_load_sha_tracks_changes);
        tcase_add_test(tc, test_load_errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(definition_suite());
}

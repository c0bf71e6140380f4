/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Template definitions (criu-templates/NAME/template.conf): parsing, checks, the agent found, and
 * the fingerprint that says when a build is out of date.
 */
#include <ctype.h>
#include <libgen.h>
#include <limits.h>

#include "config.h"
#include "definition.h"
#include "digest.h"

template_def *template_def_free(template_def *d)
{
        if (!d)
                return NULL;
        free(d->name);
        free(d->description);
        strv_free(d->runtime);
        free(d->agent_path);
        strv_free(d->preload);
        strv_free(d->env);
        free(d);
        return NULL;
}

static char *strip(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        char *end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

static int parse_uint(const char *value, unsigned min, unsigned max, unsigned *ret)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' || v < min || v > max)
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

static int append_words(char ***v, const char *value)
{
        _cleanup_strv_free_ char **words = strv_split_ws(value);
        if (!words)
                return -ENOMEM;
        for (char **w = words; *w; w++)
                if (strv_push(v, *w) < 0)
                        return -ENOMEM;
        return 0;
}

static int set_string(char **field, const char *value)
{
        char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

/* One "key = value" line. Returns -EINVAL with err set for anything it does not understand. */
static int apply_key(template_def *d, const char *dir, const char *key, const char *value,
                     unsigned lineno, pw_err *err)
{
        int r;
        if (!strcmp(key, "name"))
                r = set_string(&d->name, value);
        else if (!strcmp(key, "description"))
                r = set_string(&d->description, value);
        else if (!strcmp(key, "runtime")) {
                strv_free(d->runtime);
                d->runtime = strv_split_ws(value);
                r = d->runtime ? 0 : -ENOMEM;
        } else if (!strcmp(key, "agent")) {
                free(d->agent_path);
                d->agent_path = NULL; /* "agent =" names none */
                if (value[0])
                        d->agent_path = value[0] == '/' ? strdup(value) : strdup_printf("%s/%s", dir, value);
                d->agent_bare = !strchr(value, '/');
                r = d->agent_path || !value[0] ? 0 : -ENOMEM;
        } else if (!strcmp(key, "preload"))
                r = append_words(&d->preload, value);
        else if (!strcmp(key, "env")) {
                if (!strchr(value, '=') || value[0] == '=')
                        return err_set(err, -EINVAL, "line %u: env wants KEY=VALUE, got '%s'", lineno, value);
                r = strv_push(&d->env, value);
        } else if (!strcmp(key, "memory_mb"))
                r = parse_uint(value, 16, 1u << 20, &d->memory_mb);
        else if (!strcmp(key, "pids_max"))
                r = parse_uint(value, 4, 1u << 16, &d->pids_max);
        else if (!strcmp(key, "tmp_mb"))
                r = parse_uint(value, 1, 1u << 20, &d->tmp_mb);
        else if (!strcmp(key, "ready_timeout_ms"))
                r = parse_uint(value, 100, 3600u * 1000u, &d->ready_timeout_ms);
        else
                return err_set(err, -EINVAL, "line %u: unknown key '%s'", lineno, key);
        if (r == -EINVAL)
                return err_set(err, r, "line %u: bad value '%s' for %s", lineno, value, key);
        return r;
}

int template_def_parse(const char *text, const char *dir, const char *dir_name, template_def **ret,
                       pw_err *err)
{
        _cleanup_def_ template_def *d = calloc(1, sizeof(*d));
        _cleanup_free_ char *copy = strdup(text);
        if (!d || !copy)
                return -ENOMEM;
        d->memory_mb = 256;
        d->pids_max = 64;
        d->tmp_mb = 64;
        d->ready_timeout_ms = 30000;

        unsigned lineno = 0;
        char *save = NULL;
        for (char *line = copy; line; line = save) {
                save = strchr(line, '\n');
                if (save)
                        *save++ = '\0';
                lineno++;
                char *s = strip(line);
                if (!*s || *s == '#')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq)
                        return err_set(err, -EINVAL, "line %u: expected 'key = value'", lineno);
                *eq = '\0';
                int r = apply_key(d, dir, strip(s), strip(eq + 1), lineno, err);
                if (r < 0)
                        return r;
        }

        if (!d->name && set_string(&d->name, dir_name) < 0)
                return -ENOMEM;
        if (!name_is_valid(d->name))
                return err_set(err, -EINVAL, "invalid template name '%s'", d->name);
        /* No runtime: the agent is the program (the native template's). */
        if (!d->runtime && !(d->runtime = calloc(1, sizeof(char *))))
                return -ENOMEM;
        if (d->runtime[0] && d->runtime[0][0] != '/')
                return err_set(err, -EINVAL, "'runtime' must name an absolute program path");
        if (!d->agent_path)
                return err_set(err, -EINVAL, "'agent' is missing");
        if (!d->preload && !(d->preload = calloc(1, sizeof(char *))))
                return -ENOMEM;
        if (!d->env && !(d->env = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = TAKE_PTR(d);
        return 0;
}

/* Where a bare agent name not found in its template's directory may be: beside the clone helper,
 * then in the build tree. */
static char **builtin_agent_dirs(void)
{
        _cleanup_strv_free_ char **dirs = NULL;
        _cleanup_free_ char *helper = zygote_helper_locate();
        if (helper && strv_push(&dirs, dirname(helper)) < 0)
                return NULL;
        return strv_push(&dirs, PW_BUILD_AGENT_DIR) < 0 ? NULL : TAKE_PTR(dirs);
}

/* Reads the definition's agent into *ret; a bare name missing from the template's directory is
 * looked for among the built agents, and d->agent_path is set to where it was found. */
static int read_agent(template_def *d, const char *conf_path, char **ret, size_t *ret_size, pw_err *err)
{
        int r = read_file(d->agent_path, 16 << 20, ret, ret_size);
        if (r != -ENOENT || !d->agent_bare)
                return r < 0 ? err_set(err, r, "%s: cannot read agent %s: %s", conf_path, d->agent_path, strerror(-r)) : 0;
        _cleanup_free_ char *name_copy = strdup(d->agent_path);
        _cleanup_strv_free_ char **dirs = builtin_agent_dirs();
        if (!name_copy || !dirs)
                return -ENOMEM;
        const char *name = basename(name_copy);
        for (char **dir = dirs; *dir; dir++) {
                _cleanup_free_ char *path = strdup_printf("%s/%s", *dir, name);
                if (!path)
                        return -ENOMEM;
                if ((r = read_file(path, 16 << 20, ret, ret_size)) == -ENOENT)
                        continue;
                if (r < 0)
                        return err_set(err, r, "%s: cannot read agent %s: %s", conf_path, path, strerror(-r));
                free(d->agent_path);
                d->agent_path = TAKE_PTR(path);
                return 0;
        }
        return err_set(err, -ENOENT, "%s: cannot read agent %s: %s, and no %s beside the clone helper or in %s",
                       conf_path, d->agent_path, strerror(ENOENT), name, PW_BUILD_AGENT_DIR);
}

int template_def_load(const char *templates_dir, const char *name, template_def **ret, pw_err *err)
{
        if (!name_is_valid(name))
                return err_set(err, -EINVAL, "invalid template name '%s'", name ? name : "");
        _cleanup_free_ char *dir = strdup_printf("%s/%s", templates_dir, name);
        _cleanup_free_ char *path = strdup_printf("%s/%s/template.conf", templates_dir, name);
        if (!dir || !path)
                return -ENOMEM;
        _cleanup_free_ char *text = NULL;
        int r = read_file(path, 1 << 20, &text, NULL);
        if (r < 0)
                return err_set(err, r, "cannot read definition %s: %s", path, strerror(-r));

        _cleanup_def_ template_def *d = NULL;
        r = template_def_parse(text, dir, name, &d, err);
        if (r < 0)
                return err_prefix(err, r, "%s", path);

        _cleanup_free_ char *agent = NULL;
        size_t agent_size = 0;
        if ((r = read_agent(d, path, &agent, &agent_size, err)) < 0)
                return r;

        sha256_ctx *ctx = sha256_begin();
        if (!ctx)
                return -ENOMEM;
        sha256_update(ctx, text, strlen(text));
        sha256_update(ctx, agent, agent_size);
        sha256_end_hex(ctx, d->sha256);
        *ret = TAKE_PTR(d);
        return 0;
}

char *zygote_helper_locate(void)
{
        const char *env = getenv("PREWARM_ZYGOTE_HELPER");
        if (env && *env)
                return strdup(env);
        const char *candidates[] = {PW_BUILD_ZYGOTE_HELPER, PW_DEFAULT_ZYGOTE_HELPER};
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++)
                if (access(candidates[i], R_OK) == 0)
                        return strdup(candidates[i]);
        return NULL;
}

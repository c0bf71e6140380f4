/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A function definition checked field by field from its JSON alone (function_def.h), the part
 * of the API's request parsing that the fuzz target drives.
 */
#include <stdarg.h>

#include "function_def.h"


bool env_is_valid(json_t *env, pw_err *err)
{
        if (!json_is_object(env)) {
                err_set(err, 0, "env must be an object of strings");
                return false;
        }
        const char *key;
        json_t *v;
        json_object_foreach(env, key, v) {
                if (!*key || strchr(key, '=') || !json_is_string(v)) {
                        err_set(err, 0, "env entry '%s' must have a non-empty name without '=' and a string value", key);
                        return false;
                }
        }
        return true;
}

int env_to_strv(json_t *env, char ***ret)
{
        _cleanup_strv_free_ char **v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        const char *key;
        json_t *value;
        json_object_foreach(env, key, value) {
                if (!*key || strchr(key, '='))
                        return -EINVAL;
                _cleanup_free_ char *text = json_is_string(value) ? strdup(json_string_value(value))
                                                                   : json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
                _cleanup_free_ char *kv = text ? strdup_printf("%s=%s", key, text) : NULL;
                if (!kv || strv_push(&v, kv) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

/* Names, URIs and environment reach logs, paths and processes: text without control characters.
 * (Inline source and base64 zips may hold line breaks: they are code, not names.) */
static int check_text(const fn_fields *f, pw_err *err)
{
        const char *fields[][2] = {{"template", f->template_name}, {"code", f->code}, {"digest", f->digest},
                                   {"main", f->main}};
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (fields[i][1] && has_control(fields[i][1]))
                        return err_set(err, -EINVAL, "%s holds a control character", fields[i][0]);
        const char *key;
        json_t *value;
        json_object_foreach(f->env, key, value)
                if (has_control(key) || (json_is_string(value) && has_control(json_string_value(value))))
                        return err_set(err, -EINVAL, "env entry holds a control character");
        return 0;
}

static int check_ranges(const fn_fields *f, pw_err *err)
{
        if (!name_is_valid(f->template_name))
                return err_set(err, -EINVAL, "invalid template name '%s'", f->template_name);
        if (!*f->main || strlen(f->main) > 128)
                return err_set(err, -EINVAL, "main must name the handler function");
        if (f->memory_mb < 0 || f->memory_mb > 1 << 20)
                return err_set(err, -EINVAL, "memory_mb must be between 0 and 1048576");
        if (f->timeout_ms < 0 || f->timeout_ms > 3600 * 1000)
                return err_set(err, -EINVAL, "timeout_ms must be between 0 (none) and 3600000");
        if (f->keepalive_s < 0 || f->keepalive_s > 7 * 86400)
                return err_set(err, -EINVAL, "keepalive_s must be between 0 (default) and 604800");
        if (f->env && !env_is_valid(f->env, err))
                return -EINVAL;
        if (!!f->code + !!f->source + !!f->zip != 1)
                return err_set(err, -EINVAL,
                            "give the code exactly once: \"code\" (a URI), \"source\" (inline Python) or \"zip\" (base64)");
        return 0;
}

int function_fields_parse(json_t *body, fn_fields *ret, pw_err *err)
{
        if (!json_is_object(body))
                return err_set(err, -EINVAL,
                                   "the body must be a JSON object, e.g. {\"code\": \"file:///srv/f.py\"}");
        fn_fields f = {.template_name = FUNCTION_DEFAULT_TEMPLATE, .main = "main",
                       .timeout_ms = FUNCTION_DEFAULT_TIMEOUT_MS};
        json_error_t jerr;
        if (json_unpack_ex(body, &jerr, JSON_STRICT, "{s?s, s?s, s?s, s?s, s?s, s?s, s?o, s?I, s?I, s?I}",
                           "template", &f.template_name, "code", &f.code, "source", &f.source, "zip", &f.zip,
                           "digest", &f.digest, "main", &f.main, "env", &f.env, "memory_mb", &f.memory_mb,
                           "timeout_ms", &f.timeout_ms, "keepalive_s", &f.keepalive_s) < 0)
                return err_set(err, -EINVAL, "bad function definition: %s", jerr.text);
        int r = check_text(&f, err);
        if (r < 0 || (r = check_ranges(&f, err)) < 0)
                return r;
        *ret = f;
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A function for the `native` template (include/prewarm-handler.h), with no dependency beyond
 * libc: it answers {"hello": NAME, "args": ARGS}, NAME being the argument "name" when that is a
 * string and "world" otherwise, ARGS the arguments as they came.
 *
 * meson builds it as build/examples/native/hello.so; by hand:
 *   cc -shared -fPIC -I include examples/native/hello.c -o hello.so
 *   sudo build/prewarm template build native
 *   sudo build/prewarm run --template native --code $PWD/hello.so --payload '{"name": "Ada"}'
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prewarm-handler.h"

static const char *skip_space(const char *s, const char *end)
{
        while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
                s++;
        return s;
}

/* Past the end of the JSON string that starts at s (its opening quote), or NULL. */
static const char *skip_string(const char *s, const char *end)
{
        for (s++; s < end; s++)
                if (*s == '\\')
                        s++;
                else if (*s == '"')
                        return s + 1;
        return NULL;
}

/* Past the end of the JSON value that starts at s, or NULL: a string, a nested object or array,
 * or a scalar, which ends where the enclosing object goes on or closes. */
static const char *skip_value(const char *s, const char *end)
{
        int depth = 0;
        while (s < end) {
                if (*s == '"') {
                        if (!(s = skip_string(s, end)) || depth == 0)
                                return s;
                        continue;
                }
                if (*s == '{' || *s == '[')
                        depth++;
                else if (*s == '}' || *s == ']') {
                        if (depth-- == 0)
                                return s;
                        if (depth == 0)
                                return s + 1;
                } else if (*s == ',' && depth == 0)
                        return s;
                s++;
        }
        return NULL;
}

/* The JSON text of member key of the object json[0..len), or NULL. The agent passes compact
 * JSON, and a key written with escapes is not worth finding here. */
static const char *member(const char *json, size_t len, const char *key, size_t *ret_len)
{
        const char *end = json + len, *s = skip_space(json, end);
        if (s == end || *s++ != '{')
                return NULL;
        for (;;) {
                s = skip_space(s, end);
                const char *name = s + 1, *after = s < end && *s == '"' ? skip_string(s, end) : NULL;
                if (!after)
                        return NULL;
                bool found = (size_t)(after - 1 - name) == strlen(key) && !memcmp(name, key, strlen(key));
                s = skip_space(after, end);
                if (s == end || *s != ':')
                        return NULL;
                s = skip_space(s + 1, end);
                const char *value_end = skip_value(s, end);
                if (!value_end)
                        return NULL;
                if (found) {
                        *ret_len = (size_t)(value_end - s);
                        return s;
                }
                s = skip_space(value_end, end);
                if (s == end || *s++ != ',')
                        return NULL;
        }
}

int pw_handler(const char *args_json, size_t args_len, char **result_json, size_t *result_len)
{
        size_t name_len = 0;
        const char *name = member(args_json, args_len, "name", &name_len);
        if (!name || name[0] != '"') { /* a JSON string is already quoted and escaped: used as is */
                name = "\"world\"";
                name_len = strlen(name);
        }
        size_t size = name_len + args_len + 32;
        char *result = malloc(size);
        if (!result) {
                *result_json = strdup("out of memory");
                return 1;
        }
        int n = snprintf(result, size, "{\"hello\":%.*s,\"args\":%.*s}", (int)name_len, name, (int)args_len, args_json);
        *result_json = result;
        *result_len = (size_t)n;
        return 0;
}

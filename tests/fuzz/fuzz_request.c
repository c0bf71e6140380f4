/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for what prewarmd checks of a request before anything acts on it: the text
 * checks of paths, headers and query arguments, the escaping of what the log and error bodies
 * quote, and the JSON of a function definition with its environment.
 *
 * Input: a first line taken as a path (or header value), the rest as a request body. Besides the
 * sanitizers' own findings, the escaping's contract is checked: whatever goes in, what comes out
 * is valid UTF-8 without control characters, and text that needed no escaping is unchanged.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "function_def.h"

static void check_escape(const char *text)
{
        char out[512];
        str_escape(out, sizeof(out), text);
        if (!utf8_valid(out, strlen(out)) || has_control(out))
                abort();
        bool clean = utf8_valid(text, strlen(text)) && !has_control(text);
        if (clean && strlen(text) < sizeof(out) && strcmp(out, text))
                abort();
}

static void check_definition(const char *body, size_t n)
{
        json_t *j = json_loadb(body, n, JSON_DECODE_ANY, NULL);
        if (!j)
                return;
        pw_err err = {""};
        fn_fields f;
        if (function_fields_parse(j, &f, &err) == 0) {
                /* An accepted definition's names carry no control character into logs or env. */
                if (has_control(f.template_name) || has_control(f.main) || (f.code && has_control(f.code)))
                        abort();
                char **env = NULL;
                if (f.env && env_to_strv(f.env, &env) == 0)
                        strv_free(env);
        } else if (!err.msg[0])
                abort(); /* a refusal always says why */
        json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nl = memchr(data, '\n', size);
        size_t first = nl ? (size_t)(nl - data) : size;
        char *line = strndup((const char *)data, first);
        if (!line)
                return 0;
        check_escape(line);
        free(line);
        if (nl)
                check_definition((const char *)nl + 1, size - first - 1);
        return 0;
}

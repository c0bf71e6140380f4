/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A function definition as a client sends it (PUT /v1/functions/NAME), checked field by field with
 * nothing but the JSON itself: no file, network or daemon state, so that the fuzz target
 * (tests/fuzz) can drive it. functions.c then resolves the code and stores the definition.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "util.h"

#define FUNCTION_DEFAULT_TEMPLATE "python3"
#define FUNCTION_DEFAULT_TIMEOUT_MS 60000

/* The fields; strings point into the JSON they came from. */
typedef struct fn_fields {
        const char *template_name, *code, *source, *zip, *digest, *main;
        json_t *env;
        json_int_t memory_mb, timeout_ms, keepalive_s;
} fn_fields;

/* Unpacks body into *ret with the defaults, and checks that it is an object with no unknown key,
 * names and URIs without control characters, numbers in range, env well formed and the code
 * given exactly once. -EINVAL with the reason in err otherwise. */
int function_fields_parse(json_t *body, fn_fields *ret, pw_err *err);

/* JSON object -> NULL-terminated "K=V" vector (empty for NULL). String values are taken as they
 * are, others as their JSON text (OpenWhisk's init env). -EINVAL for an empty key or one with '='. */
int env_to_strv(json_t *env, char ***ret);
/* Whether every key is a valid environment name and every value a string. */
bool env_is_valid(json_t *env, pw_err *err);


/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The native API: templates, functions, invocations, activations, instances, health, metrics. */
#pragma once

#include "http.h"

extern const http_route api_routes[];
extern const size_t api_n_routes;

/* How a failed invocation (a negative errno of pw_pool_invoke or pw_instance_*) reaches an API
 * caller: HTTP status and the kind counted in prewarm_errors_total. */
void invoke_error_class(int r, unsigned *ret_status, const char **ret_kind);

/* The source names used in headers and records: "warm", "zygote", "restore", "cold-start",
 * "second-level", "clone". */
const char *source_name(int source);

/* Whether template name is built. */
bool api_template_built(daemon_ctx *d, const char *name);

/* Registers every function of the registry with the pool (at startup). */
int api_register_all(daemon_ctx *d);

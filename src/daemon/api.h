/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The native API: templates, functions, invocations, activations, instances, health, metrics. */
#pragma once

#include "http.h"

extern const http_route api_routes[];
extern const size_t api_n_routes;

/* Registers every function of the registry with the pool (at startup). */
int api_register_all(daemon_ctx *d);

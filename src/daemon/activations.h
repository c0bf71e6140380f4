/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Records of asynchronous invocations, polled through GET /v1/activations/ID. In memory only: the
 * newest finished ones are kept (ACTIVATIONS_KEEP), running ones always.
 */
#pragma once

#include <jansson.h>

#include "daemon.h"

#define ACTIVATIONS_KEEP 10000
#define ACTIVATIONS_MAX_RUNNING 256

activations *activations_new(void);
activations *activations_free(activations *a);

/* Records a new running activation of function and writes its id (32 hex digits) to id.
 * -EAGAIN when ACTIVATIONS_MAX_RUNNING are running already. */
int activations_start(activations *a, const char *function, char id[33]);
/* Completes activation id with the fields of outcome (status, result or error, logs, ...); takes
 * the reference of outcome. */
void activations_finish(activations *a, const char *id, json_t *outcome);
/* A copy of the record, or NULL. */
json_t *activations_get(activations *a, const char *id);

/* 32 random hex digits, the form OpenWhisk activation ids have. */
void random_id(char id[33]);

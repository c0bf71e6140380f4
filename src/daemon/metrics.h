/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Counters and latency histograms of prewarmd, rendered in Prometheus' text format. */
#pragma once

#include <stdint.h>

#include "daemon.h"

typedef enum metric_stage {
        STAGE_RESTORE,
        STAGE_SPECIALIZE,
        STAGE_INVOKE,
        STAGE_TOTAL, /* a whole invocation request, as the caller saw it */
        STAGE_TEMPLATE_PULL, /* a template pulled from its registry (template_sources.h) */
        _STAGE_MAX,
} metric_stage;

metrics *metrics_new(void);
metrics *metrics_free(metrics *m);

/* A stage's duration; 0 means the stage did not run (a warm hit has no restore) and is skipped. */
void metrics_observe(metrics *m, metric_stage stage, uint64_t us);
/* One invocation through PATH ("api", "openwhisk", "fission") served from source (enum
 * pw_instance_source, or -1 when it failed before an instance was found). */
void metrics_invocation(metrics *m, const char *path, int source);
/* An error of a kind ("exception", "timeout", "crash", ...). */
void metrics_error(metrics *m, const char *kind);

/* A template cache event: "hit" (built here when needed), "pulled", "pull_failed",
 * "incompatible" (the node cannot restore it), "built_locally" (instead), "evicted"; and the
 * size of the pulled templates kept. */
void metrics_template(metrics *m, const char *event);
void metrics_template_cache_bytes(metrics *m, uint64_t bytes);

/* The blob cache's size, and a blob evicted from it. */
void metrics_blob_cache_bytes(metrics *m, uint64_t bytes);
void metrics_blob_evicted(metrics *m);
/* A connection opened or closed; one refused at the cap for its address or the overall one; one
 * closed because its request was not read whole within the deadline. */
void metrics_connection(metrics *m, int delta);
void metrics_connection_refused(metrics *m, bool per_address);
void metrics_request_deadline(metrics *m);

/* The whole exposition: the daemon's own metrics, the pool's gauges and the slots' (how many of
 * slots_total hold an action, counted by the caller: the slots report into the metrics, never the
 * other way round). Caller frees. */
char *metrics_render(metrics *m, daemon_ctx *d, unsigned slots_used, unsigned slots_total);

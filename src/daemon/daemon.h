/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* prewarmd: what the daemon's files share — the one context every handler reaches. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "prewarm.h"
#include "util.h"

typedef struct registry registry;
typedef struct metrics metrics;
typedef struct activations activations;
typedef struct slots slots;
typedef struct template_sources template_sources;
struct code_policy;

typedef struct daemon_config {
        const char *state_dir;
        const char *socket_path;     /* default STATE/prewarmd.sock */
        const char *listen;          /* HOST:PORT or NULL */
        const char *token_file;
        const char *socket_group;    /* group given the unix socket (mode 0660), or NULL */
        unsigned ow_port_first, ow_port_last; /* 0: no OpenWhisk slots */
        const char *slot_template;   /* template the slots' zygotes come from */
        const char *fission_root;    /* Fission packages must lie under it */
        char **code_roots;           /* --code-root: where file:// code may come from */
        char **fetch_allow;          /* --fetch-allow: CIDRs http(s) code may come from */
        unsigned grace_s;            /* how long shutdown waits for in-flight requests */
        unsigned zygotes_min, zygotes_max;
        uint64_t memory_budget_mb;   /* of what the pool keeps ready; 0: none */
        unsigned max_invocations;    /* API invocations running at once; more wait (0: no limit) */
        uint64_t blob_cache_mb;      /* bound of the inline code cache */
        unsigned max_connections;    /* open connections per API server */
        unsigned max_connections_per_address;
        unsigned max_code_mb; /* code blobs, inline or fetched; request bodies hold them in base64 */
        unsigned request_deadline_s; /* to read a whole request, however it trickles */
        char **template_from;        /* --template-from NAME=REF */
        uint64_t template_cache_mb;  /* bound of the pulled templates kept (0: none) */
        pw_registry_options registry; /* how pulls and pushes reach registries */
        bool verbose;
} daemon_config;

typedef struct daemon_ctx {
        daemon_config cfg;
        char *token;     /* --token-file's bearer token, or NULL: required on every API request */
        char *tcp_token; /* required on TCP: the same, or one kept in STATE/api.token */
        pw_engine *engine;
        pw_pool *pool;
        registry *functions;
        metrics *metrics;
        activations *activations;
        slots *slots;
        template_sources *sources;
        char build_info[256]; /* prewarmd_build_info's labels, made at start */
        char *blob_dir;   /* STATE/blobs */
        struct code_policy *code_policy; /* the same as the engine's, for checks at registration */

        atomic_bool stopping;   /* new requests get 503 */
        atomic_int in_flight;   /* requests inside a handler, async activations running */
        pthread_mutex_t build_lock;
        json_t *building;       /* names of templates being built (guarded by build_lock) */

        /* Admission: the pool starts an instance for every concurrent invocation, so a burst
         * beyond what the machine runs would turn into a storm of restores. */
        pthread_mutex_t admission_lock;
        pthread_cond_t admission_free;
        unsigned running, waiting;
} daemon_ctx;

/* One line per event on stderr: "2026-01-01T00:00:00.000Z prewarmd[PID] LEVEL: MESSAGE". */
void dlog(int level, const char *fmt, ...) _printf_(2, 3);
void dlog_set_verbose(bool verbose);

/* Counts a request or activation as in flight, so that shutdown waits for it. False (and nothing
 * counted) once the daemon is stopping. */
bool daemon_enter(daemon_ctx *d);
void daemon_leave(daemon_ctx *d);

/* Waits until fewer than max_invocations invocations run (at most timeout_ms; 0: forever) and
 * counts this one; false on timeout. */
bool admission_enter(daemon_ctx *d, unsigned timeout_ms);
void admission_leave(daemon_ctx *d);

/* Kills (SIGKILL) the processes of every instance still busy, so that requests stuck in them fail
 * at once; used when the shutdown grace period has run out. */
void daemon_fail_busy(daemon_ctx *d);

/* How a failed invocation (a negative errno of pw_pool_invoke or pw_instance_*) reaches an API
 * caller: HTTP status and the kind counted in prewarm_errors_total. */
void invoke_error_class(int r, unsigned *ret_status, const char **ret_kind);

/* The source names used in headers and records: "warm", "zygote", "restore", "cold-start",
 * "second-level", "clone". */
const char *source_name(int source);

/* Milliseconds since the epoch (wall clock), for records humans and OpenWhisk deadlines read. */
int64_t wall_ms(void);


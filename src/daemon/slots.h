/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Action slots: each one behaves like one OpenWhisk action container (or one Fission environment
 * pod) on its own loopback port. A slot is free until /init (or Fission's /v2/specialize) takes a
 * zygote from the pool and specializes it; from then on /run (or Fission's /) invokes that one
 * instance, one activation at a time. Logs go to STATE/slots/PORT/{stdout,stderr}, each
 * activation's closed by OpenWhisk's end-of-activation marker.
 */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <sys/types.h>

#include "err.h"
#include "http.h"

#define OW_LOG_MARKER "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
#define SLOT_DEFAULT_TIMEOUT_MS 60000

typedef enum slot_mode { SLOT_FREE, SLOT_OPENWHISK, SLOT_FISSION, SLOT_OPENFAAS } slot_mode;

/* A slot whose function answers HTTP requests itself (Fission, OpenFaaS), through flask.request. */
static inline bool slot_mode_web(slot_mode m) { return m == SLOT_FISSION || m == SLOT_OPENFAAS; }

/* "free", "openwhisk", "fission", "openfaas": the slot's state as the API lists it, its protocol
 * in the metrics, and (but "free") the agent's calling convention. */
static inline const char *slot_mode_name(slot_mode m)
{
        static const char *const names[] = {"free", "openwhisk", "fission", "openfaas"};
        return names[m];
}

typedef struct slot {
        daemon_ctx *d;
        unsigned port;
        char name[32];        /* "slot PORT", the server's name in log lines */
        http_server *server;
        pthread_mutex_t lock; /* held for a whole /init, /run, specialize or invocation */
        slot_mode mode;
        bool claimed;
        pw_instance *instance;
        atomic_int pid;       /* the instance's, readable without the lock (shutdown kills it) */
        char *instance_id;    /* guarded by lock */
        char *action_name;
        /* What the instance was specialized with, to replace it after it died. */
        char *code_uri, *digest, *main;
        char **env;
        char **claim_env;     /* the "container's" environment, set when the slot is claimed */
        int out_fd, err_fd;   /* STATE/slots/PORT/stdout, stderr */
        int64_t initialized_ms;
} slot;

int slots_start(daemon_ctx *d, slots **ret);
/* Stops accepting connections on every slot. */
void slots_quiesce(slots *s);
/* Stops the servers and destroys every slot's instance. Accepts NULL. */
slots *slots_free(slots *s);

void slots_count(slots *s, unsigned *ret_used, unsigned *ret_total);
/* Appends {"id", "template", "function", "state", "owner": "slot PORT", ...} per slot instance. */
void slots_list_instances(slots *s, json_t *list);
bool slots_owns_instance(slots *s, const char *id);
/* SIGKILLs the instances of the slots (shutdown after the grace period). */
void slots_kill_instances(slots *s);

/* Native API for an OpenWhisk ContainerFactory plugin: list, claim a free slot, reset one. */
void slots_get(http_request *req, http_response *res);
void slots_claim(http_request *req, http_response *res);
void slots_reset(http_request *req, http_response *res);

/* The routes of a slot's server: OpenWhisk's, Knative's and Fission's (openwhisk.c). */
extern const http_route slot_routes[];
extern const size_t slot_n_routes;

/* A slot's instance (slot.c), for slots.c, openwhisk.c and fission.c; called with the slot's lock
 * held (or before the slot serves). */
/* Opens (creates) STATE/slots/PORT/{stdout,stderr} for appending. */
int slot_open_logs(slot *s);
/* Destroys the instance and forgets the action: the slot is free again. */
void slot_clear(slot *s);

/* Takes a zygote and specializes it with code_uri (+ digest pin), main and env ("K=V" vector,
 * copied); the slot keeps all of it for replacements. On failure err has the reason and the
 * slot stays free. */
int slot_specialize(slot *s, slot_mode mode, const char *action_name, const char *code_uri,
                    const char *digest, const char *main_name, char *const *env, pw_err *err);
/* Invokes the slot's instance, its output written to the slot's logs; an instance that died is
 * replaced by a new one (same code) before returning the failure. */
int slot_invoke(slot *s, const char *args, int timeout_ms, char **ret_result, pw_err *err);
/* Ends an activation in the slot's logs: error (may be NULL) on its stderr log, then (but on a
 * Fission slot) the end-of-activation marker on both. What the code printed is already there:
 * slot_specialize and slot_invoke write each stream to its log as it comes. */
void slot_end_activation(slot *s, const char *error);
/* One line on the slot's stderr log, no marker. */
void slot_log_error(slot *s, const char *error);
/* Whether an invocation's failure r means the instance is gone (crashed, killed at its timeout,
 * out of memory): slot_invoke then replaces it. */
bool slot_instance_lost(int r);

/* Fission's environment contract on a slot (fission.c). */
void fission_specialize(http_request *req, http_response *res);
void fission_specialize_v1(http_request *req, http_response *res);
void fission_healthz(http_request *req, http_response *res);
void fission_invoke(http_request *req, http_response *res);
/* What Fission's environments answer a request before specialization: 500, as text (its Node
 * server's words; its Python one sends Flask's 500 page). */
void fission_unspecialized(http_response *res);
/* OpenFaaS's templates on a slot: of-watchdog's /_/health (GET only). */
void openfaas_health(http_request *req, http_response *res);

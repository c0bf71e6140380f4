/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm-agent-native: the zygote agent of the `native` template. It is the template's runtime
 * itself: a small C program that serves the agent protocol (docs/agent-protocol.md) and runs
 * functions that are shared objects of the C ABI of include/prewarm-handler.h.
 *
 * The engine checkpoints it while it blocks reading fd 3, before it has loaded any function, so
 * what it holds then (its own code, jansson, the template's preloaded libraries, the clone helper)
 * is free for every copy. Rules that follow from that: one thread, no open file besides fds 0-4,
 * and no JSON object made before the checkpoint (jansson picks its hash seed at the first one,
 * which every copy would then share).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "prewarm-handler.h"

#define REQ_FD 3                        /* requests from the engine */
#define REP_FD 4                        /* replies */
#define HELPER_PATH "/prewarm/libprewarm-zygote.so" /* the clone helper, src/zygote/ */

/* Why a request was refused: {"ok": false, "kind": KIND, "error": MESSAGE}. */
typedef struct refusal {
        const char *kind; /* load, exception, result, state, protocol, hook or clone */
        char message[4096];
} refusal;

/* Fills why and returns -EINVAL, so that callers can `return refuse(...)`. */
int refuse(refusal *why, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The reply to a refused request (the caller adds what the code printed). NULL on -ENOMEM. */
json_t *refusal_reply(const refusal *why);

/* The agent's state in one process: a zygote, an instance, or a clone's agent. */
typedef struct agent {
        bool specialized;      /* a specialize was taken: from then on user code may have run */
        pw_handler_fn *handler; /* NULL until a specialize succeeded */
        pw_hook_fn *before_checkpoint, *after_restore; /* the function's, if it has them */
        void *library;         /* the function's dlopen handle */
        char **call_env;       /* names the last invoke set from __prewarm_env */
} agent;

/* How serve() and the requests that end it end, besides a negative errno. */
enum {
        SERVE_HANGUP = 1,  /* the engine closed the channel: exit 0 */
        SERVE_CLONED = 2,  /* this process is a new clone of a parent: announce it, serve again */
};

/* Answers requests on fds 3 and 4 until the engine hangs up (SERVE_HANGUP), the channel breaks
 * (a negative errno: exit 1) or this process became a clone (SERVE_CLONED, in the clone). */
int serve(agent *a);

/* Sends one reply frame on fd 4; a reply too large for a frame becomes kind "result". */
int reply_send(json_t *reply);

/* {"op": "specialize"}: loads the function from blob. Returns the reply, or NULL on -ENOMEM. */
json_t *agent_specialize(agent *a, json_t *req, const void *blob, size_t size);

/* Whether env is an object of strings whose names are names (not empty, no '='). */
bool env_is_valid(json_t *env);

/* {"op": "invoke"}: calls the function. Returns the reply, or NULL on -ENOMEM. */
json_t *agent_invoke(agent *a, json_t *req);

/* {"op": "before_checkpoint"} or {"op": "after_restore"}: the function's hook of that phase, if
 * it has one. Returns the reply, or NULL on -ENOMEM. */
json_t *agent_run_hook(agent *a, const char *phase);

/* Loads the clone helper when the rootfs has it, before the checkpoint so that every copy has
 * it. A helper that is there but does not load is fatal: the reason goes to stderr, -ENOENT. */
int helper_load(void);
/* Whether helper_load loaded it: the ready message's "clone". */
bool helper_loaded(void);
/* prewarm_zygote_go_under_init(), when the helper has it: a restored copy's agent, pid 1 of its
 * namespace, goes on in a child under an init. 1 if it did, 0 if nothing to do, or fork's -errno. */
int helper_go_under_init(void);

/* {"op": "parent"}: replies itself and serves the engine's socket. Returns SERVE_HANGUP when the
 * engine hung up, SERVE_CLONED in a new clone, or -EINVAL with why set when it cannot be one. */
int agent_parent(agent *a, refusal *why);

/* The `--fork-zygote` mode: the bench's fork-zygote baseline (docs/bench.md). Returns the exit
 * status. */
int fork_zygote_main(void);

/* Loads the libraries of $PREWARM_PRELOAD (space-separated sonames or paths) for good. On failure
 * writes the reason on stderr and returns -ENOENT. */
int preload_libraries(void);

/* text[0..n) as valid UTF-8, every ill-formed byte replaced by U+FFFD; NUL-terminated, *ret_len
 * its length. NULL on -ENOMEM. */
char *utf8_clean(const char *text, size_t n, size_t *ret_len);

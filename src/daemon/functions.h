/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Registered functions: name -> definition, persisted to STATE/functions.json so that a restart
 * keeps them. A definition is kept as the JSON object the API shows:
 *   {"name", "template", "code", "digest", "main", "env", "memory_mb", "timeout_ms",
 *    "keepalive_s", "updated"}
 * where code is always a URI the library can fetch (inline code has been moved to the blob cache).
 */
#pragma once

#include <jansson.h>

#include "daemon.h"
#include "function_def.h"


/* Loads STATE/functions.json (missing: empty). */
int registry_open(const char *state_dir, registry **ret, pw_err *err);
registry *registry_free(registry *r);

/* Stores def (a validated definition, see function_parse) under its name and persists the registry;
 * takes a reference of def. */
int registry_put(registry *r, json_t *def);
/* A new reference to the definition of name, or NULL. */
json_t *registry_get(registry *r, const char *name);
int registry_remove(registry *r, const char *name);
/* A new array with every definition, in name order. */
json_t *registry_list(registry *r);

/* Inline code ("source" text or base64 "zip") on its way to the blob cache: its bytes, its
 * digest, and the file:// URI it has there once stored. */
typedef struct inline_blob {
        unsigned char *data;
        size_t size;
        char *uri, *digest;
        bool created; /* blob_cache_commit wrote it (it was not in the cache) */
} inline_blob;
void inline_blob_done(inline_blob *b);

/* Checks a PUT body for function NAME and turns it into a definition: defaults filled in, code
 * given by URI fetched once to check that it exists, fits and matches its pin, inline code
 * checked against its pin in memory and left in *ret_blob (data NULL when there is none) for the
 * caller to commit once the registration is accepted. On failure returns a negative errno with
 * *ret_status (an HTTP status) and err set; nothing is stored. */
int function_parse(daemon_ctx *d, const char *name, json_t *body, json_t **ret_def, inline_blob *ret_blob,
                   unsigned *ret_status, pw_err *err);

/* The pool's view of a definition; strings point into def, env is a new NULL-terminated vector of
 * "K=V" to free with strv_free. */
int function_to_pool(json_t *def, pw_pool_function *ret, char ***ret_env);


/* Inline code for template: source (the text of a file in the template's language: .js for a
 * Node.js template, .py otherwise) or zip_b64 (base64 of a .zip, a .tar.gz or, for the native
 * template, a .so; line breaks allowed), decoded and hashed, not stored yet. -EINVAL or -EFBIG
 * with err for the caller's mistakes. */
int inline_blob_prepare(daemon_ctx *d, const char *template_name, const char *source, const char *zip_b64,
                        inline_blob *ret, pw_err *err);
/* Stores b in the blob cache STATE/blobs/sha256-HEX.EXT (content-addressed: a blob there already is
 * refreshed), then keeps the cache within --blob-cache-mb by removing the blobs no registered
 * function uses, least recently stored first. */
int blob_cache_commit(daemon_ctx *d, inline_blob *b);
/* Takes back a commit whose request then failed: removes the blob if the commit created it and no
 * registered function uses it. */
void blob_cache_forget(daemon_ctx *d, const inline_blob *b);
/* Removes the cached blobs no registered function uses (those of slots, which do not survive a
 * restart, and of functions since removed or updated). At startup, before anything serves.
 * Returns how many it removed. */
int blob_cache_gc(daemon_ctx *d);
/* Fetches uri once and checks it against digest (may be NULL), the way specialize will. On failure
 * a negative errno and err. */
int blob_check(daemon_ctx *d, const char *uri, const char *digest, pw_err *err);
/* HTTP status for a blob_check failure. */
unsigned blob_error_status(int r);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A client of the OCI distribution API (the registry every cluster runs), enough for templates:
 * blobs checked, uploaded and downloaded with their digests verified, manifests put and got.
 * Anonymous access, basic credentials, and the bearer-token flow a registry asks for with
 * `WWW-Authenticate: Bearer realm=...`; TLS with the system's or a given CA bundle, or plain
 * HTTP for a registry on the node itself.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

/* HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]. Without a tag or digest the tag is "latest". */
typedef struct oci_ref {
        char *host;
        char *repository;
        char *tag;    /* NULL when only a digest was given */
        char *digest; /* "sha256:HEX", or NULL */
} oci_ref;

int oci_ref_parse(const char *text, oci_ref *ret, pw_err *err);
void oci_ref_done(oci_ref *r);

typedef struct oci_registry oci_registry;

/* A session with ref's registry, for pulling or also for pushing (the scope a token asks for). */
int oci_registry_open(const oci_ref *ref, const pw_registry_options *opts, bool push, oci_registry **ret, pw_err *err);
void oci_registry_close(oci_registry *r);

/* Whether the repository has the blob. */
int oci_blob_exists(oci_registry *r, const char *digest, bool *ret, pw_err *err);
/* Uploads size bytes read from fd (from offset 0) as the blob of that digest, in one request. */
int oci_blob_put(oci_registry *r, int fd, uint64_t size, const char *digest, pw_err *err);
/* Downloads the blob into fd (appending), failing with -EBADMSG unless it has exactly `size`
 * bytes (at most max when size is 0) whose sha256 is digest. */
int oci_blob_get(oci_registry *r, const char *digest, uint64_t size, uint64_t max, int fd, pw_err *err);
/* Puts an OCI image manifest under tag; *ret_digest (caller frees) is its digest. */
int oci_manifest_put(oci_registry *r, const char *tag, const char *json, char **ret_digest, pw_err *err);
/* Gets the manifest of reference (a tag or a digest); verifies it against a digest reference.
 * *ret_json and *ret_digest: caller frees. */
int oci_manifest_get(oci_registry *r, const char *reference, char **ret_json, char **ret_digest, pw_err *err);

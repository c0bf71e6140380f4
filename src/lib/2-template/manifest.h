/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A built template's manifest (manifest.json beside its images) and the check of its images. */
#pragma once

#include "host_files.h"

#include "internal.h"

typedef struct manifest_image {
        char *file;
        uint64_t size;
        char sha256[65];
} manifest_image;

typedef struct manifest {
        char *name;
        char *definition_sha256;
        char *runtime;
        char *criu_version;
        char *kernel;
        int64_t created;
        uint64_t ctl_in_ino, ctl_out_ino; /* the checkpointed control pipes, for CRIU inherit_fd */
        unsigned memory_mb, pids_max, tmp_mb;
        bool external_netns; /* dumped with its network namespace external: restores supply one */
        bool specialized;    /* a second-level template: copies come back specialized (checkpoint.c) */
        unsigned sandbox;    /* the sandbox it was checkpointed in: MANIFEST_SANDBOX, or 0 (before it) */
        bool clone;          /* its agent loaded the clone helper: it can be a template parent (clone.h) */
        manifest_image *images;
        size_t n_images;
        host_file *host_files; /* what the images refer to of the host's /usr (host_files.h) */
        size_t n_host_files;   /* 0 for a template built before they were recorded */
} manifest;

/* The hardened sandbox (sandbox.h): unprivileged uid, no capabilities, no_new_privs, seccomp,
 * locked mounts. A template checkpointed in an older one is never restored. */
#define MANIFEST_SANDBOX 1

manifest *manifest_free(manifest *m);
static inline void manifest_freep(manifest **m) { manifest_free(*m); }
#define _cleanup_manifest_ _cleanup_(manifest_freep)

/* JSON text of m; caller frees. */
char *manifest_to_json(const manifest *m);
/* Parses and validates manifest JSON. -EUCLEAN for anything missing or malformed. */
int manifest_from_json(const char *text, manifest **ret, pw_err *err);
/* Reads TEMPLATE_DIR/manifest.json. -ENOENT when the template is not built. A template from
 * before the hardened sandbox loads (to be listed and rebuilt); manifest_check_sandbox refuses it. */
int manifest_load(const char *template_dir, manifest **ret, pw_err *err);
/* -EUCLEAN, saying to rebuild it, unless m was checkpointed in the hardened sandbox. */
int manifest_check_sandbox(const manifest *m, pw_err *err);
/* Records every file of images_dir with its size and sha256 in m. */
int manifest_hash_images(const char *images_dir, manifest *m, pw_err *err);

/* Checks that images_dir holds exactly the manifest's files with their digests. Files verified
 * before and untouched since (same inode, size, mtime and ctime) are not hashed again. */
int manifest_verify(pw_engine *e, const char *images_dir, const manifest *m, pw_err *err);

struct verified_template;
void verified_cache_free(struct verified_template *v);

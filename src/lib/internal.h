/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the library's files share and the public header does not show. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "prewarm.h"
#include "util.h"

/* A reason for a failure, built from the innermost cause outwards:
 * "restore of template python3: criu: Can't mount ...". */
typedef struct pw_err {
        char msg[2048];
} pw_err;

/* Sets the reason and returns r (a negative errno) so that callers can `return err_set(...)`. */
int err_set(pw_err *err, int r, const char *fmt, ...) _printf_(3, 4);
/* Puts "PREFIX: " in front of the reason already set; returns r. */
int err_prefix(pw_err *err, int r, const char *fmt, ...) _printf_(3, 4);

struct pw_engine {
        char *state_dir;
        char *templates_dir;
        char **criu_argv; /* how to start CRIU: binary, or private loader + binary */
        char *kdat_dir;   /* shown to CRIU as /run, to keep its feature cache (criu_kdat_dir) */
        char *zygote_helper; /* libprewarm-zygote.so for template rootfs, or NULL (zygote.h) */
        pw_log_fn log;
        void *log_userdata;
        enum pw_log_level log_level;

        unsigned flags; /* PW_ENGINE_* */

        pthread_mutex_t lock; /* guards the verified-template cache */
        struct verified_template *verified;
        pthread_mutex_t stage_lock; /* guards the list of staged templates */
        struct staged_template *staged;
        struct netns_pool *netns; /* network namespaces made ahead for restores */
        struct ahead *ahead;      /* restores prepared ahead */
        struct parents *parents;  /* template parents that instances are cloned from (clone.h) */
        struct uid_pool *uids;    /* host uids for sandboxes (uids.h) */
        struct code_policy *code_policy; /* where code may come from; NULL: anywhere */
};

void pw_log(const pw_engine *e, enum pw_log_level level, const char *fmt, ...) _printf_(3, 4);

/* The clone helper copied into template rootfs: $PREWARM_ZYGOTE_HELPER, the build tree's, the
 * installed one, or NULL for none (templates are then built without, and never cloned). Caller
 * frees. Engines keep theirs in e->zygote_helper. */
char *zygote_helper_locate(void);

/* Records an API-level failure on the engine and logs it once; returns r. */
int engine_fail(pw_engine *e, int r, const pw_err *err);

/* Paths inside the state dir; caller frees. */
char *engine_template_dir(const pw_engine *e, const char *name);
char *engine_run_dir(const pw_engine *e);

/* The public API's sized structures (their first member is `size_t size`, the caller's sizeof or
 * 0 for this header's). In: *dst becomes a copy of what the caller's size covers, the rest zero;
 * -EINVAL for a size below min (what the oldest layout still taken had). Out: copies what the
 * caller's structure has room for, and leaves its size as the caller set it. */
int sized_in(void *dst, size_t dst_size, const void *src, size_t min);
void sized_out(void *dst, const void *src, size_t src_size);
#define SIZED_IN(dst, src) sized_in(&(dst), sizeof(dst), (src), sizeof(dst))
#define SIZED_OUT(dst, src) sized_out((dst), &(src), sizeof(src))

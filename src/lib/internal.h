/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the library's files share and the public header does not show. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "prewarm.h"
#include "util.h"

#include "err.h"

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

/* Records an API-level failure on the engine and logs it once; returns r. engine_failf formats
 * the reason itself. */
int engine_fail(pw_engine *e, int r, const pw_err *err);
int engine_failf(pw_engine *e, int r, const char *fmt, ...) _printf_(3, 4);
/* The one refusal of a template name that name_is_valid() refuses: -EINVAL, recorded on e. */
int template_name_refused(pw_engine *e, const char *name);
/* Drops this thread's record of e's last failure (e is being freed). */
void engine_forget_errors(const pw_engine *e);

/* Paths inside the state dir; caller frees. */
static inline char *engine_template_dir(const pw_engine *e, const char *name)
{
        return strdup_printf("%s/templates/%s", e->state_dir, name);
}

static inline char *engine_run_dir(const pw_engine *e)
{
        return strdup_printf("%s/run", e->state_dir);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pool's state as its files see it, in layers, each calling only those below it: pool.c (the
 * state: members, templates, registrations, listing, what restores teach), pool_level2.c
 * (second-level templates of functions), pool_lease.c (invocations lease instances),
 * pool_threads.c (the refilling and the reaping threads) and pool_lifecycle.c (made with its
 * threads, freed after them). One mutex guards all of it;
 * nothing slow (restore, specialize, invoke, checkpoint, destroy) runs while it is held.
 */
#pragma once

#include "instance.h"
#include "internal.h"
#include "pool_policy.h"

typedef struct pool_template {
        char *name;
        unsigned memory_mb;     /* by its limits; 0 until known */
        bool active;            /* used or prewarmed: keeps zygotes ready */
        unsigned restoring;     /* zygotes being restored for it now */
        unsigned target;        /* zygotes to keep ready */
        uint64_t refill_us;     /* smoothed time to restore one */
        uint64_t retry_at_us;   /* after failed refills: not before */
        unsigned failures;      /* refills failed in a row */
        demand_log demand;
        struct pool_template *next;
} pool_template;

typedef struct pool_fn {
        char *key;
        pool_template *tpl;
        pw_pool_function conf; /* deep copy; strings owned */
        unsigned refs;         /* the list's, each invocation's and each pre-warm's in flight */
        bool retired;          /* replaced or removed: its instances go as they come back */
        idle_histogram idle;
        uint64_t prewarm_at_us;    /* a pre-warm scheduled for then; 0: none */
        uint64_t prewarm_until_us; /* ...whose instance lives until then */
        bool prewarming;
        uint64_t specialize_us;    /* smoothed, on the zygote path */
        /* Its second-level template (pool_level2.c): set once made and kept until f goes (leases
         * may hold the name unlocked); rejected when slower or broken. */
        char *l2_name;
        uint64_t l2_restore_us;    /* smoothed */
        bool l2_making, l2_rejected;
        struct pool_fn *next;
} pool_fn;

typedef enum member_state { MEMBER_ZYGOTE, MEMBER_IDLE, MEMBER_BUSY } member_state;

typedef struct member {
        pw_instance *inst;
        pool_template *tpl;
        pool_fn *fn;            /* NULL for a zygote */
        member_state state;
        unsigned memory_mb;
        unsigned waiting;       /* invocations queued for it (max_concurrency > 1) */
        unsigned handoffs;      /* releases passed straight to a queued invocation */
        bool dead;              /* dropped while invocations were queued for it */
        bool checkpointing;     /* busy being dumped into a second-level template */
        uint64_t created_us, used_us, expires_us;
        struct member *next;
} member;

struct pw_pool {
        pw_engine *e;
        pw_pool_options o;
        pthread_mutex_t lock;
        pthread_cond_t changed; /* members came, went or were released; work for the threads */
        pthread_t refiller, reaper;
        bool refiller_started, reaper_started, stopping;
        pool_template *templates;
        pool_fn *fns;
        member *members;
        uint64_t pending_mb;    /* instances being made that are no members yet */
        pw_pool_stats stats;    /* the counters; the gauges are counted when asked */
};

/* Instances to destroy and templates to remove once the lock is released. */
typedef struct grave {
        pw_instance **v;
        size_t n;
        pw_engine *e;
        char **templates;
} grave;

void grave_add(grave *g, pw_instance *i);
void grave_add_template(grave *g, pw_engine *e, const char *name);
/* Destroys them; call without the lock. */
void grave_empty(grave *g);
static inline void grave_emptyp(grave *g) { grave_empty(g); }
#define _cleanup_grave_ _cleanup_(grave_emptyp)

/* Records the reason for this thread (pw_pool_last_error); logs it when nobody logged it yet. */
int pool_fail(pw_pool *p, int r, const pw_err *err, bool log);
int pool_failf(pw_pool *p, int r, bool log, const char *fmt, ...) _printf_(4, 5);

/* --- with the lock held --- */

/* Unlinks m and buries its instance; m itself goes once no queued invocation holds it. */
void member_drop(pw_pool *p, member *m, grave *g);
member *member_add(pw_pool *p, pw_instance *inst, pool_template *t, pool_fn *f, member_state state);
/* Whether m's process still runs (it is our child: looked at without reaping). */
bool member_alive(const member *m);
/* Memory of the members, and of the instances being made when pending. */
uint64_t pool_held_mb(const pw_pool *p, bool pending);
/* Evicts zygotes (oldest first), then idle instances (least recently used first) until need_mb
 * more fits in the budget or nothing is left to evict. */
void pool_make_room(pw_pool *p, uint64_t need_mb, grave *g);
/* The keep-alive and pre-warm windows of f now. */
keepalive_windows pool_fn_windows(const pw_pool *p, const pool_fn *f);
void pool_fn_unref(pool_fn *f);
/* Counts what a new instance of t (for f, or a zygote when f is NULL) came from and learns its
 * stage times: restore time of t, specialize time of f, restore time of f's second level. */
void pool_learn_times(pw_pool *p, pool_template *t, pool_fn *f, const pw_instance *i, int source);
/* Recomputes every template's zygote target. */
void pool_refresh_targets(pw_pool *p, uint64_t now);
unsigned pool_zygotes_ready(const pw_pool *p, const pool_template *t);

pool_fn *pool_fn_find(pw_pool *p, const char *key);

/* --- without the lock --- */

/* Finds (or creates) the template's entry, learning its memory from the manifest when new. */
pool_template *pool_template_lookup(pw_pool *p, const char *name);
/* The same for a caller's template name: -EINVAL (recorded as the pool's error) for an invalid
 * one, -ENOMEM. */
int pool_template_named(pw_pool *p, const char *name, pool_template **ret);

/* A new unspecialized instance of template name: restored, or cold-started when the restore
 * fails and the pool may. *ret_source says which. */
int pool_make_instance(pw_pool *p, const char *name, pw_instance **ret, int *ret_source, pw_err *err);
/* Gives the instance the function's memory limit, if it has one, and specializes it; errors as
 * pw_instance_specialize (the instance's last error says why). */
int pool_specialize(pw_instance *i, const pw_pool_function *conf);

/* Second-level templates (pool_level2.c). With the lock: */
typedef struct level2_job {
        pool_fn *f;        /* holds a reference */
        member *m;         /* the idle instance to dump, marked checkpointing */
        char *name;
        int r;
        bool made;          /* the checkpoint worked: the template exists */
        pw_instance *trial; /* the first copy restored from it: measured, then kept warm */
        pw_err err;
} level2_job;
/* A function whose second-level template is due: marks its instance and fills *j. */
bool level2_next_job(pw_pool *p, level2_job *j);
/* Without the lock: checkpoints, then restores one copy to time it. */
void level2_job_run(pw_pool *p, level2_job *j);
/* With the lock: decides whether the function uses it, frees *j. */
void level2_job_finish(pw_pool *p, level2_job *j, grave *g);
/* Whether f's next new instance should come from its second-level template. */
bool level2_preferred(const pw_pool *p, const pool_fn *f);
/* The template stopped working for f: restores go the zygote way, it gets removed. */
void level2_reject(pw_pool *p, pool_fn *f, grave *g);
/* A template's expected restore time: measured, or a guess before the first. */
uint64_t pool_refill_us(const pool_template *t);
/* A pool's state without its threads (pw_pool_new/free add and stop those). */
int pool_alloc(pw_engine *e, const pw_pool_options *opts, pw_pool **ret);
void pool_release(pw_pool *p);

/* The threads (pool_threads.c). */
int pool_threads_start(pw_pool *p);
void pool_threads_stop(pw_pool *p);

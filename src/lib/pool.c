/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pools: instances leased to invocations (docs/pools.md).
 *
 * An invocation of a function takes, in this order: an idle warm instance of the function (the
 * most recently used, so that the others can expire); a place in the queue of a busy one when
 * max_concurrency allows more than one invocation per instance (the agent serves one request at a
 * time, so the others wait for it); a ready zygote of its template, which it specializes; or an
 * instance restored (or cold-started) right now. After the invocation the instance stays warm for
 * the keep-alive window, unless it died, then it is dropped and counted as replaced.
 */
#include <sys/wait.h>

#include "manifest.h"
#include "pool.h"

#define DEFAULT_KEEPALIVE_S 600
#define DEFAULT_ZYGOTES_MIN 1
#define DEFAULT_ZYGOTES_MAX 4

static __thread struct {
        const pw_pool *pool;
        pw_err err;
} thread_last_error;

/* Records the reason for this thread (pw_pool_last_error); logs it when nobody logged it yet. */
static int pool_fail(pw_pool *p, int r, const pw_err *err, bool log)
{
        thread_last_error.pool = p;
        thread_last_error.err = *err;
        if (log)
                pw_log(p->e, PW_LOG_ERROR, "%s", err->msg);
        return r;
}

PW_PUBLIC const char *pw_pool_last_error(const pw_pool *p)
{
        return p && thread_last_error.pool == p ? thread_last_error.err.msg : "";
}

void grave_add(grave *g, pw_instance *i)
{
        if (!i)
                return;
        pw_instance **bigger = realloc(g->v, (g->n + 1) * sizeof(*bigger));
        if (!bigger) {
                pw_instance_destroy(i); /* out of memory: under the lock, but gone all the same */
                return;
        }
        g->v = bigger;
        g->v[g->n++] = i;
}

void grave_empty(grave *g)
{
        for (size_t k = 0; k < g->n; k++)
                pw_instance_destroy(g->v[k]);
        free(g->v);
        *g = (grave){0};
}

static void grave_emptyp(grave *g) { grave_empty(g); }
#define _cleanup_grave_ _cleanup_(grave_emptyp)

member *member_add(pw_pool *p, pw_instance *inst, pool_template *t, pool_fn *f, member_state state)
{
        member *m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        uint64_t now = now_us();
        *m = (member){.inst = inst, .tpl = t, .fn = f, .state = state, .memory_mb = inst->memory_mb,
                      .created_us = now, .used_us = now, .next = p->members};
        if (inst->memory_mb)
                t->memory_mb = inst->memory_mb;
        p->members = m;
        return m;
}

void member_drop(pw_pool *p, member *m, grave *g)
{
        for (member **pp = &p->members; *pp; pp = &(*pp)->next)
                if (*pp == m) {
                        *pp = m->next;
                        break;
                }
        grave_add(g, TAKE_PTR(m->inst));
        m->dead = true;
        m->next = NULL;
        if (m->waiting == 0)
                free(m);
        pthread_cond_broadcast(&p->changed);
}

bool member_alive(const member *m)
{
        pid_t pid = pw_instance_pid(m->inst);
        if (pid <= 0)
                return false;
        siginfo_t si = {0};
        if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == EINTR;
        return si.si_pid != pid;
}

uint64_t pool_held_mb(const pw_pool *p, bool pending)
{
        uint64_t mb = pending ? p->pending_mb : 0;
        for (const member *m = p->members; m; m = m->next)
                mb += m->memory_mb;
        return mb;
}

static member *eviction_victim(pw_pool *p)
{
        member *zygote = NULL, *idle = NULL;
        for (member *m = p->members; m; m = m->next) {
                if (m->state == MEMBER_ZYGOTE && (!zygote || m->created_us < zygote->created_us))
                        zygote = m;
                if (m->state == MEMBER_IDLE && !m->waiting && (!idle || m->used_us < idle->used_us))
                        idle = m;
        }
        /* A zygote costs a restore to replace, a warm instance a restore and a specialize. */
        return zygote ? zygote : idle;
}

void pool_make_room(pw_pool *p, uint64_t need_mb, grave *g)
{
        if (!p->o.memory_budget_mb)
                return;
        member *victim;
        while (pool_held_mb(p, true) + need_mb > p->o.memory_budget_mb && (victim = eviction_victim(p))) {
                pw_log(p->e, PW_LOG_DEBUG, "pool: evicting %s to stay within %llu MiB",
                       victim->inst->id, (unsigned long long)p->o.memory_budget_mb);
                member_drop(p, victim, g);
        }
}

keepalive_windows pool_fn_windows(const pw_pool *p, const pool_fn *f)
{
        uint64_t fixed = (uint64_t)f->conf.keepalive_s * 1000000;
        if (!p->o.adaptive)
                return (keepalive_windows){0, fixed, false};
        const keepalive_params params = keepalive_params_default(fixed);
        return policy_keepalive(&f->idle, &params);
}

static void pool_fn_free(pool_fn *f)
{
        free(f->key);
        free((char *)f->conf.template_name);
        free((char *)f->conf.fn.code_uri);
        free((char *)f->conf.fn.main);
        free((char *)f->conf.fn.digest);
        strv_free((char **)f->conf.fn.env);
        free(f);
}

void pool_fn_unref(pool_fn *f)
{
        if (f && --f->refs == 0)
                pool_fn_free(f);
}

unsigned pool_zygotes_ready(const pw_pool *p, const pool_template *t)
{
        unsigned n = 0;
        for (const member *m = p->members; m; m = m->next)
                n += m->state == MEMBER_ZYGOTE && m->tpl == t;
        return n;
}

static pool_template *template_find(pw_pool *p, const char *name)
{
        for (pool_template *t = p->templates; t; t = t->next)
                if (!strcmp(t->name, name))
                        return t;
        return NULL;
}

static pool_template *template_get(pw_pool *p, const char *name)
{
        pool_template *t = template_find(p, name);
        if (t)
                return t;
        if (!(t = calloc(1, sizeof(*t))) || !(t->name = strdup(name))) {
                free(t);
                return NULL;
        }
        t->next = p->templates;
        p->templates = t;
        return t;
}

/* The template's memory limit from its manifest, 0 when it cannot be read (not built yet). */
static unsigned template_memory_mb(pw_engine *e, const char *name)
{
        _cleanup_free_ char *dir = engine_template_dir(e, name);
        _cleanup_manifest_ manifest *m = NULL;
        pw_err err = {""};
        return dir && manifest_load(dir, &m, &err) >= 0 ? m->memory_mb : 0;
}

/* Finds (or creates) the template's entry, learning its memory from the manifest when new. */
static pool_template *template_lookup(pw_pool *p, const char *name)
{
        pthread_mutex_lock(&p->lock);
        bool known = template_find(p, name) != NULL;
        pthread_mutex_unlock(&p->lock);
        unsigned mb = known ? 0 : template_memory_mb(p->e, name);
        pthread_mutex_lock(&p->lock);
        pool_template *t = template_get(p, name);
        if (t && mb)
                t->memory_mb = mb;
        pthread_mutex_unlock(&p->lock);
        return t;
}

static pool_fn *fn_find(pw_pool *p, const char *key)
{
        for (pool_fn *f = p->fns; f; f = f->next)
                if (!strcmp(f->key, key))
                        return f;
        return NULL;
}

int pool_make_instance(pw_pool *p, const char *name, pw_instance **ret, int *ret_source, pw_err *err)
{
        int r = pw_instance_restore(p->e, name, ret);
        if (r >= 0) {
                *ret_source = PW_SOURCE_RESTORE;
                return r;
        }
        err_set(err, r, "%s", pw_engine_last_error(p->e));
        /* Nothing to boot when the template is not there; no point when memory is short. */
        if (p->o.cold_start_fallback < 0 || r == -EINVAL || r == -ENOENT || r == -ENOMEM)
                return r;
        pw_log(p->e, PW_LOG_WARNING, "pool: %s; falling back to a cold start of template %s", err->msg, name);
        int cr = pw_instance_cold_start(p->e, name, ret);
        if (cr < 0)
                return err_set(err, cr, "%s; the cold start failed too: %s", err->msg, pw_engine_last_error(p->e));
        *ret_source = PW_SOURCE_COLD_START;
        return 0;
}

PW_PUBLIC int pw_pool_new(pw_engine *e, const pw_pool_options *opts, pw_pool **ret)
{
        static const pw_pool_options none = {0};
        if (!e || !ret)
                return -EINVAL;
        pw_pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->e = e;
        p->o = opts ? *opts : none;
        if (!p->o.zygotes_min && !p->o.zygotes_max) {
                p->o.zygotes_min = DEFAULT_ZYGOTES_MIN;
                p->o.zygotes_max = DEFAULT_ZYGOTES_MAX;
        }
        if (p->o.zygotes_max < p->o.zygotes_min)
                p->o.zygotes_max = p->o.zygotes_min;
        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* now_us() is monotonic */
        pthread_cond_init(&p->changed, &ca);
        pthread_condattr_destroy(&ca);
        int r = pool_threads_start(p);
        if (r < 0) {
                pw_pool_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

PW_PUBLIC pw_pool *pw_pool_free(pw_pool *p)
{
        if (!p)
                return NULL;
        pool_threads_stop(p);
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        while (p->members)
                member_drop(p, p->members, &g);
        while (p->fns) {
                pool_fn *f = p->fns;
                p->fns = f->next;
                pool_fn_unref(f);
        }
        while (p->templates) {
                pool_template *t = p->templates;
                p->templates = t->next;
                free(t->name);
                free(t);
        }
        pthread_mutex_unlock(&p->lock);
        grave_empty(&g);
        if (thread_last_error.pool == p)
                thread_last_error.pool = NULL;
        pthread_cond_destroy(&p->changed);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

PW_PUBLIC int pw_pool_prewarm(pw_pool *p, const char *template_name)
{
        if (!p)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(template_name))
                return pool_fail(p, -EINVAL, (err_set(&err, -EINVAL, "pool: invalid template name"), &err), true);
        pool_template *t = template_lookup(p, template_name);
        if (!t)
                return -ENOMEM;
        pthread_mutex_lock(&p->lock);
        t->active = true;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        return 0;
}

/* A deep copy of f: every string and the env vector. */
static int fn_copy(pool_fn *dst, const pw_pool_function *f)
{
        dst->conf = *f;
        dst->conf.template_name = strdup(f->template_name);
        dst->conf.fn.code_uri = strdup(f->fn.code_uri);
        dst->conf.fn.main = f->fn.main ? strdup(f->fn.main) : NULL;
        dst->conf.fn.digest = f->fn.digest ? strdup(f->fn.digest) : NULL;
        dst->conf.fn.env = NULL;
        char **env = NULL;
        for (const char *const *v = f->fn.env; v && *v; v++)
                if (strv_push(&env, *v) < 0) {
                        strv_free(env);
                        return -ENOMEM;
                }
        dst->conf.fn.env = (const char *const *)env;
        if (!dst->conf.template_name || !dst->conf.fn.code_uri || (f->fn.main && !dst->conf.fn.main) ||
            (f->fn.digest && !dst->conf.fn.digest))
                return -ENOMEM;
        if (!dst->conf.keepalive_s)
                dst->conf.keepalive_s = DEFAULT_KEEPALIVE_S;
        if (!dst->conf.max_concurrency)
                dst->conf.max_concurrency = 1;
        return 0;
}

/* Unlinks f: its idle instances go now, its busy ones when their invocations end. */
static void fn_retire(pw_pool *p, pool_fn *f, grave *g)
{
        for (pool_fn **pp = &p->fns; *pp; pp = &(*pp)->next)
                if (*pp == f) {
                        *pp = f->next;
                        break;
                }
        f->retired = true;
        for (member *m = p->members, *next; m; m = next) {
                next = m->next;
                if (m->fn == f && m->state == MEMBER_IDLE && !m->waiting)
                        member_drop(p, m, g);
        }
        pool_fn_unref(f);
}

static bool key_is_valid(const char *key)
{
        return key && *key && strlen(key) < 256;
}

PW_PUBLIC int pw_pool_set_function(pw_pool *p, const char *key, const pw_pool_function *f)
{
        if (!p)
                return -EINVAL;
        pw_err err = {""};
        if (!key_is_valid(key) || !f || !name_is_valid(f->template_name) || !f->fn.code_uri)
                return pool_fail(p, -EINVAL, (err_set(&err, -EINVAL, "pool: function %s: invalid key, template name or code URI", key ? key : "(null)"), &err), true);
        pool_fn *nf = calloc(1, sizeof(*nf));
        if (!nf)
                return -ENOMEM;
        nf->refs = 1;
        if (!(nf->key = strdup(key)) || fn_copy(nf, f) < 0 || !(nf->tpl = template_lookup(p, f->template_name))) {
                pool_fn_free(nf);
                return -ENOMEM;
        }
        idle_histogram_init(&nf->idle, (uint64_t)nf->conf.keepalive_s * 1000000);
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        pool_fn *old = fn_find(p, key);
        if (old)
                fn_retire(p, old, &g);
        nf->next = p->fns;
        p->fns = nf;
        pthread_mutex_unlock(&p->lock);
        return 0;
}

PW_PUBLIC int pw_pool_remove_function(pw_pool *p, const char *key)
{
        if (!p || !key)
                return -EINVAL;
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        pool_fn *f = fn_find(p, key);
        if (f)
                fn_retire(p, f, &g);
        pthread_mutex_unlock(&p->lock);
        if (!f) {
                pw_err err = {""};
                return pool_fail(p, -ENOENT, (err_set(&err, -ENOENT, "pool: no function %s", key), &err), true);
        }
        return 0;
}

/* --- leases: with the lock held --- */

typedef struct lease {
        member *m;
        int source;
        uint64_t restore_us, specialize_us;
} lease;

/* The most recently used idle instance of f that still lives; dead ones are dropped. */
static member *take_idle(pw_pool *p, pool_fn *f, grave *g)
{
        for (;;) {
                member *best = NULL;
                for (member *m = p->members; m; m = m->next)
                        if (m->fn == f && m->state == MEMBER_IDLE && !m->waiting &&
                            (!best || m->used_us > best->used_us))
                                best = m;
                if (!best || member_alive(best))
                        return best;
                p->stats.instances_replaced++;
                member_drop(p, best, g);
        }
}

/* A busy instance of f that takes one more queued invocation, the one with the shortest queue. */
static member *queue_candidate(pw_pool *p, pool_fn *f)
{
        member *best = NULL;
        for (member *m = p->members; m; m = m->next)
                if (m->fn == f && m->state == MEMBER_BUSY && 1 + m->waiting < f->conf.max_concurrency &&
                    (!best || m->waiting < best->waiting))
                        best = m;
        return best;
}

/* Waits in m's queue until a release hands m over; false when m died meanwhile. */
static bool queue_wait(pw_pool *p, member *m)
{
        m->waiting++;
        while (!m->dead && m->handoffs == 0)
                pthread_cond_wait(&p->changed, &p->lock);
        m->waiting--;
        if (m->dead) {
                if (m->waiting == 0)
                        free(m);
                return false;
        }
        m->handoffs--;
        return true;
}

static member *take_zygote(pw_pool *p, pool_template *t, grave *g)
{
        for (;;) {
                member *z = NULL;
                for (member *m = p->members; m; m = m->next)
                        if (m->state == MEMBER_ZYGOTE && m->tpl == t && (!z || m->created_us < z->created_us))
                                z = m;
                if (!z || member_alive(z))
                        return z;
                p->stats.instances_replaced++;
                member_drop(p, z, g);
        }
}

/* Takes a ready zygote of t out of the pool (NULL on a miss) and counts the demand. */
static pw_instance *zygote_demand(pw_pool *p, pool_template *t, grave *g)
{
        t->active = true;
        demand_record(&t->demand, now_us());
        member *z = take_zygote(p, t, g);
        if (!z) {
                p->stats.zygote_misses++;
                return NULL;
        }
        p->stats.zygote_hits++;
        pw_instance *i = TAKE_PTR(z->inst);
        member_drop(p, z, g);
        return i;
}

/* Makes an instance of f's template now and specializes it. Drops the lock meanwhile. */
static int lease_new(pw_pool *p, pool_fn *f, lease *l, grave *g, pw_err *err)
{
        pool_template *t = f->tpl;
        pw_instance *i = zygote_demand(p, t, g);
        int source = i ? PW_SOURCE_ZYGOTE : PW_SOURCE_RESTORE;
        pool_make_room(p, i ? 0 : t->memory_mb, g);
        uint64_t pending = i ? i->memory_mb : t->memory_mb;
        p->pending_mb += pending;
        pthread_cond_broadcast(&p->changed); /* the refiller: a zygote went */
        pthread_mutex_unlock(&p->lock);

        grave_empty(g); /* free memory before making more */
        int r = 0;
        unsigned replaced = 0;
        for (int attempt = 0; attempt < 2; attempt++) {
                if (!i && (r = pool_make_instance(p, t->name, &i, &source, err)) < 0)
                        break;
                r = pw_instance_specialize(i, &f->conf.fn);
                if (r >= 0)
                        break;
                err_set(err, r, "%s", pw_instance_last_error(i));
                bool died_waiting = source == PW_SOURCE_ZYGOTE && (r == -ECHILD || r == -ESRCH);
                i = pw_instance_destroy(i);
                if (!died_waiting)
                        break;
                /* A zygote that died while it waited in the pool is not the function's fault. */
                source = PW_SOURCE_RESTORE;
                replaced++;
        }

        pthread_mutex_lock(&p->lock);
        p->pending_mb -= pending;
        p->stats.instances_replaced += replaced;
        if (r < 0)
                return r;
        if (source == PW_SOURCE_COLD_START)
                p->stats.cold_start_fallbacks++;
        l->m = member_add(p, i, t, f, MEMBER_BUSY);
        if (!l->m) {
                pw_instance_destroy(i);
                return -ENOMEM;
        }
        l->source = source;
        pw_timings tm;
        pw_instance_timings(i, &tm);
        l->restore_us = source == PW_SOURCE_ZYGOTE ? 0 : tm.restore_us;
        l->specialize_us = tm.specialize_us;
        return 0;
}

static int lease_acquire(pw_pool *p, pool_fn *f, lease *l, grave *g, pw_err *err)
{
        for (;;) {
                member *m = take_idle(p, f, g);
                if (!m && (m = queue_candidate(p, f)) && !queue_wait(p, m))
                        continue; /* it died under us: look again */
                if (!m)
                        return lease_new(p, f, l, g, err);
                m->state = MEMBER_BUSY;
                p->stats.warm_hits++;
                *l = (lease){.m = m, .source = PW_SOURCE_WARM};
                return 0;
        }
}

/* Back from an invocation that returned r: m goes to a queued invocation, stays warm, or goes. */
static void lease_release(pw_pool *p, pool_fn *f, member *m, int r, grave *g)
{
        uint64_t now = now_us();
        m->used_us = now;
        bool dead = r == -ETIMEDOUT || r == -ENOMEM || r == -ECHILD || r == -ESRCH || !member_alive(m);
        if (dead) {
                p->stats.instances_replaced++;
                member_drop(p, m, g);
                return;
        }
        if (f->retired) {
                member_drop(p, m, g);
                return;
        }
        if (m->waiting > m->handoffs) {
                m->handoffs++;
                pthread_cond_broadcast(&p->changed);
                return;
        }
        keepalive_windows w = pool_fn_windows(p, f);
        if (w.prewarm_us > 0) {
                /* The next arrival is not expected before the pre-warm window: unload until then. */
                f->prewarm_at_us = now + w.prewarm_us;
                f->prewarm_until_us = f->prewarm_at_us + w.keepalive_us;
                member_drop(p, m, g);
                return;
        }
        m->state = MEMBER_IDLE;
        m->expires_us = now + w.keepalive_us;
        pool_make_room(p, 0, g);
        pthread_cond_broadcast(&p->changed);
}

static void info_fill(pw_invoke_info *info, const lease *l, const pw_instance *i, uint64_t invoke_us,
                      uint64_t t0)
{
        *info = (pw_invoke_info){.source = l->source, .restore_us = l->restore_us,
                                 .specialize_us = l->specialize_us, .invoke_us = invoke_us,
                                 .total_us = now_us() - t0};
        if (i)
                str_copy(info->instance_id, sizeof(info->instance_id), i->id);
}

PW_PUBLIC int pw_pool_invoke(pw_pool *p, const char *key, const char *args_json, char **ret_result,
                             char **ret_logs, pw_invoke_info *ret_info)
{
        if (ret_logs)
                *ret_logs = NULL;
        if (!p || !key)
                return -EINVAL;
        pw_err err = {""};
        uint64_t t0 = now_us();
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        pool_fn *f = fn_find(p, key);
        if (!f) {
                pthread_mutex_unlock(&p->lock);
                return pool_fail(p, -ENOENT, (err_set(&err, -ENOENT, "pool: no function %s", key), &err), true);
        }
        f->refs++;
        idle_histogram_arrival(&f->idle, t0);
        lease l = {0};
        int r = lease_acquire(p, f, &l, &g, &err);
        pthread_mutex_unlock(&p->lock);

        pw_instance *i = r >= 0 ? l.m->inst : NULL;
        uint64_t t1 = now_us();
        if (i && (r = pw_instance_invoke_logs(i, args_json, f->conf.timeout_ms, ret_result, ret_logs)) < 0)
                err_set(&err, r, "%s", pw_instance_last_error(i));
        uint64_t invoke_us = now_us() - t1;
        if (ret_info && r >= 0)
                info_fill(ret_info, &l, i, invoke_us, t0);

        pthread_mutex_lock(&p->lock);
        if (l.m)
                lease_release(p, f, l.m, r, &g);
        idle_histogram_done(&f->idle, now_us());
        pool_fn_unref(f);
        pthread_mutex_unlock(&p->lock);
        if (r < 0)
                return pool_fail(p, r, (err_prefix(&err, r, "pool: function %s", key), &err), false);
        return 0;
}

PW_PUBLIC int pw_pool_take_zygote(pw_pool *p, const char *template_name, pw_instance **ret, int *ret_source)
{
        if (!p || !ret)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(template_name))
                return pool_fail(p, -EINVAL, (err_set(&err, -EINVAL, "pool: invalid template name"), &err), true);
        pool_template *t = template_lookup(p, template_name);
        if (!t)
                return -ENOMEM;
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        pw_instance *i = zygote_demand(p, t, &g);
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        int source = PW_SOURCE_ZYGOTE;
        if (!i) {
                int r = pool_make_instance(p, template_name, &i, &source, &err);
                if (r < 0)
                        return pool_fail(p, r, (err_prefix(&err, r, "pool: zygote of %s", template_name), &err), false);
        }
        if (source == PW_SOURCE_COLD_START) {
                pthread_mutex_lock(&p->lock);
                p->stats.cold_start_fallbacks++;
                pthread_mutex_unlock(&p->lock);
        }
        *ret = i;
        if (ret_source)
                *ret_source = source;
        return 0;
}

typedef struct snapshot {
        char *id, *template_name, *function;
        const char *state;
        uint64_t age_ms, idle_ms;
        pid_t pid;
} snapshot;

static const char *const state_names[] = {
        [MEMBER_ZYGOTE] = "zygote", [MEMBER_IDLE] = "idle", [MEMBER_BUSY] = "busy",
};

/* Copies what foreach shows, so that the caller's function runs without the lock. */
static int snapshot_take(pw_pool *p, snapshot **ret, size_t *ret_n)
{
        size_t n = 0, k = 0;
        uint64_t now = now_us();
        for (member *m = p->members; m; m = m->next)
                n++;
        snapshot *s = calloc(n ? n : 1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (member *m = p->members; m; m = m->next, k++) {
                s[k] = (snapshot){.id = strdup(m->inst->id), .template_name = strdup(m->tpl->name),
                                  .function = m->fn ? strdup(m->fn->key) : NULL,
                                  .state = state_names[m->state], .age_ms = (now - m->created_us) / 1000,
                                  .idle_ms = m->state == MEMBER_BUSY ? 0 : (now - m->used_us) / 1000,
                                  .pid = pw_instance_pid(m->inst)};
        }
        *ret = s;
        *ret_n = n;
        return 0;
}

PW_PUBLIC int pw_pool_foreach_instance(pw_pool *p, int (*fn)(const pw_pool_instance_info *info, void *userdata),
                                       void *userdata)
{
        if (!p || !fn)
                return -EINVAL;
        snapshot *s = NULL;
        size_t n = 0;
        pthread_mutex_lock(&p->lock);
        int r = snapshot_take(p, &s, &n);
        pthread_mutex_unlock(&p->lock);
        for (size_t k = 0; k < n; k++) {
                const pw_pool_instance_info info = {s[k].id, s[k].template_name, s[k].function, s[k].state,
                                                    s[k].age_ms, s[k].idle_ms, s[k].pid};
                if (r == 0 && s[k].id && s[k].template_name)
                        r = fn(&info, userdata);
                free(s[k].id);
                free(s[k].template_name);
                free(s[k].function);
        }
        free(s);
        return r;
}

PW_PUBLIC int pw_pool_destroy_instance(pw_pool *p, const char *id)
{
        if (!p || !id)
                return -EINVAL;
        pw_err err = {""};
        _cleanup_grave_ grave g = {0};
        int r = -ENOENT;
        pthread_mutex_lock(&p->lock);
        for (member *m = p->members; m; m = m->next)
                if (!strcmp(m->inst->id, id)) {
                        r = m->state == MEMBER_BUSY || m->waiting ? -EBUSY : 0;
                        if (r == 0)
                                member_drop(p, m, &g);
                        break;
                }
        pthread_mutex_unlock(&p->lock);
        if (r == -ENOENT)
                return pool_fail(p, r, (err_set(&err, r, "pool: no instance %s", id), &err), true);
        if (r == -EBUSY)
                return pool_fail(p, r, (err_set(&err, r, "pool: instance %s is busy in an invocation", id), &err), true);
        return 0;
}

PW_PUBLIC int pw_pool_stats_get(pw_pool *p, pw_pool_stats *ret)
{
        if (!p || !ret)
                return -EINVAL;
        pthread_mutex_lock(&p->lock);
        pw_pool_stats s = p->stats;
        s.zygotes_ready = s.warm_instances = s.busy_instances = 0;
        for (const member *m = p->members; m; m = m->next) {
                s.zygotes_ready += m->state == MEMBER_ZYGOTE;
                s.warm_instances += m->state == MEMBER_IDLE;
                s.busy_instances += m->state == MEMBER_BUSY;
        }
        s.memory_mb = pool_held_mb(p, false);
        pthread_mutex_unlock(&p->lock);
        *ret = s;
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Leases: how an invocation gets an instance, and what happens to it afterwards.
 *
 * An invocation of a function takes, in this order: an idle warm instance of the function (the
 * most recently used, so that the others can expire); a place in the queue of a busy one when
 * max_concurrency allows more than one invocation per instance (the agent serves one request at a
 * time, so the others wait for it); a ready zygote of its template, which it specializes; or an
 * instance restored (or cold-started) right now. After the invocation the instance stays warm for
 * the keep-alive window, unless it died, then it is dropped and counted as replaced.
 */
#include "pool.h"

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
                if (m->fn == f && m->state == MEMBER_BUSY && !m->checkpointing &&
                    1 + m->waiting < f->conf.max_concurrency && (!best || m->waiting < best->waiting))
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

/* What a new instance of a function takes, decided with the lock and made without it. */
typedef struct making {
        pw_instance *i;     /* a zygote taken from the pool, then the instance made */
        const char *l2;     /* restore from this second-level template first */
        int source;
        unsigned replaced;  /* zygotes found dead on the way */
        bool l2_failed;
} making;

/* Without the lock: f's instance restored from its second-level template, or specialized from the
 * zygote taken (or one restored now). */
static int make_specialized(pw_pool *p, pool_fn *f, making *mk, pw_err *err)
{
        if (mk->l2) {
                if (pw_instance_restore(p->e, mk->l2, &mk->i) >= 0) {
                        mk->source = PW_SOURCE_SECOND_LEVEL;
                        return 0;
                }
                pw_log(p->e, PW_LOG_WARNING, "pool: function %s: restoring its second-level template failed; "
                       "back to the zygote path: %s", f->key, pw_engine_last_error(p->e));
                mk->l2_failed = true;
        }
        int r = 0;
        for (int attempt = 0; attempt < 2; attempt++) {
                if (!mk->i && (r = pool_make_instance(p, f->tpl->name, &mk->i, &mk->source, err)) < 0)
                        break;
                r = pool_specialize(mk->i, &f->conf);
                if (r >= 0)
                        break;
                err_set(err, r, "%s", pw_instance_last_error(mk->i));
                bool died_waiting = mk->source == PW_SOURCE_ZYGOTE && (r == -ECHILD || r == -ESRCH);
                mk->i = pw_instance_destroy(mk->i);
                if (!died_waiting)
                        break;
                /* A zygote that died while it waited in the pool is not the function's fault. */
                mk->source = PW_SOURCE_RESTORE;
                mk->replaced++;
        }
        return r;
}

/* With the lock again: what making the instance taught. */
static void learn(pw_pool *p, pool_fn *f, const making *mk, grave *g)
{
        p->stats.instances_replaced += mk->replaced;
        if (mk->l2_failed)
                level2_reject(p, f, g);
        if (mk->i)
                pool_learn_times(p, f->tpl, f, mk->i, mk->source);
}

/* Makes an instance of f now: from its second-level template when that is faster, else from a
 * zygote (or a restore) it specializes. Drops the lock meanwhile. */
static int lease_new(pw_pool *p, pool_fn *f, lease *l, grave *g, pw_err *err)
{
        pool_template *t = f->tpl;
        making mk = {.l2 = level2_preferred(p, f) ? f->l2_name : NULL};
        mk.i = mk.l2 ? NULL : zygote_demand(p, t, g);
        mk.source = mk.i ? PW_SOURCE_ZYGOTE : PW_SOURCE_RESTORE;
        pool_make_room(p, mk.i ? 0 : t->memory_mb, g);
        uint64_t pending = mk.i ? mk.i->memory_mb : t->memory_mb;
        p->pending_mb += pending;
        pthread_cond_broadcast(&p->changed); /* the refiller: a zygote went */
        pthread_mutex_unlock(&p->lock);

        grave_empty(g); /* free memory before making more */
        int r = make_specialized(p, f, &mk, err);
        pw_timings tm = {0};
        if (r >= 0)
                pw_instance_timings(mk.i, &tm);

        pthread_mutex_lock(&p->lock);
        p->pending_mb -= pending;
        learn(p, f, &mk, g);
        if (r < 0)
                return r;
        l->m = member_add(p, mk.i, t, f, MEMBER_BUSY);
        if (!l->m) {
                pw_instance_destroy(mk.i);
                return -ENOMEM;
        }
        l->source = mk.source;
        l->restore_us = mk.source == PW_SOURCE_ZYGOTE ? 0 : tm.restore_us;
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

static void info_fill(pw_invoke_info *ret, const lease *l, const pw_instance *i, uint64_t invoke_us,
                      uint64_t t0)
{
        pw_invoke_info info = {.source = l->source, .restore_us = l->restore_us,
                               .specialize_us = l->specialize_us, .invoke_us = invoke_us,
                               .total_us = now_us() - t0};
        if (i)
                str_copy(info.instance_id, sizeof(info.instance_id), i->id);
        SIZED_OUT(ret, info);
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
        pool_fn *f = pool_fn_find(p, key);
        if (!f) {
                pthread_mutex_unlock(&p->lock);
                return pool_failf(p, -ENOENT, true, "pool: no function %s", key);
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

PW_PUBLIC int pw_pool_take_zygote(pw_pool *p, const char *template_name, pw_instance **ret,
                                  enum pw_instance_source *ret_source)
{
        if (!p || !ret)
                return -EINVAL;
        pool_template *t;
        int r = pool_template_named(p, template_name, &t);
        if (r < 0)
                return r;
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        pw_instance *i = zygote_demand(p, t, &g);
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        int source = PW_SOURCE_ZYGOTE;
        if (!i) {
                pw_err err = {""};
                r = pool_make_instance(p, template_name, &i, &source, &err);
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


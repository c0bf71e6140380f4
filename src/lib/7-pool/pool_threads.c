/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pool's two threads. The refiller makes instances ahead of demand: zygotes up to each
 * template's target and the pre-warmed instances the adaptive keep-alive schedules, one at a
 * time (restores compete for the same CPUs as the invocations), and, when nothing else is due,
 * second-level templates of functions (pool_level2.c). The reaper retires what is no
 * longer wanted: warm instances past their keep-alive (scale to zero), zygotes that died or
 * exceed a target that went down.
 */
#include <time.h>

#include "pool.h"

#define TICK_US 1000000ull               /* the threads look at least this often */
#define DEMAND_HORIZON_US 600000000ull   /* zygote demand is judged over the last 10 minutes (pool-sim) */
#define RETRY_MIN_US 100000ull
#define RETRY_MAX_US 30000000ull

static void wait_until(pw_pool *p, uint64_t when_us)
{
        struct timespec ts = {(time_t)(when_us / 1000000), (long)(when_us % 1000000) * 1000};
        pthread_cond_timedwait(&p->changed, &p->lock, &ts);
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Memory of what is not a zygote: the part of the budget the zygotes cannot have. */
static uint64_t warm_mb(const pw_pool *p)
{
        uint64_t mb = p->pending_mb;
        for (const member *m = p->members; m; m = m->next)
                if (m->state != MEMBER_ZYGOTE)
                        mb += m->memory_mb;
        return mb;
}

void pool_refresh_targets(pw_pool *p, uint64_t now)
{
        size_t n = 0, k = 0;
        for (pool_template *t = p->templates; t; t = t->next)
                n++;
        _cleanup_free_ unsigned *want = calloc(n + 1, sizeof(*want));
        _cleanup_free_ unsigned *mem = calloc(n + 1, sizeof(*mem));
        _cleanup_free_ unsigned *target = calloc(n + 1, sizeof(*target));
        if (!want || !mem || !target)
                return; /* keep the old targets */
        for (pool_template *t = p->templates; t; t = t->next, k++) {
                mem[k] = t->memory_mb;
                if (!t->active)
                        want[k] = 0;
                else if (p->o.adaptive)
                        want[k] = policy_zygote_target(&t->demand, now, pool_refill_us(t),
                                                       DEMAND_HORIZON_US, p->o.zygotes_min, p->o.zygotes_max);
                else
                        want[k] = p->o.zygotes_min;
        }
        uint64_t budget = p->o.memory_budget_mb, used = warm_mb(p);
        if (budget && used >= budget)
                memset(want, 0, n * sizeof(*want)); /* warm instances have it all */
        else
                policy_fit_budget(want, mem, n, budget ? budget - used : 0, target);
        k = 0;
        for (pool_template *t = p->templates; t; t = t->next, k++)
                t->target = budget && used >= budget ? 0 : target[k];
}

typedef struct job {
        pool_template *t;
        pool_fn *f;  /* a pre-warm of f (holding a reference), else a zygote of t */
        uint64_t mb;
} job;

static bool fits(const pw_pool *p, uint64_t mb)
{
        return !p->o.memory_budget_mb || pool_held_mb(p, true) + mb <= p->o.memory_budget_mb;
}

static bool has_idle(const pw_pool *p, const pool_fn *f)
{
        for (const member *m = p->members; m; m = m->next)
                if (m->fn == f && m->state == MEMBER_IDLE)
                        return true;
        return false;
}

/* A pre-warm that is due, or false and *wake lowered to when the next one is. */
static bool next_prewarm(pw_pool *p, uint64_t now, job *j, uint64_t *wake)
{
        for (pool_fn *f = p->fns; f; f = f->next) {
                if (!f->prewarm_at_us || f->prewarming)
                        continue;
                /* Started ahead by what making one takes, so that it is ready when the window opens. */
                uint64_t lead = pool_refill_us(f->tpl) + f->specialize_us;
                uint64_t start = f->prewarm_at_us > lead ? f->prewarm_at_us - lead : 0;
                if (now < start) {
                        *wake = min_u64(*wake, start);
                        continue;
                }
                if (has_idle(p, f) || !fits(p, f->tpl->memory_mb)) {
                        f->prewarm_at_us = 0; /* warm already, or no room: skip this one */
                        continue;
                }
                f->prewarming = true;
                f->refs++;
                *j = (job){f->tpl, f, f->tpl->memory_mb};
                return true;
        }
        return false;
}

static bool next_zygote(pw_pool *p, uint64_t now, job *j, uint64_t *wake)
{
        for (pool_template *t = p->templates; t; t = t->next) {
                if (!t->active || pool_zygotes_ready(p, t) + t->restoring >= t->target)
                        continue;
                if (now < t->retry_at_us) {
                        *wake = min_u64(*wake, t->retry_at_us);
                        continue;
                }
                if (!fits(p, t->memory_mb))
                        continue;
                t->restoring++;
                *j = (job){t, NULL, t->memory_mb};
                return true;
        }
        return false;
}

typedef struct job_result {
        pw_instance *i;
        int r, source;
        pw_err err;
} job_result;

/* Without the lock. */
static void job_run(pw_pool *p, const job *j, job_result *res)
{
        res->r = pool_make_instance(p, j->t->name, &res->i, &res->source, &res->err);
        if (res->r >= 0 && j->f && (res->r = pool_specialize(res->i, &j->f->conf)) < 0) {
                err_set(&res->err, res->r, "%s", pw_instance_last_error(res->i));
                res->i = pw_instance_destroy(res->i);
        }
}

static void job_failed(pw_pool *p, const job *j, const job_result *res)
{
        pool_template *t = j->t;
        uint64_t backoff = RETRY_MIN_US << (t->failures < 9 ? t->failures : 9);
        backoff = min_u64(backoff, RETRY_MAX_US);
        t->failures++;
        t->retry_at_us = now_us() + backoff;
        pw_log(p->e, PW_LOG_WARNING, "pool: %s of template %s failed, next try in %llu ms: %s",
               j->f ? "pre-warming an instance" : "refilling a zygote", t->name,
               (unsigned long long)backoff / 1000, res->err.msg);
}

/* With the lock: the made instance joins the pool, or goes when nobody wants it any more. */
static void job_finish(pw_pool *p, const job *j, job_result *res, grave *g)
{
        pool_template *t = j->t;
        p->pending_mb -= j->mb;
        if (!j->f)
                t->restoring--;
        if (res->r < 0) {
                job_failed(p, j, res);
        } else {
                t->failures = 0;
                pool_learn_times(p, t, j->f, res->i, res->source);
                bool wanted = j->f ? !j->f->retired : t->active;
                member *m = wanted ? member_add(p, res->i, t, j->f, j->f ? MEMBER_IDLE : MEMBER_ZYGOTE) : NULL;
                if (m && j->f) {
                        m->expires_us = j->f->prewarm_until_us;
                        p->stats.prewarms++;
                }
                if (!m)
                        grave_add(g, res->i);
        }
        if (j->f) {
                j->f->prewarming = false;
                j->f->prewarm_at_us = 0;
                pool_fn_unref(j->f);
        }
        pthread_cond_broadcast(&p->changed);
}

/* Called and returns with the lock held; drops it meanwhile. */
static void run_level2(pw_pool *p, level2_job *l2)
{
        pthread_mutex_unlock(&p->lock);
        level2_job_run(p, l2);
        grave g = {0};
        pthread_mutex_lock(&p->lock);
        level2_job_finish(p, l2, &g);
        pthread_mutex_unlock(&p->lock);
        grave_empty(&g);
        pthread_mutex_lock(&p->lock);
}

static void *refiller_main(void *userdata)
{
        pw_pool *p = userdata;
        pthread_mutex_lock(&p->lock);
        while (!p->stopping) {
                uint64_t now = now_us(), wake = now + TICK_US;
                pool_refresh_targets(p, now);
                job j;
                level2_job l2;
                if (!next_prewarm(p, now, &j, &wake) && !next_zygote(p, now, &j, &wake)) {
                        if (level2_next_job(p, &l2))
                                run_level2(p, &l2);
                        else
                                wait_until(p, wake);
                        continue;
                }
                p->pending_mb += j.mb;
                pthread_mutex_unlock(&p->lock);
                job_result res = {.r = 0};
                job_run(p, &j, &res);
                grave g = {0};
                pthread_mutex_lock(&p->lock);
                job_finish(p, &j, &res, &g);
                pthread_mutex_unlock(&p->lock);
                grave_empty(&g);
                pthread_mutex_lock(&p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* Zygotes above their template's target go, oldest first. */
static void trim_zygotes(pw_pool *p, grave *g)
{
        for (pool_template *t = p->templates; t; t = t->next) {
                unsigned ready = pool_zygotes_ready(p, t);
                while (ready-- > t->target) {
                        member *oldest = NULL;
                        for (member *m = p->members; m; m = m->next)
                                if (m->state == MEMBER_ZYGOTE && m->tpl == t &&
                                    (!oldest || m->created_us < oldest->created_us))
                                        oldest = m;
                        member_drop(p, oldest, g);
                }
        }
}

/* Drops expired warm instances and dead zygotes; returns when to look again. */
static uint64_t reap_once(pw_pool *p, uint64_t now, grave *g)
{
        uint64_t wake = now + TICK_US;
        for (member *m = p->members, *next; m; m = next) {
                next = m->next;
                if (m->state == MEMBER_IDLE && !m->waiting) {
                        if (now < m->expires_us) {
                                wake = min_u64(wake, m->expires_us);
                                continue;
                        }
                        pw_log(p->e, PW_LOG_DEBUG, "pool: %s of %s idle past its keep-alive: destroyed",
                               m->inst->id, m->fn->key);
                        member_drop(p, m, g);
                } else if (m->state == MEMBER_ZYGOTE && !member_alive(m)) {
                        pw_log(p->e, PW_LOG_WARNING, "pool: zygote %s died; replacing it", m->inst->id);
                        p->stats.instances_replaced++;
                        member_drop(p, m, g);
                }
        }
        pool_refresh_targets(p, now);
        trim_zygotes(p, g);
        return wake;
}

static void *reaper_main(void *userdata)
{
        pw_pool *p = userdata;
        pthread_mutex_lock(&p->lock);
        while (!p->stopping) {
                grave g = {0};
                uint64_t wake = reap_once(p, now_us(), &g);
                if (g.n) {
                        pthread_mutex_unlock(&p->lock);
                        grave_empty(&g);
                        pthread_mutex_lock(&p->lock);
                        continue;
                }
                free(g.v);
                wait_until(p, wake);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

int pool_threads_start(pw_pool *p)
{
        int r = -pthread_create(&p->refiller, NULL, refiller_main, p);
        p->refiller_started = r == 0;
        if (r == 0) {
                r = -pthread_create(&p->reaper, NULL, reaper_main, p);
                p->reaper_started = r == 0;
        }
        return r;
}

void pool_threads_stop(pw_pool *p)
{
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (p->refiller_started)
                pthread_join(p->refiller, NULL);
        if (p->reaper_started)
                pthread_join(p->reaper, NULL);
        p->refiller_started = p->reaper_started = false;
}

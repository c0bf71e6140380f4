/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pools (docs/pools.md): the pool's lifecycle, its members, templates and functions, and the
 * calls that look at them. Invocations lease members in pool_lease.c; two threads refill and reap
 * in pool_threads.c; second-level templates are made in pool_level2.c.
 */
#include <stdarg.h>
#include <signal.h>
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
int pool_fail(pw_pool *p, int r, const pw_err *err, bool log)
{
        thread_last_error.pool = p;
        thread_last_error.err = *err;
        if (log)
                pw_log(p->e, PW_LOG_ERROR, "%s", err->msg);
        return r;
}

int pool_failf(pw_pool *p, int r, bool log, const char *fmt, ...)
{
        pw_err err = {""};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
        va_end(ap);
        return pool_fail(p, r, &err, log);
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

void grave_add_template(grave *g, pw_engine *e, const char *name)
{
        g->e = e;
        if (strv_push(&g->templates, name) < 0)
                pw_log(e, PW_LOG_WARNING, "pool: out of memory; template %s is left in the store", name);
}

void grave_empty(grave *g)
{
        for (size_t k = 0; k < g->n; k++)
                pw_instance_destroy(g->v[k]);
        /* After the instances: a template still in use would only be renamed aside. */
        for (char **t = g->templates; t && *t; t++) {
                if (pw_template_remove(g->e, *t) < 0)
                        pw_log(g->e, PW_LOG_WARNING, "pool: removing second-level template %s: %s", *t,
                               pw_engine_last_error(g->e));
                /* Its name was made for this pool alone: nobody else takes the build lock. */
                _cleanup_free_ char *lock = strdup_printf("%s/templates/.lock-%s", g->e->state_dir, *t);
                if (lock)
                        unlink(lock);
        }
        free(g->v);
        strv_free(g->templates);
        *g = (grave){0};
}

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
        /* Looked at without reaping: reaping is pw_instance_destroy's. */
        siginfo_t si = {0};
        if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
                return si.si_pid != pid;
        /* Not our child (a clone's agent, its init's): whether it still runs. */
        return errno == ECHILD ? process_running(pid) : true;
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
        free(f->l2_name);
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
pool_template *pool_template_lookup(pw_pool *p, const char *name)
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

pool_fn *pool_fn_find(pw_pool *p, const char *key)
{
        for (pool_fn *f = p->fns; f; f = f->next)
                if (!strcmp(f->key, key))
                        return f;
        return NULL;
}

int pool_specialize(pw_instance *i, const pw_pool_function *conf)
{
        int r = conf->memory_mb ? pw_instance_set_memory_limit(i, conf->memory_mb) : 0;
        return r < 0 ? r : pw_instance_specialize(i, &conf->fn);
}

int pool_make_instance(pw_pool *p, const char *name, pw_instance **ret, int *ret_source, pw_err *err)
{
        int r = pw_instance_restore(p->e, name, ret);
        if (r >= 0) {
                *ret_source = pw_instance_source(*ret); /* a clone, or a restore */
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

/* Unlinks f: its idle instances go now, its busy ones when their invocations end. */
static void fn_retire(pw_pool *p, pool_fn *f, grave *g)
{
        for (pool_fn **pp = &p->fns; *pp; pp = &(*pp)->next)
                if (*pp == f) {
                        *pp = f->next;
                        break;
                }
        f->retired = true;
        if (f->l2_name && !f->l2_rejected)
                grave_add_template(g, p->e, f->l2_name);
        for (member *m = p->members, *next; m; m = next) {
                next = m->next;
                if (m->fn == f && m->state == MEMBER_IDLE && !m->waiting)
                        member_drop(p, m, g);
        }
        pool_fn_unref(f);
}

#define REFILL_GUESS_US 100000ull /* a restore, before one was measured */

uint64_t pool_refill_us(const pool_template *t)
{
        return t->refill_us ? t->refill_us : REFILL_GUESS_US;
}

void pool_learn_times(pw_pool *p, pool_template *t, pool_fn *f, const pw_instance *i, int source)
{
        pw_timings tm = {.size = sizeof(tm)};
        pw_instance_timings(i, &tm);
        if (source == PW_SOURCE_COLD_START)
                p->stats.cold_start_fallbacks++;
        if (source == PW_SOURCE_RESTORE || source == PW_SOURCE_CLONE)
                t->refill_us = policy_refill_estimate(t->refill_us, tm.restore_us);
        if (source == PW_SOURCE_SECOND_LEVEL) {
                p->stats.second_level_restores++;
                f->l2_restore_us = policy_refill_estimate(f->l2_restore_us, tm.restore_us);
        } else if (f && tm.specialize_us) {
                f->specialize_us = policy_refill_estimate(f->specialize_us, tm.specialize_us);
        }
}

int pool_alloc(pw_engine *e, const pw_pool_options *opts, pw_pool **ret)
{
        pw_pool_options given = {0};
        if (!e || !ret || (opts && SIZED_IN(given, opts) < 0))
                return -EINVAL;
        pw_pool *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->e = e;
        p->o = given;
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
        *ret = p;
        return 0;
}

void pool_release(pw_pool *p)
{
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        while (p->members)
                member_drop(p, p->members, &g);
        while (p->fns)
                fn_retire(p, p->fns, &g);
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
}

int pool_template_named(pw_pool *p, const char *name, pool_template **ret)
{
        if (!name_is_valid(name))
                return pool_failf(p, -EINVAL, true, "pool: invalid template name");
        return (*ret = pool_template_lookup(p, name)) ? 0 : -ENOMEM;
}

PW_PUBLIC int pw_pool_prewarm(pw_pool *p, const char *template_name)
{
        if (!p)
                return -EINVAL;
        pool_template *t = NULL;
        int r = pool_template_named(p, template_name, &t);
        if (r < 0)
                return r;
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

static bool key_is_valid(const char *key)
{
        return key && *key && strlen(key) < 256;
}

PW_PUBLIC int pw_pool_set_function(pw_pool *p, const char *key, const pw_pool_function *caller_f)
{
        pw_pool_function given;
        pw_function given_fn;
        const pw_pool_function *f = &given;
        if (!p || !caller_f || SIZED_IN(given, caller_f) < 0 || SIZED_IN(given_fn, &given.fn) < 0)
                return -EINVAL;
        given.fn = given_fn;
        if (!key_is_valid(key) || !name_is_valid(f->template_name) || !f->fn.code_uri)
                return pool_failf(p, -EINVAL, true, "pool: function %s: invalid key, template name or code URI", key ? key : "(null)");
        pool_fn *nf = calloc(1, sizeof(*nf));
        if (!nf)
                return -ENOMEM;
        nf->refs = 1;
        if (!(nf->key = strdup(key)) || fn_copy(nf, f) < 0 || !(nf->tpl = pool_template_lookup(p, f->template_name))) {
                pool_fn_free(nf);
                return -ENOMEM;
        }
        idle_histogram_init(&nf->idle, (uint64_t)nf->conf.keepalive_s * 1000000);
        _cleanup_grave_ grave g = {0};
        pthread_mutex_lock(&p->lock);
        pool_fn *old = pool_fn_find(p, key);
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
        pool_fn *f = pool_fn_find(p, key);
        if (f)
                fn_retire(p, f, &g);
        pthread_mutex_unlock(&p->lock);
        if (!f) {
                return pool_failf(p, -ENOENT, true, "pool: no function %s", key);
        }
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
                const pw_pool_instance_info info = {sizeof(info), s[k].id, s[k].template_name, s[k].function,
                                                    s[k].state, s[k].age_ms, s[k].idle_ms, s[k].pid};
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
                return pool_failf(p, r, true, "pool: no instance %s", id);
        if (r == -EBUSY)
                return pool_failf(p, r, true, "pool: instance %s is busy in an invocation", id);
        return 0;
}

PW_PUBLIC int pw_pool_stats_get(pw_pool *p, pw_pool_stats *ret)
{
        if (!p || !ret)
                return -EINVAL;
        pthread_mutex_lock(&p->lock);
        pw_pool_stats s = p->stats;
        s.zygotes_ready = s.warm_instances = s.busy_instances = s.second_level_templates = 0;
        for (const member *m = p->members; m; m = m->next) {
                s.zygotes_ready += m->state == MEMBER_ZYGOTE;
                s.warm_instances += m->state == MEMBER_IDLE;
                s.busy_instances += m->state == MEMBER_BUSY;
        }
        s.memory_mb = pool_held_mb(p, false);
        for (const pool_fn *f = p->fns; f; f = f->next)
                s.second_level_templates += f->l2_name && !f->l2_rejected;
        pthread_mutex_unlock(&p->lock);
        SIZED_OUT(ret, s);
        return 0;
}

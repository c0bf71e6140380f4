/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Second-level templates of the pool's functions (docs/pools.md).
 *
 * A miss of a function's warm set costs a zygote's specialize (plus a restore when no zygote is
 * ready); restoring a checkpoint of an already specialized instance costs one restore of a
 * somewhat larger image and no specialize. Which is faster depends on the function: a handler
 * that loads nothing specializes in a millisecond, one that imports libraries or builds tables at
 * load time may take longer than a restore. So the pool measures both: the specialize times of
 * the zygote path as they happen, and the restore time of the second-level template with one
 * trial copy right after making it (that copy then serves as a warm instance, so the trial costs
 * nothing). In auto mode a template is made only for a function whose specialize already took
 * longer than a restore of its base template, kept only if its trial restore beat the specialize,
 * and used on a miss only while its restore time stays below what the zygote path would cost.
 */
#include "pool.h"

/* A template name unique in the process, valid for name_is_valid(): BASE.l2-PID-N. */
static char *level2_name(const pool_fn *f)
{
        static atomic_uint next;
        return strdup_printf("%.40s.l2-%d-%u", f->tpl->name, (int)getpid(), atomic_fetch_add(&next, 1));
}

static bool level2_wanted(const pool_fn *f)
{
        if (f->conf.second_level < PW_SECOND_LEVEL_AUTO || f->l2_name || f->l2_making || f->l2_rejected || !f->specialize_us)
                return false;
        return f->conf.second_level >= PW_SECOND_LEVEL_ALWAYS || f->specialize_us > pool_refill_us(f->tpl);
}

static member *idle_instance(pw_pool *p, const pool_fn *f)
{
        for (member *m = p->members; m; m = m->next)
                if (m->fn == f && m->state == MEMBER_IDLE && !m->waiting && member_alive(m))
                        return m;
        return NULL;
}

bool level2_next_job(pw_pool *p, level2_job *j)
{
        for (pool_fn *f = p->fns; f; f = f->next) {
                member *m = level2_wanted(f) ? idle_instance(p, f) : NULL;
                if (!m)
                        continue;
                char *name = level2_name(f);
                if (!name)
                        return false;
                /* Busy to everyone else until the dump is done: CRIU freezes it meanwhile. */
                m->state = MEMBER_BUSY;
                m->checkpointing = true;
                f->l2_making = true;
                f->refs++;
                *j = (level2_job){.f = f, .m = m, .name = name};
                return true;
        }
        return false;
}

/* A warm instance that is a clone cannot be dumped (pw_instance_checkpoint): the template is
 * then made of a restored instance specialized the same way, the function loaded but not run. */
static int checkpoint_restored_copy(pw_pool *p, level2_job *j)
{
        pw_instance *i = NULL;
        int r = instance_restore_full(p->e, j->f->tpl->name, &i);
        if (r < 0)
                return err_set(&j->err, r, "%s", pw_engine_last_error(p->e));
        if ((r = pool_specialize(i, &j->f->conf)) < 0 || (r = pw_instance_checkpoint(i, j->name)) < 0)
                err_set(&j->err, r, "%s", pw_instance_last_error(i));
        pw_instance_destroy(i);
        return r;
}

void level2_job_run(pw_pool *p, level2_job *j)
{
        if (pw_instance_source(j->m->inst) == PW_SOURCE_CLONE) {
                j->r = checkpoint_restored_copy(p, j);
        } else if ((j->r = pw_instance_checkpoint(j->m->inst, j->name)) < 0) {
                err_set(&j->err, j->r, "%s", pw_instance_last_error(j->m->inst));
        }
        if (j->r < 0)
                return;
        j->made = true;
        j->r = pw_instance_restore(p->e, j->name, &j->trial);
        if (j->r < 0)
                err_set(&j->err, j->r, "%s", pw_engine_last_error(p->e));
}

/* The checkpointed instance goes back to idle (or away, with its function). */
static void job_release_member(pw_pool *p, level2_job *j, grave *g)
{
        member *m = j->m;
        m->checkpointing = false;
        m->state = MEMBER_IDLE;
        if (j->f->retired || !member_alive(m))
                member_drop(p, m, g);
}

/* Whether the measured copy makes the template worth keeping. */
static bool job_keep(pw_pool *p, level2_job *j)
{
        pool_fn *f = j->f;
        pw_timings t;
        pw_instance_timings(j->trial, &t);
        f->l2_restore_us = t.restore_us;
        bool faster = t.restore_us < f->specialize_us;
        pw_log(p->e, PW_LOG_INFO, "pool: function %s: second-level template %s restores in %.1f ms, "
               "specialize takes %.1f ms: %s", f->key, j->name, t.restore_us / 1000.0, f->specialize_us / 1000.0,
               f->retired ? "function gone" : faster || f->conf.second_level >= PW_SECOND_LEVEL_ALWAYS ? "using it" : "not using it");
        return !f->retired && (faster || f->conf.second_level >= PW_SECOND_LEVEL_ALWAYS);
}

void level2_job_finish(pw_pool *p, level2_job *j, grave *g)
{
        pool_fn *f = j->f;
        job_release_member(p, j, g);
        f->l2_making = false;
        if (j->r < 0) {
                pw_log(p->e, PW_LOG_WARNING, "pool: function %s: no second-level template: %s", f->key, j->err.msg);
                f->l2_rejected = true;
                if (j->made) /* made, but it does not restore */
                        grave_add_template(g, p->e, j->name);
        } else if (job_keep(p, j)) {
                f->l2_name = TAKE_PTR(j->name);
        } else {
                f->l2_rejected = true;
                grave_add_template(g, p->e, j->name);
        }
        member *m = j->trial && !f->retired ? member_add(p, j->trial, f->tpl, f, MEMBER_IDLE) : NULL;
        if (m)
                m->expires_us = m->used_us + pool_fn_windows(p, f).keepalive_us;
        else
                grave_add(g, j->trial);
        pool_make_room(p, 0, g); /* the trial copy may have taken the budget's last room */
        pool_fn_unref(f);
        free(j->name);
        *j = (level2_job){0};
        pthread_cond_broadcast(&p->changed);
}

bool level2_preferred(const pw_pool *p, const pool_fn *f)
{
        if (!f->l2_name || f->l2_rejected)
                return false;
        if (f->conf.second_level >= PW_SECOND_LEVEL_ALWAYS)
                return true;
        uint64_t zygote_path = f->specialize_us + (pool_zygotes_ready(p, f->tpl) ? 0 : pool_refill_us(f->tpl));
        return f->l2_restore_us < zygote_path;
}

void level2_reject(pw_pool *p, pool_fn *f, grave *g)
{
        if (f->l2_rejected)
                return;
        f->l2_rejected = true;
        grave_add_template(g, p->e, f->l2_name);
}

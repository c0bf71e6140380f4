/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How a cold start gets its instance, fastest first: the clone made ahead (ahead.c), a clone of
 * the template's parent now (clone.c), the restore prepared ahead, a restore now (restore.c).
 * Each way that fails for a reason the next would share ends the attempt.
 */
#include "ahead.h"
#include "clone.h"
#include "instance.h"
#include "restore.h"

static int restore_by(pw_engine *e, const char *template_name, restore_path path, bool may_clone,
                      pw_instance **ret)
{
        if (!e || !ret)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(template_name))
                return template_name_refused(e, template_name);

        uint64_t t0 = now_us();
        if (may_clone && path == FAST_PATH && !(e->flags & (PW_ENGINE_NOTHING_AHEAD | PW_ENGINE_NO_CLONES))) {
                pw_instance *i = ahead_take_clone(e->ahead, template_name);
                bool ready = i != NULL;
                int r = ready ? 0 : clone_instance(e, template_name, &i, &err);
                if (r >= 0) {
                        ahead_want_clone(e->ahead, template_name); /* the next one */
                        i->timings.restore_us = now_us() - t0;
                        pw_log(e, PW_LOG_DEBUG, "instance %s cloned as pid %d in %.2f ms%s", i->id, (int)i->pid,
                               i->timings.restore_us / 1000.0, ready ? " (ready ahead)" : "");
                        *ret = i;
                        return 0;
                }
                if (r == -ENOENT || r == -EUCLEAN) /* a restore would fail the same way */
                        return engine_fail(e, r, (err_prefix(&err, r, "restore of template %s", template_name), &err));
                if (r != -ENOTSUP)
                        pw_log(e, PW_LOG_WARNING, "clone of template %s: %s; restoring instead", template_name,
                               err.msg);
                err.msg[0] = '\0';
        }
        bool prepare_next = path == FAST_PATH && !(e->flags & PW_ENGINE_NOTHING_AHEAD);
        restore_job *job = prepare_next ? ahead_take(e->ahead, template_name) : NULL;
        bool prepared = job != NULL;
        int r = job ? 0 : restore_job_prepare(e, template_name, path, &job, &err);
        uint64_t t1 = now_us();
        pw_instance *i = NULL;
        if (r >= 0)
                r = restore_job_run(job, &i, &err);
        if (prepare_next)
                ahead_want(e->ahead, template_name); /* the next one, whatever became of this one */
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "restore of template %s", template_name), &err));
        i->timings.restore_us = now_us() - t0;
        pw_log(e, PW_LOG_DEBUG, "instance %s restored as pid %d in %.2f ms (%s %.2f ms, criu %.2f ms)", i->id,
               (int)i->pid, i->timings.restore_us / 1000.0, prepared ? "prepared ahead, take" : "prepare",
               (t1 - t0) / 1000.0, (now_us() - t1) / 1000.0);
        *ret = i;
        return 0;
}

PW_PUBLIC int pw_instance_restore(pw_engine *e, const char *template_name, pw_instance **ret)
{
        return restore_by(e, template_name, FAST_PATH, true, ret);
}

int instance_restore_full(pw_engine *e, const char *template_name, pw_instance **ret)
{
        return restore_by(e, template_name, FAST_PATH, false, ret);
}

int instance_restore_stock(pw_engine *e, const char *template_name, pw_instance **ret)
{
        return restore_by(e, template_name, STOCK_CLI, false, ret);
}


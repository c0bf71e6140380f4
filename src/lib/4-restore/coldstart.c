/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cold start: an instance booted the way a template build boots its zygote, without CRIU. It is
 * the fallback when a restore fails, so it needs nothing of the checkpoint: only the built
 * template's rootfs, its manifest's limits and the definition it was built from. The runtime
 * starts and imports its preloads, which is what the checkpoint saves; otherwise the instance is
 * the same: own namespaces, cgroup with the template's limits, the agent waiting on two pipes.
 */
#include <fcntl.h>
#include <sys/wait.h>

#include "agent.h"
#include "cgroup.h"
#include "definition.h"
#include "instance.h"
#include "manifest.h"
#include "sandbox.h"
#include "store.h"
#include "zygote.h"

static int boot_spawn(pw_instance *i, const template_def *def, const manifest *m, const char *rootfs,
                      zygote_pipes *p, pw_err *err)
{
        int r = zygote_pipes_open(p, err);
        if (r < 0)
                return r;
        const cgroup_limits limits = {m->memory_mb, m->pids_max};
        if ((r = cgroup_create(i->id, &limits, &i->cg, err)) < 0)
                return r;
        i->memory_mb = m->memory_mb;
        if ((r = instance_take_uid(i, err)) < 0)
                return r;
        return zygote_start(def, rootfs, m->tmp_mb, i->cg, i->uid, p, &i->pid, err);
}

/* The definition must still be the one the template was built from: its rootfs holds that
 * definition's agent, and a cold start stands in for a restore of that build. */
static int load_definition(pw_engine *e, const manifest *m, const char *name, template_def **ret, pw_err *err)
{
        _cleanup_def_ template_def *def = NULL;
        int r = template_def_load(e->templates_dir, name, &def, err);
        if (r < 0)
                return r == -ENOENT ? err_set(err, -EUCLEAN, "no definition to boot it from: %s", err->msg) : r;
        if (strcmp(def->sha256, m->definition_sha256))
                return err_set(err, -EUCLEAN, "its definition changed since it was built: rebuild the template");
        *ret = TAKE_PTR(def);
        return 0;
}

static int do_cold_start(pw_instance *i, pw_err *err)
{
        pw_engine *e = i->engine;
        _cleanup_free_ char *dir = engine_template_dir(e, i->template_name);
        _cleanup_free_ char *rootfs = strdup_printf("%s/rootfs", dir ? dir : "");
        if (!dir || !rootfs)
                return -ENOMEM;
        /* Held until the runtime runs on the rootfs: a rebuild must not delete it under us. */
        _cleanup_close_ int lock_fd = store_lock_shared(dir, err);
        if (lock_fd < 0)
                return lock_fd;
        _cleanup_manifest_ manifest *m = NULL;
        _cleanup_def_ template_def *def = NULL;
        int r = manifest_load(dir, &m, err);
        if (r < 0 || (r = manifest_check_sandbox(m, err)) < 0 ||
            (r = load_definition(e, m, i->template_name, &def, err)) < 0)
                return r;

        zygote_pipes p = ZYGOTE_PIPES_NONE;
        _cleanup_free_ char *runtime = NULL;
        r = boot_spawn(i, def, m, rootfs, &p, err);
        if (r >= 0)
                r = zygote_wait_ready(&p, def, &i->pid, &runtime, NULL, err);
        if (r >= 0) {
                i->ch.to_agent = TAKE_FD(p.ctl_in[1]);
                i->ch.from_agent = TAKE_FD(p.ctl_out[0]);
        }
        zygote_pipes_close(&p);
        return r;
}

PW_PUBLIC int pw_instance_cold_start(pw_engine *e, const char *template_name, pw_instance **ret)
{
        if (!e || !ret)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(template_name))
                return template_name_refused(e, template_name);
        uint64_t t0 = now_us();
        _cleanup_(instance_destroyp) pw_instance *i = instance_new(e, template_name);
        if (!i)
                return -ENOMEM;
        int r = do_cold_start(i, &err);
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "cold start of template %s", template_name), &err));
        i->state = RESTORED;
        i->source = PW_SOURCE_COLD_START;
        i->timings.restore_us = now_us() - t0;
        pw_log(e, PW_LOG_DEBUG, "instance %s cold-started as pid %d in %.2f ms", i->id, (int)i->pid,
               i->timings.restore_us / 1000.0);
        *ret = TAKE_PTR(i);
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Instance lifecycle: restore a template into a new instance (restore.c does the work, ahead.c
 * prepares the next one), specialize it with a function's code, invoke it, destroy it.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent.h"
#include "blob.h"
#include "cgroup.h"
#include "clone.h"
#include "ahead.h"
#include "instance.h"
#include "internal.h"
#include "store.h"
#include "uids.h"

#define SPECIALIZE_TIMEOUT_MS 60000

/* A clone is its parent's child, not ours: its pidfd says when it is gone, the parent reaps it. */
static void clone_wait_exit(const pw_instance *i, int timeout_ms)
{
        struct pollfd pfd = {i->pidfd, POLLIN, 0};
        while (poll(&pfd, 1, timeout_ms) < 0 && errno == EINTR)
                ;
}

static void clone_kill(pw_instance *i)
{
        if (syscall(SYS_pidfd_send_signal, i->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                return;
        clone_wait_exit(i, 5000);
}

/* How a clone's agent ended, as its init wrote it (the parent, not us, reaps the clone). */
static bool clone_exit_status(const pw_instance *i, int *ret_status)
{
        char how[32];
        ssize_t n = i->status_fd >= 0 ? recv(i->status_fd, how, sizeof(how) - 1, MSG_DONTWAIT) : -1;
        if (n <= 0)
                return false;
        how[n] = '\0';
        int v;
        if (sscanf(how, "exited %d", &v) == 1)
                *ret_status = (v & 0xff) << 8;
        else if (sscanf(how, "killed %d", &v) == 1)
                *ret_status = v & 0x7f;
        else
                return false;
        return true;
}

static void instance_kill(pw_instance *i)
{
        if (i->pidfd >= 0)
                clone_kill(i);
        else
                kill_and_reap(i->pid);
        i->pid = 0;
        if (i->cg)
                cgroup_kill(i->cg);
        i->state = DEAD;
}

PW_PUBLIC pw_instance *pw_instance_destroy(pw_instance *i)
{
        if (!i)
                return NULL;
        instance_kill(i);
        cgroup_destroy(i->cg);
        if (i->pidfd >= 0)
                close(i->pidfd);
        if (i->status_fd >= 0)
                close(i->status_fd);
        agent_streams_done(&i->streams);
        if (i->parent)
                parent_release(i->engine, i->parent);
        if (i->uid) /* only now: nothing of the instance runs as it any more */
                uid_release(i->engine->uids, i->uid);
        if (i->template_name)
                store_collect(i->engine, i->template_name); /* its retired template may be free now */
        if (i->ch.to_agent >= 0)
                close(i->ch.to_agent);
        if (i->ch.from_agent >= 0)
                close(i->ch.from_agent);
        free(i->template_name);
        free(i->id);
        free(i);
        return NULL;
}

pw_instance *instance_new(pw_engine *e, const char *template_name)
{
        _cleanup_(instance_destroyp) pw_instance *i = calloc(1, sizeof(*i));
        if (!i)
                return NULL;
        i->engine = e;
        i->ch.to_agent = i->ch.from_agent = -1;
        i->pidfd = i->status_fd = -1;
        i->source = PW_SOURCE_RESTORE;
        i->template_name = strdup(template_name);
        /* Unique in the process, not per engine: ids name cgroups, which all engines share. */
        static atomic_uint next_instance;
        i->id = strdup_printf("%s-%d-%u", template_name, getpid(), atomic_fetch_add(&next_instance, 1));
        if (!i->template_name || !i->id)
                return NULL;
        return TAKE_PTR(i);
}

int instance_take_uid(pw_instance *i, pw_err *err)
{
        return uid_take(i->engine->uids, &i->uid, err);
}

static int restore_by(pw_engine *e, const char *template_name, restore_path path, bool may_clone,
                      pw_instance **ret)
{
        if (!e || !ret)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(template_name))
                return engine_fail(e, -EINVAL, (err_set(&err, -EINVAL, "invalid template name"), &err));

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

static int instance_fail(pw_instance *i, int r, pw_err *err, const char *what)
{
        err_prefix(err, r, "%s of instance %s", what, i->id);
        i->last_error = *err;
        pw_log(i->engine, PW_LOG_ERROR, "%s", err->msg);
        return r;
}

/* The agent stopped answering: say why, kill what is left and mark the instance dead. */
static int instance_lost(pw_instance *i, int r, unsigned timeout_ms, pw_err *err)
{
        if (r == -ETIMEDOUT) {
                instance_kill(i);
                return err_set(err, r, "timed out after %u ms; instance killed", timeout_ms);
        }
        bool clone = i->pidfd >= 0;
        int status = 0;
        if (clone)
                clone_wait_exit(i, 1000); /* its init writes how the agent ended, then exits */
        else if (i->pid > 0)
                status = reap_within(i->pid, 1000);
        if (!clone)
                i->pid = 0;
        bool oom = i->cg && cgroup_oom_kills(i->cg) > 0;
        instance_kill(i);
        if (oom)
                return err_set(err, -ENOMEM, "memory limit of %u MiB hit; instance killed", i->memory_mb);
        if (clone && !clone_exit_status(i, &status))
                return err_set(err, -ECHILD, "instance died");
        if (WIFSIGNALED(status))
                return err_set(err, -ECHILD, "instance died (signal %d)", WTERMSIG(status));
        return err_set(err, -ECHILD, "instance died (exit status %d)", WEXITSTATUS(status));
}

static bool channel_lost(int r)
{
        return r == -ECONNRESET || r == -ETIMEDOUT || r == -EPIPE;
}

static uint64_t deadline_after(int timeout_ms)
{
        return timeout_ms > 0 ? now_us() + (uint64_t)timeout_ms * 1000 : 0;
}

PW_PUBLIC int pw_instance_specialize(pw_instance *i, const pw_function *caller_fn)
{
        pw_function given;
        const pw_function *fn = &given;
        if (!i || !caller_fn || SIZED_IN(given, caller_fn) < 0)
                return -EINVAL;
        pw_err err = {""};
        if (i->state == DEAD)
                return instance_fail(i, -ESRCH, (err_set(&err, -ESRCH, "instance is dead"), &err), "specialize");
        if (i->state == SPECIALIZED)
                return instance_fail(i, -EALREADY, (err_set(&err, -EALREADY, "already specialized"), &err), "specialize");

        uint64_t t0 = now_us();
        blob b = {0};
        int r = blob_fetch(fn->code_uri, fn->digest, code_policy_max_bytes(i->engine->code_policy),
                           i->engine->code_policy, &b, &err);
        if (r < 0)
                return instance_fail(i, r, &err, "specialize");
        const agent_code code = {b.filename, fn->main && *fn->main ? fn->main : "main",
                                 (char *const *)fn->env, b.data, b.size, fn->convention};
        r = agent_specialize(&i->ch, &code, deadline_after(SPECIALIZE_TIMEOUT_MS), &i->streams, &err);
        blob_done(&b);
        if (channel_lost(r))
                r = instance_lost(i, r, SPECIALIZE_TIMEOUT_MS, &err);
        if (r < 0)
                return instance_fail(i, r, &err, "specialize");
        i->state = SPECIALIZED;
        i->timings.specialize_us = now_us() - t0;
        return 0;
}

PW_PUBLIC int pw_instance_set_memory_limit(pw_instance *i, unsigned memory_mb)
{
        if (!i)
                return -EINVAL;
        pw_err err = {""};
        if (memory_mb == 0)
                return instance_fail(i, -EINVAL, (err_set(&err, -EINVAL, "a limit of 0 MiB"), &err), "memory limit");
        if (i->state == DEAD || !i->cg)
                return instance_fail(i, -ESRCH, (err_set(&err, -ESRCH, "instance is dead"), &err), "memory limit");
        int r = cgroup_set_memory(i->cg, memory_mb);
        if (r == -EBUSY)
                return instance_fail(i, r, (err_set(&err, r, "it already uses more than %u MiB", memory_mb), &err),
                                     "memory limit");
        if (r < 0)
                return instance_fail(i, r, (err_set(&err, r, "%s", strerror(-r)), &err), "memory limit");
        i->memory_mb = memory_mb;
        return 0;
}

PW_PUBLIC int pw_instance_invoke_logs(pw_instance *i, const char *args_json, int timeout_ms,
                                      char **ret_result, char **ret_logs)
{
        if (ret_logs)
                *ret_logs = NULL;
        if (!i)
                return -EINVAL;
        pw_err err = {""};
        if (i->state == DEAD)
                return instance_fail(i, -ESRCH, (err_set(&err, -ESRCH, "instance is dead"), &err), "invoke");
        if (i->state != SPECIALIZED)
                return instance_fail(i, -EBADFD, (err_set(&err, -EBADFD, "not specialized"), &err), "invoke");

        uint64_t t0 = now_us();
        _cleanup_free_ char *result = NULL, *logs = NULL;
        agent_streams_done(&i->streams);
        int r = agent_invoke(&i->ch, args_json, deadline_after(timeout_ms), &result, &logs, &i->streams, &err);
        if (channel_lost(r))
                r = instance_lost(i, r, (unsigned)timeout_ms, &err);
        i->timings.invoke_us = now_us() - t0;
        if (ret_logs)
                *ret_logs = TAKE_PTR(logs);
        if (r < 0)
                return instance_fail(i, r, &err, "invoke");
        if (ret_result)
                *ret_result = TAKE_PTR(result);
        return 0;
}

PW_PUBLIC int pw_instance_invoke(pw_instance *i, const char *args_json, int timeout_ms, char **ret_result)
{
        return pw_instance_invoke_logs(i, args_json, timeout_ms, ret_result, NULL);
}

PW_PUBLIC int pw_instance_timings(const pw_instance *i, pw_timings *ret)
{
        if (!i || !ret)
                return -EINVAL;
        SIZED_OUT(ret, i->timings);
        return 0;
}

PW_PUBLIC pid_t pw_instance_pid(const pw_instance *i)
{
        if (!i || i->state == DEAD || i->pid <= 0)
                return -ESRCH;
        return i->agent_pid > 0 ? i->agent_pid : i->pid;
}

PW_PUBLIC const char *pw_instance_last_error(const pw_instance *i)
{
        return i ? i->last_error.msg : "";
}

PW_PUBLIC const char *pw_instance_template(const pw_instance *i)
{
        return i ? i->template_name : NULL;
}

PW_PUBLIC int pw_instance_source(const pw_instance *i)
{
        return i ? i->source : -EINVAL;
}

PW_PUBLIC const char *pw_instance_id(const pw_instance *i)
{
        return i ? i->id : NULL;
}

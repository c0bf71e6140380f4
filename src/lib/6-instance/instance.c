/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The instance handle: made (instance_new) by what restores or clones it, killed and destroyed,
 * and what it tells about itself. How an instance comes to be is acquire.c's; what it runs,
 * specialize.c's and invoke.c's.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent.h"
#include "cgroup.h"
#include "instance.h"
#include "sandbox_check.h"
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
        if (i->release) /* what its maker holds for it: a clone's parent (clone.c) */
                i->release(i);
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

int instance_fail(pw_instance *i, int r, pw_err *err, const char *what)
{
        err_prefix(err, r, "%s of instance %s", what, i->id);
        i->last_error = *err;
        pw_log(i->engine, PW_LOG_ERROR, "%s", err->msg);
        return r;
}

int instance_failf(pw_instance *i, int r, const char *what, const char *fmt, ...)
{
        pw_err err = {""};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
        va_end(ap);
        return instance_fail(i, r, &err, what);
}

void instance_find_agent(pw_instance *i)
{
        if (i->pidfd < 0 && i->agent_pid <= 0 && i->pid > 0)
                i->agent_pid = sandbox_agent_under(i->pid);
}

int instance_lost(pw_instance *i, int r, unsigned timeout_ms, pw_err *err)
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
        /* Under a restored copy's init, which exits with 128 + SIG for an agent a signal ended. */
        bool under_init = !clone && i->agent_pid > 0;
        if (under_init && WIFEXITED(status) && WEXITSTATUS(status) > 128 && WEXITSTATUS(status) < 128 + 65)
                return err_set(err, -ECHILD, "instance died (signal %d)", WEXITSTATUS(status) - 128);
        if (WIFSIGNALED(status))
                return err_set(err, -ECHILD, "instance died (signal %d)", WTERMSIG(status));
        return err_set(err, -ECHILD, "instance died (exit status %d)", WEXITSTATUS(status));
}

PW_PUBLIC int pw_instance_set_memory_limit(pw_instance *i, unsigned memory_mb)
{
        if (!i)
                return -EINVAL;
        if (memory_mb == 0)
                return instance_failf(i, -EINVAL, "memory limit", "a limit of 0 MiB");
        if (i->state == DEAD || !i->cg)
                return instance_failf(i, -ESRCH, "memory limit", "instance is dead");
        int r = cgroup_set_memory(i->cg, memory_mb);
        if (r == -EBUSY)
                return instance_failf(i, r, "memory limit", "it already uses more than %u MiB", memory_mb);
        if (r < 0)
                return instance_failf(i, r, "memory limit", "%s", strerror(-r));
        i->memory_mb = memory_mb;
        return 0;
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

PW_PUBLIC int pw_instance_output(const pw_instance *i, const char **ret_stdout, const char **ret_stderr)
{
        if (!i)
                return -EINVAL;
        if (ret_stdout)
                *ret_stdout = i->streams.out && *i->streams.out ? i->streams.out : NULL;
        if (ret_stderr)
                *ret_stderr = i->streams.err && *i->streams.err ? i->streams.err : NULL;
        return 0;
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

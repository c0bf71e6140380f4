/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarmd's core, what every other file of the daemon uses and which uses none of them: the log
 * (one line per event on stderr), the wall clock, the count of requests in flight that shutdown
 * waits for, the admission of API invocations, and the names the API and the slots give to an
 * instance's source and to a failure's class.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

/* ------------------------------------------------------------------ logging */

static bool log_verbose;

void dlog_set_verbose(bool verbose)
{
        log_verbose = verbose;
}

void dlog(int level, const char *fmt, ...)
{
        if (level >= PW_LOG_DEBUG && !log_verbose)
                return;
        static const char *const names[] = {[PW_LOG_ERROR] = "error", [PW_LOG_WARNING] = "warning",
                                            [PW_LOG_INFO] = "info", [PW_LOG_DEBUG] = "debug"};
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        char line[4096];
        int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ prewarmd[%d] %s: ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         ts.tv_nsec / 1000000, (int)getpid(),
                         level >= 0 && level <= PW_LOG_DEBUG && names[level] ? names[level] : "log");
        char message[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        /* Messages quote what clients sent: nothing of it may forge a line or a terminal escape. */
        str_escape(line + n, sizeof(line) - (size_t)n - 1, message);
        size_t len = strlen(line);
        line[len] = '\n';
        /* One write per line: lines of concurrent requests never interleave. */
        if (write(STDERR_FILENO, line, len + 1) < 0)
                return;
}

int64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ in-flight accounting */

bool daemon_enter(daemon_ctx *d)
{
        atomic_fetch_add(&d->in_flight, 1);
        if (atomic_load(&d->stopping)) {
                atomic_fetch_sub(&d->in_flight, 1);
                return false;
        }
        return true;
}

void daemon_leave(daemon_ctx *d)
{
        atomic_fetch_sub(&d->in_flight, 1);
}

bool admission_enter(daemon_ctx *d, unsigned timeout_ms)
{
        if (!d->cfg.max_invocations)
                return true;
        const struct timespec deadline = realtime_after_ms(timeout_ms);
        pthread_mutex_lock(&d->admission_lock);
        d->waiting++;
        int r = 0;
        while (d->running >= d->cfg.max_invocations && r == 0)
                r = timeout_ms ? pthread_cond_timedwait(&d->admission_free, &d->admission_lock, &deadline)
                               : pthread_cond_wait(&d->admission_free, &d->admission_lock);
        d->waiting--;
        bool admitted = d->running < d->cfg.max_invocations;
        if (admitted)
                d->running++;
        pthread_mutex_unlock(&d->admission_lock);
        return admitted;
}

void admission_leave(daemon_ctx *d)
{
        if (!d->cfg.max_invocations)
                return;
        pthread_mutex_lock(&d->admission_lock);
        d->running--;
        pthread_cond_signal(&d->admission_free);
        pthread_mutex_unlock(&d->admission_lock);
}

/* ------------------------------------------------------------------ names */

const char *source_name(int source)
{
        static const char *const names[] = {"warm", "zygote", "restore", "cold-start", "second-level", "clone"};
        return source >= 0 && (size_t)source < ELEMENTSOF(names) ? names[source] : "none";
}

void invoke_error_class(int r, unsigned *ret_status, const char **ret_kind)
{
        static const struct {
                int r;
                unsigned status;
                const char *kind;
        } table[] = {
                {-EINVAL, 400, "bad_request"},  {-ENOENT, 422, "code"},      {-EBADMSG, 422, "code"},
                {-EFBIG, 413, "code"},          {-EHOSTUNREACH, 424, "fetch"}, {-ENOEXEC, 422, "load"},
                {-EREMOTEIO, 502, "exception"}, {-EPROTO, 502, "result"},    {-ETIMEDOUT, 504, "timeout"},
                {-ENOMEM, 502, "memory"},       {-ECHILD, 502, "crash"},     {-ESRCH, 502, "crash"},
                {-EUCLEAN, 503, "restore"},     {-EIO, 503, "restore"},      {-EBUSY, 503, "busy"},
                {-EAGAIN, 503, "busy"},
        };
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].r == r) {
                        *ret_status = table[i].status;
                        *ret_kind = table[i].kind;
                        return;
                }
        *ret_status = 500;
        *ret_kind = "internal";
}

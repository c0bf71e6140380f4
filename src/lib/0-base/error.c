/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Errors and the log: every part of the library reports through these, and they call no part of
 * it. A reason is built from the innermost cause outwards (err_set, err_prefix); an API call that
 * fails records it once for its thread (engine_fail, engine_failf) and logs it once.
 */
#include <stdarg.h>

#include "internal.h"
#include "util.h"

int err_set(pw_err *err, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return r;
}

int err_prefix(pw_err *err, int r, const char *fmt, ...)
{
        char prefix[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);

        char old[sizeof(err->msg)];
        memcpy(old, err->msg, sizeof(old));
        const char *reason = old[0] ? old : strerror(-r);
        int n = snprintf(err->msg, sizeof(err->msg), "%s: ", prefix);
        if (n > 0 && (size_t)n < sizeof(err->msg))
                str_copy(err->msg + n, sizeof(err->msg) - (size_t)n, reason);
        return r;
}

void pw_log(const pw_engine *e, enum pw_log_level level, const char *fmt, ...)
{
        if (!e->log || level > e->log_level)
                return;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        e->log(level, line, e->log_userdata);
}

static __thread struct {
        const pw_engine *engine;
        pw_err err;
} thread_last_error;

int engine_fail(pw_engine *e, int r, const pw_err *err)
{
        /* Per thread, like errno: threads sharing the engine each read their own failure. */
        thread_last_error.engine = e;
        memcpy(&thread_last_error.err, err, sizeof(*err));
        pw_log(e, PW_LOG_ERROR, "%s", err->msg);
        return r;
}

int engine_failf(pw_engine *e, int r, const char *fmt, ...)
{
        pw_err err = {""};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
        va_end(ap);
        return engine_fail(e, r, &err);
}

int template_name_refused(pw_engine *e, const char *name)
{
        return engine_failf(e, -EINVAL, "invalid template name '%s': 1-64 of A-Z a-z 0-9 - _ ., not starting with . or -",
                            name ? name : "");
}

void engine_forget_errors(const pw_engine *e)
{
        if (thread_last_error.engine == e)
                thread_last_error.engine = NULL;
}

PW_PUBLIC const char *pw_engine_last_error(const pw_engine *e)
{
        return e && thread_last_error.engine == e ? thread_last_error.err.msg : "";
}


/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One slot's instance, whatever protocol drives it (openwhisk.c, fission.c): specializing a zygote
 * from the pool with the slot's code, invoking it, replacing it when it died, and the slot's logs
 * (each stream written as it comes, activations closed by OpenWhisk's marker).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "functions.h"
#include "metrics.h"
#include "slots.h"
#include "template_sources.h"

/* ------------------------------------------------------------------ logs */

static void write_line(int fd, const char *text)
{
        if (fd < 0 || !text || !*text)
                return;
        size_t n = strlen(text);
        if (write_full(fd, text, n) == 0 && text[n - 1] != '\n')
                write_full(fd, "\n", 1);
}

/* What the instance's code printed in its last specialize or invoke, each stream to its log. */
static void slot_write_streams(slot *s, const pw_instance *i)
{
        const char *out = NULL, *err = NULL;
        if (pw_instance_output(i, &out, &err) < 0)
                return;
        write_line(s->out_fd, out);
        write_line(s->err_fd, err);
}

void slot_log_error(slot *s, const char *error)
{
        write_line(s->err_fd, error);
}

void slot_end_activation(slot *s, const char *error)
{
        write_line(s->err_fd, error);
        if (slot_mode_web(s->mode)) /* Fission and OpenFaaS read the streams as they are: no framing */
                return;
        write_line(s->out_fd, OW_LOG_MARKER "\n");
        write_line(s->err_fd, OW_LOG_MARKER "\n");
}

int slot_open_logs(slot *s)
{
        _cleanup_free_ char *dir = strdup_printf("%s/slots/%u", s->d->cfg.state_dir, s->port);
        _cleanup_free_ char *out = strdup_printf("%s/stdout", dir ? dir : "");
        _cleanup_free_ char *err = strdup_printf("%s/stderr", dir ? dir : "");
        if (!dir || !out || !err)
                return -ENOMEM;
        int r = mkdir_private(dir);
        if (r < 0)
                return r;
        s->out_fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        s->err_fd = open(err, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        return s->out_fd < 0 || s->err_fd < 0 ? negative_errno() : 0;
}

/* ------------------------------------------------------------------ instance of a slot */

/* What a platform's caller is told of an instance's failure: the reason without the library's
 * "WHAT of instance ID: " context, which names the daemon's internals (the log keeps it whole). */
static void public_reason(pw_err *err, const char *msg, const char *id)
{
        char context[160];
        snprintf(context, sizeof(context), " of instance %s: ", id ? id : "");
        const char *at = id ? strstr(msg, context) : NULL;
        err_set(err, 0, "%s", at ? at + strlen(context) : msg);
}

static void slot_drop_instance(slot *s)
{
        atomic_store(&s->pid, 0);
        s->instance = pw_instance_destroy(s->instance);
        free(s->instance_id);
        s->instance_id = NULL;
}

void slot_clear(slot *s)
{
        slot_drop_instance(s);
        free(s->action_name);
        free(s->code_uri);
        free(s->digest);
        free(s->main);
        strv_free(s->env);
        s->action_name = s->code_uri = s->digest = s->main = NULL;
        s->env = NULL; /* claim_env stays: it is the slot's until it is reset */
        s->mode = SLOT_FREE;
}

/* A zygote from the pool, specialized with what the slot holds. */
static int slot_load(slot *s, pw_err *err)
{
        daemon_ctx *d = s->d;
        pw_instance *i = NULL;
        enum pw_instance_source source = PW_SOURCE_ZYGOTE;
        uint64_t t0 = now_us();
        int r = template_ensure(d, d->cfg.slot_template, err); /* pulled the first time if it comes from a registry */
        if (r < 0)
                return r;
        r = pw_pool_take_zygote(d->pool, d->cfg.slot_template, &i, &source);
        if (r < 0) {
                err_set(err, 0, "no instance of template %s: %s", d->cfg.slot_template,
                         pw_pool_last_error(d->pool));
                return r;
        }
        const pw_function fn = {.code_uri = s->code_uri, .main = s->main, .digest = s->digest,
                                .env = (const char *const *)s->env,
                                .convention = slot_mode_name(s->mode)};
        r = pw_instance_specialize(i, &fn);
        slot_write_streams(s, i); /* what the module printed as it loaded, its traceback */
        if (r < 0) {
                dlog(PW_LOG_INFO, "slot %u: %s", s->port, pw_instance_last_error(i));
                public_reason(err, pw_instance_last_error(i), pw_instance_id(i));
                pw_instance_destroy(i);
                return r;
        }
        pw_timings t = {.size = sizeof(t)};
        pw_instance_timings(i, &t);
        metrics_observe(d->metrics, STAGE_RESTORE, t.restore_us);
        metrics_observe(d->metrics, STAGE_SPECIALIZE, t.specialize_us);
        if (source == PW_SOURCE_COLD_START)
                dlog(PW_LOG_WARNING, "slot %u: restore failed, instance %s is a cold start", s->port, pw_instance_id(i));
        dlog(PW_LOG_INFO, "slot %u: instance %s (%s) specialized with %s in %.2f ms", s->port, pw_instance_id(i),
             source_name(source), s->action_name, (now_us() - t0) / 1000.0);
        s->instance = i;
        s->instance_id = strdup(pw_instance_id(i));
        atomic_store(&s->pid, pw_instance_pid(i));
        return 0;
}

int slot_specialize(slot *s, slot_mode mode, const char *action_name, const char *code_uri,
                    const char *digest, const char *main_name, char *const *env, pw_err *err)
{
        s->action_name = strdup(action_name ? action_name : "action");
        s->code_uri = strdup(code_uri);
        s->digest = digest ? strdup(digest) : NULL;
        s->main = strdup(main_name && *main_name ? main_name : "main");
        s->env = calloc(1, sizeof(char *));
        int r = s->action_name && s->code_uri && (!digest || s->digest) && s->main && s->env ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && env && env[i]; i++)
                r = strv_push(&s->env, env[i]);
        s->mode = mode; /* slot_load calls the function as the mode's platform does */
        if (r == 0)
                r = slot_load(s, err);
        else
                err_set(err, 0, "out of memory");
        if (r < 0) {
                slot_clear(s); /* free again */
                return r;
        }
        s->initialized_ms = wall_ms();
        return 0;
}

bool slot_instance_lost(int r)
{
        return r == -ECHILD || r == -ESRCH || r == -ETIMEDOUT || r == -ENOMEM;
}

int slot_invoke(slot *s, const char *args, int timeout_ms, char **ret_result, pw_err *err)
{
        int r = 0;
        if (!s->instance && (r = slot_load(s, err)) < 0) /* replacement failed before */
                return r;
        uint64_t t0 = now_us();
        r = pw_instance_invoke(s->instance, args, timeout_ms, ret_result);
        metrics_observe(s->d->metrics, STAGE_INVOKE, now_us() - t0);
        slot_write_streams(s, s->instance);
        if (r >= 0)
                return r;
        public_reason(err, pw_instance_last_error(s->instance), s->instance_id);
        if (slot_instance_lost(r)) {
                pw_err why = {""};
                dlog(PW_LOG_WARNING, "slot %u: instance %s lost (%s); replacing it", s->port, s->instance_id,
                     pw_instance_last_error(s->instance));
                slot_drop_instance(s);
                if (slot_load(s, &why) < 0)
                        dlog(PW_LOG_WARNING, "slot %u: replacement failed, retried at the next activation: %s",
                             s->port, why.msg);
        }
        return r;
}

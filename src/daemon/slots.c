/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The slots' lifecycle: one loopback server per port, claim and reset for an invoker's plugin. */
#include <signal.h>

#include "function_def.h"
#include "functions.h"
#include "slots.h"

struct slots {
        daemon_ctx *d;
        slot *v;
        size_t n;
};

static int slot_listen(unsigned port, int *ret_fd)
{
        char addr[32];
        bool loopback;
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
        return http_listen_tcp(addr, ret_fd, &loopback);
}

static int slot_init(daemon_ctx *d, slot *s, unsigned port)
{
        *s = (slot){.d = d, .port = port, .out_fd = -1, .err_fd = -1};
        pthread_mutex_init(&s->lock, NULL);
        int r = slot_open_logs(s);
        if (r < 0) {
                dlog(PW_LOG_ERROR, "slot %u: cannot open its logs under %s/slots: %s", port, d->cfg.state_dir,
                     strerror(-r));
                return r;
        }
        int fd;
        if ((r = slot_listen(port, &fd)) < 0) {
                dlog(PW_LOG_ERROR, "slot %u: cannot listen on 127.0.0.1:%u: %s", port, port, strerror(-r));
                return r;
        }
        snprintf(s->name, sizeof(s->name), "slot %u", port);
        const http_server_config cfg = {.name = s->name, .listen_fd = fd, .routes = slot_routes,
                                        .n_routes = slot_n_routes, .data = s};
        if ((r = http_server_start(d, &cfg, &s->server)) < 0)
                dlog(PW_LOG_ERROR, "slot %u: cannot start its HTTP server", port);
        return r;
}

int slots_start(daemon_ctx *d, slots **ret)
{
        slots *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->d = d;
        size_t n = d->cfg.ow_port_first ? d->cfg.ow_port_last - d->cfg.ow_port_first + 1 : 0;
        s->v = calloc(n ? n : 1, sizeof(slot));
        if (!s->v) {
                free(s);
                return -ENOMEM;
        }
        for (; s->n < n; s->n++) {
                int r = slot_init(d, &s->v[s->n], d->cfg.ow_port_first + (unsigned)s->n);
                if (r < 0) {
                        s->n++; /* what it opened is released by slots_free */
                        slots_free(s);
                        return r;
                }
        }
        if (n)
                dlog(PW_LOG_INFO, "%zu action slot(s) on 127.0.0.1:%u-%u (OpenWhisk, Knative, Fission)", n,
                     d->cfg.ow_port_first, d->cfg.ow_port_last);
        *ret = s;
        return 0;
}

void slots_quiesce(slots *s)
{
        for (size_t i = 0; s && i < s->n; i++)
                http_server_quiesce(s->v[i].server);
}

slots *slots_free(slots *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n; i++) {
                slot *sl = &s->v[i];
                sl->server = http_server_free(sl->server);
                slot_clear(sl);
                strv_free(sl->claim_env);
                if (sl->out_fd >= 0)
                        close(sl->out_fd);
                if (sl->err_fd >= 0)
                        close(sl->err_fd);
                pthread_mutex_destroy(&sl->lock);
        }
        free(s->v);
        free(s);
        return NULL;
}

/* The lock of a busy slot is held for a whole activation; listings must not wait for it. */
static bool lock_or_busy(slot *sl)
{
        return pthread_mutex_trylock(&sl->lock) == 0;
}

void slots_count(slots *s, unsigned *ret_used, unsigned *ret_total)
{
        *ret_used = *ret_total = 0;
        for (size_t i = 0; s && i < s->n; i++) {
                slot *sl = &s->v[i];
                if (!lock_or_busy(sl)) { /* busy in an activation: it holds an action */
                        (*ret_used)++;
                } else {
                        *ret_used += sl->mode != SLOT_FREE;
                        pthread_mutex_unlock(&sl->lock);
                }
                (*ret_total)++;
        }
}

void slots_list_instances(slots *s, json_t *list)
{
        for (size_t i = 0; s && i < s->n; i++) {
                slot *sl = &s->v[i];
                bool locked = lock_or_busy(sl);
                char owner[32];
                snprintf(owner, sizeof(owner), "slot %u", sl->port);
                if (locked && sl->instance)
                        json_array_append_new(list, json_pack(
                                "{s:s, s:s, s:s, s:s, s:I, s:i, s:s}", "id", sl->instance_id, "template",
                                s->d->cfg.slot_template, "function", sl->action_name, "state", "idle", "age_ms",
                                (json_int_t)(wall_ms() - sl->initialized_ms), "pid", atomic_load(&sl->pid),
                                "owner", owner));
                else if (!locked && atomic_load(&sl->pid) > 0)
                        json_array_append_new(list, json_pack("{s:s, s:i, s:s}", "state", "busy", "pid",
                                                              atomic_load(&sl->pid), "owner", owner));
                if (locked)
                        pthread_mutex_unlock(&sl->lock);
        }
}

bool slots_owns_instance(slots *s, const char *id)
{
        bool found = false;
        for (size_t i = 0; s && i < s->n && !found; i++) {
                slot *sl = &s->v[i];
                if (!lock_or_busy(sl))
                        continue;
                found = sl->instance_id && !strcmp(sl->instance_id, id);
                pthread_mutex_unlock(&sl->lock);
        }
        return found;
}

void slots_kill_instances(slots *s)
{
        for (size_t i = 0; s && i < s->n; i++) {
                int pid = atomic_load(&s->v[i].pid);
                if (pid > 0)
                        kill(pid, SIGKILL);
        }
}

/* ------------------------------------------------------------------ native API */

static json_t *slot_json(slot *sl)
{
        const char *state = slot_mode_name(sl->mode);
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", sl->port);
        _cleanup_free_ char *out = strdup_printf("%s/slots/%u/stdout", sl->d->cfg.state_dir, sl->port);
        _cleanup_free_ char *err = strdup_printf("%s/slots/%u/stderr", sl->d->cfg.state_dir, sl->port);
        return json_pack("{s:i, s:s, s:s, s:b, s:s?, s:s?, s:s?, s:s?}", "port", (int)sl->port, "address", addr,
                         "state", state, "claimed", sl->claimed, "action", sl->action_name, "instance",
                         sl->instance_id, "stdout", out, "stderr", err);
}

void slots_get(http_request *req, http_response *res)
{
        slots *s = req->daemon->slots;
        json_t *list = json_array();
        for (size_t i = 0; s && i < s->n; i++) {
                slot *sl = &s->v[i];
                if (!lock_or_busy(sl)) {
                        json_array_append_new(list, json_pack("{s:i, s:s}", "port", (int)sl->port, "state", "busy"));
                        continue;
                }
                json_array_append_new(list, slot_json(sl));
                pthread_mutex_unlock(&sl->lock);
        }
        http_reply_json(res, 200, json_pack("{s:o}", "slots", list));
}

/* A claim's body, optional: {"env": {"__OW_API_HOST": "...", ...}}, the environment an invoker
 * gives an action container when it starts one, and {"openfaas": {"code", "main"}} for a slot
 * that is an OpenFaaS function (its handler, as the python3-http template runs it). */
static int claim_body(http_request *req, http_response *res, char ***ret_env, json_t **ret_openfaas)
{
        json_auto_t *body = NULL;
        if (!http_body_json(req, res, &body))
                return -EINVAL;
        json_t *env = json_is_object(body) ? json_object_get(body, "env") : NULL;
        json_t *faas = json_is_object(body) ? json_object_get(body, "openfaas") : NULL;
        if ((body && !json_is_object(body)) || env_to_strv(env, ret_env) < 0 ||
            (faas && (!json_is_object(faas) || !json_is_string(json_object_get(faas, "code"))))) {
                http_reply_error(res, 400, "a claim's body is {\"env\": {\"NAME\": \"value\", ...}, "
                                 "\"openfaas\": {\"code\": URI, \"main\": \"handler.handle\"}}");
                return -EINVAL;
        }
        *ret_openfaas = json_incref(faas);
        return 0;
}

/* Makes the claimed slot the OpenFaaS function faas names; false (answered) on failure. */
static bool claim_openfaas(slot *sl, json_t *faas, http_response *res)
{
        const char *code = json_string_value(json_object_get(faas, "code"));
        const char *entry = json_string_value(json_object_get(faas, "main"));
        pw_err err = {""};
        int r = blob_check(sl->d, code, NULL, &err);
        if (r < 0) {
                http_reply_error(res, blob_error_status(r), "%s", err.msg);
                return false;
        }
        if (slot_specialize(sl, SLOT_OPENFAAS, "openfaas-function", code, NULL, entry ? entry : "handler.handle",
                            sl->claim_env, &err) < 0) {
                http_reply_error(res, 422, "the OpenFaaS function does not load: %s", err.msg);
                return false;
        }
        return true;
}

void slots_claim(http_request *req, http_response *res)
{
        slots *s = req->daemon->slots;
        _cleanup_strv_free_ char **env = NULL;
        json_auto_t *faas = NULL;
        if (claim_body(req, res, &env, &faas) < 0)
                return;
        for (size_t i = 0; s && i < s->n; i++) {
                slot *sl = &s->v[i];
                if (!lock_or_busy(sl))
                        continue;
                bool take = !sl->claimed && sl->mode == SLOT_FREE;
                if (take) {
                        sl->claimed = true;
                        strv_free(sl->claim_env);
                        sl->claim_env = TAKE_PTR(env);
                        if (faas && !claim_openfaas(sl, faas, res)) {
                                sl->claimed = false;
                                pthread_mutex_unlock(&sl->lock);
                                return;
                        }
                        http_note(res, "slot %u", sl->port);
                        http_reply_json(res, 200, slot_json(sl));
                }
                pthread_mutex_unlock(&sl->lock);
                if (take)
                        return;
        }
        http_reply_error(res, 503, "no free action slot (%zu in all); release one with DELETE /v1/slots/PORT",
                         s ? s->n : 0);
}

/* Like removing an action container: its instance goes, its logs start afresh. Waits for an
 * activation in progress. */
void slots_reset(http_request *req, http_response *res)
{
        slots *s = req->daemon->slots;
        char *end;
        unsigned long port = strtoul(req->params[0], &end, 10);
        for (size_t i = 0; s && i < s->n && !*end; i++) {
                slot *sl = &s->v[i];
                if (sl->port != port)
                        continue;
                pthread_mutex_lock(&sl->lock);
                slot_clear(sl);
                sl->claimed = false;
                strv_free(sl->claim_env);
                sl->claim_env = NULL;
                if (ftruncate(sl->out_fd, 0) < 0 || ftruncate(sl->err_fd, 0) < 0)
                        dlog(PW_LOG_WARNING, "slot %u: cannot truncate its logs: %m", sl->port);
                json_t *j = slot_json(sl);
                pthread_mutex_unlock(&sl->lock);
                http_reply_json(res, 200, j);
                return;
        }
        http_reply_error(res, 404, "no slot on port %s", req->params[0]);
}

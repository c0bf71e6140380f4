/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OpenWhisk's action-container protocol on a slot: POST /init {"value": {"name", "main", "code",
 * "binary", "env"}}, POST /run {"value": {...}, "activation_id", "action_name", "namespace",
 * "deadline", "api_key", ...}, and Knative's single entry POST / {"init": ..., "activation": ...,
 * "value": ...}. Status codes and error bodies are those of OpenWhisk's own runtimes.
 */
#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "functions.h"
#include "http.h"
#include "metrics.h"
#include "slots.h"
#include "template_sources.h"

/* ------------------------------------------------------------------ /init */

/* {"error": ...} with OpenWhisk's status; the logs get the message and the markers. */
static void ow_fail(slot *s, http_response *res, unsigned status, const char *kind, const char *msg)
{
        metrics_error(s->d->metrics, kind);
        slot_end_activation(s, msg);
        http_reply_error(res, status, "%s", msg);
}

/* The environment of an init: the slot's claim's, then the init's own over it. */
static int init_env(const slot *s, json_t *init, char ***ret)
{
        _cleanup_strv_free_ char **env = NULL, **own = NULL;
        if (env_to_strv(init, &own) < 0)
                return -EINVAL;
        for (size_t k = 0; s->claim_env && s->claim_env[k]; k++)
                if (strv_push(&env, s->claim_env[k]) < 0)
                        return -ENOMEM;
        for (size_t k = 0; own && own[k]; k++)
                if (strv_push(&env, own[k]) < 0) /* later entries win in the agent's os.environ */
                        return -ENOMEM;
        *ret = TAKE_PTR(env);
        return 0;
}

static int init_code(slot *s, json_t *value, inline_blob *ret, pw_err *err)
{
        const char *code = json_string_value(json_object_get(value, "code"));
        bool binary = json_is_true(json_object_get(value, "binary"));
        int r = inline_blob_prepare(s->d, s->d->cfg.slot_template, binary ? NULL : code, binary ? code : NULL, ret, err);
        if (r >= 0 && (r = blob_cache_commit(s->d, ret)) < 0)
                err_set(err, 0, "writing to the blob cache: %s", strerror(-r));
        return r;
}

static void do_init(slot *s, json_t *value, http_response *res)
{
        pw_err err = {""};
        if (s->mode != SLOT_FREE) { /* OpenWhisk's proxies log it, with no end marker */
                metrics_error(s->d->metrics, "init");
                slot_log_error(s, "Cannot initialize the action more than once.");
                return http_reply_error(res, 403, "Cannot initialize the action more than once.");
        }
        const char *code = json_string_value(json_object_get(value, "code"));
        if (!json_is_object(value) || !code || !*code)
                return ow_fail(s, res, 403, "init", "Missing main/no code to execute.");
        _cleanup_strv_free_ char **env = NULL;
        if (init_env(s, json_object_get(value, "env"), &env) < 0)
                return ow_fail(s, res, 502, "init", "env must be an object whose keys are environment names");
        inline_blob blob = {0};
        int r = init_code(s, value, &blob, &err);
        if (r < 0) {
                inline_blob_done(&blob);
                return ow_fail(s, res, 502, "init", err.msg[0] ? err.msg : strerror(-r));
        }
        const char *name = json_string_value(json_object_get(value, "name"));
        const char *entry = json_string_value(json_object_get(value, "main"));
        r = slot_specialize(s, SLOT_OPENWHISK, name, blob.uri, blob.digest, entry, env, &err);
        if (r < 0)
                blob_cache_forget(s->d, &blob); /* a failed init leaves nothing in the cache */
        inline_blob_done(&blob);
        if (r < 0 && !strncmp(err.msg, "SystemExit", strlen("SystemExit"))) {
                /* The module exited: what the runtimes' proxies say of an action that stopped. */
                metrics_error(s->d->metrics, "init");
                slot_end_activation(s, "Command exited abruptly during initialization.");
                return http_reply_error(res, 502, "Cannot start action. Check logs for details.");
        }
        if (r < 0) {
                char text[2300];
                snprintf(text, sizeof(text), "Initialization has failed due to: %s", err.msg);
                return ow_fail(s, res, 502, "init", text);
        }
        http_note(res, "action %s", s->action_name);
        http_reply_json(res, 200, json_pack("{s:b}", "ok", 1));
}

/* Parses the body as an object; OpenWhisk's proxies answer anything else with 403/404. */
static json_t *body_object(http_request *req, http_response *res)
{
        json_t *body;
        if (!http_body_json(req, res, &body))
                return NULL;
        if (!json_is_object(body)) {
                json_decref(body);
                http_reply_error(res, 400, "the request body must be a JSON object");
                return NULL;
        }
        return body;
}

static void ow_init(http_request *req, http_response *res)
{
        slot *s = req->data;
        json_auto_t *body = body_object(req, res);
        if (!body)
                return;
        pthread_mutex_lock(&s->lock);
        do_init(s, json_object_get(body, "value"), res);
        pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ /run */

/* "__OW_KEY" = value for every field of the message but "value": strings as they are, numbers
 * (a deadline may come as either) and anything else as JSON text. */
static json_t *activation_env(json_t *message)
{
        json_t *env = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(message, key, v) {
                if (!strcmp(key, "value") || !env)
                        continue;
                char name[256] = "__OW_";
                for (size_t i = 0; key[i] && i + 6 < sizeof(name); i++)
                        name[5 + i] = (char)toupper((unsigned char)key[i]), name[6 + i] = '\0';
                _cleanup_free_ char *text = json_is_string(v) ? strdup(json_string_value(v))
                                                               : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                if (text)
                        json_object_set_new(env, name, json_string(text));
        }
        return env;
}

/* Milliseconds until the activation's deadline (epoch ms, number or numeric string), or the
 * default when there is none or it makes no sense here. */
static int deadline_timeout(json_t *deadline)
{
        double when = json_is_number(deadline) ? json_number_value(deadline) :
                      json_is_string(deadline) ? strtod(json_string_value(deadline), NULL) : 0;
        double left = when - (double)wall_ms();
        return left >= 1 && left < 24.0 * 3600 * 1000 ? (int)left : SLOT_DEFAULT_TIMEOUT_MS;
}

static void run_error(slot *s, http_response *res, int r, const char *msg)
{
        unsigned status;
        const char *kind;
        invoke_error_class(r, &status, &kind);
        metrics_error(s->d->metrics, kind);
        char text[2300];
        unsigned code = r == -EINVAL ? 400 : 502;
        bool exited = r == -EREMOTEIO && !strncmp(msg, "SystemExit", strlen("SystemExit"));
        if (r == -EPROTO)
                snprintf(text, sizeof(text), "The action did not return a dictionary.");
        else if (exited) /* sys.exit() in main: the proxies' 400 for an action process that ended */
                snprintf(text, sizeof(text), "command exited (%s)", msg), code = 400;
        else if (r == -EREMOTEIO)
                snprintf(text, sizeof(text), "An error has occurred: %s", msg);
        else if (slot_instance_lost(r))
                snprintf(text, sizeof(text), "The action did not produce a valid response and exited unexpectedly: %s", msg);
        else
                snprintf(text, sizeof(text), "%s", msg);
        /* The answer carries the error; the logs hold what the action printed (its traceback). */
        slot_end_activation(s, NULL);
        http_reply_error(res, code, "%s", text);
}

/* A web action's result {"statusCode", "headers", "body"} as the HTTP response, the way OpenWhisk
 * answers web actions: a string body as it is (base64 decoded for a binary content type), any
 * other body as JSON, 204 for an empty 200. Other results: the object as JSON. */
static void reply_web_action(http_response *res, const char *result)
{
        json_auto_t *r = json_loads(result, 0, NULL);
        json_t *code = json_object_get(r, "statusCode"), *headers = json_object_get(r, "headers");
        json_t *body = json_object_get(r, "body");
        if (!json_is_object(r) || (!code && !headers && !body))
                return http_reply_text(res, 200, "application/json", result, strlen(result));
        unsigned status = json_is_integer(code) && json_integer_value(code) >= 100 && json_integer_value(code) <= 599
                                  ? (unsigned)json_integer_value(code) : 200;
        const char *type = NULL, *key;
        json_t *v;
        json_object_foreach(headers, key, v)
                if (!strcasecmp(key, "Content-Type") && json_is_string(v))
                        type = json_string_value(v);
        _cleanup_free_ char *dumped = NULL;
        _cleanup_free_ unsigned char *decoded = NULL;
        const char *data = "";
        size_t n = 0;
        if (json_is_string(body)) {
                data = json_string_value(body);
                n = strlen(data);
                bool binary = type && (!strncmp(type, "image/", 6) || !strncmp(type, "application/octet-stream", 24));
                if (binary && http_base64_decode(data, &decoded, &n) == 0)
                        data = (const char *)decoded;
        } else if (body && !json_is_null(body)) {
                if (!(dumped = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)))
                        return http_reply_error(res, 500, "out of memory");
                data = dumped;
                n = strlen(dumped);
                type = type ? type : "application/json";
        }
        if (status == 200 && n == 0)
                status = 204;
        http_reply_text(res, status, type ? NULL : "text/html; charset=utf-8", data, n);
        json_object_foreach(headers, key, v)
                if (json_is_string(v) || json_is_number(v)) {
                        _cleanup_free_ char *text = json_is_string(v) ? strdup(json_string_value(v))
                                                                       : json_dumps(v, JSON_ENCODE_ANY);
                        if (text && strcasecmp(key, "Content-Length"))
                                http_add_header(res, key, "%s", text);
                }
        if (type && !json_is_string(json_object_get(headers, "Content-Type")) &&
            !json_is_string(json_object_get(headers, "content-type")))
                http_add_header(res, "Content-Type", "%s", type); /* the JSON body's default */
}

/* The fields a web action reads of its request (Knative's entry): method, headers, path, user. */
static void add_web_fields(json_t *value, http_request *req, json_t *activation)
{
        json_t *headers = json_object();
        json_auto_t *pairs = http_request_headers(req);
        size_t k;
        json_t *pair;
        json_array_foreach(pairs, k, pair) {
                _cleanup_free_ char *name = strdup(json_string_value(json_array_get(pair, 0)));
                for (char *c = name; c && *c; c++)
                        *c = (char)tolower((unsigned char)*c);
                if (name)
                        json_object_set(headers, name, json_array_get(pair, 1));
        }
        const char *ns = json_string_value(json_object_get(activation, "namespace"));
        json_object_set_new(value, "__ow_method", json_string(req->method));
        json_object_set_new(value, "__ow_headers", headers);
        json_object_set_new(value, "__ow_path", json_string(""));
        json_object_set_new(value, "__ow_user", json_string(ns ? ns : ""));
}

static void do_run(slot *s, json_t *message, http_response *res, bool web)
{
        if (s->mode != SLOT_OPENWHISK) {
                metrics_error(s->d->metrics, "not_initialized");
                http_reply_error(res, 403, "The action has not been initialized: POST /init first.");
                return;
        }
        json_t *value = json_object_get(message, "value");
        if (value && !json_is_object(value) && !json_is_array(value)) {
                metrics_error(s->d->metrics, "bad_request");
                slot_end_activation(s, NULL);
                http_reply_error(res, 404, "The action did not receive a dictionary or an array as an argument.");
                return;
        }
        /* An array rides beside the activation's environment (the agent's __prewarm_value). */
        json_auto_t *args = json_is_array(value) ? json_pack("{s:O}", "__prewarm_value", value)
                            : value ? json_copy(value) : json_object();
        json_object_set_new(args, "__prewarm_env", activation_env(message));
        _cleanup_free_ char *text = json_dumps(args, JSON_COMPACT);
        _cleanup_free_ char *result = NULL;
        pw_err err = {""};
        uint64_t t0 = now_us();
        int r = text ? slot_invoke(s, text, deadline_timeout(json_object_get(message, "deadline")), &result, &err)
                     : -ENOMEM;
        metrics_observe(s->d->metrics, STAGE_TOTAL, now_us() - t0);
        metrics_invocation(s->d->metrics, "openwhisk", r < 0 ? -1 : PW_SOURCE_WARM);
        http_note(res, "action %s", s->action_name);
        if (r < 0)
                return run_error(s, res, r, err.msg[0] ? err.msg : strerror(-r));
        slot_end_activation(s, NULL);
        if (web)
                return reply_web_action(res, result);
        http_reply_text(res, 200, "application/json", result, strlen(result));
}

static void ow_run(http_request *req, http_response *res)
{
        slot *s = req->data;
        json_auto_t *body = body_object(req, res);
        if (!body)
                return;
        pthread_mutex_lock(&s->lock);
        do_run(s, body, res, false);
        pthread_mutex_unlock(&s->lock);
}

/* Knative's single entry: {"init": {...}} and/or {"activation": {...}, "value": {...}}. On a
 * Fission-specialized slot, / is the function itself. */
static void slot_root(http_request *req, http_response *res)
{
        slot *s = req->data;
        pthread_mutex_lock(&s->lock);
        slot_mode mode = s->mode;
        pthread_mutex_unlock(&s->lock);
        if (slot_mode_web(mode))
                return fission_invoke(req, res);
        json_auto_t *body = req->body_size ? body_object(req, res) : json_object(); /* a bare GET or POST */
        if (!body)
                return;
        json_t *init = json_object_get(body, "init");
        json_t *activation = json_object_get(body, "activation");
        json_t *value = json_object_get(body, "value");
        pthread_mutex_lock(&s->lock);
        if (init)
                do_init(s, init, res);
        if (init && !activation && !value) {
                /* initialized (or not) and nothing to run */
        } else if (!init && s->mode == SLOT_FREE) {
                /* Neither form: a Fission router's request to a slot not specialized yet. */
                fission_unspecialized(res);
        } else if (!init || res->status == 200) {
                /* The activation's fields are the context; the value, with the request's fields a
                 * web action reads (__ow_method, __ow_headers, ...), sits beside it. */
                json_auto_t *message = json_is_object(activation) ? json_copy(activation) : json_object();
                json_auto_t *args = json_is_object(value) ? json_copy(value) : value ? json_incref(value) : json_object();
                if (json_is_object(args))
                        add_web_fields(args, req, activation);
                json_object_set(message, "value", args);
                do_run(s, message, res, true);
        }
        pthread_mutex_unlock(&s->lock);
}

const http_route slot_routes[] = {
        {"POST", "/init", ow_init},
        {"POST", "/run", ow_run},
        {"POST", "/v2/specialize", fission_specialize},
        {"POST", "/specialize", fission_specialize_v1},
        {"GET", "/healthz", fission_healthz},
        {NULL, "/_/health", openfaas_health},
        {"POST", "/", slot_root},
        {"GET", "/", slot_root},
        {NULL, "*", fission_invoke},
};
const size_t slot_n_routes = ELEMENTSOF(slot_routes);

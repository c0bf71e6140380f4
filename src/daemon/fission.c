/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fission's environment contract on a slot, so that a Fission environment can be backed by
 * prewarm: the fetcher posts /v2/specialize {"filepath", "functionName", "url",
 * "FunctionMetadata", "envVersion"} once the deployment package is in place, the router sends
 * requests to /, and /healthz answers the readiness probe.
 */
#include <sys/stat.h>

#include "functions.h"
#include "http.h"
#include "metrics.h"
#include "slots.h"

/* Flask's page for an exception in a view, which Fission's environment sends as it is. */
#define FLASK_500 "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n" \
                  "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable " \
                  "to complete your request. Either the server is overloaded or there is an error in the " \
                  "application.</p>\n"

void fission_healthz(http_request *req, http_response *res)
{
        http_reply_text(res, 200, "text/plain", "", 0);
}

/* of-watchdog's answer: "OK" once the function is there to take requests, 503 before. */
void openfaas_health(http_request *req, http_response *res)
{
        slot *s = req->data;
        pthread_mutex_lock(&s->lock);
        bool ready = s->mode == SLOT_OPENFAAS;
        pthread_mutex_unlock(&s->lock);
        bool get = !strcmp(req->method, "GET");
        if (ready)  /* of-watchdog's own route: GET only */
                http_reply_text(res, get ? 200 : 405, "text/plain", get ? "OK" : "", get ? 2 : 0);
        else if (get)
                http_reply_text(res, 503, "text/plain", "", 0);
        else        /* not an OpenFaaS function: a request like any other */
                fission_invoke(req, res);
}

/* Whether name is a functionName Fission's environments take: "module.func", "pkg.mod.func",
 * "func" or "" (the default), of letters, digits, '_' and '-' (a Node module's file name may
 * have one), which also keeps "../" out. */
static bool function_name_ok(const char *name)
{
        if (!name || !*name)
                return true;
        return strlen(name) < 256 && name[0] != '.' && !strstr(name, "..") && name[strlen(name) - 1] != '.' &&
               strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == strlen(name);
}

/* Whether path, symlinks resolved, lies inside root: the slot's API has no authentication, so it
 * must not read whatever file a local caller names. */
static bool inside_root(const char *path, const char *root)
{
        _cleanup_free_ char *p = realpath(path, NULL), *r = realpath(root, NULL);
        return p && r && path_within(p, r);
}

/* The code URI for the package at filepath, a file or a directory (its modules import each other:
 * it goes to the sandbox whole). The route in "url" is Fission's business, not ours. */
static int package_uri(const char *root, const char *filepath, char **ret, pw_err *err)
{
        if (!filepath || filepath[0] != '/')
                return err_set(err, -EINVAL, "filepath must be an absolute path on this host");
        struct stat st;
        if (stat(filepath, &st) < 0)
                return err_set(err, -ENOENT, "deployment package %s: %m", filepath);
        if (!inside_root(filepath, root))
                return err_set(err, -EACCES, "%s is not under the Fission package root %s (--fission-root)", filepath, root);
        *ret = strdup_printf("file://%s", filepath);
        return *ret ? 0 : -ENOMEM;
}

static int metadata_env(json_t *meta, char ***ret)
{
        json_auto_t *env = json_object();
        const char *name = json_string_value(json_object_get(meta, "name"));
        const char *ns = json_string_value(json_object_get(meta, "namespace"));
        if (name)
                json_object_set_new(env, "FISSION_FUNCTION_NAME", json_string(name));
        if (ns)
                json_object_set_new(env, "FISSION_FUNCTION_NAMESPACE", json_string(ns));
        return env_to_strv(env, ret);
}

static void specialize_locked(slot *s, json_t *body, http_response *res)
{
        if (s->mode != SLOT_FREE) {
                http_reply_error(res, 409, "this slot is already specialized (with %s)", s->action_name);
                return;
        }
        pw_err err = {""};
        json_t *meta = json_object_get(body, "FunctionMetadata");
        const char *fname = json_string_value(json_object_get(body, "functionName"));
        if (!function_name_ok(fname)) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, 400, "functionName '%s' is not MODULE.FUNCTION", fname);
                return;
        }
        _cleanup_free_ char *uri = NULL;
        _cleanup_strv_free_ char **env = NULL;
        int r = package_uri(s->d->cfg.fission_root, json_string_value(json_object_get(body, "filepath")), &uri, &err);
        if (r < 0) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, r == -ENOMEM ? 500 : r == -EACCES ? 403 : 400, "%s", err.msg);
                return;
        }
        if ((r = blob_check(s->d, uri, NULL, &err)) < 0) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, blob_error_status(r), "%s", err.msg);
                return;
        }
        const char *name = json_string_value(json_object_get(meta, "name"));
        if (metadata_env(meta, &env) < 0 ||
            slot_specialize(s, SLOT_FISSION, name ? name : fname, uri, NULL, fname && *fname ? fname : "main",
                            env, &err) < 0) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, 500, "specializing %s: %s", uri, err.msg[0] ? err.msg : "out of memory");
                return;
        }
        http_note(res, "fission function %s", s->action_name);
        http_reply_text(res, 200, "text/plain", "", 0);
}

/* v1: the package is ROOT/user, a single file whose main is the function. */
void fission_specialize_v1(http_request *req, http_response *res)
{
        slot *s = req->data;
        _cleanup_free_ char *user = strdup_printf("%s/user", s->d->cfg.fission_root);
        json_auto_t *body = user ? json_pack("{s:s, s:s}", "filepath", user, "functionName", "main") : NULL;
        if (!body)
                return http_reply_error(res, 500, "out of memory");
        pthread_mutex_lock(&s->lock);
        specialize_locked(s, body, res);
        pthread_mutex_unlock(&s->lock);
}

void fission_specialize(http_request *req, http_response *res)
{
        slot *s = req->data;
        json_t *body;
        if (!http_body_json(req, res, &body))
                return;
        if (!json_is_object(body)) {
                json_decref(body);
                http_reply_error(res, 400, "expected {\"filepath\", \"functionName\", ...}");
                return;
        }
        pthread_mutex_lock(&s->lock);
        specialize_locked(s, body, res);
        pthread_mutex_unlock(&s->lock);
        json_decref(body);
}

/* The response Flask made in the sandbox: {"status", "headers": [[name, value]], "body_b64"}. */
static void reply_web(http_response *res, const char *result)
{
        json_auto_t *r = json_loads(result, 0, NULL);
        json_t *status = json_object_get(r, "status"), *headers = json_object_get(r, "headers");
        const char *b64 = json_string_value(json_object_get(r, "body_b64"));
        unsigned char *body = NULL;
        size_t n = 0;
        if (!json_is_integer(status) || json_integer_value(status) < 100 || json_integer_value(status) > 599 ||
            !json_is_array(headers) || !b64 || http_base64_decode(b64, &body, &n) < 0)
                return http_reply_error(res, 502, "the function's response could not be read");
        http_reply_text(res, (unsigned)json_integer_value(status), NULL, (const char *)body, n);
        free(body);
        size_t k;
        json_t *h;
        json_array_foreach(headers, k, h) {
                const char *name = json_string_value(json_array_get(h, 0));
                const char *value = json_string_value(json_array_get(h, 1));
                /* MHD sets the framing itself from the body it sends, and the connection's headers
                 * are its own, not the function's server's (hop-by-hop, RFC 9110 7.6.1). */
                if (name && value && strcasecmp(name, "Content-Length") && strcasecmp(name, "Transfer-Encoding") &&
                    strcasecmp(name, "Connection") && strcasecmp(name, "Keep-Alive"))
                        http_add_header(res, name, "%s", value);
        }
}

void fission_unspecialized(http_response *res)
{
        static const char text[] = "Generic container: no requests supported";
        http_reply_text(res, 500, "text/html; charset=utf-8", text, strlen(text));
}

static void invoke_locked(slot *s, const char *args, http_response *res)
{
        if (s->mode == SLOT_FREE)
                return fission_unspecialized(res);
        if (!slot_mode_web(s->mode)) {
                http_reply_error(res, 404, "no such endpoint");
                return;
        }
        _cleanup_free_ char *result = NULL;
        pw_err err = {""};
        uint64_t t0 = now_us();
        int r = slot_invoke(s, args, SLOT_DEFAULT_TIMEOUT_MS, &result, &err);
        metrics_observe(s->d->metrics, STAGE_TOTAL, now_us() - t0);
        metrics_invocation(s->d->metrics, slot_mode_name(s->mode), r < 0 ? -1 : PW_SOURCE_WARM);
        slot_end_activation(s, r < 0 ? err.msg : NULL);
        http_note(res, "fission function %s", s->action_name);
        if (r == -EREMOTEIO) { /* what Flask answers for a view that raised */
                metrics_error(s->d->metrics, "exception");
                http_reply_text(res, 500, "text/html; charset=utf-8", FLASK_500, strlen(FLASK_500));
                return;
        }
        if (r < 0) {
                metrics_error(s->d->metrics, r == -ETIMEDOUT ? "timeout" : "crash");
                http_reply_error(res, r == -ETIMEDOUT ? 504 : 502, "%s", err.msg);
                return;
        }
        reply_web(res, result);
}

/* Any request: the function sees it through flask.request, as in Fission's Python environment. */
void fission_invoke(http_request *req, http_response *res)
{
        slot *s = req->data;
        json_auto_t *http = http_request_json(req);
        _cleanup_free_ char *args = http ? json_dumps(http, JSON_COMPACT) : NULL;
        if (!args)
                return http_reply_error(res, 500, "out of memory");
        pthread_mutex_lock(&s->lock);
        invoke_locked(s, args, res);
        pthread_mutex_unlock(&s->lock);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fission's environment contract on a slot, so that a Fission environment can be backed by
 * prewarm: the fetcher posts /v2/specialize {"filepath", "functionName", "url",
 * "FunctionMetadata", "envVersion"} once the deployment package is in place, the router sends
 * requests to /, and /healthz answers the readiness probe.
 */
#include <sys/stat.h>

#include "functions.h"
#include "metrics.h"
#include "openwhisk.h"

void fission_healthz(http_request *req, http_response *res)
{
        http_reply_text(res, 200, "text/plain", "", 0);
}

/* "module.func" -> module "module", function "func"; "func" -> main.func; "" -> main.main, as
 * Fission's Python environment reads functionName. False for names that are not Python
 * identifiers (which also keeps "../" out of the module's path). */
static bool split_function_name(const char *name, char module[256], char func[128])
{
        if (!name || !*name)
                name = "main";
        if (strlen(name) >= 256 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") !=
                                           strlen(name) || name[0] == '.' || strstr(name, ".."))
                return false;
        const char *dot = strrchr(name, '.');
        str_copy(func, 128, dot ? dot + 1 : name);
        str_copy(module, 256, "main");
        if (dot) {
                memcpy(module, name, (size_t)(dot - name));
                module[dot - name] = '\0';
                for (char *p = module; *p; p++) /* pkg.mod -> pkg/mod */
                        if (*p == '.')
                                *p = '/';
        }
        return *func != '\0';
}

/* Whether path, symlinks resolved, lies inside root: the slot's API has no authentication, so it
 * must not read whatever file a local caller names. */
static bool inside_root(const char *path, const char *root)
{
        _cleanup_free_ char *p = realpath(path, NULL), *r = realpath(root, NULL);
        size_t n = r ? strlen(r) : 0;
        return p && r && !strncmp(p, r, n) && (p[n] == '/' || p[n] == '\0' || !strcmp(r, "/"));
}

/* The code URI for the package at filepath: the file itself (a .py source or a .zip with
 * __main__.py), or MODULE.py inside a directory; else an http(s) url. */
static int package_uri(const char *root, const char *filepath, const char *url, const char *module, char **ret,
                       char *errbuf, size_t errlen)
{
        if ((!filepath || !*filepath) && url && *url) {
                if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
                        snprintf(errbuf, errlen, "url must be http:// or https://");
                        return -EINVAL;
                }
                *ret = strdup(url);
                return *ret ? 0 : -ENOMEM;
        }
        if (!filepath || filepath[0] != '/') {
                snprintf(errbuf, errlen, "filepath must be an absolute path on this host (or give url)");
                return -EINVAL;
        }
        struct stat st;
        if (stat(filepath, &st) < 0) {
                snprintf(errbuf, errlen, "deployment package %s: %m", filepath);
                return -ENOENT;
        }
        _cleanup_free_ char *file = S_ISDIR(st.st_mode) ? strdup_printf("%s/%s.py", filepath, module) : strdup(filepath);
        if (!file)
                return -ENOMEM;
        if (!inside_root(file, root)) {
                snprintf(errbuf, errlen, "%s is not a file under the Fission package root %s (--fission-root)", file, root);
                return -EACCES;
        }
        *ret = strdup_printf("file://%s", file);
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
        char module[256], func[128], msg[2048] = "";
        json_t *meta = json_object_get(body, "FunctionMetadata");
        const char *fname = json_string_value(json_object_get(body, "functionName"));
        if (!split_function_name(fname, module, func)) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, 400, "functionName '%s' is not MODULE.FUNCTION", fname);
                return;
        }
        _cleanup_free_ char *uri = NULL;
        _cleanup_strv_free_ char **env = NULL;
        int r = package_uri(s->d->cfg.fission_root, json_string_value(json_object_get(body, "filepath")),
                            json_string_value(json_object_get(body, "url")), module, &uri, msg, sizeof(msg));
        if (r < 0) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, r == -ENOMEM ? 500 : r == -EACCES ? 403 : 400, "%s", msg);
                return;
        }
        if ((r = blob_check(s->d, uri, NULL, msg, sizeof(msg))) < 0) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, blob_error_status(r), "%s", msg);
                return;
        }
        const char *name = json_string_value(json_object_get(meta, "name"));
        if (metadata_env(meta, &env) < 0 ||
            slot_specialize(s, SLOT_FISSION, name ? name : fname, uri, NULL, func, env, msg, sizeof(msg)) < 0) {
                metrics_error(s->d->metrics, "specialize");
                http_reply_error(res, 500, "specializing %s: %s", uri, msg[0] ? msg : "out of memory");
                return;
        }
        http_note(res, "fission function %s", s->action_name);
        http_reply_text(res, 200, "text/plain", "", 0);
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

static void invoke_locked(slot *s, const char *args, http_response *res)
{
        if (s->mode != SLOT_FISSION) {
                /* What Fission's own environments answer before specialization. */
                http_reply_error(res, s->mode == SLOT_FREE ? 500 : 404, "%s", s->mode == SLOT_FREE ?
                                 "Generic container: no requests supported" : "no such endpoint");
                return;
        }
        _cleanup_free_ char *result = NULL, *logs = NULL;
        char msg[2048] = "";
        uint64_t t0 = now_us();
        int r = slot_invoke(s, args, SLOT_DEFAULT_TIMEOUT_MS, &result, &logs, msg, sizeof(msg));
        metrics_observe(s->d->metrics, STAGE_TOTAL, now_us() - t0);
        metrics_invocation(s->d->metrics, "fission", r < 0 ? -1 : PW_SOURCE_WARM);
        slot_end_activation(s, r < 0 ? msg : NULL);
        http_note(res, "fission function %s", s->action_name);
        if (r < 0) {
                metrics_error(s->d->metrics, r == -ETIMEDOUT ? "timeout" : r == -EREMOTEIO ? "exception" : "crash");
                http_reply_error(res, r == -ETIMEDOUT ? 504 : 502, "%s", msg);
                return;
        }
        http_reply_text(res, 200, "application/json", result, strlen(result));
}

/* The request body is the argument: empty means {}, anything but a JSON object is refused. */
void fission_invoke(http_request *req, http_response *res)
{
        slot *s = req->data;
        json_t *body;
        if (!http_body_json(req, res, &body))
                return;
        bool object = !body || json_is_object(body);
        json_decref(body);
        if (!object) {
                http_reply_error(res, 400, "the request body must be a JSON object (the function's argument)");
                return;
        }
        pthread_mutex_lock(&s->lock);
        invoke_locked(s, req->body_size ? req->body : "{}", res);
        pthread_mutex_unlock(&s->lock);
}

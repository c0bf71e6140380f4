/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The native API (api.h, docs/api.md): templates, functions, invocations, activations, instances,
 * health and metrics, each a route handler over the pool and the registry.
 */
#include <pthread.h>

#include "activations.h"
#include "api.h"
#include "functions.h"
#include "metrics.h"
#include "template_sources.h"
#include "slots.h"

/* How long an invocation waits for admission before it is answered 503. */
#define ADMISSION_WAIT_MS 30000

/* ------------------------------------------------------------------ templates */

static json_t *template_json(const pw_template_info *t)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "name", t->name, "status", "built",
                         "runtime", t->runtime, "criu_version", t->criu_version, "kernel", t->kernel,
                         "created", (json_int_t)t->created, "image_bytes", (json_int_t)t->image_bytes);
}

static int collect_template(const pw_template_info *t, void *userdata)
{
        json_array_append_new(userdata, template_json(t));
        return 0;
}

typedef struct find_template {
        const char *name;
        json_t *found;
} find_template;

static int match_template(const pw_template_info *t, void *userdata)
{
        find_template *f = userdata;
        if (strcmp(t->name, f->name))
                return 0;
        f->found = template_json(t);
        return 1;
}

static bool template_building(daemon_ctx *d, const char *name, bool set, bool value)
{
        pthread_mutex_lock(&d->build_lock);
        bool was = json_object_get(d->building, name) != NULL;
        if (set && value)
                json_object_set_new(d->building, name, json_true());
        else if (set)
                json_object_del(d->building, name);
        pthread_mutex_unlock(&d->build_lock);
        return was;
}

static void templates_list(http_request *req, http_response *res)
{
        json_t *list = json_array();
        int r = pw_template_foreach(req->daemon->engine, collect_template, list);
        if (r < 0) {
                json_decref(list);
                http_reply_error(res, 500, "listing templates: %s", pw_engine_last_error(req->daemon->engine));
                return;
        }
        pthread_mutex_lock(&req->daemon->build_lock);
        json_t *building = json_deep_copy(req->daemon->building);
        pthread_mutex_unlock(&req->daemon->build_lock);
        const char *name;
        json_t *v;
        json_object_foreach(building, name, v)
                json_array_append_new(list, json_pack("{s:s, s:s}", "name", name, "status", "building"));
        json_decref(building);
        http_reply_json(res, 200, json_pack("{s:o}", "templates", list));
}

static void template_get(http_request *req, http_response *res)
{
        find_template f = {req->params[0], NULL};
        pw_template_foreach(req->daemon->engine, match_template, &f);
        if (f.found && template_building(req->daemon, f.name, false, false))
                json_object_set_new(f.found, "status", json_string("rebuilding"));
        if (!f.found && template_building(req->daemon, f.name, false, false))
                f.found = json_pack("{s:s, s:s}", "name", f.name, "status", "building");
        _cleanup_free_ char *from = template_source_get(req->daemon, f.name);
        if (!f.found && from)
                f.found = json_pack("{s:s, s:s}", "name", f.name, "status", "not pulled");
        if (!f.found) {
                http_reply_error(res, 404, "template '%s' is not built (POST /v1/templates/%s/build)", f.name, f.name);
                return;
        }
        if (from)
                json_object_set_new(f.found, "from", json_string(from));
        http_reply_json(res, 200, f.found);
}

/* PUT /v1/templates/NAME {"from": REF}: where the template comes from, pulled when first needed. */
static void template_put(http_request *req, http_response *res)
{
        json_t *body = NULL;
        if (!http_body_json(req, res, &body))
                return;
        const char *ref = json_string_value(json_object_get(body, "from"));
        pw_err err = {""};
        int r = ref ? template_source_set(req->daemon, req->params[0], ref, &err) : -EINVAL;
        if (!ref)
                err_set(&err, 0, "the body must be {\"from\": \"HOST[:PORT]/REPOSITORY[:TAG]\"}");
        json_decref(body);
        if (r < 0) {
                http_reply_error(res, r == -EINVAL ? 400 : 500, "%s", err.msg);
                return;
        }
        template_get(req, res);
}

static unsigned fleet_status(int r)
{
        static const struct { int r; unsigned status; } map[] = {
                {-EINVAL, 400}, {-ENOENT, 404}, {-EACCES, 403}, {-EXDEV, 409}, {-EFBIG, 413},
                {-EBADMSG, 502}, {-EPROTO, 502}, {-EHOSTUNREACH, 502}, {-EUCLEAN, 409},
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (map[i].r == r)
                        return map[i].status;
        return 500;
}

/* POST /v1/templates/pull {"ref": REF, "as": NAME}: pulled now, as the daemon's registry options say. */
static void templates_pull(http_request *req, http_response *res)
{
        daemon_ctx *d = req->daemon;
        json_t *body = NULL;
        if (!http_body_json(req, res, &body))
                return;
        const char *ref = json_string_value(json_object_get(body, "ref"));
        const char *as = json_string_value(json_object_get(body, "as"));
        if (!ref) {
                json_decref(body);
                http_reply_error(res, 400, "the body must be {\"ref\": REF} or {\"ref\": REF, \"as\": NAME}");
                return;
        }
        char *digest = NULL;
        uint64_t t0 = now_us();
        int r = pw_template_pull(d->engine, ref, as, &d->cfg.registry, &digest);
        metrics_observe(d->metrics, STAGE_TEMPLATE_PULL, now_us() - t0);
        metrics_template(d->metrics, r >= 0 ? "pulled" : r == -EXDEV ? "incompatible" : "pull_failed");
        if (r < 0)
                http_reply_error(res, fleet_status(r), "%s", pw_engine_last_error(d->engine));
        else
                http_reply_json(res, 200, json_pack("{s:s, s:s, s:f}", "ref", ref, "digest", digest,
                                                    "seconds", (now_us() - t0) / 1e6));
        if (r >= 0)
                templates_trim(d);
        free(digest);
        json_decref(body);
}

/* POST /v1/templates/NAME/push {"ref": REF} */
static void template_push(http_request *req, http_response *res)
{
        daemon_ctx *d = req->daemon;
        json_t *body = NULL;
        if (!http_body_json(req, res, &body))
                return;
        const char *ref = json_string_value(json_object_get(body, "ref"));
        char *digest = NULL;
        int r = ref ? pw_template_push(d->engine, req->params[0], ref, &d->cfg.registry, &digest) : -EINVAL;
        if (!ref)
                http_reply_error(res, 400, "the body must be {\"ref\": \"HOST[:PORT]/REPOSITORY:TAG\"}");
        else if (r < 0)
                http_reply_error(res, fleet_status(r), "%s", pw_engine_last_error(d->engine));
        else
                http_reply_json(res, 200, json_pack("{s:s, s:s}", "ref", ref, "digest", digest));
        free(digest);
        json_decref(body);
}

static void template_build(http_request *req, http_response *res)
{
        daemon_ctx *d = req->daemon;
        const char *name = req->params[0];
        if (!name_is_valid(name)) {
                http_reply_error(res, 400, "invalid template name '%s'", name);
                return;
        }
        template_building(d, name, true, true);
        dlog(PW_LOG_INFO, "template %s: build started", name);
        uint64_t t0 = now_us();
        int r = pw_template_build(d->engine, name);
        template_building(d, name, true, false);
        if (r < 0) {
                static const struct { int r; unsigned status; } map[] = {
                        {-ENOENT, 404}, {-EINVAL, 422}, {-ETIMEDOUT, 504}, {-ECHILD, 502}, {-EIO, 502},
                };
                unsigned status = 500;
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        if (map[i].r == r)
                                status = map[i].status;
                metrics_error(d->metrics, "template_build");
                http_reply_error(res, status, "%s", pw_engine_last_error(d->engine));
                return;
        }
        http_note(res, "built in %.0f ms", (now_us() - t0) / 1000.0);
        if (d->cfg.ow_port_first && !strcmp(name, d->cfg.slot_template))
                pw_pool_prewarm(d->pool, name); /* the slots take their zygotes from here */
        template_get(req, res);
}

/* ------------------------------------------------------------------ functions */

static int pool_set(daemon_ctx *d, json_t *def)
{
        pw_pool_function pf;
        _cleanup_strv_free_ char **env = NULL;
        int r = function_to_pool(def, &pf, &env);
        if (r < 0)
                return r;
        r = pw_pool_set_function(d->pool, json_string_value(json_object_get(def, "name")), &pf);
        /* Its template's parent and ready clones from now on, not from the first invocation. */
        if (r >= 0 && pw_pool_prewarm(d->pool, pf.template_name) < 0)
                dlog(PW_LOG_WARNING, "pool: cannot keep template %s ready: %s", pf.template_name,
                     pw_pool_last_error(d->pool));
        return r;
}

int api_register_all(daemon_ctx *d)
{
        json_t *list = registry_list(d->functions);
        if (!list)
                return -ENOMEM;
        size_t i;
        json_t *def;
        json_array_foreach(list, i, def) {
                int r = pool_set(d, def);
                if (r < 0)
                        dlog(PW_LOG_WARNING, "function %s: cannot register with the pool: %s",
                             json_string_value(json_object_get(def, "name")), strerror(-r));
        }
        dlog(PW_LOG_INFO, "%zu function(s) registered from functions.json", json_array_size(list));
        json_decref(list);
        return 0;
}

static void functions_list(http_request *req, http_response *res)
{
        json_t *list = registry_list(req->daemon->functions);
        if (!list)
                http_reply_error(res, 500, "out of memory");
        else
                http_reply_json(res, 200, json_pack("{s:o}", "functions", list));
}

static void function_put(http_request *req, http_response *res)
{
        daemon_ctx *d = req->daemon;
        json_t *body;
        if (!http_body_json(req, res, &body))
                return;
        json_t *def = NULL;
        unsigned status;
        pw_err err = {""};
        inline_blob blob = {0};
        int r = function_parse(d, req->params[0], body, &def, &blob, &status, &err);
        json_decref(body);
        if (r < 0) {
                http_reply_error(res, status, "function %s: %s", req->params[0], err.msg);
                return;
        }
        /* Accepted: only now does inline code go to the cache (the pool fetches it from there). */
        if (blob.data && (r = blob_cache_commit(d, &blob)) < 0) {
                http_reply_error(res, 500, "function %s: writing to the blob cache %s: %s", req->params[0],
                                 d->blob_dir, strerror(-r));
                inline_blob_done(&blob);
                json_decref(def);
                return;
        }
        json_t *old = registry_get(d->functions, req->params[0]);
        r = pool_set(d, def);
        bool in_pool = r >= 0;
        if (r >= 0)
                r = registry_put(d->functions, def);
        if (r < 0) {
                http_reply_error(res, r == -EINVAL ? 400 : 500, "function %s: cannot store it: %s", req->params[0],
                                 strerror(-r));
                /* The pool keeps serving what the registry still says. */
                if (old)
                        pool_set(d, old);
                else if (in_pool)
                        pw_pool_remove_function(d->pool, req->params[0]);
                blob_cache_forget(d, &blob);
                inline_blob_done(&blob);
                json_decref(old);
                json_decref(def);
                return;
        }
        inline_blob_done(&blob);
        http_note(res, "%s function %s", old ? "updated" : "registered", req->params[0]);
        http_reply_json(res, old ? 200 : 201, def);
        json_decref(old);
}

static void function_get(http_request *req, http_response *res)
{
        json_t *def = registry_get(req->daemon->functions, req->params[0]);
        if (!def)
                http_reply_error(res, 404, "no function named '%s'", req->params[0]);
        else
                http_reply_json(res, 200, def);
}

static void function_delete(http_request *req, http_response *res)
{
        daemon_ctx *d = req->daemon;
        int r = registry_remove(d->functions, req->params[0]);
        if (r == -ENOENT) {
                http_reply_error(res, 404, "no function named '%s'", req->params[0]);
                return;
        }
        if (r < 0) {
                http_reply_error(res, 500, "removing function %s: %s", req->params[0], strerror(-r));
                return;
        }
        pw_pool_remove_function(d->pool, req->params[0]);
        http_reply_json(res, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

/* ------------------------------------------------------------------ invocations */

typedef struct invocation {
        daemon_ctx *d;
        char *function;
        char *template_name;
        char *args;
        char activation_id[33];
        int r;
        char *result, *logs;
        pw_invoke_info info;
        pw_err error;
        unsigned status;
        const char *kind;
} invocation;

static void invocation_free(invocation *inv)
{
        free(inv->function);
        free(inv->template_name);
        free(inv->args);
        free(inv->result);
        free(inv->logs);
        free(inv);
}

static void invocation_run(invocation *inv)
{
        daemon_ctx *d = inv->d;
        uint64_t t0 = now_us();
        if (!admission_enter(d, ADMISSION_WAIT_MS)) {
                inv->r = -EAGAIN;
                inv->status = 503;
                inv->kind = "busy";
                err_set(&inv->error, 0, "function %s: waited %u s for one of the %u invocation slots; retry later",
                         inv->function, ADMISSION_WAIT_MS / 1000, d->cfg.max_invocations);
                metrics_error(d->metrics, inv->kind);
                return;
        }
        inv->r = template_ensure(d, inv->template_name, &inv->error);
        if (inv->r < 0) {
                admission_leave(d);
                inv->status = inv->r == -ENOENT ? 409 : 502;
                inv->kind = "template";
                metrics_error(d->metrics, inv->kind);
                return;
        }
        inv->r = pw_pool_invoke(d->pool, inv->function, inv->args, &inv->result, &inv->logs, &inv->info);
        admission_leave(d);
        if (!inv->info.total_us)
                inv->info.total_us = now_us() - t0;
        metrics_observe(d->metrics, STAGE_RESTORE, inv->info.restore_us);
        metrics_observe(d->metrics, STAGE_SPECIALIZE, inv->info.specialize_us);
        metrics_observe(d->metrics, STAGE_INVOKE, inv->info.invoke_us);
        metrics_observe(d->metrics, STAGE_TOTAL, inv->info.total_us);
        metrics_invocation(d->metrics, "api", inv->r < 0 && !inv->info.instance_id[0] ? -1 : (int)inv->info.source);
        if (inv->info.source == PW_SOURCE_COLD_START)
                dlog(PW_LOG_WARNING, "function %s: restore failed, served by a cold start (instance %s)",
                     inv->function, inv->info.instance_id);
        if (inv->r >= 0)
                return;
        invoke_error_class(inv->r, &inv->status, &inv->kind);
        const char *why = pw_pool_last_error(d->pool);
        err_set(&inv->error, 0, "%s", why && *why ? why : strerror(-inv->r));
        if (inv->r == -ENOENT && !template_built(d, inv->template_name)) {
                /* Not the code's fault: its template went away (removed) since it was needed. */
                template_forget(d, inv->template_name);
                inv->status = 409;
                inv->kind = "template";
                err_set(&inv->error, 0, "function %s: template %s is not built (POST /v1/templates/%s/build)",
                         inv->function, inv->template_name, inv->template_name);
        }
        metrics_error(d->metrics, inv->kind);
}

static void add_timing_headers(http_response *res, const pw_invoke_info *info)
{
        http_add_header(res, "X-Prewarm-Source", "%s", source_name(info->source));
        http_add_header(res, "X-Prewarm-Restore-Us", "%llu", (unsigned long long)info->restore_us);
        http_add_header(res, "X-Prewarm-Specialize-Us", "%llu", (unsigned long long)info->specialize_us);
        http_add_header(res, "X-Prewarm-Invoke-Us", "%llu", (unsigned long long)info->invoke_us);
        http_add_header(res, "X-Prewarm-Total-Us", "%llu", (unsigned long long)info->total_us);
        if (info->instance_id[0])
                http_add_header(res, "X-Prewarm-Instance", "%s", info->instance_id);
}

static json_t *invocation_record(const invocation *inv)
{
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s?}", "status", inv->r < 0 ? "error" : "success",
                              "source", source_name(inv->info.source), "restore_us", (json_int_t)inv->info.restore_us,
                              "specialize_us", (json_int_t)inv->info.specialize_us,
                              "invoke_us", (json_int_t)inv->info.invoke_us, "total_us", (json_int_t)inv->info.total_us,
                              "logs", inv->logs);
        if (!o)
                return NULL;
        if (inv->r < 0) {
                json_object_set_new(o, "error", json_string(inv->error.msg));
                json_object_set_new(o, "kind", json_string(inv->kind));
        } else
                json_object_set_new(o, "result", json_loads(inv->result, 0, NULL));
        return o;
}

static void *async_main(void *arg)
{
        invocation *inv = arg;
        invocation_run(inv);
        dlog(inv->r < 0 ? PW_LOG_WARNING : PW_LOG_INFO, "activation %s of %s: %s from %s in %.2f ms%s%s",
             inv->activation_id, inv->function, inv->r < 0 ? "failed" : "done", source_name(inv->info.source),
             inv->info.total_us / 1000.0, inv->r < 0 ? ": " : "", inv->r < 0 ? inv->error.msg : "");
        activations_finish(inv->d->activations, inv->activation_id, invocation_record(inv));
        daemon_ctx *d = inv->d;
        invocation_free(inv);
        daemon_leave(d);
        return NULL;
}

static void invoke_async(http_request *req, http_response *res, invocation *inv)
{
        daemon_ctx *d = req->daemon;
        int r = activations_start(d->activations, inv->function, inv->activation_id);
        if (r < 0) {
                invocation_free(inv);
                http_reply_error(res, r == -EAGAIN ? 429 : 500, "%s", r == -EAGAIN ?
                                 "too many asynchronous activations running; retry later" : strerror(-r));
                return;
        }
        /* The activation holds the daemon like a request does: shutdown waits for it. */
        atomic_fetch_add(&d->in_flight, 1);
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        char id[33];
        memcpy(id, inv->activation_id, sizeof(id));
        r = -pthread_create(&t, &attr, async_main, inv);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                activations_finish(d->activations, id, json_pack("{s:s, s:s}", "status", "error", "error",
                                                                  "could not start a thread"));
                invocation_free(inv);
                daemon_leave(d);
                http_reply_error(res, 503, "cannot start the activation: %s", strerror(-r));
                return;
        }
        http_add_header(res, "Location", "/v1/activations/%s", id);
        http_note(res, "activation %s", id);
        http_reply_json(res, 202, json_pack("{s:s}", "activation_id", id));
}

static void invoke_sync(http_response *res, invocation *inv)
{
        invocation_run(inv);
        add_timing_headers(res, &inv->info);
        http_note(res, "fn=%s source=%s", inv->function, source_name(inv->info.source));
        if (inv->r < 0 && inv->status == 503)
                http_add_header(res, "Retry-After", "1");
        if (inv->r < 0)
                http_reply_error(res, inv->status, "%s", inv->error.msg);
        else
                http_reply_text(res, 200, "application/json", inv->result, strlen(inv->result));
        invocation_free(inv);
}

static void function_invoke(http_request *req, http_response *res)
{
        daemon_ctx *d = req->daemon;
        json_t *def = registry_get(d->functions, req->params[0]);
        if (!def) {
                metrics_error(d->metrics, "not_found");
                http_reply_error(res, 404, "no function named '%s'", req->params[0]);
                return;
        }
        json_t *args;
        if (!http_body_json(req, res, &args)) {
                json_decref(def);
                metrics_error(d->metrics, "bad_request");
                return;
        }
        bool object = !args || json_is_object(args);
        json_decref(args);
        if (!object) {
                json_decref(def);
                metrics_error(d->metrics, "bad_request");
                http_reply_error(res, 400, "the argument must be a JSON object");
                return;
        }
        invocation *inv = calloc(1, sizeof(*inv));
        if (inv) {
                inv->d = d;
                inv->function = strdup(req->params[0]);
                inv->template_name = strdup(json_string_value(json_object_get(def, "template")));
                inv->args = strdup(req->body_size ? req->body : "{}");
        }
        json_decref(def);
        if (!inv || !inv->function || !inv->template_name || !inv->args) {
                if (inv)
                        invocation_free(inv);
                http_reply_error(res, 500, "out of memory");
                return;
        }
        const char *async = http_query(req, "async");
        if (async && strcmp(async, "0") && strcmp(async, "false"))
                invoke_async(req, res, inv);
        else
                invoke_sync(res, inv);
}

static void activation_get(http_request *req, http_response *res)
{
        json_t *record = activations_get(req->daemon->activations, req->params[0]);
        if (!record)
                http_reply_error(res, 404, "no activation '%s' (finished ones are kept for the last %u)",
                                 req->params[0], ACTIVATIONS_KEEP);
        else
                http_reply_json(res, 200, record);
}

/* ------------------------------------------------------------------ instances, health, metrics */

static int collect_instance(const pw_pool_instance_info *i, void *userdata)
{
        json_array_append_new(userdata, json_pack("{s:s, s:s, s:s?, s:s, s:I, s:I, s:i, s:s}", "id", i->id,
                                                  "template", i->template_name, "function", i->function,
                                                  "state", i->state, "age_ms", (json_int_t)i->age_ms,
                                                  "idle_ms", (json_int_t)i->idle_ms, "pid", (int)i->pid,
                                                  "owner", "pool"));
        return 0;
}

static void instances_list(http_request *req, http_response *res)
{
        json_t *list = json_array();
        pw_pool_foreach_instance(req->daemon->pool, collect_instance, list);
        slots_list_instances(req->daemon->slots, list);
        http_reply_json(res, 200, json_pack("{s:o}", "instances", list));
}

static void instance_delete(http_request *req, http_response *res)
{
        const char *id = req->params[0];
        int r = pw_pool_destroy_instance(req->daemon->pool, id);
        if (r == -ENOENT && slots_owns_instance(req->daemon->slots, id))
                http_reply_error(res, 409, "instance %s belongs to an OpenWhisk slot: reset the slot (DELETE /v1/slots/PORT)", id);
        else if (r == -ENOENT)
                http_reply_error(res, 404, "no instance '%s'", id);
        else if (r == -EBUSY)
                http_reply_error(res, 409, "instance %s is busy in an invocation", id);
        else if (r < 0)
                http_reply_error(res, 500, "destroying instance %s: %s", id, strerror(-r));
        else
                http_reply_json(res, 200, json_pack("{s:s}", "deleted", id));
}

static void healthz(http_request *req, http_response *res)
{
        http_reply_json(res, 200, json_pack("{s:s, s:i}", "status", "ok", "in_flight",
                                            atomic_load(&req->daemon->in_flight) - 1));
}

/* Ready once the templates it was told to have are here (a Kubernetes readiness probe). */
static void readyz(http_request *req, http_response *res)
{
        if (templates_ready(req->daemon))
                http_reply_json(res, 200, json_pack("{s:s}", "status", "ready"));
        else
                http_reply_error(res, 503, "templates are still being pulled or built");
}

static void metrics_get(http_request *req, http_response *res)
{
        unsigned used = 0, total = 0;
        slots_count(req->daemon->slots, &used, &total);
        _cleanup_free_ char *text = metrics_render(req->daemon->metrics, req->daemon, used, total);
        if (!text)
                http_reply_error(res, 500, "out of memory");
        else
                http_reply_text(res, 200, "text/plain; version=0.0.4", text, strlen(text));
}

const http_route api_routes[] = {
        {"GET", "/healthz", healthz},
        {"GET", "/readyz", readyz},
        {"GET", "/metrics", metrics_get},
        {"GET", "/v1/templates", templates_list},
        {"GET", "/v1/templates/{}", template_get},
        {"PUT", "/v1/templates/{}", template_put},
        {"POST", "/v1/templates/{}/build", template_build},
        {"POST", "/v1/templates/{}/push", template_push},
        {"POST", "/v1/templates/pull", templates_pull},
        {"GET", "/v1/functions", functions_list},
        {"PUT", "/v1/functions/{}", function_put},
        {"GET", "/v1/functions/{}", function_get},
        {"DELETE", "/v1/functions/{}", function_delete},
        {"POST", "/v1/functions/{}/invoke", function_invoke},
        {"GET", "/v1/activations/{}", activation_get},
        {"GET", "/v1/instances", instances_list},
        {"DELETE", "/v1/instances/{}", instance_delete},
        {"GET", "/v1/slots", slots_get},
        {"POST", "/v1/slots/claim", slots_claim},
        {"DELETE", "/v1/slots/{}", slots_reset},
};
const size_t api_n_routes = ELEMENTSOF(api_routes);

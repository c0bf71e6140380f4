/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where templates come from (template_sources.h, docs/fleet.md): registry references, pulls
 * on first need, the cache of pulled templates and its bound.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "functions.h"
#include "metrics.h"
#include "oci_registry.h"
#include "template_sources.h"

struct template_sources {
        pthread_mutex_t lock;
        pthread_cond_t changed; /* a pull ended */
        json_t *refs;           /* name -> reference: the kept ones, then --template-from's */
        json_t *required;       /* --template-from's names: this node keeps them (and is ready with them) */
        json_t *kept;           /* what PUT /v1/templates/NAME set: STATE/template-sources.json */
        json_t *built;          /* name -> when it was last needed (seconds), for the LRU */
        json_t *pulling;        /* names being pulled */
        char *path;
        pw_registry_options opts;
        char *username, *password, *ca_file;
};

/* ------------------------------------------------------------------ sources */

static int persist(template_sources *s)
{
        char *text = json_dumps(s->kept, JSON_INDENT(2) | JSON_SORT_KEYS);
        int r = text ? write_file_atomic(s->path, text, strlen(text), 0600) : -ENOMEM;
        free(text);
        return r;
}

static bool reference_ok(const char *ref, pw_err *err)
{
        oci_ref parsed;
        pw_err why = {""};
        if (oci_ref_parse(ref, &parsed, &why) < 0) {
                *err = why;
                return false;
        }
        oci_ref_done(&parsed);
        return true;
}

/* --template-from NAME=REF into refs. */
static int add_specs(template_sources *s, char **specs, pw_err *err)
{
        for (char **p = specs; p && *p; p++) {
                const char *eq = strchr(*p, '=');
                _cleanup_free_ char *name = eq ? strndup(*p, (size_t)(eq - *p)) : NULL;
                if (!eq || !name || !name_is_valid(name))
                        return err_set(err, -EINVAL, "--template-from wants NAME=REF, got '%s'", *p);
                if (!reference_ok(eq + 1, err))
                        return -EINVAL;
                json_object_set_new(s->refs, name, json_string(eq + 1));
                json_object_set_new(s->required, name, json_true());
        }
        return 0;
}

static int copy_opts(template_sources *s, const pw_registry_options *opts)
{
        s->opts = (pw_registry_options){.size = sizeof(s->opts), .plain_http = opts && opts->plain_http};
        if (opts && opts->username && !(s->opts.username = s->username = strdup(opts->username)))
                return -ENOMEM;
        if (opts && opts->password && !(s->opts.password = s->password = strdup(opts->password)))
                return -ENOMEM;
        if (opts && opts->ca_file && !(s->opts.ca_file = s->ca_file = strdup(opts->ca_file)))
                return -ENOMEM;
        return 0;
}

int template_sources_open(daemon_ctx *d, char **specs, const pw_registry_options *opts, template_sources **ret,
                          pw_err *err)
{
        template_sources *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->changed, NULL);
        s->path = strdup_printf("%s/template-sources.json", d->cfg.state_dir);
        s->built = json_object();
        s->pulling = json_object();
        s->required = json_object();
        int r = s->path && s->built && s->pulling && s->required ? copy_opts(s, opts) : -ENOMEM;
        if (r >= 0 && access(s->path, F_OK) == 0) {
                json_error_t je;
                s->kept = json_load_file(s->path, 0, &je);
                if (!json_is_object(s->kept)) {
                        err_set(err, 0, "%s: %s", s->path, je.text);
                        r = -EINVAL;
                }
        }
        if (r >= 0 && !s->kept && !(s->kept = json_object()))
                r = -ENOMEM;
        if (r >= 0 && !(s->refs = json_deep_copy(s->kept)))
                r = -ENOMEM;
        if (r >= 0)
                r = add_specs(s, specs, err);
        if (r < 0) {
                template_sources_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

template_sources *template_sources_free(template_sources *s)
{
        if (!s)
                return NULL;
        json_decref(s->refs);
        json_decref(s->kept);
        json_decref(s->built);
        json_decref(s->pulling);
        json_decref(s->required);
        free(s->path);
        free(s->username);
        if (s->password)
                explicit_bzero(s->password, strlen(s->password));
        free(s->password);
        free(s->ca_file);
        pthread_cond_destroy(&s->changed);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
}

int template_source_set(daemon_ctx *d, const char *name, const char *ref, pw_err *err)
{
        template_sources *s = d->sources;
        if (!name_is_valid(name))
                return err_set(err, -EINVAL, "invalid template name '%s'", name);
        if (!reference_ok(ref, err))
                return -EINVAL;
        pthread_mutex_lock(&s->lock);
        json_object_set_new(s->refs, name, json_string(ref));
        json_object_set_new(s->kept, name, json_string(ref));
        int r = persist(s);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                err_set(err, 0, "keeping the source: %s", strerror(-r));
        return r;
}

char *template_source_get(daemon_ctx *d, const char *name)
{
        template_sources *s = d->sources;
        pthread_mutex_lock(&s->lock);
        const char *ref = json_string_value(json_object_get(s->refs, name));
        char *copy = ref ? strdup(ref) : NULL;
        pthread_mutex_unlock(&s->lock);
        return copy;
}

/* ------------------------------------------------------------------ the cache */

typedef struct cached_template {
        char name[65];
        uint64_t bytes;
        double last_use;
} cached_template;

typedef struct cache_walk {
        daemon_ctx *d;
        cached_template *list;
        size_t n, cap;
        uint64_t total;
} cache_walk;

/* A template that came from a registry (it has source.json beside its manifest). */
static int collect_pulled(const pw_template_info *t, void *userdata)
{
        cache_walk *w = userdata;
        _cleanup_free_ char *marker = strdup_printf("%s/templates/%s/source.json", w->d->cfg.state_dir, t->name);
        if (!marker || access(marker, F_OK) < 0)
                return 0;
        if (grow_buffer((void **)&w->list, &w->cap, (w->n + 1) * sizeof(*w->list), 8 * sizeof(*w->list)) < 0)
                return -ENOMEM;
        cached_template *c = &w->list[w->n++];
        str_copy(c->name, sizeof(c->name), t->name);
        c->bytes = t->image_bytes;
        c->last_use = json_real_value(json_object_get(w->d->sources->built, t->name));
        w->total += t->image_bytes;
        return 0;
}

static int by_last_use(const void *a, const void *b)
{
        double x = ((const cached_template *)a)->last_use, y = ((const cached_template *)b)->last_use;
        return x < y ? -1 : x > y;
}

/* Whether a registered function, the slots, a pull or --template-from needs the template. */
static bool template_needed(daemon_ctx *d, json_t *defs, const char *name)
{
        if (d->cfg.ow_port_first && !strcmp(name, d->cfg.slot_template))
                return true;
        if (json_object_get(d->sources->pulling, name) || json_object_get(d->sources->required, name))
                return true;
        size_t i;
        json_t *def;
        json_array_foreach(defs, i, def)
                if (!strcmp(json_string_value(json_object_get(def, "template")) ?: "", name))
                        return true;
        return false;
}

/* Removes the least recently used pulled templates nothing needs until the rest fit. */
void templates_trim(daemon_ctx *d)
{
        cache_walk w = {.d = d};
        pthread_mutex_lock(&d->sources->lock);
        pw_template_foreach(d->engine, collect_pulled, &w);
        pthread_mutex_unlock(&d->sources->lock);
        uint64_t bound = d->cfg.template_cache_mb << 20;
        qsort(w.list, w.n, sizeof(*w.list), by_last_use);
        json_t *defs = registry_list(d->functions);
        for (size_t i = 0; i < w.n && bound && w.total > bound; i++) {
                pthread_mutex_lock(&d->sources->lock);
                bool needed = template_needed(d, defs, w.list[i].name);
                pthread_mutex_unlock(&d->sources->lock);
                if (needed || pw_template_remove(d->engine, w.list[i].name) < 0)
                        continue;
                template_forget(d, w.list[i].name);
                w.total -= w.list[i].bytes;
                metrics_template(d->metrics, "evicted");
                dlog(PW_LOG_INFO, "template %s: evicted from the template cache (%llu MiB, over --template-cache-mb %llu)",
                     w.list[i].name, (unsigned long long)(w.list[i].bytes >> 20), (unsigned long long)d->cfg.template_cache_mb);
        }
        metrics_template_cache_bytes(d->metrics, w.total);
        json_decref(defs);
        free(w.list);
}

/* ------------------------------------------------------------------ pulls */

/* A pull, or a local build when this node cannot restore what the registry has. */
static int fetch(daemon_ctx *d, const char *name, const char *ref, pw_err *err)
{
        template_sources *s = d->sources;
        uint64_t t0 = now_us();
        int r = pw_template_pull(d->engine, ref, name, &s->opts, NULL);
        metrics_observe(d->metrics, STAGE_TEMPLATE_PULL, now_us() - t0);
        if (r >= 0) {
                metrics_template(d->metrics, "pulled");
                dlog(PW_LOG_INFO, "template %s: pulled from %s in %.1f ms", name, ref, (now_us() - t0) / 1000.0);
                return 0;
        }
        err_set(err, 0, "template %s: %s", name, pw_engine_last_error(d->engine));
        if (r != -EXDEV) {
                metrics_template(d->metrics, "pull_failed");
                return r;
        }
        metrics_template(d->metrics, "incompatible");
        dlog(PW_LOG_WARNING, "%s; building it here instead", err->msg);
        int b = pw_template_build(d->engine, name);
        if (b < 0) {
                size_t used = strlen(err->msg);
                snprintf(err->msg + used, sizeof(err->msg) - used, "; and building it here: %s",
                         pw_engine_last_error(d->engine));
                return r;
        }
        metrics_template(d->metrics, "built_locally");
        return 0;
}

static void mark_built(template_sources *s, const char *name)
{
        json_object_set_new(s->built, name, json_real((double)now_us() / 1e6));
}

int template_ensure(daemon_ctx *d, const char *name, pw_err *err)
{
        template_sources *s = d->sources;
        pthread_mutex_lock(&s->lock);
        while (json_object_get(s->pulling, name))
                pthread_cond_wait(&s->changed, &s->lock);
        bool known = json_object_get(s->built, name) != NULL;
        if (known)
                mark_built(s, name);
        pthread_mutex_unlock(&s->lock);
        if (known || template_built(d, name)) {
                pthread_mutex_lock(&s->lock);
                mark_built(s, name);
                pthread_mutex_unlock(&s->lock);
                metrics_template(d->metrics, "hit");
                return 0;
        }
        pthread_mutex_lock(&s->lock);
        const char *ref = json_string_value(json_object_get(s->refs, name));
        _cleanup_free_ char *copy = ref ? strdup(ref) : NULL;
        bool racing = json_object_get(s->pulling, name) != NULL;
        if (copy && !racing)
                json_object_set_new(s->pulling, name, json_true());
        pthread_mutex_unlock(&s->lock);
        if (racing) /* another request started the pull meanwhile: wait for it */
                return template_ensure(d, name, err);
        if (!copy)
                return err_set(err, -ENOENT, "template %s is not built and names no source (POST /v1/templates/%s/build, "
                                        "or PUT /v1/templates/%s {\"from\": REF})", name, name, name);
        int r = fetch(d, name, copy, err);
        pthread_mutex_lock(&s->lock);
        json_object_del(s->pulling, name);
        if (r >= 0)
                mark_built(s, name);
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
        if (r >= 0)
                templates_trim(d);
        return r;
}

static int is_named(const pw_template_info *t, void *name)
{
        return strcmp(t->name, name) == 0; /* 1 stops the walk */
}

bool template_built(daemon_ctx *d, const char *name)
{
        return pw_template_foreach(d->engine, is_named, (void *)name) > 0;
}

void template_forget(daemon_ctx *d, const char *name)
{
        pthread_mutex_lock(&d->sources->lock);
        json_object_del(d->sources->built, name);
        pthread_mutex_unlock(&d->sources->lock);
}

bool templates_ready(daemon_ctx *d)
{
        pthread_mutex_lock(&d->sources->lock);
        json_t *refs = json_deep_copy(d->sources->required);
        pthread_mutex_unlock(&d->sources->lock);
        bool ready = !d->cfg.ow_port_first || template_built(d, d->cfg.slot_template);
        const char *name;
        json_t *v;
        json_object_foreach(refs, name, v)
                ready = ready && template_built(d, name);
        json_decref(refs);
        return ready;
}

static void *prefetch_thread(void *arg)
{
        daemon_ctx *d = arg;
        pthread_mutex_lock(&d->sources->lock);
        json_t *refs = json_deep_copy(d->sources->required);
        pthread_mutex_unlock(&d->sources->lock);
        const char *name;
        json_t *v;
        json_object_foreach(refs, name, v) {
                pw_err err = {""};
                if (atomic_load(&d->stopping))
                        break;
                if (template_ensure(d, name, &err) < 0)
                        dlog(PW_LOG_WARNING, "%s", err.msg);
                else if (d->cfg.ow_port_first && !strcmp(name, d->cfg.slot_template) && pw_pool_prewarm(d->pool, name) < 0)
                        dlog(PW_LOG_WARNING, "slots: cannot keep zygotes of %s ready: %s", name, pw_pool_last_error(d->pool));
        }
        json_decref(refs);
        daemon_leave(d);
        return NULL;
}

void templates_prefetch(daemon_ctx *d)
{
        pthread_t t;
        if (json_object_size(d->sources->required) == 0 || !daemon_enter(d))
                return;
        if (pthread_create(&t, NULL, prefetch_thread, d) != 0) {
                daemon_leave(d);
                return;
        }
        pthread_detach(t);
}

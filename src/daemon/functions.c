/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The function registry kept in STATE/functions.json, the blob cache of inline code, and the
 * checks of a definition's code before it is stored (functions.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "blob.h"
#include "metrics.h"
#include "digest.h"
#include "function_def.h"
#include "functions.h"
#include "http.h"

struct registry {
        pthread_mutex_t lock;
        char *path;   /* STATE/functions.json */
        json_t *defs; /* name -> definition */
};


/* ------------------------------------------------------------------ registry */

int registry_open(const char *state_dir, registry **ret, pw_err *err)
{
        registry *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        r->path = strdup_printf("%s/functions.json", state_dir);
        if (!r->path) {
                registry_free(r);
                return -ENOMEM;
        }
        json_error_t jerr;
        r->defs = json_load_file(r->path, 0, &jerr);
        if (!r->defs && access(r->path, F_OK) == 0) {
                err_set(err, -EBADMSG, "%s is not valid JSON: %s (line %d); move it away or fix it",
                     r->path, jerr.text, jerr.line);
                registry_free(r);
                return -EBADMSG;
        }
        if (!r->defs)
                r->defs = json_object();
        if (!json_is_object(r->defs)) {
                err_set(err, -EBADMSG, "%s is not a JSON object of functions", r->path);
                registry_free(r);
                return -EBADMSG;
        }
        *ret = r;
        return 0;
}

registry *registry_free(registry *r)
{
        if (!r)
                return NULL;
        json_decref(r->defs);
        free(r->path);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

/* Called with the lock held; atomic, so a crash leaves the old or the new file, never half. */
static int registry_save(registry *r)
{
        _cleanup_free_ char *text = json_dumps(r->defs, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(r->path, text, strlen(text), 0600);
}

int registry_put(registry *r, json_t *def)
{
        const char *name = json_string_value(json_object_get(def, "name"));
        if (!name)
                return -EINVAL;
        pthread_mutex_lock(&r->lock);
        json_t *old = json_incref(json_object_get(r->defs, name));
        json_object_set(r->defs, name, def);
        int ret = registry_save(r);
        if (ret < 0) { /* keep memory and disk the same */
                if (old)
                        json_object_set(r->defs, name, old);
                else
                        json_object_del(r->defs, name);
        }
        pthread_mutex_unlock(&r->lock);
        json_decref(old);
        return ret;
}

json_t *registry_get(registry *r, const char *name)
{
        pthread_mutex_lock(&r->lock);
        json_t *def = json_incref(json_object_get(r->defs, name));
        pthread_mutex_unlock(&r->lock);
        return def;
}

int registry_remove(registry *r, const char *name)
{
        pthread_mutex_lock(&r->lock);
        json_t *old = json_incref(json_object_get(r->defs, name));
        int ret = old ? 0 : -ENOENT;
        if (old) {
                json_object_del(r->defs, name);
                if ((ret = registry_save(r)) < 0)
                        json_object_set(r->defs, name, old);
        }
        pthread_mutex_unlock(&r->lock);
        json_decref(old);
        return ret;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *registry_list(registry *r)
{
        pthread_mutex_lock(&r->lock);
        json_t *defs = json_deep_copy(r->defs);
        pthread_mutex_unlock(&r->lock);
        json_t *list = json_array();
        size_t n = defs ? json_object_size(defs) : 0;
        _cleanup_free_ const char **names = calloc(n + 1, sizeof(char *));
        if (!defs || !list || !names) {
                json_decref(defs);
                json_decref(list);
                return NULL;
        }
        size_t i = 0;
        const char *key;
        json_t *def;
        json_object_foreach(defs, key, def)
                names[i++] = key;
        qsort(names, n, sizeof(char *), compare_names);
        for (i = 0; i < n; i++)
                json_array_append(list, json_object_get(defs, names[i]));
        json_decref(defs);
        return list;
}

int function_to_pool(json_t *def, pw_pool_function *ret, char ***ret_env)
{
        char **env = NULL;
        int r = env_to_strv(json_object_get(def, "env"), &env);
        if (r < 0)
                return r;
        *ret = (pw_pool_function){
                .template_name = json_string_value(json_object_get(def, "template")),
                .fn = {.code_uri = json_string_value(json_object_get(def, "code")),
                       .main = json_string_value(json_object_get(def, "main")),
                       .digest = json_string_value(json_object_get(def, "digest")),
                       .env = (const char *const *)env},
                .timeout_ms = (int)json_integer_value(json_object_get(def, "timeout_ms")),
                .keepalive_s = (unsigned)json_integer_value(json_object_get(def, "keepalive_s")),
                .memory_mb = (unsigned)json_integer_value(json_object_get(def, "memory_mb")),
        };
        *ret_env = env;
        return 0;
}

/* ------------------------------------------------------------------ code blobs */

void inline_blob_done(inline_blob *b)
{
        free(b->data);
        free(b->uri);
        free(b->digest);
        *b = (inline_blob){0};
}

static int blob_of(daemon_ctx *d, unsigned char *data, size_t n, const char *ext, inline_blob *ret)
{
        char hex[65];
        int r = sha256_buffer_hex(data, n, hex);
        if (r < 0)
                return r;
        ret->uri = strdup_printf("file://%s/sha256-%s.%s", d->blob_dir, hex, ext);
        ret->digest = strdup_printf("sha256:%s", hex);
        ret->data = data;
        ret->size = n;
        return ret->uri && ret->digest ? 0 : -ENOMEM;
}

/* Whether some registered function's code is the blob called name. */
static bool blob_referenced(json_t *defs, const char *blob_dir, const char *name)
{
        size_t i, n = strlen(blob_dir);
        json_t *def;
        json_array_foreach(defs, i, def) {
                const char *code = json_string_value(json_object_get(def, "code"));
                if (code && !strncmp(code, "file://", 7) && !strncmp(code + 7, blob_dir, n) &&
                    code[7 + n] == '/' && !strcmp(code + 8 + n, name))
                        return true;
        }
        return false;
}

/* The size of every blob in the cache; the ones no function uses into *ret (NULL-terminated,
 * least recently stored first) when ret is not NULL. */
typedef struct cached {
        char name[128];
        struct timespec mtime;
        uint64_t size;
} cached;

static int by_age(const void *a, const void *b)
{
        const cached *x = a, *y = b;
        if (x->mtime.tv_sec != y->mtime.tv_sec)
                return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : x->mtime.tv_nsec > y->mtime.tv_nsec;
}

/* Removes unused blobs but keep (the one being committed, not registered yet), oldest first, until
 * the cache holds at most limit bytes. */
static void blob_cache_evict(daemon_ctx *d, uint64_t limit, const char *keep)
{
        json_t *defs = registry_list(d->functions);
        DIR *dir = defs ? opendir(d->blob_dir) : NULL;
        cached *unused = NULL;
        size_t n = 0, cap = 0;
        uint64_t total = 0;
        struct dirent *de;
        while (dir && (de = readdir(dir))) {
                struct stat st;
                if (strncmp(de->d_name, "sha256-", 7) || fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                total += (uint64_t)st.st_size;
                if (!strcmp(de->d_name, keep) || blob_referenced(defs, d->blob_dir, de->d_name) ||
                    strlen(de->d_name) >= sizeof(unused->name))
                        continue;
                if (grow_buffer((void **)&unused, &cap, (n + 1) * sizeof(*unused), 16 * sizeof(*unused)) < 0)
                        break;
                unused[n] = (cached){.mtime = st.st_mtim, .size = (uint64_t)st.st_size};
                strcpy(unused[n++].name, de->d_name);
        }
        if (unused)
                qsort(unused, n, sizeof(*unused), by_age);
        for (size_t i = 0; i < n && total > limit; i++)
                if (unlinkat(dirfd(dir), unused[i].name, 0) == 0) {
                        total -= unused[i].size;
                        dlog(PW_LOG_INFO, "blob cache: evicted %s (%llu bytes, no function uses it)", unused[i].name,
                             (unsigned long long)unused[i].size);
                        metrics_blob_evicted(d->metrics);
                }
        metrics_blob_cache_bytes(d->metrics, total);
        if (dir)
                closedir(dir);
        free(unused);
        json_decref(defs);
}

static const char *uri_path(const char *uri)
{
        return uri + strlen("file://");
}

int blob_cache_commit(daemon_ctx *d, inline_blob *b)
{
        const char *path = uri_path(b->uri);
        struct stat st;
        int r = 0;
        /* Content-addressed: a file of that name already holds these bytes. */
        if (stat(path, &st) == 0 && (size_t)st.st_size == b->size)
                utimensat(AT_FDCWD, path, NULL, 0); /* recently stored again */
        else if ((r = write_file_atomic(path, b->data, b->size, 0600)) >= 0)
                b->created = true;
        if (r < 0)
                return r;
        blob_cache_evict(d, d->cfg.blob_cache_mb << 20, strrchr(path, '/') + 1);
        return 0;
}

void blob_cache_forget(daemon_ctx *d, const inline_blob *b)
{
        if (!b->created)
                return;
        json_t *defs = registry_list(d->functions);
        const char *name = strrchr(b->uri, '/') + 1;
        if (defs && !blob_referenced(defs, d->blob_dir, name))
                unlink(uri_path(b->uri));
        json_decref(defs);
}

int blob_cache_gc(daemon_ctx *d)
{
        json_t *defs = registry_list(d->functions);
        DIR *dir = defs ? opendir(d->blob_dir) : NULL;
        if (!dir) {
                json_decref(defs);
                return defs ? 0 : -ENOMEM;
        }
        int n = 0;
        struct dirent *de;
        while ((de = readdir(dir))) {
                if (strncmp(de->d_name, "sha256-", 7) || blob_referenced(defs, d->blob_dir, de->d_name))
                        continue;
                if (unlinkat(dirfd(dir), de->d_name, 0) == 0)
                        n++;
        }
        closedir(dir);
        json_decref(defs);
        return n;
}

int blob_check(daemon_ctx *d, const char *uri, const char *digest, pw_err *err)
{
        blob b = {0};
        err->msg[0] = '\0';
        int r = blob_fetch(uri, digest, code_policy_max_bytes(d->code_policy), d->code_policy, &b, err);
        blob_done(&b);
        if (r < 0 && !err->msg[0])
                err_set(err, r, "%s", strerror(-r));
        return r;
}

unsigned blob_error_status(int r)
{
        switch (r) {
        case -EINVAL: return 400;  /* bad URI or pin */
        case -EACCES: return 403;  /* a source this daemon does not read */
        case -EFBIG: return 413;
        case -EHOSTUNREACH: return 424; /* the code's server failed us */
        default: return 422;       /* missing blob, digest mismatch */
        }
}


static int runtime_of(const pw_template_info *info, void *userdata)
{
        const char **name_then_runtime = userdata;
        if (strcmp(info->name, name_then_runtime[0]))
                return 0;
        name_then_runtime[1] = info->runtime && !strncmp(info->runtime, "Node.js", 7) ? "js" : "py";
        return 1;
}

/* The file name suffix of inline source for the template: its agent tells source from archive by
 * the name, and a language by it too. */
static const char *source_suffix(daemon_ctx *d, const char *template_name)
{
        const char *name_then_runtime[2] = {template_name, "py"};
        if (template_name)
                pw_template_foreach(d->engine, runtime_of, name_then_runtime);
        return name_then_runtime[1];
}

/* What an inline binary is, by its first bytes: the agents tell archives by their names. */
static const char *binary_suffix(const unsigned char *data, size_t n)
{
        if (n >= 4 && !memcmp(data, "\x7f" "ELF", 4))
                return "so";
        if (n >= 2 && data[0] == 0x1f && data[1] == 0x8b)
                return "tar.gz";
        return "zip";
}

int inline_blob_prepare(daemon_ctx *d, const char *template_name, const char *source, const char *zip_b64,
                        inline_blob *ret, pw_err *err)
{
        unsigned char *data = NULL;
        size_t n = 0;
        if (source) {
                n = strlen(source);
                if (n > code_policy_max_bytes(d->code_policy))
                        return err_set(err, -EFBIG, "the source is larger than the limit of %u MiB",
                                           d->cfg.max_code_mb);
                if (!(data = (unsigned char *)strdup(source)))
                        return -ENOMEM;
        } else {
                if (http_base64_decode(zip_b64, &data, &n) < 0)
                        return err_set(err, -EINVAL, "the zip archive is not valid base64");
                if (n > code_policy_max_bytes(d->code_policy)) {
                        free(data);
                        return err_set(err, -EFBIG,
                                           "the zip archive is larger than the limit of %u MiB", d->cfg.max_code_mb);
                }
        }
        int r = blob_of(d, data, n, source ? source_suffix(d, template_name) : binary_suffix(data, n), ret);
        if (r < 0) {
                free(data);
                ret->data = NULL;
                inline_blob_done(ret);
        }
        return r;
}

/* ------------------------------------------------------------------ definitions */

typedef struct template_size {
        const char *name;
        uint64_t image_bytes;
} template_size;

static int size_of(const pw_template_info *info, void *userdata)
{
        template_size *t = userdata;
        if (strcmp(info->name, t->name))
                return 0;
        t->image_bytes = info->image_bytes;
        return 1;
}

/* A memory limit an instance of its template cannot even be restored in makes every invocation
 * fail: its checkpointed memory and 16 MiB for the function are the least it needs. */
static int check_memory(daemon_ctx *d, const fn_fields *f, unsigned *ret_status, pw_err *err)
{
        template_size t = {f->template_name, 0};
        if (!f->memory_mb || pw_template_foreach(d->engine, size_of, &t) <= 0)
                return 0; /* the template's own limit, or not built yet: checked when it is */
        uint64_t need = (t.image_bytes + (1u << 20) - 1) / (1u << 20) + 16;
        if ((uint64_t)f->memory_mb >= need)
                return 0;
        *ret_status = 400;
        return err_set(err, -EINVAL,
                    "memory_mb %lld is below the %llu MiB an instance of template %s needs (its %llu MiB "
                    "checkpoint and 16 MiB for the function)", (long long)f->memory_mb, (unsigned long long)need,
                    f->template_name, (unsigned long long)(need - 16));
}

/* Code by URI is fetched once, as specialize will; inline code is pinned by its digest (a digest
 * the caller gave must be that one) and waits in *blob to be committed. */
static int resolve_code(daemon_ctx *d, const fn_fields *f, inline_blob *pending, char **ret_uri, char **ret_digest,
                        unsigned *ret_status, pw_err *err)
{
        if (f->code) {
                int r = blob_check(d, f->code, f->digest, err);
                if (r < 0) {
                        *ret_status = blob_error_status(r);
                        return r;
                }
                *ret_uri = strdup(f->code);
                *ret_digest = f->digest ? strdup(f->digest) : NULL;
                return *ret_uri && (!f->digest || *ret_digest) ? 0 : -ENOMEM;
        }
        int r = inline_blob_prepare(d, f->template_name, f->source, f->zip, pending, err);
        if (r == -EINVAL || r == -EFBIG) { /* the caller's code: err says what is wrong with it */
                *ret_status = r == -EFBIG ? 413 : 400;
                return r;
        }
        if (r < 0)
                return r;
        char want[65];
        if (f->digest && (digest_parse(f->digest, want) < 0 || strcmp(want, pending->digest + 7))) {
                *ret_status = 422;
                return err_set(err, -EBADMSG, "the inline code has digest %s, not the pinned %s",
                            pending->digest, f->digest);
        }
        *ret_uri = strdup(pending->uri);
        *ret_digest = strdup(pending->digest);
        return *ret_uri && *ret_digest ? 0 : -ENOMEM;
}

int function_parse(daemon_ctx *d, const char *name, json_t *body, json_t **ret_def, inline_blob *ret_blob,
                   unsigned *ret_status, pw_err *err)
{
        *ret_status = 400;
        if (!name_is_valid(name))
                return err_set(err, -EINVAL,
                            "invalid function name '%s': 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'", name);
        fn_fields f;
        int r = function_fields_parse(body, &f, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *uri = NULL, *digest = NULL;
        inline_blob code = {0};
        if ((r = resolve_code(d, &f, &code, &uri, &digest, ret_status, err)) < 0 ||
            (r = check_memory(d, &f, ret_status, err)) < 0) {
                inline_blob_done(&code);
                return r;
        }
        json_t *def = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:o, s:I, s:I, s:I, s:I}", "name", name,
                                "template", f.template_name, "code", uri, "digest", digest, "main", f.main,
                                "env", f.env ? json_incref(f.env) : json_object(), "memory_mb", f.memory_mb,
                                "timeout_ms", f.timeout_ms, "keepalive_s", f.keepalive_s,
                                "updated", (json_int_t)wall_ms());
        if (!def) {
                inline_blob_done(&code);
                *ret_status = 500;
                return err_set(err, -ENOMEM, "out of memory");
        }
        *ret_def = def;
        *ret_blob = code;
        return 0;
}

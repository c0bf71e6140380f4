/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI distribution client (registry.h). One libcurl request per call. A 401 is answered the way
 * its WWW-Authenticate asks: Basic with the credentials, or Bearer with a token fetched from the
 * realm it names (with the credentials, if any, for the scope this session needs); the
 * Authorization found is kept for the session's next requests. Nothing that comes back is
 * trusted: bodies are bounded and blobs and manifests are checked against their digests.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "oci_registry.h"
#include "util.h"

#define MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define MAX_SMALL_BODY (4u << 20) /* manifests, tokens, error bodies */

/* ------------------------------------------------------------------ references */

static bool ref_part_ok(const char *s, const char *allowed)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9') && !strchr(allowed, *s))
                        return false;
        return true;
}

int oci_ref_parse(const char *text, oci_ref *ret, pw_err *err)
{
        *ret = (oci_ref){0};
        const char *shown = text ? text : "";
        _cleanup_free_ char *copy = text ? strdup(text) : NULL;
        if (!text)
                return err_set(err, -EINVAL, "no registry reference");
        if (!copy)
                return -ENOMEM;
        char *at = strchr(copy, '@'), want[65];
        if (at) {
                *at++ = '\0';
                if (digest_parse(at, want) < 0)
                        return err_set(err, -EINVAL, "'%s': the part after @ must be sha256:<64 hex digits>", shown);
        }
        char *slash = strchr(copy, '/');
        if (!slash || slash == copy)
                return err_set(err, -EINVAL, "'%s' is not HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]", shown);
        *slash = '\0';
        char *repo = slash + 1, *colon = strrchr(repo, ':');
        if (colon)
                *colon++ = '\0';
        if (!ref_part_ok(copy, "-.:ABCDEFGHIJKLMNOPQRSTUVWXYZ") || !ref_part_ok(repo, "-._/") ||
            strstr(repo, "//") || repo[strlen(repo) - 1] == '/')
                return err_set(err, -EINVAL, "'%s': invalid registry host or repository name", shown);
        if (colon && (!ref_part_ok(colon, "-._ABCDEFGHIJKLMNOPQRSTUVWXYZ") || strlen(colon) > 128))
                return err_set(err, -EINVAL, "'%s': invalid tag", shown);
        ret->host = strdup(copy);
        ret->repository = strdup(repo);
        ret->tag = colon ? strdup(colon) : at ? NULL : strdup("latest");
        ret->digest = at ? strdup_printf("sha256:%s", want) : NULL;
        if (!ret->host || !ret->repository || (!ret->tag && !at) || (at && !ret->digest)) {
                oci_ref_done(ret);
                return -ENOMEM;
        }
        return 0;
}

void oci_ref_done(oci_ref *r)
{
        free(r->host);
        free(r->repository);
        free(r->tag);
        free(r->digest);
        *r = (oci_ref){0};
}

/* ------------------------------------------------------------------ sessions */

struct oci_registry {
        char *origin; /* scheme://host */
        char *base;   /* origin/v2/repository */
        char *repository;
        char *username, *password, *ca_file;
        bool push;
        char *authorization; /* "Authorization: ..." found to work, or NULL */
};

static void curl_init_once(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

int oci_registry_open(const oci_ref *ref, const pw_registry_options *opts, bool push, oci_registry **ret, pw_err *err)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, curl_init_once);
        oci_registry *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        bool plain = opts && opts->plain_http;
        r->origin = strdup_printf("%s://%s", plain ? "http" : "https", ref->host);
        r->base = strdup_printf("%s/v2/%s", r->origin ? r->origin : "", ref->repository);
        r->repository = strdup(ref->repository);
        r->push = push;
        if (opts && opts->username)
                r->username = strdup(opts->username);
        if (opts && opts->password)
                r->password = strdup(opts->password);
        if (opts && opts->ca_file)
                r->ca_file = strdup(opts->ca_file);
        if (!r->origin || !r->base || !r->repository || (opts && opts->username && !r->username) ||
            (opts && opts->password && !r->password) || (opts && opts->ca_file && !r->ca_file)) {
                oci_registry_close(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

void oci_registry_close(oci_registry *r)
{
        if (!r)
                return;
        free(r->origin);
        free(r->base);
        free(r->repository);
        free(r->username);
        if (r->password)
                explicit_bzero(r->password, strlen(r->password));
        free(r->password);
        free(r->ca_file);
        free(r->authorization);
        free(r);
}

/* ------------------------------------------------------------------ one HTTP exchange */

typedef struct exchange {
        const char *method, *url, *content_type, *accept;
        const char *body; /* request body in memory ... */
        size_t body_len;
        int body_fd; /* ... or from this fd (-1: none) */
        uint64_t body_size;
        char *resp; /* the response in memory, at most MAX_SMALL_BODY ... */
        size_t resp_len, resp_cap;
        int out_fd; /* ... or into this fd, hashed (-1: memory) */
        sha256_ctx *sha;
        uint64_t out_bytes, out_max;
        bool too_big;
        char *challenge, *location, *content_digest;
        long status;
        char curl_err[CURL_ERROR_SIZE];
} exchange;

#define EXCHANGE_INIT {.body_fd = -1, .out_fd = -1}

static void exchange_done(exchange *x)
{
        free(x->resp);
        free(x->challenge);
        free(x->location);
        free(x->content_digest);
        x->resp = x->challenge = x->location = x->content_digest = NULL;
        x->resp_len = x->resp_cap = 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
        exchange *x = userdata;
        size_t len = size * n;
        if (x->out_fd >= 0 && x->status >= 200 && x->status < 300) {
                x->out_bytes += len;
                if (x->out_bytes > x->out_max) {
                        x->too_big = true;
                        return 0;
                }
                sha256_update(x->sha, data, len);
                return write_full(x->out_fd, data, len) < 0 ? 0 : len;
        }
        if (x->resp_len + len > MAX_SMALL_BODY) {
                x->too_big = true;
                return 0;
        }
        if (grow_buffer((void **)&x->resp, &x->resp_cap, x->resp_len + len + 1, 4096) < 0)
                return 0;
        memcpy(x->resp + x->resp_len, data, len);
        x->resp_len += len;
        x->resp[x->resp_len] = '\0';
        return len;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *userdata)
{
        exchange *x = userdata;
        ssize_t got = read(x->body_fd, buf, size * n);
        return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

/* The value of header `name` in line (case-insensitive), trimmed, or NULL. */
static char *header_value(const char *line, size_t len, const char *name)
{
        size_t k = strlen(name);
        if (len <= k || strncasecmp(line, name, k) || line[k] != ':')
                return NULL;
        const char *v = line + k + 1, *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                end--;
        return strndup(v, (size_t)(end - v));
}

static size_t on_header(char *line, size_t size, size_t n, void *userdata)
{
        exchange *x = userdata;
        size_t len = size * n;
        if (len > 5 && !strncmp(line, "HTTP/", 5)) { /* a new response (after a redirect): forget the last */
                free(x->challenge);
                free(x->location);
                free(x->content_digest);
                x->challenge = x->location = x->content_digest = NULL;
                long code = 0;
                const char *sp = memchr(line, ' ', len);
                if (sp)
                        code = strtol(sp + 1, NULL, 10);
                x->status = code;
        }
        char *v;
        if ((v = header_value(line, len, "WWW-Authenticate"))) {
                free(x->challenge);
                x->challenge = v;
        } else if ((v = header_value(line, len, "Location"))) {
                free(x->location);
                x->location = v;
        } else if ((v = header_value(line, len, "Docker-Content-Digest"))) {
                free(x->content_digest);
                x->content_digest = v;
        }
        return len;
}

static struct curl_slist *request_headers(const oci_registry *r, const exchange *x, const char *authorization)
{
        struct curl_slist *h = NULL;
        char line[512];
        if (authorization)
                h = curl_slist_append(h, authorization);
        if (x->content_type) {
                snprintf(line, sizeof(line), "Content-Type: %s", x->content_type);
                h = curl_slist_append(h, line);
        }
        if (x->accept) {
                snprintf(line, sizeof(line), "Accept: %s", x->accept);
                h = curl_slist_append(h, line);
        }
        return curl_slist_append(h, "Expect:"); /* no 100-continue round trip before a blob */
}

static void set_body(CURL *c, exchange *x)
{
        if (x->body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        } else if (x->body_fd >= 0) {
                lseek(x->body_fd, 0, SEEK_SET);
                curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
                curl_easy_setopt(c, CURLOPT_READDATA, x);
                curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_size);
        }
        if (!strcmp(x->method, "HEAD"))
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (strcmp(x->method, "GET"))
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
}

/* One request with the given Authorization header line (or none). 0 once an HTTP answer came. */
static int send_once(const oci_registry *r, exchange *x, const char *authorization, pw_err *err)
{
        CURL *c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        struct curl_slist *headers = request_headers(r, x, authorization);
        curl_easy_setopt(c, CURLOPT_URL, x->url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        /* Blobs may be served from elsewhere (a storage redirect); curl sends our Authorization
         * header to the registry's host only. */
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, strcmp(x->method, "GET") ? 0L : 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a registry that stalls for 30 s is gone */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->curl_err);
        if (r->ca_file)
                curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
        set_body(c, x);
        x->curl_err[0] = '\0';
        CURLcode cr = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
        curl_easy_cleanup(c);
        curl_slist_free_all(headers);
        if (x->too_big)
                return err_set(err, -EFBIG, "%s %s: the answer is larger than expected", x->method, x->url);
        if (cr != CURLE_OK)
                return err_set(err, -EHOSTUNREACH, "%s %s: %s", x->method, x->url,
                               x->curl_err[0] ? x->curl_err : curl_easy_strerror(cr));
        return 0;
}

/* ------------------------------------------------------------------ authentication */

/* The value of key="value" (or key=value) in a challenge's parameters, or NULL. */
static char *challenge_param(const char *params, const char *key)
{
        size_t k = strlen(key);
        for (const char *p = params; (p = strstr(p, key));) {
                bool starts = p == params || p[-1] == ' ' || p[-1] == ',';
                p += k;
                if (!starts || *p != '=')
                        continue;
                p++;
                if (*p == '"') {
                        const char *end = strchr(p + 1, '"');
                        return end ? strndup(p + 1, (size_t)(end - p - 1)) : NULL;
                }
                return strndup(p, strcspn(p, ", "));
        }
        return NULL;
}

static char *escaped(const char *s)
{
        char *e = curl_easy_escape(NULL, s, 0);
        char *copy = e ? strdup(e) : NULL;
        curl_free(e);
        return copy;
}

/* "Authorization: Basic ..." of the session's credentials (caller frees), or NULL. */
static char *basic_header(const oci_registry *r)
{
        _cleanup_free_ char *pair = strdup_printf("%s:%s", r->username, r->password ? r->password : "");
        if (!pair)
                return NULL;
        size_t n = strlen(pair);
        _cleanup_free_ unsigned char *b64 = malloc(4 * (n / 3 + 1) + 1);
        char *header = b64 && EVP_EncodeBlock(b64, (const unsigned char *)pair, (int)n) >= 0
                               ? strdup_printf("Authorization: Basic %s", b64) : NULL;
        explicit_bzero(pair, n);
        return header;
}

/* Asks the realm for a token; returns "Authorization: Bearer ..." (caller frees) or NULL. */
static int fetch_token(const oci_registry *r, const char *params, char **ret, pw_err *err)
{
        _cleanup_free_ char *realm = challenge_param(params, "realm"), *service = challenge_param(params, "service");
        _cleanup_free_ char *scope_default = strdup_printf("repository:%s:%s", r->repository, r->push ? "pull,push" : "pull");
        _cleanup_free_ char *scope = r->push ? NULL : challenge_param(params, "scope");
        if (!realm)
                return err_set(err, -EPROTO, "the registry's Bearer challenge names no realm");
        _cleanup_free_ char *s_esc = service ? escaped(service) : NULL, *sc_esc = escaped(scope ? scope : scope_default);
        _cleanup_free_ char *url = strdup_printf("%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
                                                 s_esc ? s_esc : "", sc_esc ? sc_esc : "");
        if (!url || !scope_default)
                return -ENOMEM;
        _cleanup_free_ char *basic = r->username ? basic_header(r) : NULL;
        if (r->username && !basic)
                return -ENOMEM;
        exchange x = EXCHANGE_INIT;
        x.method = "GET";
        x.url = url;
        int rr = send_once(r, &x, basic, err);
        if (rr >= 0 && (x.status == 401 || x.status == 403))
                rr = err_set(err, -EACCES, "the token service %s refused %s", realm,
                             r->username ? "the credentials" : "anonymous access");
        else if (rr >= 0 && x.status != 200)
                rr = err_set(err, -EPROTO, "the token service %s answered HTTP %ld", realm, x.status);
        json_t *doc = rr >= 0 && x.resp ? json_loads(x.resp, 0, NULL) : NULL;
        const char *token = json_string_value(json_object_get(doc, "token"));
        if (!token)
                token = json_string_value(json_object_get(doc, "access_token"));
        if (rr >= 0 && !token)
                rr = err_set(err, -EPROTO, "the token service %s gave no token", realm);
        if (rr >= 0 && !(*ret = strdup_printf("Authorization: Bearer %s", token)))
                rr = -ENOMEM;
        json_decref(doc);
        exchange_done(&x);
        return rr;
}

/* The Authorization a 401's challenge asks for: basic credentials, or a token. */
static int answer_challenge(oci_registry *r, const exchange *x, pw_err *err)
{
        const char *ch = x->challenge ? x->challenge : "";
        free(r->authorization);
        r->authorization = NULL;
        if (!strncasecmp(ch, "Bearer ", 7))
                return fetch_token(r, ch + 7, &r->authorization, err);
        if (!r->username)
                return err_set(err, -EACCES, "the registry %s needs credentials", r->origin);
        r->authorization = basic_header(r);
        return r->authorization ? 0 : -ENOMEM;
}

/* A request with the session's authorization; one 401 is answered and the request sent again. */
static int send_request(oci_registry *r, exchange *x, pw_err *err)
{
        int rr = send_once(r, x, r->authorization, err);
        if (rr < 0 || x->status != 401)
                return rr;
        bool had = r->authorization != NULL;
        if ((rr = answer_challenge(r, x, err)) < 0)
                return rr;
        exchange_done(x);
        x->out_bytes = 0;
        if ((rr = send_once(r, x, r->authorization, err)) < 0)
                return rr;
        if (x->status == 401)
                return err_set(err, -EACCES, "the registry %s refused %s", r->origin,
                               r->username ? "the credentials" : had ? "the token" : "anonymous access");
        return 0;
}

/* ------------------------------------------------------------------ errors */

/* The registry's own words for a failed request ({"errors": [{"code", "message"}]}). */
static int oci_failure(const oci_registry *r, const exchange *x, const char *what, pw_err *err)
{
        json_t *doc = x->resp ? json_loads(x->resp, 0, NULL) : NULL;
        json_t *first = json_array_get(json_object_get(doc, "errors"), 0);
        const char *code = json_string_value(json_object_get(first, "code"));
        const char *message = json_string_value(json_object_get(first, "message"));
        int r_ = x->status == 404 ? -ENOENT : x->status == 401 || x->status == 403 ? -EACCES
               : code && (!strcmp(code, "DIGEST_INVALID") || !strcmp(code, "SIZE_INVALID")) ? -EBADMSG
               : x->status >= 500 ? -EHOSTUNREACH : -EPROTO;
        err_set(err, r_, "%s: %s answered HTTP %ld%s%s%s%s", what, r->origin, x->status, code ? " " : "", code ? code : "",
                message ? ": " : "", message ? message : "");
        json_decref(doc);
        return r_;
}

/* ------------------------------------------------------------------ blobs */

int oci_blob_exists(oci_registry *r, const char *digest, bool *ret, pw_err *err)
{
        _cleanup_free_ char *url = strdup_printf("%s/blobs/%s", r->base, digest);
        if (!url)
                return -ENOMEM;
        exchange x = EXCHANGE_INIT;
        x.method = "HEAD";
        x.url = url;
        int rr = send_request(r, &x, err);
        if (rr >= 0 && x.status != 200 && x.status != 404)
                rr = oci_failure(r, &x, "checking a blob", err);
        *ret = rr >= 0 && x.status == 200;
        exchange_done(&x);
        return rr;
}

/* Where an upload goes on, absolute (a registry may answer a path). */
static char *upload_url(const oci_registry *r, const char *location, const char *digest)
{
        _cleanup_free_ char *d = escaped(digest);
        if (!d)
                return NULL;
        return strdup_printf("%s%s%sdigest=%s", location[0] == '/' ? r->origin : "", location,
                             strchr(location, '?') ? "&" : "?", d);
}

int oci_blob_put(oci_registry *r, int fd, uint64_t size, const char *digest, pw_err *err)
{
        _cleanup_free_ char *start = strdup_printf("%s/blobs/uploads/", r->base);
        if (!start)
                return -ENOMEM;
        exchange x = EXCHANGE_INIT;
        x.method = "POST";
        x.url = start;
        x.body = "";
        int rr = send_request(r, &x, err);
        if (rr >= 0 && (x.status != 202 || !x.location))
                rr = x.status == 202 ? err_set(err, -EPROTO, "the registry %s gave no upload location", r->origin)
                                     : oci_failure(r, &x, "starting an upload", err);
        _cleanup_free_ char *url = rr >= 0 ? upload_url(r, x.location, digest) : NULL;
        exchange_done(&x);
        if (rr < 0)
                return rr;
        if (!url)
                return -ENOMEM;
        exchange put = EXCHANGE_INIT;
        put.method = "PUT";
        put.url = url;
        put.content_type = "application/octet-stream";
        put.body_fd = fd;
        put.body_size = size;
        rr = send_request(r, &put, err);
        if (rr >= 0 && put.status != 201)
                rr = oci_failure(r, &put, "uploading a blob", err);
        exchange_done(&put);
        return rr;
}

int oci_blob_get(oci_registry *r, const char *digest, uint64_t size, uint64_t max, int fd, pw_err *err)
{
        char want[65];
        if (digest_parse(digest, want) < 0)
                return err_set(err, -EPROTO, "'%s' is not a sha256 digest", digest);
        _cleanup_free_ char *url = strdup_printf("%s/blobs/%s", r->base, digest);
        sha256_ctx *sha = sha256_begin();
        if (!url || !sha) {
                if (sha)
                        sha256_end_hex(sha, want);
                return -ENOMEM;
        }
        exchange x = EXCHANGE_INIT;
        x.method = "GET";
        x.url = url;
        x.out_fd = fd;
        x.sha = sha;
        x.out_max = size ? size : max;
        int rr = send_request(r, &x, err);
        char got[65];
        sha256_end_hex(sha, got);
        if (rr >= 0 && x.status != 200)
                rr = oci_failure(r, &x, "downloading a blob", err);
        else if (rr >= 0 && size && x.out_bytes != size)
                rr = err_set(err, -EBADMSG, "blob %s: %llu bytes came, the manifest says %llu", digest,
                             (unsigned long long)x.out_bytes, (unsigned long long)size);
        else if (rr >= 0 && strcmp(got, want))
                rr = err_set(err, -EBADMSG, "blob %s: what came has digest sha256:%s", digest, got);
        exchange_done(&x);
        return rr;
}

/* ------------------------------------------------------------------ manifests */

int oci_manifest_put(oci_registry *r, const char *tag, const char *json, char **ret_digest, pw_err *err)
{
        char hex[65];
        int rr = sha256_buffer_hex(json, strlen(json), hex);
        _cleanup_free_ char *url = strdup_printf("%s/manifests/%s", r->base, tag);
        if (rr < 0 || !url)
                return rr < 0 ? rr : -ENOMEM;
        exchange x = EXCHANGE_INIT;
        x.method = "PUT";
        x.url = url;
        x.content_type = MANIFEST_TYPE;
        x.body = json;
        x.body_len = strlen(json);
        rr = send_request(r, &x, err);
        if (rr >= 0 && x.status != 201)
                rr = oci_failure(r, &x, "putting the manifest", err);
        _cleanup_free_ char *digest = strdup_printf("sha256:%s", hex);
        if (rr >= 0 && x.content_digest && digest && strcmp(x.content_digest, digest))
                rr = err_set(err, -EBADMSG, "the registry stored the manifest as %s, not %s", x.content_digest, digest);
        if (rr >= 0)
                *ret_digest = TAKE_PTR(digest);
        exchange_done(&x);
        return rr >= 0 && !*ret_digest ? -ENOMEM : rr;
}

int oci_manifest_get(oci_registry *r, const char *reference, char **ret_json, char **ret_digest, pw_err *err)
{
        _cleanup_free_ char *url = strdup_printf("%s/manifests/%s", r->base, reference);
        if (!url)
                return -ENOMEM;
        exchange x = EXCHANGE_INIT;
        x.method = "GET";
        x.url = url;
        x.accept = MANIFEST_TYPE;
        int rr = send_request(r, &x, err);
        if (rr >= 0 && x.status != 200)
                rr = oci_failure(r, &x, "getting the manifest", err);
        char hex[65];
        if (rr >= 0 && (!x.resp || (rr = sha256_buffer_hex(x.resp, x.resp_len, hex)) < 0))
                rr = rr < 0 ? rr : err_set(err, -EPROTO, "the registry %s sent an empty manifest", r->origin);
        _cleanup_free_ char *digest = rr >= 0 ? strdup_printf("sha256:%s", hex) : NULL;
        if (rr >= 0 && !strncmp(reference, "sha256:", 7) && digest && strcmp(reference, digest))
                rr = err_set(err, -EBADMSG, "the manifest the registry sent for %s has digest %s", reference, digest);
        if (rr >= 0 && digest) {
                *ret_json = TAKE_PTR(x.resp);
                *ret_digest = TAKE_PTR(digest);
        }
        exchange_done(&x);
        return rr >= 0 && !*ret_digest ? -ENOMEM : rr;
}

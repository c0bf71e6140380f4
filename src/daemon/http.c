/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarmd's HTTP servers on libmicrohttpd (http.h): request bodies up to a cap, routing,
 * replies, one log line per request.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conn_guard.h"
#include "http.h"

struct http_server {
        http_server_config cfg;
        daemon_ctx *daemon;
        struct MHD_Daemon *mhd;
        conn_guard *guard;
};

/* What one request accumulates between MHD's calls of the access handler. */
typedef struct conn_state {
        bool started;      /* on_request has seen the request */
        char *raw_path;    /* the request line's target up to '?', and what followed it, as */
        char *raw_query;   /* the client sent them (percent-encoding and all) */
        uint64_t start_us;
        bool entered; /* counted in flight until its answer is sent */
        char *body;
        size_t size, capacity;
        bool too_big;
} conn_state;

/* ------------------------------------------------------------------ responses */

void http_reply_text(http_response *res, unsigned status, const char *content_type, const char *text,
                     size_t n)
{
        free(res->body);
        res->body = malloc(n + 1);
        if (!res->body) {
                res->status = 500;
                res->body_size = 0;
                return;
        }
        memcpy(res->body, text, n);
        res->body[n] = '\0';
        res->body_size = n;
        res->status = status;
        res->content_type = content_type;
}

void http_reply_json(http_response *res, unsigned status, json_t *body)
{
        _cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text) {
                http_reply_text(res, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
                return;
        }
        size_t n = strlen(text);
        free(res->body);
        res->body = strdup_printf("%s\n", text);
        res->body_size = res->body ? n + 1 : 0;
        res->status = res->body ? status : 500;
        res->content_type = "application/json";
}

void http_reply_error(http_response *res, unsigned status, const char *fmt, ...)
{
        char raw[2048], msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        str_escape(msg, sizeof(msg), raw); /* a JSON string: it must be valid UTF-8 */
        http_reply_json(res, status, json_pack("{s:s}", "error", msg));
        http_note(res, "(%s)", msg);
}

void http_add_header(http_response *res, const char *name, const char *fmt, ...)
{
        if (res->n_headers >= HTTP_MAX_HEADERS)
                return;
        char *value = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&value, fmt, ap);
        va_end(ap);
        char *key = strdup(name);
        if (n < 0 || !key) {
                free(key);
                return;
        }
        res->headers[res->n_headers][0] = key;
        res->headers[res->n_headers][1] = value;
        res->n_headers++;
}

void http_note(http_response *res, const char *fmt, ...)
{
        size_t used = strlen(res->note);
        if (used + 2 >= sizeof(res->note))
                return;
        if (used)
                res->note[used++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->note + used, sizeof(res->note) - used, fmt, ap);
        va_end(ap);
}

static void response_done(http_response *res)
{
        free(res->body);
        for (size_t i = 0; i < res->n_headers; i++) {
                free(res->headers[i][0]);
                free(res->headers[i][1]);
        }
}

/* ------------------------------------------------------------------ requests */

const char *http_query(const http_request *req, const char *key)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const http_request *req, const char *key)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

int http_base64_decode(const char *in, unsigned char **ret, size_t *ret_n)
{
        size_t len = strlen(in);
        _cleanup_free_ unsigned char *out = malloc(len / 4 * 3 + 4);
        EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
        int n1 = 0, n2 = 0, r = -ENOMEM;
        if (out && ctx) {
                EVP_DecodeInit(ctx);
                r = EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *)in, (int)len) < 0 ||
                                    EVP_DecodeFinal(ctx, out + n1, &n2) < 0 ? -EINVAL : 0;
        }
        EVP_ENCODE_CTX_free(ctx);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        *ret_n = (size_t)(n1 + n2);
        return 0;
}

char *http_base64_encode(const void *data, size_t n)
{
        char *out = malloc((n + 2) / 3 * 4 + 1);
        if (out)
                EVP_EncodeBlock((unsigned char *)out, data, (int)n);
        return out;
}

static enum MHD_Result add_pair(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
        json_array_append_new(cls, json_pack("[s, s]", key, value ? value : ""));
        return MHD_YES;
}

/* name=value&... again, percent-encoded, from MHD's decoded query arguments. */
static char *query_string(const http_request *req)
{
        json_auto_t *args = json_array();
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_pair, args);
        size_t n = 1, k;
        json_t *pair;
        json_array_foreach(args, k, pair)
                n += 3 * (strlen(json_string_value(json_array_get(pair, 0))) +
                          strlen(json_string_value(json_array_get(pair, 1)))) + 2;
        char *out = malloc(n), *o = out;
        if (!out)
                return NULL;
        json_array_foreach(args, k, pair) {
                if (k)
                        *o++ = '&';
                for (int part = 0; part < 2; part++) {
                        if (part)
                                *o++ = '=';
                        for (const unsigned char *c = (const unsigned char *)json_string_value(json_array_get(pair, part)); *c; c++)
                                o += isalnum(*c) || strchr("-._~", *c) ? sprintf(o, "%c", *c) : sprintf(o, "%%%02X", *c);
                }
        }
        *o = '\0';
        return out;
}

json_t *http_request_headers(const http_request *req)
{
        json_t *headers = json_array();
        if (headers)
                MHD_get_connection_values(req->conn, MHD_HEADER_KIND, add_pair, headers);
        return headers;
}

json_t *http_request_json(const http_request *req)
{
        json_t *headers = http_request_headers(req);
        _cleanup_free_ char *query = req->raw_query ? strdup(req->raw_query) : query_string(req);
        _cleanup_free_ char *body = http_base64_encode(req->body, req->body_size);
        if (!headers || !query || !body) {
                json_decref(headers);
                return NULL;
        }
        json_t *http = json_pack("{s:s, s:s, s:s, s:o, s:s}", "method", req->method, "path", req->path, "query",
                                 query, "headers", headers, "body_b64", body);
        /* A raw path that is not text (json_pack refuses invalid UTF-8) is left out: the agents
         * fall back to the decoded one. */
        if (http && req->raw_path)
                json_object_set_new(http, "raw_path", json_string(req->raw_path));
        return http;
}

bool http_body_json(http_request *req, http_response *res, json_t **ret)
{
        *ret = NULL;
        if (req->body_size == 0)
                return true;
        json_error_t jerr;
        json_t *j = json_loadb(req->body, req->body_size, JSON_DECODE_ANY, &jerr);
        if (!j) {
                http_reply_error(res, 400, "malformed JSON in the request body: %s (line %d, column %d)",
                                 jerr.text, jerr.line, jerr.column);
                return false;
        }
        *ret = j;
        return true;
}

/* Matches path against pattern, capturing "{}" segments into params (freed by the caller). */
static bool route_match(const char *pattern, const char *path, char **params)
{
        size_t n = 0;
        const char *p = pattern, *s = path;
        while (*p) {
                if (p[0] == '*' && p[1] == '\0')
                        return true;
                if (p[0] == '{' && p[1] == '}') {
                        size_t len = strcspn(s, "/");
                        if (len == 0 || n >= HTTP_MAX_PARAMS)
                                return false;
                        params[n++] = strndup(s, len);
                        s += len;
                        p += 2;
                        continue;
                }
                if (*p++ != *s++)
                        return false;
        }
        return *s == '\0';
}

static void params_free(char **params)
{
        for (size_t i = 0; i < HTTP_MAX_PARAMS; i++) {
                free(params[i]);
                params[i] = NULL;
        }
}

static void route(const http_server *s, http_request *req, http_response *res)
{
        bool path_known = false;
        for (size_t i = 0; i < s->cfg.n_routes; i++) {
                const http_route *r = &s->cfg.routes[i];
                if (!route_match(r->pattern, req->path, req->params)) {
                        params_free(req->params);
                        continue;
                }
                if (r->method && strcmp(r->method, req->method)) {
                        params_free(req->params);
                        path_known = true;
                        continue;
                }
                r->handler(req, res);
                params_free(req->params);
                return;
        }
        if (path_known)
                http_reply_error(res, 405, "method %s not allowed on %s", req->method, req->path);
        else
                http_reply_error(res, 404, "no such endpoint: %s %s", req->method, req->path);
}

/* Constant time, so that the token cannot be guessed byte by byte from response times. */
static bool token_equal(const char *a, const char *b)
{
        size_t na = strlen(a), nb = strlen(b);
        unsigned char diff = na != nb;
        for (size_t i = 0; i < na; i++)
                diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (nb ? nb : 1)];
        return diff == 0;
}

static bool authorized(const http_server *s, const http_request *req)
{
        /* Probes (a kubelet's) carry no token; they learn only whether the daemon is up and ready. */
        bool probe = !strcmp(req->method, "GET") && (!strcmp(req->path, "/healthz") || !strcmp(req->path, "/readyz"));
        if (!s->cfg.token || probe)
                return true;
        const char *auth = http_header(req, "Authorization");
        return auth && !strncasecmp(auth, "Bearer ", 7) && token_equal(auth + 7, s->cfg.token);
}

/* A header or argument value: text, where a tab may separate words (RFC 9110 field values). */
static bool value_is_text(const char *v)
{
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
                if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                        return false;
        return utf8_valid(v, strlen(v));
}

typedef struct bad_value {
        const char *kind, *name;
} bad_value;

static enum MHD_Result check_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
        bad_value *bad = cls;
        bool ok = !has_control(key) && utf8_valid(key, strlen(key)) && (!value || value_is_text(value));
        if (!ok) {
                bad->kind = kind == MHD_HEADER_KIND ? "header" : "query argument";
                bad->name = key;
        }
        return ok ? MHD_YES : MHD_NO;
}

/* Paths, headers and query arguments are text: well-formed UTF-8 without control characters.
 * Answers 400 and returns false otherwise. */
static bool request_is_text(http_request *req, http_response *res)
{
        if (has_control(req->path) || !utf8_valid(req->path, strlen(req->path))) {
                http_reply_error(res, 400, "the path holds a control character or is not valid UTF-8: %s", req->path);
                return false;
        }
        bad_value bad = {NULL, NULL};
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, check_value, &bad);
        if (!bad.kind)
                MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, check_value, &bad);
        if (bad.kind) {
                http_reply_error(res, 400, "%s %s holds a control character or is not valid UTF-8", bad.kind, bad.name);
                return false;
        }
        return true;
}

/* True when the request was let in: it stays in flight until on_completed. */
static bool dispatch(http_server *s, http_request *req, http_response *res)
{
        if (!request_is_text(req, res))
                return false;
        if (!authorized(s, req)) {
                http_reply_error(res, 401, "missing or wrong bearer token");
                http_add_header(res, "WWW-Authenticate", "Bearer realm=\"prewarmd\"");
                return false;
        }
        if (!daemon_enter(s->daemon)) {
                http_reply_error(res, 503, "prewarmd is shutting down; retry elsewhere or later");
                http_add_header(res, "Retry-After", "1");
                return false;
        }
        route(s, req, res);
        return true;
}

static enum MHD_Result send_response(struct MHD_Connection *c, http_response *res)
{
        struct MHD_Response *r = MHD_create_response_from_buffer(res->body_size, res->body,
                                                                 MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        if (res->content_type)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
        for (size_t i = 0; i < res->n_headers; i++)
                MHD_add_response_header(r, res->headers[i][0], res->headers[i][1]);
        enum MHD_Result ret = MHD_queue_response(c, res->status, r);
        MHD_destroy_response(r);
        return ret;
}

static void log_request(const http_server *s, const http_request *req, const http_response *res,
                        uint64_t start_us)
{
        dlog(res->status >= 500 ? PW_LOG_WARNING : PW_LOG_INFO, "%s: %s %s -> %u in %.2f ms%s%s",
             s->cfg.name, req->method, req->path, res->status, (now_us() - start_us) / 1000.0,
             res->note[0] ? " " : "", res->note);
}

/* A code blob of --max-code-mb in base64, plus a MiB for the rest of the request; never below
 * HTTP_MAX_BODY. */
static size_t max_body(const http_server *s)
{
        size_t b64 = (((size_t)s->daemon->cfg.max_code_mb << 20) + 2) / 3 * 4 + ((size_t)1 << 20);
        return b64 > HTTP_MAX_BODY ? b64 : HTTP_MAX_BODY;
}

static bool body_append(const http_server *s, conn_state *st, const char *data, size_t n)
{
        if (st->too_big || st->size + n > max_body(s)) {
                st->too_big = true;
                return false;
        }
        if (st->size + n + 1 > st->capacity) {
                size_t cap = st->capacity ? st->capacity : 4096;
                while (cap < st->size + n + 1)
                        cap *= 2;
                char *bigger = realloc(st->body, cap);
                if (!bigger) {
                        st->too_big = true;
                        return false;
                }
                st->body = bigger;
                st->capacity = cap;
        }
        memcpy(st->body + st->size, data, n);
        st->size += n;
        st->body[st->size] = '\0';
        return true;
}

static bool declared_too_big(const http_server *s, struct MHD_Connection *c)
{
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        return cl && strtoull(cl, NULL, 10) > max_body(s);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        http_server *s = cls;
        conn_state *st = *con_cls;
        if (!st || !st->started) {
                if (!st && !(st = calloc(1, sizeof(*st)))) /* on_uri could not allocate it */
                        return MHD_NO;
                st->started = true;
                st->start_us = now_us();
                st->too_big = declared_too_big(s, c);
                *con_cls = st;
                if (!st->too_big)
                        return MHD_YES;
                /* A declared oversized body is refused before it is read (with "Expect:
                 * 100-continue" the client never sends it). */
        }
        if (*upload_data_size) {
                /* Past the cap the rest is read and dropped: MHD takes no answer mid-upload. */
                if (!st->too_big)
                        body_append(s, st, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        conn_guard_request_read(c);

        http_request req = {.method = method, .path = url, .raw_path = st->raw_path, .raw_query = st->raw_query, .conn = c,
                            .body = st->body ? st->body : "",
                            .body_size = st->size, .data = s->cfg.data, .daemon = s->daemon};
        http_response res = {0};
        if (st->too_big)
                http_reply_error(&res, 413, "request body larger than the limit of %zu bytes", max_body(s));
        else
                st->entered = dispatch(s, &req, &res);
        if (!res.status)
                http_reply_error(&res, 500, "handler gave no answer");
        log_request(s, &req, &res, st->start_us);
        enum MHD_Result ret = send_response(c, &res);
        response_done(&res);
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        conn_state *st = *con_cls;
        conn_guard_request_done(c);
        if (!st)
                return;
        /* Only now is the answer out: shutdown must not close the connection before. */
        if (st->entered)
                daemon_leave(((http_server *)cls)->daemon);
        free(st->body);
        free(st->raw_path);
        free(st->raw_query);
        free(st);
        *con_cls = NULL;
}

/* Before MHD parses the request line: its path and query as the client wrote them, which the
 * web conventions pass on unchanged (MHD's decoded path turns "%3F" into a '?' and "%2F" into a
 * '/', its decoded arguments lose "?q" against "?q=" and the brackets of "a[b]=1"). The state it
 * starts is the request's, finished by on_request. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
        conn_state *st = calloc(1, sizeof(*st));
        if (!st || !uri)
                return st;
        const char *q = strchr(uri, '?');
        st->raw_path = q ? strndup(uri, (size_t)(q - uri)) : strdup(uri);
        st->raw_query = strdup(q ? q + 1 : "");
        if (!st->raw_path || !st->raw_query) { /* on_request then starts a state without them */
                free(st->raw_path);
                free(st->raw_query);
                free(st);
                return NULL;
        }
        return st;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap)
{
        char line[1024];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        dlog(PW_LOG_WARNING, "%s: libmicrohttpd: %s", ((http_server *)cls)->cfg.name, line);
}

int http_server_start(daemon_ctx *d, const http_server_config *cfg, http_server **ret)
{
        http_server *s = calloc(1, sizeof(*s));
        if (!s) {
                close(cfg->listen_fd);
                return -ENOMEM;
        }
        s->cfg = *cfg;
        s->daemon = d;
        int r = conn_guard_new(d, &s->guard);
        if (r < 0) {
                close(cfg->listen_fd);
                free(s);
                return r;
        }
        /* A thread per connection: handlers block in restores and invokes for as long as those
         * take, and must not hold up other clients. ITC makes MHD_quiesce_daemon possible. */
        const unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                               MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_POLL;
        s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, s,
                                  MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                  MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                                  MHD_OPTION_NOTIFY_CONNECTION, conn_guard_notify, s->guard,
                                  /* The caps are the guard's; MHD's own only past them. */
                                  MHD_OPTION_CONNECTION_LIMIT, d->cfg.max_connections + 64,
                                  MHD_OPTION_CONNECTION_TIMEOUT, 300u,
                                  MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512u << 10),
                                  MHD_OPTION_END);
        if (!s->mhd) {
                close(cfg->listen_fd);
                conn_guard_free(s->guard);
                free(s);
                return -EIO;
        }
        *ret = s;
        return 0;
}

void http_server_quiesce(http_server *s)
{
        if (!s || !s->mhd)
                return;
        MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        if (fd != MHD_INVALID_SOCKET)
                close(fd);
}

http_server *http_server_free(http_server *s)
{
        if (!s)
                return NULL;
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        conn_guard_free(s->guard);
        free(s);
        return NULL;
}

/* ------------------------------------------------------------------ sockets */

int http_listen_unix(const char *path, int *ret_fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        /* A stale socket of a predecessor (the state dir lock says no daemon owns it now); never
         * anything else that happens to have that name. */
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
                return -EEXIST;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        mode_t old = umask(0117);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0 || chmod(path, 0660) < 0 || listen(fd, 256) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static bool address_is_loopback(const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET)
                return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
        if (sa->sa_family == AF_INET6)
                return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
        return false;
}

/* "HOST:PORT" or "[V6]:PORT" into host and port strings. */
static int split_host_port(const char *host_port, char host[256], char port[16])
{
        const char *colon = strrchr(host_port, ':');
        if (!colon || !colon[1] || strlen(colon + 1) >= 16)
                return -EINVAL;
        const char *h = host_port;
        size_t n = (size_t)(colon - host_port);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
                h++;
                n -= 2;
        }
        if (n == 0 || n >= 256)
                return -EINVAL;
        memcpy(host, h, n);
        host[n] = '\0';
        strcpy(port, colon + 1);
        return 0;
}

int http_listen_tcp(const char *host_port, int *ret_fd, bool *ret_loopback)
{
        char host[256], port[16];
        if (split_host_port(host_port, host, port) < 0)
                return -EINVAL;
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
                return -EADDRNOTAVAIL;
        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        int r = 0;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 512) < 0)
                r = negative_errno();
        bool loopback = address_is_loopback(ai->ai_addr);
        freeaddrinfo(ai);
        if (r < 0)
                return r;
        *ret_loopback = loopback;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

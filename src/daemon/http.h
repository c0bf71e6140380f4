/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The HTTP side of prewarmd: libmicrohttpd servers (one thread per connection, so a handler may
 * block in an invoke), request bodies accumulated up to a cap, and a routing table per server.
 * Handlers fill an http_response; http.c sends it and logs one line per request.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon.h"

#define HTTP_MAX_BODY (8u << 20)

#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_HEADERS 12

struct MHD_Connection;

typedef struct http_request {
        const char *method;
        const char *path;
        const char *raw_path;  /* the target as sent, up to '?'; NULL if unknown */
        const char *raw_query; /* as sent, after '?' ("" for none); NULL if unknown */
        struct MHD_Connection *conn;
        char *body; /* NUL-terminated */
        size_t body_size;
        char *params[HTTP_MAX_PARAMS]; /* path segments matched by "{}", in order */
        void *data;                    /* the server's closure */
        daemon_ctx *daemon;
} http_request;

typedef struct http_response {
        unsigned status;
        char *body;
        size_t body_size;
        const char *content_type;
        char *headers[HTTP_MAX_HEADERS][2];
        size_t n_headers;
        char note[256]; /* appended to the request's log line */
} http_response;

typedef void (*http_handler)(http_request *req, http_response *res);

/* method NULL matches any method. In a pattern "{}" matches one path segment and a final "*"
 * matches the rest of the path, whatever it is. */
typedef struct http_route {
        const char *method;
        const char *pattern;
        http_handler handler;
} http_route;

typedef struct http_server_config {
        const char *name;        /* in log lines: "api", "slot 9001", ... */
        int listen_fd;           /* bound and listening; the server owns it from now on */
        const http_route *routes;
        size_t n_routes;
        void *data;
        const char *token;       /* the bearer token every request must carry, or NULL */
} http_server_config;

typedef struct http_server http_server;

int http_server_start(daemon_ctx *d, const http_server_config *cfg, http_server **ret);
/* Stops accepting connections; requests on open connections still get answers (503). */
void http_server_quiesce(http_server *s);
/* Closes every connection and frees; handlers must have returned (see daemon_enter). */
http_server *http_server_free(http_server *s);

/* Base64 (with or without line breaks) into bytes, the caller's; -EINVAL when it is not. */
int http_base64_decode(const char *in, unsigned char **ret, size_t *ret_n);
/* n bytes as base64 text, the caller's; NULL on -ENOMEM. */
char *http_base64_encode(const void *data, size_t n);
/* The request's headers, [[name, value], ...]. NULL on -ENOMEM. */
json_t *http_request_headers(const http_request *req);
/* The request as a function runtime is given it: {"method", "path", "query" (percent-encoded),
 * "headers": [[name, value], ...], "body_b64"}. NULL on -ENOMEM. */
json_t *http_request_json(const http_request *req);

/* Query argument or header of the request, or NULL. */
const char *http_query(const http_request *req, const char *key);
const char *http_header(const http_request *req, const char *key);

/* Parses the body as JSON (an empty body is NULL). On a syntax error answers 400 and returns
 * false. */
bool http_body_json(http_request *req, http_response *res, json_t **ret);

/* Responses. json: takes the reference; error: {"error": MESSAGE}. */
void http_reply_json(http_response *res, unsigned status, json_t *body);
void http_reply_error(http_response *res, unsigned status, const char *fmt, ...) _printf_(3, 4);
void http_reply_text(http_response *res, unsigned status, const char *content_type, const char *text,
                     size_t n);
void http_add_header(http_response *res, const char *name, const char *fmt, ...) _printf_(3, 4);
void http_note(http_response *res, const char *fmt, ...) _printf_(2, 3);

/* Sockets for the servers: a unix socket at path (mode 0660, a stale file replaced) and a TCP
 * socket on HOST:PORT. Both listening, close-on-exec. */
int http_listen_unix(const char *path, int *ret_fd);
int http_listen_tcp(const char *host_port, int *ret_fd, bool *ret_loopback);

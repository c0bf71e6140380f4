/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* blob.h and digest.h: code URIs, sha256 pins, fetching code from files and over HTTP. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "blob.h"
#include "digest.h"
#include "unit.h"

#define HEX_LOWER "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HEX_UPPER "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"

static void parse_ok(const char *uri, code_scheme scheme, const char *location, const char *filename)
{
        pw_err err = {""};
        code_uri u = {0};
        int r = code_uri_parse(uri, &u, &err);
        ck_assert_msg(r == 0, "'%s': %d %s", uri, r, err.msg);
        ck_assert_int_eq(u.scheme, scheme);
        ck_assert_str_eq(u.location, location);
        ck_assert_str_eq(u.filename, filename);
        code_uri_done(&u);
        ck_assert_ptr_null(u.location);
        ck_assert_ptr_null(u.filename);
}

static void parse_fails(const char *uri)
{
        pw_err err = {""};
        code_uri u = {.scheme = CODE_HTTP, .location = (char *)"untouched", .filename = NULL};
        int r = code_uri_parse(uri, &u, &err);
        ck_assert_msg(r == -EINVAL, "'%s': expected -EINVAL, got %d", uri ? uri : "(null)", r);
        ck_assert_msg(err.msg[0] != '\0', "'%s': no reason", uri ? uri : "(null)");
        ck_assert_str_eq(u.location, "untouched");
        ck_assert_int_eq(u.scheme, CODE_HTTP);
}

START_TEST(test_uri_files)
{
        parse_ok("file:///srv/functions/handler.py", CODE_FILE, "/srv/functions/handler.py", "handler.py");
        parse_ok("/srv/functions/app.zip", CODE_FILE, "/srv/functions/app.zip", "app.zip");
        parse_ok("/h.py", CODE_FILE, "/h.py", "h.py");
        parse_ok("file:///h.py", CODE_FILE, "/h.py", "h.py");
        /* escapes are decoded in file URIs, not in plain paths */
        parse_ok("file:///srv/my%20code/h%41ndler%2epy", CODE_FILE, "/srv/my code/hAndler.py", "hAndler.py");
        parse_ok("file:///srv/caf%C3%A9/x.py", CODE_FILE, "/srv/caf\xc3\xa9/x.py", "x.py");
        parse_ok("/srv/my%20code/x.py", CODE_FILE, "/srv/my%20code/x.py", "x.py");
        /* %00 is never decoded into a NUL, and an incomplete escape stays as it is */
        parse_ok("file:///srv/a%00b.py", CODE_FILE, "/srv/a%00b.py", "a%00b.py");
        parse_ok("file:///srv/100%", CODE_FILE, "/srv/100%", "100%");
        parse_ok("file:///srv/x%4", CODE_FILE, "/srv/x%4", "x%4");
        parse_ok("file:///srv/x%ag.py", CODE_FILE, "/srv/x%ag.py", "x%ag.py");
}
END_TEST

START_TEST(test_uri_http)
{
        parse_ok("http://example.com/code/handler.py", CODE_HTTP, "http://example.com/code/handler.py", "handler.py");
        parse_ok("https://example.com/a/b/app.zip?token=abc&path=/x/y.zip", CODE_HTTP,
                 "https://example.com/a/b/app.zip?token=abc&path=/x/y.zip", "app.zip");
        parse_ok("https://example.com:8443/fn.py#section", CODE_HTTP, "https://example.com:8443/fn.py#section", "fn.py");
        parse_ok("http://127.0.0.1:8080/v1/blobs/handler.py?", CODE_HTTP,
                 "http://127.0.0.1:8080/v1/blobs/handler.py?", "handler.py");
        /* the host is not taken for a file name */
        parse_ok("http://handler.py/x.zip", CODE_HTTP, "http://handler.py/x.zip", "x.zip");
}
END_TEST

START_TEST(test_uri_errors)
{
        parse_fails(NULL);
        parse_fails("");
        parse_fails("handler.py");
        parse_fails("relative/dir/handler.py");
        parse_fails("./handler.py");
        parse_fails("file://relative/handler.py");
        parse_fails("file://");
        parse_fails("file:///");
        parse_fails("/");
        parse_fails("ftp://example.com/handler.py");
        parse_fails("HTTP//example.com/handler.py");
        parse_fails("s3://bucket/handler.py");
        parse_fails("http://example.com");
        parse_fails("http://example.com/");
        parse_fails("https://example.com/?file=handler.py");
        parse_fails("https://example.com#handler.py");
        parse_fails("http://example.com?x=/a.py");
        parse_fails("http://example.com/dir/");

        pw_err err = {""};
        code_uri u;
        ck_assert_int_eq(code_uri_parse("ftp://h/x.py", &u, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "ftp://h/x.py"));
        ck_assert_ptr_nonnull(strstr(err.msg, "unsupported"));
}
END_TEST

START_TEST(test_digest_parse)
{
        char out[65];
        memset(out, 'x', sizeof(out));
        ck_assert_int_eq(digest_parse("sha256:" HEX_LOWER, out), 0);
        ck_assert_str_eq(out, HEX_LOWER);
        memset(out, 'x', sizeof(out));
        ck_assert_int_eq(digest_parse("sha256:" HEX_UPPER, out), 0);
        ck_assert_str_eq(out, HEX_LOWER);

        static const char *const bad[] = {
                NULL,
                "",
                HEX_LOWER,                        /* no prefix */
                "sha512:" HEX_LOWER,              /* another algorithm */
                "sha256" HEX_LOWER,               /* no colon */
                "sha-256:" HEX_LOWER,
                " sha256:" HEX_LOWER,
                "sha256: " HEX_LOWER,
                "sha256:",
                "sha256:" HEX_LOWER "0",          /* 65 digits */
                "sha256:" HEX_LOWER "\n",
                "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0",  /* 63 */
                "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g", /* non-hex */
                "sha256:g f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0",
                "sha256:-9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(digest_parse(bad[i], out) == -EINVAL, "'%s' accepted", bad[i] ? bad[i] : "(null)");
}
END_TEST

START_TEST(test_sha256)
{
        char out[65];
        ck_assert_int_eq(sha256_buffer_hex("test", 4, out), 0);
        ck_assert_str_eq(out, HEX_LOWER);
        ck_assert_int_eq(sha256_buffer_hex("", 0, out), 0);
        ck_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

/* Fetching from files. */

static const char code[] = "def main(args):\n    return {'ok': True}\n";

START_TEST(test_fetch_file)
{
        _cleanup_free_ char *path = tmp_path("handler.py");
        put_text(path, code);

        pw_err err = {""};
        blob b = {0};
        ck_assert_int_eq(blob_fetch(path, NULL, BLOB_MAX, NULL, &b, &err), 0);
        ck_assert_uint_eq(b.size, strlen(code));
        ck_assert_str_eq(b.data, code); /* and NUL-terminated */
        ck_assert_str_eq(b.filename, "handler.py");
        blob_done(&b);
        ck_assert_ptr_null(b.data);
        ck_assert_ptr_null(b.filename);

        _cleanup_free_ char *uri = strdup_printf("file://%s", path);
        ck_assert_int_eq(blob_fetch(uri, NULL, strlen(code), NULL, &b, &err), 0); /* exactly max */
        ck_assert_uint_eq(b.size, strlen(code));
        ck_assert_mem_eq(b.data, code, b.size);
        blob_done(&b);

        _cleanup_free_ char *empty = tmp_path("empty.py");
        put_text(empty, "");
        ck_assert_int_eq(blob_fetch(empty, NULL, BLOB_MAX, NULL, &b, &err), 0);
        ck_assert_uint_eq(b.size, 0);
        ck_assert_ptr_nonnull(b.data);
        ck_assert_str_eq(b.filename, "empty.py");
        blob_done(&b);
}
END_TEST

START_TEST(test_fetch_file_errors)
{
        _cleanup_free_ char *path = tmp_path("handler.py");
        put_text(path, code);
        pw_err err = {""};
        blob b = {.data = (char *)"untouched"};

        _cleanup_free_ char *missing = tmp_path("missing.py");
        ck_assert_int_eq(blob_fetch(missing, NULL, BLOB_MAX, NULL, &b, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, missing));

        ck_assert_int_eq(blob_fetch(path, NULL, strlen(code) - 1, NULL, &b, &err), -EFBIG);
        _cleanup_free_ char *want = strdup_printf("%s is larger than %zu bytes", path, strlen(code) - 1);
        ck_assert_str_eq(err.msg, want);

        ck_assert_int_eq(blob_fetch("relative.py", NULL, BLOB_MAX, NULL, &b, &err), -EINVAL);
        ck_assert_int_eq(blob_fetch(path, "sha256:nothex", BLOB_MAX, NULL, &b, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "sha256:nothex"));
        ck_assert_int_eq(blob_fetch(path, "md5:" HEX_LOWER, BLOB_MAX, NULL, &b, &err), -EINVAL);
        ck_assert_str_eq(b.data, "untouched");
}
END_TEST

START_TEST(test_fetch_digest)
{
        _cleanup_free_ char *path = tmp_path("handler.py");
        put_text(path, code);
        char got[65];
        ck_assert_int_eq(sha256_buffer_hex(code, strlen(code), got), 0);

        pw_err err = {""};
        blob b = {0};
        _cleanup_free_ char *pin = strdup_printf("sha256:%s", got);
        ck_assert_int_eq(blob_fetch(path, pin, BLOB_MAX, NULL, &b, &err), 0);
        ck_assert_str_eq(b.data, code);
        blob_done(&b);

        /* either case */
        for (char *p = pin + 7; *p; p++)
                *p = (char)toupper((unsigned char)*p);
        ck_assert_int_eq(blob_fetch(path, pin, BLOB_MAX, NULL, &b, &err), 0);
        blob_done(&b);

        /* a mismatch names both digests */
        b = (blob){.data = (char *)"untouched"};
        ck_assert_int_eq(blob_fetch(path, "sha256:" HEX_UPPER, BLOB_MAX, NULL, &b, &err), -EBADMSG);
        _cleanup_free_ char *want_got = strdup_printf("sha256:%s", got);
        ck_assert_msg(strstr(err.msg, want_got), "'%s' lacks the actual digest", err.msg);
        ck_assert_msg(strstr(err.msg, "sha256:" HEX_LOWER), "'%s' lacks the pinned digest", err.msg);
        ck_assert_str_eq(b.data, "untouched");

        /* one changed byte */
        char changed[sizeof(code)];
        memcpy(changed, code, sizeof(code));
        changed[0] = 'D';
        put_text(path, changed);
        ck_assert_int_eq(blob_fetch(path, pin, BLOB_MAX, NULL, &b, &err), -EBADMSG);
}
END_TEST

/* HTTP: a one-shot server on 127.0.0.1 and a closed port. */

static void no_proxies(void)
{
        static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                           "all_proxy", "ALL_PROXY"};
        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                unsetenv(vars[i]);
}

static int listen_local(uint16_t *ret_port)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        socklen_t len = sizeof(a);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

typedef struct server {
        int fd;
        char *response;
        size_t response_size;
        char request[4096];
} server;

static void *serve_once(void *userdata)
{
        server *s = userdata;
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
                return NULL;
        size_t got = 0;
        while (got < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
                ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);
                if (n <= 0)
                        break;
                got += (size_t)n;
                s->request[got] = '\0';
        }
        /* MSG_NOSIGNAL: the client may hang up early (a response over its maximum) */
        for (size_t done = 0; done < s->response_size;) {
                ssize_t n = send(c, s->response + done, s->response_size - done, MSG_NOSIGNAL);
                if (n <= 0)
                        break;
                done += (size_t)n;
        }
        close(c);
        return NULL;
}

/* Serves one response and fetches path from the server with max bytes. */
static int fetch_served(const char *response, size_t response_size, const char *path, const char *digest,
                        size_t max, blob *b, pw_err *err, server *s)
{
        no_proxies();
        uint16_t port;
        s->fd = listen_local(&port);
        ck_assert_int_eq(listen(s->fd, 4), 0);
        s->response = (char *)response;
        s->response_size = response_size;
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, serve_once, s), 0);
        _cleanup_free_ char *url = strdup_printf("http://127.0.0.1:%u%s", port, path);
        int r = blob_fetch(url, digest, max, NULL, b, err);
        shutdown(s->fd, SHUT_RDWR); /* if the client never connected */
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        close(s->fd);
        return r;
}

START_TEST(test_fetch_http)
{
        _cleanup_free_ char *response = strdup_printf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                                                      "Connection: close\r\n\r\n%s", strlen(code), code);
        char got[65];
        ck_assert_int_eq(sha256_buffer_hex(code, strlen(code), got), 0);
        _cleanup_free_ char *pin = strdup_printf("sha256:%s", got);

        server s = {0};
        pw_err err = {""};
        blob b = {0};
        int r = fetch_served(response, strlen(response), "/fn/handler.py?v=2", pin, BLOB_MAX, &b, &err, &s);
        ck_assert_msg(r == 0, "%d %s", r, err.msg);
        ck_assert_uint_eq(b.size, strlen(code));
        ck_assert_str_eq(b.data, code);
        ck_assert_str_eq(b.filename, "handler.py");
        ck_assert_msg(!strncmp(s.request, "GET /fn/handler.py?v=2 HTTP/1.1\r\n", 33), "request: %s", s.request);
        blob_done(&b);
}
END_TEST

START_TEST(test_fetch_http_errors)
{
        server s = {0};
        pw_err err = {""};
        blob b = {.data = (char *)"untouched"};

        const char *not_found = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ck_assert_int_eq(fetch_served(not_found, strlen(not_found), "/x.py", NULL, BLOB_MAX, &b, &err, &s), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "HTTP 404"));

        const char *broken = "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        ck_assert_int_eq(fetch_served(broken, strlen(broken), "/x.py", NULL, BLOB_MAX, &b, &err, &s), -EHOSTUNREACH);
        ck_assert_ptr_nonnull(strstr(err.msg, "HTTP 500"));

        /* too big, announced by Content-Length ... */
        _cleanup_free_ char *big = strdup_printf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                                                 "Connection: close\r\n\r\n%s", strlen(code), code);
        ck_assert_int_eq(fetch_served(big, strlen(big), "/x.py", NULL, 10, &b, &err, &s), -EFBIG);
        /* ... and found out while reading */
        _cleanup_free_ char *unsized = strdup_printf("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s", code);
        ck_assert_int_eq(fetch_served(unsized, strlen(unsized), "/x.py", NULL, 10, &b, &err, &s), -EFBIG);

        _cleanup_free_ char *ok = strdup_printf("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                                                "Connection: close\r\n\r\n%s", strlen(code), code);
        ck_assert_int_eq(fetch_served(ok, strlen(ok), "/x.py", "sha256:" HEX_LOWER, BLOB_MAX, &b, &err, &s),
                         -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err.msg, "sha256:" HEX_LOWER));
        ck_assert_str_eq(b.data, "untouched");
}
END_TEST

START_TEST(test_fetch_http_closed_port)
{
        no_proxies();
        uint16_t port;
        int fd = listen_local(&port); /* bound, never listening, then closed */
        ck_assert_int_eq(close(fd), 0);

        _cleanup_free_ char *url = strdup_printf("http://127.0.0.1:%u/handler.py", port);
        pw_err err = {""};
        blob b = {.data = (char *)"untouched"};
        uint64_t start = now_us();
        int r = blob_fetch(url, NULL, BLOB_MAX, NULL, &b, &err);
        uint64_t took = now_us() - start;
        ck_assert_msg(r == -EHOSTUNREACH, "got %d (%s)", r, err.msg);
        ck_assert_msg(took < 2000000, "took %llu us", (unsigned long long)took);
        ck_assert_ptr_nonnull(strstr(err.msg, url));
        ck_assert_str_eq(b.data, "untouched");
}
END_TEST

static Suite *blob_suite(void)
{
        Suite *s = suite_create("blob");

        TCase *tc = tcase_create("parse");
        tcase_add_test(tc, test_uri_files);
        tcase_add_test(tc, test_uri_http);
        tcase_add_test(tc, test_uri_errors);
        tcase_add_test(tc, test_digest_parse);
        tcase_add_test(tc, test_sha256);
        suite_add_tcase(s, tc);

        tc = tcase_create("fetch");
        tcase_add_tmp_dir(tc);
        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, test_fetch_file);
        tcase_add_test(tc, test_fetch_file_errors);
        tcase_add_test(tc, test_fetch_digest);
        tcase_add_test(tc, test_fetch_http);
        tcase_add_test(tc, test_fetch_http_errors);
        tcase_add_test(tc, test_fetch_http_closed_port);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(blob_suite());
}

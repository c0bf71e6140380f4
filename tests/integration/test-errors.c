/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every error path of the public API with a real engine: the negative errno it returns, and that
 * the reason (pw_instance_last_error / pw_engine_last_error) says what a person needs to act on.
 * Tests that break the python3 template on purpose rebuild it before they end.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "util.h"

/* Specializes i with the code at CODE (a fixture's name for specialize_fixture_fails) and the
 * other fields of fn (NULL: the defaults); asserts that it returns `expected` with a reason that
 * holds each of the strings that follow. */
#define specialize_fails(i, code, fn, expected, ...)                                               \
        ck_assert_instance_error(i, t_specialize_code(i, code, fn), expected, __VA_ARGS__)
#define specialize_fixture_fails(i, fixture, fn, expected, ...)                                    \
        ck_assert_instance_error(i, t_specialize_fixture(i, fixture, fn), expected, __VA_ARGS__)

/* Asserts that invoke fails with `expected`, leaves *ret_result alone, and returns the reason. */
static const char *invoke_fails(pw_instance *i, const char *args, int timeout_ms, int expected)
{
        char *result = (char *)"untouched";
        int r = pw_instance_invoke(i, args, timeout_ms, &result);
        ck_assert_msg(r == expected, "invoke(%s) returned %d (%s), expected %d (%s); message: %s", args, r,
                      strerror(-r), expected, strerror(-expected), pw_instance_last_error(i));
        ck_assert_str_eq(result, "untouched");
        const char *why = pw_instance_last_error(i);
        ck_assert_msg(why && *why, "no reason given for %s", strerror(-expected));
        return why;
}

static void assert_invoke_works(pw_instance *i)
{
        json_t *res = t_invoke(i, "{\"mode\": \"ok\"}");
        ck_assert(json_is_true(json_object_get(res, "fine")));
        json_decref(res);
}

/* Asserts that the instance, which ran as pid, is dead and that invoke is refused; returns the
 * reason. */
static const char *assert_dead(pw_instance *i, pid_t pid)
{
        ck_assert_int_eq(pw_instance_pid(i), -ESRCH);
        ck_assert_msg(!t_pid_alive(pid), "pid %d of the dead instance still exists", (int)pid);
        return invoke_fails(i, "{}", 500, -ESRCH);
}

/* ---------------------------------------------------------------- specialize */

START_TEST(test_missing_code)
{
        pw_instance *i = t_restore("python3");
        const char *missing = "/nonexistent/prewarm-test/handler.py";
        char *uri = strdup_printf("file://%s", missing);
        specialize_fails(i, uri, NULL, -ENOENT, missing, "No such file");
        specialize_fails(i, missing, NULL, -ENOENT, missing);
        free(uri);

        /* Relative paths and unknown schemes are refused with the accepted forms. */
        specialize_fails(i, "handler.py", NULL, -EINVAL, "file:///");
        specialize_fails(i, "ftp://example.invalid/handler.py", NULL, -EINVAL, "unsupported");

        /* Nothing was loaded: the instance can still be specialized. */
        t_specialize(i, "modes.py");
        assert_invoke_works(i);
        t_destroy(i);
}
END_TEST

START_TEST(test_bad_env)
{
        pw_instance *i = t_restore("python3");
        const char *const env[] = {"GOOD=1", "NO_EQUALS_SIGN", NULL};
        specialize_fixture_fails(i, "env.py", &(pw_function){.env = env}, -EINVAL, "KEY=VALUE");
        const char *const env2[] = {"=value", NULL};
        ck_assert_errno(t_specialize_fixture(i, "env.py", &(pw_function){.env = env2}), -EINVAL,
                        pw_instance_last_error(i));
        /* Refused before anything reached the instance. */
        t_specialize(i, "env.py");
        t_destroy(i);
}
END_TEST

START_TEST(test_blob_too_large)
{
        char *big = strdup_printf("%s/big.py", t_state);
        int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, (off_t)50 << 20), 0); /* sparse: 50 MiB of nothing, over 48 */
        close(fd);
        pw_instance *i = t_restore("python3");
        specialize_fails(i, big, NULL, -EFBIG, big, "larger than");
        t_destroy(i);
        unlink(big);
        free(big);
}
END_TEST

START_TEST(test_bad_archives)
{
        /* An archive without __main__.py. */
        char *zip = t_fixture_zip("no-main.zip", "zipapp/helper.py", NULL);
        pw_instance *i = t_restore("python3");
        specialize_fails(i, zip, NULL, -ENOEXEC, "__main__.py");
        t_destroy(i);

        /* Something that only has the name of an archive. */
        char *junk = strdup_printf("%s/junk.zip", t_state);
        t_write_file(junk, "this is not a zip archive\n");
        i = t_restore("python3");
        specialize_fails(i, junk, NULL, -ENOEXEC, "archive");
        t_destroy(i);
        unlink(zip);
        unlink(junk);
        free(zip);
        free(junk);
}
END_TEST

/* A one-request-at-a-time HTTP server on 127.0.0.1 for code fetched over http://. */
typedef struct http_server {
        int listen_fd;
        uint16_t port;
        pthread_t thread;
} http_server;

static void *http_serve(void *arg)
{
        http_server *srv = arg;
        for (;;) {
                int c = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        return NULL; /* the listening socket was shut down */
                char req[4096] = "";
                size_t n = 0;
                while (n < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
                        ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
                        if (k <= 0)
                                break;
                        n += (size_t)k;
                        req[n] = '\0';
                }
                char path[256] = "";
                sscanf(req, "GET %255s", path);
                const char *status = "404 Not Found", *body = "not here\n";
                if (!strcmp(path, "/fn/hello.py")) {
                        status = "200 OK";
                        body = "def main(args):\n    return {'served': 'over http'}\n";
                } else if (!strcmp(path, "/fn/broken.py"))
                        status = "500 Internal Server Error";
                char head[256];
                int h = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                                 status, strlen(body));
                if (write(c, head, (size_t)h) < 0 || write(c, body, strlen(body)) < 0) {
                        /* the client went away; nothing to do */
                }
                close(c);
        }
}

static void http_start(http_server *srv)
{
        srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(srv->listen_fd, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        ck_assert_int_eq(bind(srv->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(listen(srv->listen_fd, 8), 0);
        ck_assert_int_eq(getsockname(srv->listen_fd, (struct sockaddr *)&a, &len), 0);
        srv->port = ntohs(a.sin_port);
        ck_assert_int_eq(pthread_create(&srv->thread, NULL, http_serve, srv), 0);
}

static void http_stop(http_server *srv)
{
        shutdown(srv->listen_fd, SHUT_RDWR);
        pthread_join(srv->thread, NULL);
        close(srv->listen_fd);
}

START_TEST(test_http_fetch)
{
        http_server srv;
        http_start(&srv);
        char url[128];
        pw_instance *i = t_restore("python3");

        snprintf(url, sizeof(url), "http://127.0.0.1:%u/fn/missing.py", srv.port);
        specialize_fails(i, url, NULL, -ENOENT, url, "404");

        snprintf(url, sizeof(url), "http://127.0.0.1:%u/fn/broken.py", srv.port);
        specialize_fails(i, url, NULL, -EHOSTUNREACH, "500");

        /* Nobody listens on port 1. */
        specialize_fails(i, "http://127.0.0.1:1/fn/hello.py", NULL, -EHOSTUNREACH, "127.0.0.1:1");

        /* And the real thing works. */
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/fn/hello.py", srv.port);
        ck_assert_errno(t_specialize_code(i, url, NULL), 0, pw_instance_last_error(i));
        json_t *res = t_invoke(i, "{}");
        ck_assert_str_eq(json_string_value(json_object_get(res, "served")), "over http");
        json_decref(res);
        t_destroy(i);
        http_stop(&srv);
}
END_TEST

static void sha256_of(const char *path, char out[65])
{
        char *data = NULL;
        size_t n = 0;
        ck_assert_int_eq(read_file(path, 1 << 20, &data, &n), 0);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        ck_assert_int_eq(EVP_Digest(data, n, md, &len, EVP_sha256(), NULL), 1);
        ck_assert_uint_eq(len, 32);
        for (unsigned k = 0; k < len; k++)
                sprintf(out + 2 * k, "%02x", md[k]);
        free(data);
}

START_TEST(test_digest)
{
        char *path = t_fixture("modes.py");
        char hex[65], pin[80], wrong[80];
        sha256_of(path, hex);
        snprintf(pin, sizeof(pin), "sha256:%s", hex);
        snprintf(wrong, sizeof(wrong), "sha256:%064d", 0);

        pw_instance *i = t_restore("python3");
        /* The reason has what the blob really is and what was pinned. */
        specialize_fails(i, path, &(pw_function){.digest = wrong}, -EBADMSG, hex, wrong, "modes.py");

        specialize_fails(i, path, &(pw_function){.digest = "sha256:abc"}, -EINVAL, "sha256:abc", "64 hex digits");
        char md5[64];
        snprintf(md5, sizeof(md5), "md5:%032d", 0);
        ck_assert_errno(t_specialize_code(i, path, &(pw_function){.digest = md5}), -EINVAL, pw_instance_last_error(i));
        char not_hex[80];
        snprintf(not_hex, sizeof(not_hex), "sha256:%.63sg", hex);
        ck_assert_errno(t_specialize_code(i, path, &(pw_function){.digest = not_hex}), -EINVAL,
                        pw_instance_last_error(i));

        /* The right pin passes, on the same instance (nothing was loaded by the failures). */
        ck_assert_errno(t_specialize_code(i, path, &(pw_function){.digest = pin}), 0, pw_instance_last_error(i));
        assert_invoke_works(i);
        t_destroy(i);

        /* Upper-case hex is the same digest. */
        i = t_restore("python3");
        for (char *p = pin + 7; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char)(*p - 'a' + 'A');
        ck_assert_errno(t_specialize_code(i, path, &(pw_function){.digest = pin}), 0, pw_instance_last_error(i));
        t_destroy(i);
        free(path);
}
END_TEST

START_TEST(test_syntax_error)
{
        pw_instance *i = t_restore("python3");
        specialize_fixture_fails(i, "syntax_error.py", NULL, -ENOEXEC, "SyntaxError", "line 3");
        /* Not specialized: invoke is refused. */
        invoke_fails(i, "{}", 5000, -EBADFD);
        t_destroy(i);
}
END_TEST

START_TEST(test_load_errors)
{
        /* The module raises while it loads. */
        pw_instance *i = t_restore("python3");
        specialize_fixture_fails(i, "load_error.py", NULL, -ENOEXEC, "KeyError", "port");
        t_destroy(i);

        /* No such entry point. */
        i = t_restore("python3");
        specialize_fixture_fails(i, "hello.py", &(pw_function){.main = "handler_that_is_not_there"}, -ENOEXEC,
                                 "handler_that_is_not_there");
        t_destroy(i);
}
END_TEST

START_TEST(test_second_specialize)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "modes.py");
        specialize_fixture_fails(i, "hello.py", NULL, -EALREADY, "already specialized");
        /* Still the first function. */
        assert_invoke_works(i);
        t_destroy(i);
}
END_TEST

START_TEST(test_invoke_before_specialize)
{
        pw_instance *i = t_restore("python3");
        ck_assert_contains(invoke_fails(i, "{}", 5000, -EBADFD), "not specialized");
        /* *ret_logs is always written: NULL here, the handler never ran. */
        char *logs = (char *)"untouched";
        ck_assert_int_eq(pw_instance_invoke_logs(i, "{}", 5000, NULL, &logs), -EBADFD);
        ck_assert_ptr_null(logs);
        /* The refusal did not hurt the instance. */
        t_specialize(i, "modes.py");
        assert_invoke_works(i);
        t_destroy(i);
}
END_TEST

/* ---------------------------------------------------------------- invoke */

START_TEST(test_handler_errors)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "modes.py");

        ck_assert_contains(invoke_fails(i, "{\"mode\": \"raise\", \"why\": \"disk on fire\"}", 10000, -EREMOTEIO),
                           "ValueError: the handler refused: disk on fire");
        /* The traceback comes back as the invoke's logs. */
        char *result = NULL, *logs = NULL;
        ck_assert_int_eq(pw_instance_invoke_logs(i, "{\"mode\": \"raise\"}", 10000, &result, &logs), -EREMOTEIO);
        ck_assert_ptr_null(result);
        ck_assert_contains(logs, "Traceback", "modes.py");
        free(logs);

        ck_assert_contains(invoke_fails(i, "{\"mode\": \"string\"}", 10000, -EPROTO), "str");
        ck_assert_contains(invoke_fails(i, "{\"mode\": \"nan\"}", 10000, -EPROTO), "not JSON");

        /* None of that hurt the instance. */
        assert_invoke_works(i);
        t_destroy(i);
}
END_TEST

START_TEST(test_args_not_object)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "modes.py");
        const char *bad[] = {"\"a string\"", "42", "null", "{\"unterminated\": ", "not json", ""};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
                ck_assert_contains(invoke_fails(i, bad[k], 10000, -EINVAL), "JSON object or array");
        assert_invoke_works(i);
        t_destroy(i);
        /* An array in, an array out: OpenWhisk's runtimes take both. */
        i = t_restore("python3");
        t_specialize(i, "echo.py");
        char *result = NULL;
        ck_assert_int_eq(pw_instance_invoke(i, "[\"a\", 2]", 10000, &result), 0);
        ck_assert_str_eq(result, "[\"a\",2]");
        free(result);
        t_destroy(i);
}
END_TEST

START_TEST(test_timeout)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "loop.py");
        pid_t pid = pw_instance_pid(i);
        ck_assert_int_gt(pid, 0);
        ck_assert_contains(invoke_fails(i, "{}", 500, -ETIMEDOUT), "timed out", "500 ms");
        /* The instance is dead. */
        ck_assert_contains(assert_dead(i, pid), "dead");
        ck_assert_errno(t_specialize_fixture(i, "modes.py", NULL), -ESRCH, pw_instance_last_error(i));
        t_destroy(i);
}
END_TEST

START_TEST(test_memory_limit)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "hog.py");
        pid_t pid = pw_instance_pid(i);
        /* 256 MiB: the python3 template's memory_mb */
        ck_assert_contains(invoke_fails(i, "{}", 60000, -ENOMEM), "memory limit", "256 MiB");
        assert_dead(i, pid);
        t_destroy(i);
}
END_TEST

START_TEST(test_instance_dies)
{
        pw_instance *i = t_restore("python3");
        t_specialize(i, "exit.py");
        pid_t pid = pw_instance_pid(i);
        ck_assert_contains(invoke_fails(i, "{\"status\": 7}", 10000, -ECHILD), "died", "exit status 7");
        ck_assert_contains(assert_dead(i, pid), "dead");
        t_destroy(i);

        /* Killed from outside between two invokes. */
        i = t_restore("python3");
        t_specialize(i, "modes.py");
        assert_invoke_works(i);
        pid = pw_instance_pid(i);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        ck_assert_contains(invoke_fails(i, "{}", 10000, -ECHILD), "signal 9");
        ck_assert_int_eq(pw_instance_pid(i), -ESRCH);
        t_destroy(i);
}
END_TEST

/* ---------------------------------------------------------------- restore and the template store */

START_TEST(test_unknown_template)
{
        pw_instance *i = (pw_instance *)0x1;
        ck_assert_engine_error(t_engine, pw_instance_restore(t_engine, "no-such-template", &i), -ENOENT,
                               "no-such-template", "not built");
        ck_assert_ptr_eq(i, (pw_instance *)0x1); /* ret_ written only on success */

        ck_assert_engine_error(t_engine, pw_template_build(t_engine, "no-such-template"), -ENOENT,
                               "no-such-template/template.conf");
        ck_assert_engine_error(t_engine, pw_template_remove(t_engine, "no-such-template"), -ENOENT, "not built");
}
END_TEST

START_TEST(test_invalid_template_name)
{
        const char *bad[] = {"../x", "..", ".hidden", "a/b", "", "-dash", "with space"};
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                pw_instance *i = NULL;
                ck_assert_engine_error(t_engine, pw_instance_restore(t_engine, bad[k], &i), -EINVAL,
                                       "invalid template name");
                ck_assert_ptr_null(i);
                ck_assert_engine_error(t_engine, pw_template_build(t_engine, bad[k]), -EINVAL, "invalid template name");
                ck_assert_errno(pw_template_remove(t_engine, bad[k]), -EINVAL, pw_engine_last_error(t_engine));
        }
        pw_instance *i = NULL;
        ck_assert_errno(pw_instance_restore(t_engine, NULL, &i), -EINVAL, pw_engine_last_error(t_engine));
        /* Nothing was created outside the store. */
        char *escaped = strdup_printf("%s/x", t_state);
        struct stat st;
        ck_assert_int_eq(stat(escaped, &st), -1);
        free(escaped);
}
END_TEST

static char *template_path(const char *name, const char *rest)
{
        char *p = strdup_printf("%s/templates/%s/%s", t_state, name, rest);
        ck_assert_ptr_nonnull(p);
        return p;
}

static void flip_byte(const char *path)
{
        int fd = open(path, O_RDWR | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_gt(st.st_size, 0);
        off_t at = st.st_size / 2;
        unsigned char b;
        ck_assert_int_eq(pread(fd, &b, 1, at), 1);
        b ^= 0x5a;
        ck_assert_int_eq(pwrite(fd, &b, 1, at), 1);
        close(fd);
}

/* Asserts that restoring python3 into i fails with `expected` and a reason that holds each of the
 * strings that follow. */
#define restore_fails(i, expected, ...)                                                            \
        ck_assert_engine_error(t_engine, pw_instance_restore(t_engine, "python3", &(i)), expected, __VA_ARGS__)

static void assert_restore_works(const char *template_name)
{
        pw_instance *i = t_restore(template_name);
        t_specialize(i, "modes.py");
        assert_invoke_works(i);
        t_destroy(i);
}

START_TEST(test_corrupt_template)
{
        /* Verified once (and cached by the engine)... */
        assert_restore_works("python3");

        /* ...then changed: the change is noticed all the same. */
        char *pages = template_path("python3", "images/pages-1.img");
        flip_byte(pages);
        pw_instance *i = NULL;
        restore_fails(i, -EUCLEAN, "restore of template python3", "pages-1.img");
        ck_assert_ptr_null(i);
        /* Flipped back, the template is whole again. */
        flip_byte(pages);
        assert_restore_works("python3");

        /* A missing image and a stray file are corruption too. */
        char *core = template_path("python3", "images/core-1.img");
        char *moved = template_path("python3", "core-1.img.moved");
        ck_assert_int_eq(rename(core, moved), 0);
        restore_fails(i, -EUCLEAN, "core-1.img");
        ck_assert_int_eq(rename(moved, core), 0);
        char *stray = template_path("python3", "images/stray.img");
        t_write_file(stray, "not an image");
        restore_fails(i, -EUCLEAN, "stray.img");
        unlink(stray);

        /* A broken manifest. */
        char *manifest = template_path("python3", "manifest.json");
        t_write_file(manifest, "{\"format\": 1");
        restore_fails(i, -EUCLEAN, "manifest");
        ck_assert_ptr_null(i);

        ck_assert_int_eq(t_build("python3"), 0);
        assert_restore_works("python3");
        free(pages);
        free(core);
        free(moved);
        free(stray);
        free(manifest);
}
END_TEST

START_TEST(test_criu_fails_mid_restore)
{
        /* /proc/kcore and friends are masked by binds of this empty file of the root: without it
         * CRIU fails while it rebuilds the instance's mounts, after it forked the tasks. */
        char *dev_null = template_path("python3", "rootfs/.masked/file");
        ck_assert_msg(unlink(dev_null) == 0, "unlink %s: %s", dev_null, strerror(errno));
        pw_instance *i = NULL;
        ck_assert_errno(pw_instance_restore(t_engine, "python3", &i), -EIO, pw_engine_last_error(t_engine));
        ck_assert_ptr_null(i);
        const char *why = pw_engine_last_error(t_engine);
        const char *prefix = "restore of template python3: criu:";
        ck_assert_msg(!strncmp(why, prefix, strlen(prefix)), "expected \"%s...\", got \"%s\"", prefix, why);
        ck_assert_msg(strlen(why) > strlen(prefix) + 8, "CRIU's reason is missing: \"%s\"", why);
        printf("  CRIU's reason: %s\n", why);

        /* Twice, to be sure a failed restore leaves nothing that breaks the next one. */
        ck_assert_errno(pw_instance_restore(t_engine, "python3", &i), -EIO, pw_engine_last_error(t_engine));

        ck_assert_int_eq(t_build("python3"), 0);
        assert_restore_works("python3");
        free(dev_null);
}
END_TEST

/* ---------------------------------------------------------------- template build */

/* Writes DEFS/NAME/template.conf and, unless agent_py is NULL, the agent DEFS/NAME/NAME.py. */
static void write_definition(const char *defs, const char *name, const char *conf, const char *agent_py)
{
        char *dir = strdup_printf("%s/%s", defs, name);
        char *path = strdup_printf("%s/template.conf", dir);
        ck_assert_int_eq(mkdir_p(dir, 0755), 0);
        t_write_file(path, conf);
        free(path);
        if (agent_py) {
                path = strdup_printf("%s/%s.py", dir, name);
                t_write_file(path, agent_py);
                free(path);
        }
        free(dir);
}

/* Asserts that building template NAME with engine e fails with `expected` and a reason that holds
 * each of the strings that follow. */
#define build_fails(e, name, expected, ...)                                                        \
        ck_assert_engine_error(e, pw_template_build(e, name), expected, __VA_ARGS__)

typedef struct names {
        char list[512];
} names;

static int list_names(const pw_template_info *info, void *userdata)
{
        names *n = userdata;
        size_t used = strlen(n->list);
        snprintf(n->list + used, sizeof(n->list) - used, "%s ", info->name);
        return 0;
}

START_TEST(test_build_failures)
{
        char *defs = strdup_printf("%s/definitions", t_state);
        const char *missing_module = "prewarm_test_no_such_module_4711";

        char *conf = strdup_printf("runtime = /usr/bin/python3 -B -s\n"
                                   "agent = %s/python3/agent.py\n"
                                   "preload = json %s\n",
                                   TEMPLATES_DIR, missing_module);
        write_definition(defs, "badpreload", conf, NULL);
        free(conf);
        write_definition(defs, "sleeper",
                         "runtime = /usr/bin/python3 -B -s\n"
                         "agent = sleeper.py\n"
                         "ready_timeout_ms = 300\n",
                         "import time\ntime.sleep(60)\n");
        write_definition(defs, "exits",
                         "runtime = /usr/bin/python3 -B -s\n"
                         "agent = exits.py\n",
                         "import sys\nprint('agent gives up: no license', file=sys.stderr)\nsys.exit(3)\n");
        write_definition(defs, "badkey", "runtime = /usr/bin/python3\nagent = a.py\ncolour = blue\n", NULL);
        write_definition(defs, "badruntime", "runtime = python3 -B\nagent = a.py\n", NULL);
        /* Without a runtime the agent is the program: one that is not there is not found. */
        write_definition(defs, "noruntime", "agent = a.py\n", NULL);

        pw_engine *e = t_engine_new(defs);
        ck_assert_ptr_nonnull(e);

        build_fails(e, "badpreload", -ECHILD, "build of template badpreload", missing_module);
        build_fails(e, "sleeper", -ETIMEDOUT, "build of template sleeper", "300 ms");
        build_fails(e, "exits", -ECHILD, "status 3", "agent gives up: no license");
        build_fails(e, "badkey", -EINVAL, "line 3", "colour");
        build_fails(e, "badruntime", -EINVAL, "'runtime' must name an absolute program path");
        build_fails(e, "noruntime", -ENOENT, "cannot read agent", "noruntime/a.py");
        build_fails(e, "undefined", -ENOENT, "undefined/template.conf");

        /* None of them made it into the store, and python3 is untouched. */
        names n = {""};
        ck_assert_int_eq(pw_template_foreach(e, list_names, &n), 0);
        ck_assert_str_eq(n.list, "python3 ");
        pw_instance *i = NULL;
        ck_assert_errno(pw_instance_restore(e, "badpreload", &i), -ENOENT, pw_engine_last_error(e));
        pw_engine_free(e);
        assert_restore_works("python3");

        free(defs);
}
END_TEST

static Suite *errors_suite(void)
{
        Suite *s = suite_create("errors");
        TCase *spec = t_tcase("specialize");
        tcase_add_test(spec, test_missing_code);
        tcase_add_test(spec, test_bad_env);
        tcase_add_test(spec, test_blob_too_large);
        tcase_add_test(spec, test_bad_archives);
        tcase_add_test(spec, test_http_fetch);
        tcase_add_test(spec, test_digest);
        tcase_add_test(spec, test_syntax_error);
        tcase_add_test(spec, test_load_errors);
        tcase_add_test(spec, test_second_specialize);
        tcase_add_test(spec, test_invoke_before_specialize);
        suite_add_tcase(s, spec);

        TCase *inv = t_tcase("invoke");
        tcase_add_test(inv, test_handler_errors);
        tcase_add_test(inv, test_args_not_object);
        tcase_add_test(inv, test_timeout);
        tcase_add_test(inv, test_memory_limit);
        tcase_add_test(inv, test_instance_dies);
        suite_add_tcase(s, inv);

        TCase *store = t_tcase("store");
        tcase_add_test(store, test_unknown_template);
        tcase_add_test(store, test_invalid_template_name);
        tcase_add_test(store, test_corrupt_template);
        tcase_add_test(store, test_criu_fails_mid_restore);
        tcase_add_test(store, test_build_failures);
        suite_add_tcase(s, store);
        return s;
}

int main(void)
{
        return t_main(errors_suite, "python3", NULL);
}

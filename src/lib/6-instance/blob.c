/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Code blobs: a function's code URI (file://, a path, http(s)://) read on the host within the code
 * policy and the size bound, checked against its digest pin, and named for the agent.
 */
#include <ctype.h>
#include <fcntl.h>
#include <curl/curl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "blob.h"
#include "package.h"
#include "digest.h"

void code_uri_done(code_uri *u)
{
        free(u->location);
        free(u->filename);
        u->location = u->filename = NULL;
}

/* Decodes %XX escapes of a file:// path. */
static int percent_decode(const char *in, char **ret)
{
        char *out = malloc(strlen(in) + 1), *o = out;
        if (!out)
                return -ENOMEM;
        for (const char *p = in; *p; p++) {
                unsigned v;
                if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]) &&
                    sscanf(p + 1, "%2x", &v) == 1 && v != 0) {
                        *o++ = (char)v;
                        p += 2;
                } else
                        *o++ = *p;
        }
        *o = '\0';
        *ret = out;
        return 0;
}

static char *last_component(const char *path)
{
        size_t end = strcspn(path, "?#"); /* a trailing slash names a directory, not a file */
        size_t start = end;
        while (start > 0 && path[start - 1] != '/')
                start--;
        return end > start ? strndup(path + start, end - start) : NULL;
}

int code_uri_parse(const char *uri, code_uri *ret, pw_err *err)
{
        code_uri u = {0};
        if (!uri || !*uri)
                return err_set(err, -EINVAL, "no code URI given");
        int r = 0;
        if (!strncmp(uri, "file://", 7)) {
                if (uri[7] != '/')
                        return err_set(err, -EINVAL, "'%s': file URIs need an absolute path (file:///path)", uri);
                u.scheme = CODE_FILE;
                r = percent_decode(uri + 7, &u.location);
        } else if (uri[0] == '/') {
                u.scheme = CODE_FILE;
                u.location = strdup(uri);
        } else if (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8)) {
                u.scheme = CODE_HTTP;
                u.location = strdup(uri);
        } else
                return err_set(err, -EINVAL,
                               "'%s': unsupported code URI (use file:///abs/path, /abs/path or http(s)://)", uri);
        if (r < 0 || !u.location)
                return -ENOMEM;
        const char *path = u.location;
        if (u.scheme == CODE_HTTP) {
                const char *host = strstr(u.location, "://") + 3;
                path = host + strcspn(host, "/?#");
        }
        u.filename = last_component(path);
        if (!u.filename) {
                code_uri_done(&u);
                return err_set(err, -EINVAL, "'%s' names no file", uri);
        }
        *ret = u;
        return 0;
}

void blob_done(blob *b)
{
        free(b->data);
        free(b->filename);
        b->data = b->filename = NULL;
}

typedef struct sink {
        char *data;
        size_t size, max;
        bool too_big;
        const code_policy *policy;
        char refused[256]; /* why the policy refused a connection */
} sink;

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        sink *s = userdata;
        size_t n = size * nmemb;
        if (s->size + n > s->max) {
                s->too_big = true;
                return 0;
        }
        char *bigger = realloc(s->data, s->size + n + 1);
        if (!bigger)
                return 0;
        memcpy(bigger + s->size, ptr, n);
        s->data = bigger;
        s->size += n;
        s->data[s->size] = '\0';
        return n;
}

/* Every connection of a fetch, redirects included, is checked on the address it goes to. */
static curl_socket_t open_checked(void *userdata, curlsocktype purpose, struct curl_sockaddr *a)
{
        sink *s = userdata;
        if (s->policy && !code_policy_address_ok(s->policy, &a->addr, s->refused, sizeof(s->refused)))
                return CURL_SOCKET_BAD;
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void curl_init_once(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int fetch_http(const char *url, size_t max, const code_policy *policy, blob *ret, pw_err *err)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, curl_init_once);
        CURL *c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        sink s = {.max = max, .policy = policy};
        char curl_err[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
        /* A server that trickles: under 1 KiB/s for 10 s ends the fetch. */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 10L);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &s);
        if (policy) /* a proxy would be the address connected to, not the server's */
                curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
        CURLcode cr = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);

        int r = 0;
        if (cr != CURLE_OK && s.refused[0]) /* (another address of the name may have served it) */
                r = err_set(err, -EACCES, "fetching %s: refused: %s", url, s.refused);
        else if (s.too_big || cr == CURLE_FILESIZE_EXCEEDED)
                r = err_set(err, -EFBIG, "%s is larger than %zu bytes", url, max);
        else if (cr != CURLE_OK)
                r = err_set(err, -EHOSTUNREACH, "fetching %s: %s", url, curl_err[0] ? curl_err : curl_easy_strerror(cr));
        else if (status == 404 || status == 410)
                r = err_set(err, -ENOENT, "fetching %s: HTTP %ld", url, status);
        else if (status >= 400)
                r = err_set(err, -EHOSTUNREACH, "fetching %s: HTTP %ld", url, status);
        if (r < 0) {
                free(s.data);
                return r;
        }
        ret->data = s.data ? s.data : strdup("");
        ret->size = s.size;
        return ret->data ? 0 : -ENOMEM;
}

static int fetch_file(const char *path, size_t max, const code_policy *policy, blob *ret, pw_err *err)
{
        _cleanup_close_ int fd = -1;
        int r = policy ? code_policy_open(policy, path, &fd, err) : 0;
        if (r < 0)
                return r;
        if (!policy && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
                return err_set(err, negative_errno(), "cannot read %s: %m", path);
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) /* a package: its files as one archive */
                return package_directory(fd, path, max, &ret->data, &ret->size, err);
        r = read_fd(fd, max, &ret->data, &ret->size);
        if (r == -EFBIG)
                return err_set(err, r, "%s is larger than %zu bytes", path, max);
        if (r < 0)
                return err_set(err, r, "cannot read %s: %s", path, strerror(-r));
        return 0;
}

int blob_fetch(const char *uri, const char *digest, size_t max, const code_policy *policy, blob *ret, pw_err *err)
{
        char want[65];
        if (digest && digest_parse(digest, want) < 0)
                return err_set(err, -EINVAL, "'%s' is not a digest of the form sha256:<64 hex digits>", digest);
        code_uri u;
        int r = code_uri_parse(uri, &u, err);
        if (r < 0)
                return r;
        blob b = {0};
        r = u.scheme == CODE_FILE ? fetch_file(u.location, max, policy, &b, err)
                                  : fetch_http(u.location, max, policy, &b, err);
        if (r >= 0 && digest) {
                char got[65];
                r = sha256_buffer_hex(b.data, b.size, got);
                /* The digest it has only for a caller who may read it anyway: under a policy, the
                 * caller may not, and must not learn the digest of a file it guesses. */
                if (r >= 0 && strcmp(got, want) && policy)
                        r = err_set(err, -EBADMSG, "%s does not match the pinned sha256:%s", uri, want);
                else if (r >= 0 && strcmp(got, want))
                        r = err_set(err, -EBADMSG, "%s has digest sha256:%s, not the pinned sha256:%s", uri, got, want);
        }
        if (r < 0) {
                code_uri_done(&u);
                blob_done(&b);
                return r;
        }
        b.filename = TAKE_PTR(u.filename);
        /* The agent tells source from archive by the name; a name that says neither is sniffed
         * (a directory came as a ustar archive: "ustar" at offset 257). */
        static const char *const names[] = {".py", ".js", ".so", ".zip", ".tar", ".tar.gz", ".tgz"};
        bool named = false;
        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                named = named || str_has_suffix(b.filename, names[k]);
        if (!named) {
                bool zip = b.size >= 4 && !memcmp(b.data, "PK\x03\x04", 4);
                bool gz = b.size >= 2 && !memcmp(b.data, "\x1f\x8b", 2);
                bool tar = b.size >= 263 && !memcmp(b.data + 257, "ustar", 5);
                bool elf = b.size >= 4 && !memcmp(b.data, "\x7f" "ELF", 4);
                free(b.filename);
                b.filename = strdup(zip ? "action.zip" : gz ? "action.tar.gz" : tar ? "package.tar" : elf ? "handler.so" : "main.py");
                if (!b.filename) {
                        code_uri_done(&u);
                        blob_done(&b);
                        return -ENOMEM;
                }
        }
        code_uri_done(&u);
        *ret = b;
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small helpers every part uses: processes, time, whole-file I/O, string vectors, paths, names, and
 * the public API's sized structures.
 */
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <ctype.h>
#include <signal.h>
#include <sys/wait.h>

int reap(pid_t pid)
{
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return status;
}

void kill_and_reap(pid_t pid)
{
        if (pid <= 0)
                return;
        kill(pid, SIGKILL);
        reap(pid);
}

int reap_within(pid_t pid, unsigned timeout_ms)
{
        const struct timespec pause = {0, 1000 * 1000};
        int status = 0;
        for (unsigned waited = 0; waited < timeout_ms; waited++) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid || (r < 0 && errno != EINTR))
                        return status;
                nanosleep(&pause, NULL);
        }
        kill(pid, SIGKILL);
        return reap(pid);
}

void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

uint64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct timespec realtime_after_ms(unsigned ms)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return ts;
}

ssize_t read_full(int fd, void *buf, size_t n)
{
        size_t done = 0;
        while (done < n) {
                ssize_t r = read(fd, (char *)buf + done, n - done);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        break;
                done += (size_t)r;
        }
        return (ssize_t)done;
}

int write_full(int fd, const void *buf, size_t n)
{
        size_t done = 0;
        while (done < n) {
                ssize_t w = write(fd, (const char *)buf + done, n - done);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                done += (size_t)w;
        }
        return 0;
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return read_fd(fd, max, ret, ret_size);
}

int read_fd(int fd, size_t max, char **ret, size_t *ret_size)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        /* Pseudo-files (proc, cgroupfs) report size 0: read until EOF, growing the buffer. */
        size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max + 1)
                                return -EFBIG;
                        char *bigger = realloc(buf, cap * 2);
                        if (!bigger)
                                return -ENOMEM;
                        buf = bigger;
                        cap *= 2;
                }
                ssize_t n = read_full(fd, buf + len, cap - 1 - len);
                if (n < 0)
                        return (int)n;
                len += (size_t)n;
                if (len > max)
                        return -EFBIG;
                if (len < cap - 1)
                        break;
        }
        buf[len] = '\0';
        if (ret_size)
                *ret_size = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
        _cleanup_free_ char *tmp = strdup_printf("%s.tmp.%d", path, getpid());
        if (!tmp)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        int r = write_full(fd, data, n);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r == 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(tmp);
        return r;
}

int write_string(const char *path, const char *s)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(s);
        ssize_t w = write(fd, s, n);
        if (w < 0)
                return negative_errno();
        return (size_t)w == n ? 0 : -EIO;
}

int copy_file(const char *src, const char *dst, size_t max, mode_t mode)
{
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        int r = read_file(src, max, &data, &n);
        return r < 0 ? r : write_file_atomic(dst, data, n, mode);
}

int fd_set_nonblocking(int fd)
{
        int flags = fcntl(fd, F_GETFL);
        return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? negative_errno() : 0;
}

int grow_buffer(void **p, size_t *cap, size_t need, size_t initial)
{
        if (need <= *cap)
                return 0;
        size_t bigger = *cap ? *cap * 2 : initial;
        while (bigger < need)
                bigger *= 2;
        void *q = realloc(*p, bigger);
        if (!q)
                return -ENOMEM;
        *p = q;
        *cap = bigger;
        return 0;
}

void close_pair(int p[2])
{
        for (int i = 0; i < 2; i++)
                if (p[i] >= 0) {
                        close(p[i]);
                        p[i] = -1;
                }
}

int mkdir_p(const char *path, mode_t mode)
{
        if (!*path)
                return -EINVAL;
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, mode) == 0)
                return 0;
        if (errno != EEXIST)
                return negative_errno();
        struct stat st;
        if (stat(p, &st) < 0)
                return negative_errno();
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int mkdir_private(const char *path)
{
        int r = mkdir_p(path, 0700);
        if (r < 0)
                return r;
        struct stat st;
        if (lstat(path, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (st.st_uid != geteuid())
                return -EPERM;
        if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) < 0)
                return negative_errno();
        return 0;
}

static int rm_rf_at(int parent, const char *name, dev_t dev)
{
        struct stat st;
        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? negative_errno() : 0;
        if (st.st_dev != dev)
                return -EBUSY; /* a mount point: never descend into another file system */

        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return negative_errno();
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                int k = rm_rf_at(dirfd(d), de->d_name, dev);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = negative_errno();
        return r;
}

int rm_rf(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return rm_rf_at(AT_FDCWD, path, st.st_dev);
}

char *strdup_printf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

size_t strv_length(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

int strv_push(char ***v, const char *s)
{
        size_t n = strv_length(*v);
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        char **nv = realloc(*v, (n + 2) * sizeof(char *));
        if (!nv) {
                free(copy);
                return -ENOMEM;
        }
        nv[n] = copy;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

char **strv_split_ws(const char *s)
{
        _cleanup_strv_free_ char **v = calloc(1, sizeof(char *));
        if (!v)
                return NULL;
        while (*s) {
                while (*s && isspace((unsigned char)*s))
                        s++;
                if (!*s)
                        break;
                size_t len = 0;
                while (s[len] && !isspace((unsigned char)s[len]))
                        len++;
                _cleanup_free_ char *word = strndup(s, len);
                if (!word || strv_push(&v, word) < 0)
                        return NULL;
                s += len;
        }
        return TAKE_PTR(v);
}

bool str_has_suffix(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && !strcmp(s + a - b, suffix);
}

bool path_within(const char *path, const char *root)
{
        size_t n = strlen(root);
        return !strncmp(path, root, n) && (path[n] == '/' || path[n] == '\0' || !strcmp(root, "/"));
}

/* Template and function names become path components and cgroup names. */
bool name_is_valid(const char *name)
{
        if (!name || !*name || strlen(name) > 64 || name[0] == '.' || name[0] == '-')
                return false;
        for (const char *p = name; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("-_.", *p))
                        return false;
        return true;
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = '\0';
}

void str_copy(char *dst, size_t size, const char *src)
{
        size_t n = strnlen(src, size - 1);
        memcpy(dst, src, n);
        dst[n] = '\0';
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left), 0 when there is none. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
        if (s[0] < 0x80)
                return 1;
        size_t len = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                     : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
        if (!len || len > n)
                return 0;
        for (size_t i = 1; i < len; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || /* overlong, surrogate */
            (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))   /* overlong, > U+10FFFF */
                return 0;
        return len;
}

bool utf8_valid(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *)s;
        for (size_t i = 0; i < n;) {
                size_t len = utf8_sequence(p + i, n - i);
                if (!len)
                        return false;
                i += len;
        }
        return true;
}

bool has_control(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}

void str_escape(char *out, size_t size, const char *s)
{
        if (!size)
                return;
        const unsigned char *p = (const unsigned char *)s;
        size_t n = strlen(s), o = 0;
        for (size_t i = 0; i < n;) {
                size_t len = p[i] < 0x20 || p[i] == 0x7f ? 0 : utf8_sequence(p + i, n - i);
                if (len) {
                        if (o + len >= size)
                                break;
                        memcpy(out + o, p + i, len);
                        o += len;
                        i += len;
                } else {
                        if (o + 4 >= size)
                                break;
                        snprintf(out + o, 5, "\\x%02x", p[i]);
                        o += 4;
                        i++;
                }
        }
        out[o] = '\0';
}

int sized_in(void *dst, size_t dst_size, const void *src, size_t min)
{
        size_t n = *(const size_t *)src;
        if (n == 0)
                n = dst_size;
        if (n < min)
                return -EINVAL;
        memset(dst, 0, dst_size);
        memcpy(dst, src, n < dst_size ? n : dst_size);
        return 0;
}

void sized_out(void *dst, const void *src, size_t src_size)
{
        size_t n = *(const size_t *)dst;
        if (n == 0 || n > src_size)
                n = src_size;
        memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t), n - sizeof(size_t));
}

bool process_running(pid_t pid)
{
        char path[64], text[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) /* out of descriptors or memory says nothing of the process */
                return errno != ENOENT && errno != ESRCH;
        if (!fgets(text, sizeof(text), f))
                return false; /* it went between the open and the read */
        const char *p = strrchr(text, ')'); /* comm may hold spaces and parentheses */
        return p && p[1] == ' ' && p[2] && p[2] != 'Z' && p[2] != 'X';
}

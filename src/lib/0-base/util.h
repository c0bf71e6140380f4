/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers shared by the library, the CLI and the tests: cleanup attributes, I/O loops,
 * time, paths. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hands ownership out of a cleanup variable: returns the value and leaves NULL behind. */
#define TAKE_PTR(p)                          \
        ({                                   \
                __typeof__(p) _p_ = (p);     \
                (p) = NULL;                  \
                _p_;                         \
        })
#define TAKE_FD(fd)                  \
        ({                           \
                int _fd_ = (fd);     \
                (fd) = -1;           \
                _fd_;                \
        })

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
void strv_free(char **v);
static inline void strv_freep(char ***v) { strv_free(*v); }

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static inline int negative_errno(void) { return errno > 0 ? -errno : -EIO; }

/* Waits for a child to end, through EINTR; returns its wait status. */
int reap(pid_t pid);
/* SIGKILLs a child and reaps it. Accepts pid <= 0 as "nothing to do". */
void kill_and_reap(pid_t pid);
/* Gives a child that is expected to end (it closed its channel) timeout_ms to do so, then kills it;
 * returns its wait status. */
int reap_within(pid_t pid, unsigned timeout_ms);

/* Monotonic clock in microseconds. */
uint64_t now_us(void);
/* The wall-clock time ms milliseconds from now: a deadline for pthread_cond_timedwait. */
struct timespec realtime_after_ms(unsigned ms);

/* Loops over short reads/writes and EINTR. read_full returns bytes read (< n only at EOF). */
ssize_t read_full(int fd, void *buf, size_t n);
int write_full(int fd, const void *buf, size_t n);

/* Reads a whole file of at most max bytes (+1 for a NUL that is appended). -EFBIG past max. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_size);
/* The same from an open descriptor. */
int read_fd(int fd, size_t max, char **ret, size_t *ret_size);
/* Writes a whole file atomically (temp file + rename). */
int write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* Writes a short string to an existing file (cgroup and proc knobs). */
int write_string(const char *path, const char *s);

/* Copies a whole file of at most max bytes, atomically at dst. */
int copy_file(const char *src, const char *dst, size_t max, mode_t mode);

/* Makes *p (of *cap bytes, realloc'd) hold at least need bytes, doubling from initial. -ENOMEM. */
int grow_buffer(void **p, size_t *cap, size_t need, size_t initial);

int fd_set_nonblocking(int fd);
/* Closes both ends of a pipe that are still open and marks them -1. */
void close_pair(int p[2]);

int mkdir_p(const char *path, mode_t mode);
/* mkdir_p, then makes path itself 0700; -EPERM when another user owns it. */
int mkdir_private(const char *path);
/* Removes a directory tree; does not cross mount points. Missing is fine. */
int rm_rf(const char *path);

/* asprintf that returns NULL on failure. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* Splits s on runs of whitespace into a NULL-terminated vector. */
char **strv_split_ws(const char *s);
size_t strv_length(char *const *v);
/* Appends a copy of s; returns -ENOMEM on failure. */
int strv_push(char ***v, const char *s);

bool str_has_suffix(const char *s, const char *suffix);

/* Whether process pid exists and has not exited: a zombie, which kill(pid, 0) still finds,
 * has (its parent has just not reaped it yet). */
bool process_running(pid_t pid);
/* Whether path is root or lies below it; both absolute, compared as written (resolve them first
 * where symlinks matter), root without a trailing slash unless it is "/". */
bool path_within(const char *path, const char *root);
/* Whether s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). */
bool utf8_valid(const char *s, size_t n);
/* Whether s holds a control character (C0 or DEL). */
bool has_control(const char *s);
/* s with control characters and bytes that are not well-formed UTF-8 written as \xHH, into out
 * (always terminated, cut to size). For log lines and messages that quote what a client sent. */
void str_escape(char *out, size_t size, const char *s);
bool name_is_valid(const char *name);

/* Copies src into dst of size bytes, truncating; always NUL-terminates (size > 0). */
void str_copy(char *dst, size_t size, const char *src);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* The public API's sized structures (their first member is `size_t size`, the caller's sizeof or
 * 0 for this header's). In: *dst becomes a copy of what the caller's size covers, the rest zero;
 * -EINVAL for a size below min (what the oldest layout still taken had). Out: copies what the
 * caller's structure has room for, and leaves its size as the caller set it. */
int sized_in(void *dst, size_t dst_size, const void *src, size_t min);
void sized_out(void *dst, const void *src, size_t src_size);
#define SIZED_IN(dst, src) sized_in(&(dst), sizeof(dst), (src), sizeof(dst))
#define SIZED_OUT(dst, src) sized_out((dst), &(src), sizeof(src))

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent protocol's framing: a 4-byte big-endian length and that many bytes, read and written
 * over non-blocking pipes within a deadline.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "frame.h"
#include "util.h"

void frame_put_length(uint8_t out[4], uint32_t n)
{
        out[0] = (uint8_t)(n >> 24);
        out[1] = (uint8_t)(n >> 16);
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
}

uint32_t frame_get_length(const uint8_t in[4])
{
        return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

/* Waits until fd is ready for events; -ETIMEDOUT once the deadline has passed. */
static int wait_fd(int fd, short events, uint64_t deadline_us)
{
        for (;;) {
                int timeout = -1;
                if (deadline_us) {
                        uint64_t now = now_us();
                        if (now >= deadline_us)
                                return -ETIMEDOUT;
                        timeout = (int)((deadline_us - now + 999) / 1000);
                }
                struct pollfd p = {.fd = fd, .events = events};
                int r = poll(&p, 1, timeout);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return negative_errno();
                if (r > 0)
                        return 0;
        }
}

/* A pipe whose reader is gone raises SIGPIPE, which would kill the program that links us. Block it
 * for this thread while writing and swallow the one our write caused. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n)
{
        sigset_t pipe_set, old;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        ssize_t w = write(fd, buf, n);
        int saved = errno;
        if (w < 0 && errno == EPIPE && !sigismember(&old, SIGPIPE)) {
                const struct timespec zero = {0, 0};
                sigtimedwait(&pipe_set, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
        return w;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t deadline_us)
{
        while (n > 0) {
                ssize_t w = write_nosigpipe(fd, p, n);
                if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                        int r = wait_fd(fd, POLLOUT, deadline_us);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (w < 0)
                        return negative_errno();
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

int frame_write(int fd, const void *data, size_t n, uint64_t deadline_us)
{
        if (n > FRAME_MAX)
                return -EMSGSIZE;
        uint8_t header[4];
        frame_put_length(header, (uint32_t)n);
        int r = write_all(fd, header, sizeof(header), deadline_us);
        return r < 0 ? r : write_all(fd, data, n, deadline_us);
}

static int read_all(int fd, uint8_t *p, size_t n, uint64_t deadline_us)
{
        while (n > 0) {
                ssize_t got = read(fd, p, n);
                if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
                        int r = wait_fd(fd, POLLIN, deadline_us);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (got < 0)
                        return negative_errno();
                if (got == 0)
                        return -ECONNRESET;
                p += got;
                n -= (size_t)got;
        }
        return 0;
}

int frame_read(int fd, uint64_t deadline_us, char **ret, size_t *ret_size)
{
        uint8_t header[4];
        int r = read_all(fd, header, sizeof(header), deadline_us);
        if (r < 0)
                return r;
        uint32_t n = frame_get_length(header);
        if (n > FRAME_MAX)
                return -EPROTO;
        _cleanup_free_ char *buf = malloc((size_t)n + 1);
        if (!buf)
                return -ENOMEM;
        r = read_all(fd, (uint8_t *)buf, n, deadline_us);
        if (r < 0)
                return r;
        buf[n] = '\0';
        if (ret_size)
                *ret_size = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* frame.h: length-prefixed frames over non-blocking pipes. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "frame.h"
#include "unit.h"

#define SECOND 1000000ull

static int fds[2] = {-1, -1}; /* [0] read end, [1] write end; both O_NONBLOCK */

static void pipe_setup(void)
{
        ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void close_end(int i)
{
        if (fds[i] >= 0) {
                ck_assert_int_eq(close(fds[i]), 0);
                fds[i] = -1;
        }
}

static void pipe_teardown(void)
{
        close_end(0);
        close_end(1);
}

static uint64_t in_us(uint64_t us) { return now_us() + us; }

START_TEST(test_length_encoding)
{
        static const struct {
                uint32_t n;
                uint8_t bytes[4];
        } cases[] = {
                {0, {0, 0, 0, 0}},
                {1, {0, 0, 0, 1}},
                {255, {0, 0, 0, 0xff}},
                {256, {0, 0, 1, 0}},
                {0x01020304, {1, 2, 3, 4}},
                {FRAME_MAX, {0x04, 0, 0, 0}},
                {0xdeadbeef, {0xde, 0xad, 0xbe, 0xef}},
                {0xffffffff, {0xff, 0xff, 0xff, 0xff}},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t out[4] = {0x55, 0x55, 0x55, 0x55};
                frame_put_length(out, cases[i].n);
                ck_assert_mem_eq(out, cases[i].bytes, 4);
                ck_assert_uint_eq(frame_get_length(cases[i].bytes), cases[i].n);
        }
}
END_TEST

START_TEST(test_small_frames)
{
        uint64_t deadline = in_us(5 * SECOND);
        ck_assert_int_eq(frame_write(fds[1], "hello", 5, deadline), 0);
        ck_assert_int_eq(frame_write(fds[1], "", 0, deadline), 0);
        ck_assert_int_eq(frame_write(fds[1], "{\"a\": 1}", 8, deadline), 0);

        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        size_t n = 99;
        ck_assert_int_eq(frame_read(fds[0], deadline, &a, &n), 0);
        ck_assert_uint_eq(n, 5);
        ck_assert_str_eq(a, "hello");
        ck_assert_int_eq(frame_read(fds[0], deadline, &b, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_str_eq(b, "");
        ck_assert_int_eq(frame_read(fds[0], 0, &c, NULL), 0); /* no deadline; size optional */
        ck_assert_str_eq(c, "{\"a\": 1}");

        /* nothing left */
        char byte;
        ck_assert_int_eq(read(fds[0], &byte, 1), -1);
        ck_assert_int_eq(errno, EAGAIN);
}
END_TEST

START_TEST(test_wire_format)
{
        ck_assert_int_eq(frame_write(fds[1], "abc", 3, in_us(SECOND)), 0);
        uint8_t raw[16];
        ck_assert_int_eq(read(fds[0], raw, sizeof(raw)), 7);
        const uint8_t want[] = {0, 0, 0, 3, 'a', 'b', 'c'};
        ck_assert_mem_eq(raw, want, sizeof(want));

        /* and a hand-made frame is read back, bytes after a NUL included */
        const uint8_t frame[] = {0, 0, 0, 4, 'x', '\0', 'y', 'z'};
        ck_assert_int_eq(write(fds[1], frame, sizeof(frame)), (ssize_t)sizeof(frame));
        _cleanup_free_ char *got = NULL;
        size_t n = 0;
        ck_assert_int_eq(frame_read(fds[0], in_us(SECOND), &got, &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert_mem_eq(got, "x\0yz", 5);
}
END_TEST

typedef struct writer {
        int fd;
        const char *data;
        size_t size;
        unsigned count;
        int result;
} writer;

static void *write_frames(void *userdata)
{
        writer *w = userdata;
        w->result = 0;
        for (unsigned i = 0; i < w->count && w->result == 0; i++)
                w->result = frame_write(w->fd, w->data, w->size, in_us(20 * SECOND));
        return NULL;
}

START_TEST(test_large_frames)
{
        const size_t size = 1u << 20; /* far more than the pipe holds: needs a concurrent reader */
        _cleanup_free_ char *data = malloc(size);
        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < size; i++)
                data[i] = (char)(i * 7 + (i >> 10));

        writer w = {.fd = fds[1], .data = data, .size = size, .count = 3, .result = 1};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, write_frames, &w), 0);
        for (unsigned i = 0; i < 3; i++) {
                _cleanup_free_ char *got = NULL;
                size_t n = 0;
                int r = frame_read(fds[0], in_us(20 * SECOND), &got, &n);
                ck_assert_msg(r == 0, "frame %u: %d", i, r);
                ck_assert_uint_eq(n, size);
                ck_assert_int_eq(memcmp(got, data, size), 0);
                ck_assert_int_eq(got[size], '\0');
        }
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_eq(w.result, 0);
}
END_TEST

START_TEST(test_large_frame_fork)
{
        /* the same across processes, as with the agent */
        const size_t size = (1u << 20) + 3;
        _cleanup_free_ char *data = malloc(size);
        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < size; i++)
                data[i] = (char)(i ^ (i >> 8));
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(fds[0]);
                _exit(frame_write(fds[1], data, size, in_us(20 * SECOND)) == 0 ? 0 : 1);
        }
        close_end(1);
        _cleanup_free_ char *got = NULL;
        size_t n = 0;
        ck_assert_int_eq(frame_read(fds[0], in_us(20 * SECOND), &got, &n), 0);
        ck_assert_uint_eq(n, size);
        ck_assert_int_eq(memcmp(got, data, size), 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* the writer is gone: end of file */
        char *more = NULL;
        ck_assert_int_eq(frame_read(fds[0], in_us(SECOND), &more, NULL), -ECONNRESET);
        ck_assert_ptr_null(more);
}
END_TEST

START_TEST(test_eof)
{
        close_end(1);
        char *ret = NULL;
        size_t n = 77;
        ck_assert_int_eq(frame_read(fds[0], in_us(SECOND), &ret, &n), -ECONNRESET);
        ck_assert_int_eq(frame_read(fds[0], 0, &ret, &n), -ECONNRESET);
        ck_assert_ptr_null(ret);
        ck_assert_uint_eq(n, 77);
}
END_TEST

START_TEST(test_eof_mid_frame)
{
        /* a header announcing 10 bytes, 3 of them, then the writer leaves */
        const uint8_t partial[] = {0, 0, 0, 10, 'a', 'b', 'c'};
        ck_assert_int_eq(write(fds[1], partial, sizeof(partial)), (ssize_t)sizeof(partial));
        close_end(1);
        char *ret = NULL;
        ck_assert_int_eq(frame_read(fds[0], in_us(SECOND), &ret, NULL), -ECONNRESET);
        ck_assert_ptr_null(ret);

        /* half a header */
        close_end(0);
        pipe_setup();
        ck_assert_int_eq(write(fds[1], partial, 2), 2);
        close_end(1);
        ck_assert_int_eq(frame_read(fds[0], in_us(SECOND), &ret, NULL), -ECONNRESET);
}
END_TEST

START_TEST(test_read_timeout)
{
        char *ret = NULL;
        uint64_t start = now_us();
        ck_assert_int_eq(frame_read(fds[0], start + 100000, &ret, NULL), -ETIMEDOUT);
        uint64_t took = now_us() - start;
        ck_assert_uint_ge(took, 100000);
        ck_assert_uint_lt(took, 2 * SECOND);
        ck_assert_ptr_null(ret);

        /* a frame that starts but never ends */
        const uint8_t partial[] = {0, 0, 0, 10, 'a'};
        ck_assert_int_eq(write(fds[1], partial, sizeof(partial)), (ssize_t)sizeof(partial));
        start = now_us();
        ck_assert_int_eq(frame_read(fds[0], start + 50000, &ret, NULL), -ETIMEDOUT);
        ck_assert_uint_ge(now_us() - start, 50000);

        /* a deadline already past */
        ck_assert_int_eq(frame_read(fds[0], now_us() - 1, &ret, NULL), -ETIMEDOUT);
        ck_assert_ptr_null(ret);
}
END_TEST

START_TEST(test_write_timeout)
{
        /* fill the pipe, then nobody reads */
        char chunk[4096];
        memset(chunk, 'f', sizeof(chunk));
        while (write(fds[1], chunk, sizeof(chunk)) > 0)
                ;
        ck_assert_int_eq(errno, EAGAIN);
        uint64_t start = now_us();
        ck_assert_int_eq(frame_write(fds[1], "late", 4, start + 100000), -ETIMEDOUT);
        uint64_t took = now_us() - start;
        ck_assert_uint_ge(took, 100000);
        ck_assert_uint_lt(took, 2 * SECOND);
}
END_TEST

START_TEST(test_oversized)
{
        /* a header announcing more than FRAME_MAX */
        uint8_t header[4];
        frame_put_length(header, FRAME_MAX + 1);
        ck_assert_int_eq(write(fds[1], header, 4), 4);
        char *ret = NULL;
        ck_assert_int_eq(frame_read(fds[0], in_us(SECOND), &ret, NULL), -EPROTO);
        ck_assert_ptr_null(ret);

        frame_put_length(header, 0xffffffff);
        ck_assert_int_eq(write(fds[1], header, 4), 4);
        ck_assert_int_eq(frame_read(fds[0], in_us(SECOND), &ret, NULL), -EPROTO);

        /* FRAME_MAX itself is allowed: the reader waits for the body */
        frame_put_length(header, FRAME_MAX);
        ck_assert_int_eq(write(fds[1], header, 4), 4);
        ck_assert_int_eq(frame_read(fds[0], in_us(50000), &ret, NULL), -ETIMEDOUT);

        /* and the writer refuses to send more, writing nothing */
        static const char small[1];
        ck_assert_int_eq(frame_write(fds[1], small, (size_t)FRAME_MAX + 1, in_us(SECOND)), -EMSGSIZE);
        char byte;
        ck_assert_int_eq(read(fds[0], &byte, 1), -1);
        ck_assert_int_eq(errno, EAGAIN);
}
END_TEST

START_TEST(test_epipe)
{
        /* SIGPIPE at its default action would kill this process (Check reports signal 13) */
        ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
        close_end(0);
        ck_assert_int_eq(frame_write(fds[1], "anyone?", 7, in_us(SECOND)), -EPIPE);
        ck_assert_int_eq(frame_write(fds[1], "", 0, 0), -EPIPE);

        /* the signal was swallowed, not left pending */
        sigset_t pending;
        ck_assert_int_eq(sigpending(&pending), 0);
        ck_assert(!sigismember(&pending, SIGPIPE));
        /* and the thread's signal mask is as it was */
        sigset_t mask;
        ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
        ck_assert(!sigismember(&mask, SIGPIPE));
}
END_TEST

START_TEST(test_epipe_large)
{
        /* the reader leaves in the middle of a frame bigger than the pipe */
        ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
        const size_t size = 1u << 20;
        _cleanup_free_ char *data = calloc(1, size);
        ck_assert_ptr_nonnull(data);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                close(fds[1]);
                char buf[1000];
                usleep(50000);
                (void)!read(fds[0], buf, sizeof(buf));
                _exit(0);
        }
        close_end(0);
        ck_assert_int_eq(frame_write(fds[1], data, size, in_us(10 * SECOND)), -EPIPE);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
}
END_TEST

static Suite *frame_suite(void)
{
        Suite *s = suite_create("frame");

        TCase *tc = tcase_create("encoding");
        tcase_add_test(tc, test_length_encoding);
        suite_add_tcase(s, tc);

        tc = tcase_create("pipe");
        tcase_add_checked_fixture(tc, pipe_setup, pipe_teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_small_frames);
        tcase_add_test(tc, test_wire_format);
        tcase_add_test(tc, test_large_frames);
        tcase_add_test(tc, test_large_frame_fork);
        tcase_add_test(tc, test_eof);
        tcase_add_test(tc, test_eof_mid_frame);
        tcase_add_test(tc, test_read_timeout);
        tcase_add_test(tc, test_write_timeout);
        tcase_add_test(tc, test_oversized);
        tcase_add_test(tc, test_epipe);
        tcase_add_test(tc, test_epipe_large);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(frame_suite());
}

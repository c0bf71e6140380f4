/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent.h"
#include "capture.h"
#include "util.h"

#define MAX_LOGS (1u << 20) /* what a reply carries of each text, in bytes */
static const char truncated_note[] = "\n[prewarm: logs truncated]\n";

/* Appends what fits of buf[0..n) under MAX_LOGS; the rest only marks the text truncated. */
static void text_append(text_buf *t, const char *buf, size_t n)
{
        size_t room = MAX_LOGS - t->len;
        size_t take = n < room ? n : room;
        if (take < n)
                t->truncated = true;
        if (!take || grow_buffer((void **)&t->data, &t->cap, t->len + take, 4096) < 0)
                return;
        memcpy(t->data + t->len, buf, take);
        t->len += take;
}

/* The write function of a captured stdio stream: its own text, and both in order. */
static ssize_t stream_write(void *cookie, const char *buf, size_t n)
{
        struct capture_cookie *s = cookie;
        text_append(s->own, buf, n);
        text_append(&s->c->both, buf, n);
        return (ssize_t)n; /* never an error: a full text only drops output */
}

static FILE *stream_open(struct capture_cookie *s)
{
        FILE *f = fopencookie(s, "w", (cookie_io_functions_t){.write = stream_write});
        if (f)
                setvbuf(f, NULL, _IONBF, 0); /* each write in place: the order of the two holds */
        return f;
}

/* Points fd (1 or 2) at a new memory file, keeping what it was in *saved. */
static int redirect_fd(int fd, int *saved, int *raw)
{
        *raw = memfd_create(fd == 1 ? "stdout" : "stderr", MFD_CLOEXEC);
        if (*raw < 0)
                return negative_errno();
        *saved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
        if (*saved < 0 || dup2(*raw, fd) < 0)
                return negative_errno();
        return 0;
}

static void restore_fd(int fd, int *saved)
{
        if (*saved < 0)
                return;
        dup2(*saved, fd);
        close(*saved);
        *saved = -1;
}

int capture_begin(capture *c)
{
        fflush(stdout); /* what the agent's own streams hold is not the function's */
        fflush(stderr);
        c->cookie[0] = (struct capture_cookie){c, &c->out};
        c->cookie[1] = (struct capture_cookie){c, &c->err};
        c->stream[0] = stream_open(&c->cookie[0]);
        c->stream[1] = stream_open(&c->cookie[1]);
        int r = c->stream[0] && c->stream[1] ? 0 : -ENOMEM;
        for (int k = 0; r >= 0 && k < 2; k++)
                r = redirect_fd(k + 1, &c->saved_fd[k], &c->raw_fd[k]);
        if (r < 0) {
                capture_end(c);
                return r;
        }
        c->saved_stream[0] = stdout;
        c->saved_stream[1] = stderr;
        stdout = c->stream[0]; /* glibc's stdout and stderr are plain variables, for this */
        stderr = c->stream[1];
        c->active = true;
        return 0;
}

/* What went to memory file fd, appended to own and both, as far as own keeps it. */
static void collect_raw(capture *c, int fd, text_buf *own)
{
        char buf[65536];
        ssize_t n;
        lseek(fd, 0, SEEK_SET);
        while (!own->truncated && (n = read(fd, buf, sizeof(buf))) > 0) {
                text_append(own, buf, (size_t)n);
                text_append(&c->both, buf, (size_t)n);
        }
        c->both.truncated = c->both.truncated || own->truncated;
}

void capture_end(capture *c)
{
        fflush(NULL); /* every stream the function wrote to, the original stdout among them */
        if (c->active) {
                stdout = c->saved_stream[0];
                stderr = c->saved_stream[1];
                c->active = false;
        }
        for (int k = 0; k < 2; k++) {
                if (c->stream[k])
                        fclose(c->stream[k]);
                c->stream[k] = NULL;
                restore_fd(k + 1, &c->saved_fd[k]);
        }
        for (int k = 0; k < 2; k++)
                if (c->raw_fd[k] >= 0) {
                        collect_raw(c, c->raw_fd[k], k == 0 ? &c->out : &c->err);
                        close(c->raw_fd[k]);
                        c->raw_fd[k] = -1;
                }
}

void capture_done(capture *c)
{
        capture_end(c);
        text_buf *texts[] = {&c->out, &c->err, &c->both};
        for (size_t k = 0; k < ELEMENTSOF(texts); k++) {
                free(texts[k]->data);
                *texts[k] = (text_buf){0};
        }
}

/* The text as a JSON string: valid UTF-8, with the truncation noted. */
static json_t *text_json(const text_buf *t)
{
        size_t len;
        _cleanup_free_ char *clean = utf8_clean(t->data ? t->data : "", t->len, &len);
        if (!clean)
                return NULL;
        if (t->truncated) {
                char *longer = realloc(clean, len + sizeof(truncated_note));
                if (!longer)
                        return NULL;
                clean = longer;
                memcpy(clean + len, truncated_note, sizeof(truncated_note));
                len += sizeof(truncated_note) - 1;
        }
        return json_stringn(clean, len);
}

int capture_add_fields(const capture *c, json_t *reply, bool always_logs)
{
        const struct {
                const char *key;
                const text_buf *text;
                bool always;
        } fields[] = {{"logs", &c->both, always_logs}, {"stdout", &c->out, false}, {"stderr", &c->err, false}};
        for (size_t k = 0; k < ELEMENTSOF(fields); k++) {
                if (!fields[k].text->len && !fields[k].always)
                        continue;
                if (json_object_set_new(reply, fields[k].key, text_json(fields[k].text)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

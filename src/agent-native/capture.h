/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the function prints while it loads or runs: its stdout and stderr, each on its own and both
 * in order, for the reply's "stdout", "stderr" and "logs" (docs/agent-protocol.md).
 *
 * Two ways in, because a C function writes through both: the stdio streams stdout and stderr are
 * swapped for unbuffered streams that append to the texts as they are written, which keeps the
 * order of the two; and descriptors 1 and 2 lead to memory files for what bypasses stdio (write(2),
 * child processes, a stream the function kept from before), appended after the rest, stdout's
 * first. Each text keeps at most 1 MiB.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct text_buf {
        char *data;
        size_t len, cap;
        bool truncated; /* more was written than it keeps */
} text_buf;

typedef struct capture {
        text_buf out, err, both;
        struct capture_cookie {
                struct capture *c;
                text_buf *own;
        } cookie[2];           /* what the stdio streams write into */
        FILE *saved_stream[2]; /* stdout and stderr as they were */
        FILE *stream[2];       /* what stdout and stderr are during the capture */
        int saved_fd[2];       /* descriptors 1 and 2 as they were */
        int raw_fd[2];         /* the memory files they lead to during the capture */
        bool active;
} capture;

#define CAPTURE_INIT {.saved_fd = {-1, -1}, .raw_fd = {-1, -1}}

/* Starts capturing. Errors: -ENOMEM, -EMFILE (nothing changed then). */
int capture_begin(capture *c);

/* Stops capturing: stdout, stderr and fds 1 and 2 are what they were, the texts complete. */
void capture_end(capture *c);

/* Releases the texts (and ends a capture still running). */
void capture_done(capture *c);
#define _cleanup_capture_ __attribute__((cleanup(capture_done)))

/* Adds "logs", "stdout" and "stderr" to reply, each when it has text ("logs" always when
 * always_logs). -ENOMEM. */
int capture_add_fields(const capture *c, json_t *reply, bool always_logs);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Control-channel framing (docs/agent-protocol.md): 4-byte big-endian length, then the bytes. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define FRAME_MAX (64u << 20)

void frame_put_length(uint8_t out[4], uint32_t n);
uint32_t frame_get_length(const uint8_t in[4]);

/* Writes one frame to fd before deadline_us (monotonic, 0 = none). fd may be non-blocking.
 * A closed reader gives -EPIPE, never SIGPIPE. -ETIMEDOUT past the deadline, -EMSGSIZE if too big. */
int frame_write(int fd, const void *data, size_t n, uint64_t deadline_us);

/* Reads one frame from fd before deadline_us. *ret is NUL-terminated and owned by the caller.
 * -ECONNRESET at end of file, -ETIMEDOUT past the deadline, -EPROTO for a length over FRAME_MAX. */
int frame_read(int fd, uint64_t deadline_us, char **ret, size_t *ret_size);

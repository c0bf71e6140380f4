/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SHA-256 (OpenSSL's) and "sha256:HEX" pins. */
#pragma once

#include <stddef.h>

typedef struct evp_md_ctx_st sha256_ctx;

sha256_ctx *sha256_begin(void);
void sha256_update(sha256_ctx *ctx, const void *data, size_t n);
/* Writes 64 hex digits and a NUL to out and frees ctx. */
void sha256_end_hex(sha256_ctx *ctx, char out[65]);

int sha256_buffer_hex(const void *data, size_t n, char out[65]);
/* Hashes a file read through fd (from its current offset to EOF). */
int sha256_fd_hex(int fd, char out[65]);

/* Parses "sha256:HEX" (64 hex digits, either case) into lowercase hex. -EINVAL otherwise. */
int digest_parse(const char *pin, char out[65]);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SHA-256 with OpenSSL, and the "sha256:HEX" pins users give for code.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "digest.h"
#include "util.h"

sha256_ctx *sha256_begin(void)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return NULL;
        }
        return ctx;
}

void sha256_update(sha256_ctx *ctx, const void *data, size_t n)
{
        EVP_DigestUpdate(ctx, data, n);
}

void sha256_end_hex(sha256_ctx *ctx, char out[65])
{
        uint8_t md[32];
        unsigned len = 0;
        EVP_DigestFinal_ex(ctx, md, &len);
        EVP_MD_CTX_free(ctx);
        hex_encode(md, sizeof(md), out);
}

int sha256_buffer_hex(const void *data, size_t n, char out[65])
{
        sha256_ctx *ctx = sha256_begin();
        if (!ctx)
                return -ENOMEM;
        sha256_update(ctx, data, n);
        sha256_end_hex(ctx, out);
        return 0;
}

int sha256_fd_hex(int fd, char out[65])
{
        sha256_ctx *ctx = sha256_begin();
        if (!ctx)
                return -ENOMEM;
        _cleanup_free_ char *buf = malloc(1 << 20);
        if (!buf) {
                EVP_MD_CTX_free(ctx);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read_full(fd, buf, 1 << 20);
                if (n < 0) {
                        EVP_MD_CTX_free(ctx);
                        return (int)n;
                }
                if (n == 0)
                        break;
                sha256_update(ctx, buf, (size_t)n);
        }
        sha256_end_hex(ctx, out);
        return 0;
}

int digest_parse(const char *pin, char out[65])
{
        static const char prefix[] = "sha256:";
        if (!pin || strncasecmp(pin, prefix, strlen(prefix)))
                return -EINVAL;
        const char *hex = pin + strlen(prefix);
        if (strlen(hex) != 64)
                return -EINVAL;
        for (size_t i = 0; i < 64; i++) {
                if (!isxdigit((unsigned char)hex[i]))
                        return -EINVAL;
                out[i] = (char)tolower((unsigned char)hex[i]);
        }
        out[64] = '\0';
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Code blobs: where a function's code comes from, read on the host, checked against its pin. */
#pragma once

#include "code_policy.h"
#include "internal.h"

/* The default and the ceiling of a code blob's size (pw_code_policy.max_code_bytes). */
#define BLOB_MAX (48u << 20)
#define BLOB_CEILING (60u << 20)

typedef enum code_scheme { CODE_FILE, CODE_HTTP } code_scheme;

typedef struct code_uri {
        code_scheme scheme;
        char *location; /* absolute path for CODE_FILE, the URL for CODE_HTTP */
        char *filename; /* last path component: decides source file or .zip archive */
} code_uri;

void code_uri_done(code_uri *u);
/* Accepts file:///abs/path, /abs/path, http://..., https://... -EINVAL with a reason otherwise. */
int code_uri_parse(const char *uri, code_uri *ret, pw_err *err);

typedef struct blob {
        char *data;
        size_t size;
        char *filename;
} blob;

void blob_done(blob *b);
/* Reads the blob behind uri (at most max bytes) and checks it against digest ("sha256:HEX" or
 * NULL); with a policy, only where the policy allows (NULL: anywhere). Errors: -EINVAL (bad URI
 * or pin), -EACCES (the policy refuses it), -ENOENT, -EFBIG, -EHOSTUNREACH, -EBADMSG (mismatch).
 * A refused file's content, size and digest never show in err. */
int blob_fetch(const char *uri, const char *digest, size_t max, const code_policy *policy, blob *ret, pw_err *err);

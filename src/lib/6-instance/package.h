/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A directory of code as one ustar archive (package.c). */
#pragma once

#include "internal.h"

/* Archives the regular files and directories below dir (an open directory; links and other file
 * systems left out) into *ret (caller frees), at most max bytes. what names it in messages.
 * Errors: -EFBIG, -ENAMETOOLONG, -ELOOP (too deep), -ENOMEM, read errors. */
int package_directory(int dir, const char *what, size_t max, char **ret, size_t *ret_size, pw_err *err);

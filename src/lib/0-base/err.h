/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reasons of failures, the one error style of the library and of prewarmd (error.c). */
#pragma once

#include "util.h"

/* A reason for a failure, built from the innermost cause outwards:
 * "restore of template python3: criu: Can't mount ...". */
typedef struct pw_err {
        char msg[2048];
} pw_err;

/* Sets the reason and returns r (a negative errno, or 0) so that callers can `return err_set(...)`. */
int err_set(pw_err *err, int r, const char *fmt, ...) _printf_(3, 4);
/* Puts "PREFIX: " in front of the reason already set; returns r. */
int err_prefix(pw_err *err, int r, const char *fmt, ...) _printf_(3, 4);

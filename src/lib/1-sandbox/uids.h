/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Host uids for sandboxes. Function code runs as an unprivileged host uid (and the gid of the same
 * number) from a range reserved for prewarm, one uid per live sandbox, so that no two instances
 * share one even across engines: one could not signal, trace or read another even if a namespace
 * were shared. The top uid of the range is the template builds' (a build's zygote runs no
 * function code); the others are handed out.
 *
 * Engines in different processes share the range through a lock file with one byte per uid
 * (open-file-description locks, released when the engine dies); engines in one process share it
 * through that file too, and an engine's own uids through a bitmap.
 */
#pragma once

#include "internal.h"

#define PW_DEFAULT_UID_BASE 1879048192u /* 0x70000000: just above systemd's container range */
#define PW_DEFAULT_UID_COUNT 65536u

typedef struct uid_pool uid_pool;

/* The range [base, base + count). 0 selects the default; $PREWARM_UID_RANGE="BASE:COUNT" overrides
 * a 0. Errors: -EINVAL (range reaches uid 0, or past 2^32 - 2, or fewer than 2 uids). */
int uid_pool_new(unsigned base, unsigned count, uid_pool **ret, pw_err *err);
uid_pool *uid_pool_free(uid_pool *p);

/* A uid no live sandbox of any engine holds, until uid_release. -EAGAIN when all are taken. */
int uid_take(uid_pool *p, uid_t *ret, pw_err *err);
void uid_release(uid_pool *p, uid_t uid);

/* The uid template builds run as. */
uid_t uid_builder(const uid_pool *p);
/* Whether uid is in the range. */
bool uid_in_range(const uid_pool *p, uid_t uid);
void uid_range(const uid_pool *p, uid_t *ret_base, unsigned *ret_count);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where an engine may take code from when the URIs come from other people (prewarmd's callers):
 * local files only beneath configured roots, resolved so that "..", symlinks, magic links and
 * mount points cannot lead out; http(s) only to public addresses, checked on the address each
 * connection (redirects included) actually goes to, plus ranges the operator opens. An engine
 * without a policy reads any path and fetches from anywhere, as its own (root) caller may.
 */
#pragma once

#include <sys/socket.h>

#include "internal.h"

typedef struct code_policy code_policy;

/* Copies p. Errors: -EINVAL (a root that is not an absolute directory path, a bad CIDR). */
int code_policy_new(const pw_code_policy *p, code_policy **ret, pw_err *err);
code_policy *code_policy_free(code_policy *p);

/* Opens path (absolute) for reading when it lies beneath one of p's roots. Errors: -EACCES
 * (beneath none, or it leads out of its root: the message never says whether it exists), -ENOENT
 * and the like for a path beneath a root. */
int code_policy_open(const code_policy *p, const char *path, int *ret_fd, pw_err *err);

/* Whether an http(s) fetch may connect to sa; why not, in why. Loopback, link-local, private,
 * shared (CGNAT), unique-local, multicast, unspecified and reserved addresses are refused unless
 * one of p's ranges holds them; IPv4-mapped IPv6 addresses count as their IPv4 address. */
bool code_policy_address_ok(const code_policy *p, const struct sockaddr *sa, char *why, size_t n);

/* The largest code blob p lets through (BLOB_MAX without a policy). */
uint64_t code_policy_max_bytes(const code_policy *p);

/* "ADDRESS/PREFIX" into its family, bytes and prefix length. For the daemon's option parsing. */
int cidr_parse(const char *s, int *ret_family, uint8_t ret_addr[16], unsigned *ret_prefix);

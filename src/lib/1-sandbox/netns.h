/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network namespaces with loopback up, made ahead of time for restores (libnl). */
#pragma once

#include "internal.h"

/* Key under which a template's network namespace is external in its images: the restore hands
 * CRIU a namespace under this name (inherit_fd). */
#define NETNS_EXTERNAL_KEY "prewarm-netns"

/* Creates a network namespace with loopback up; *ret_fd refers to it (O_CLOEXEC). */
int netns_create(int *ret_fd, pw_err *err);

typedef struct netns_pool netns_pool;

netns_pool *netns_pool_new(void);
/* Stops the refill thread and closes the namespaces not handed out. Accepts NULL. */
netns_pool *netns_pool_free(netns_pool *p);
/* A ready namespace from the pool, or one made now if the pool is empty; the caller owns *ret_fd.
 * Each call asks the background thread to make another. */
int netns_take(netns_pool *p, int *ret_fd, pw_err *err);
/* Closes the namespaces not handed out and stops the refill thread until the next take. */
void netns_pool_drain(netns_pool *p);

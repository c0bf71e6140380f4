/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What one HTTP server lets its clients hold: at most max_connections open connections, at most
 * max_connections_per_address from one TCP address, and request_deadline_s to send a whole request
 * (headers and body) from when the connection opened or its last answer went out. A byte now and
 * then does not extend the deadline, so slow clients cannot keep connections for ever, and a cap
 * per address keeps one client from taking them all. Connections over a cap and past the deadline
 * are shut down (the client sees its connection closed) and counted in the metrics.
 */
#pragma once

#include <microhttpd.h>

#include "daemon.h"

typedef struct conn_guard conn_guard;

/* Starts the thread that enforces the deadline. */
int conn_guard_new(daemon_ctx *d, conn_guard **ret);
/* Stops it; the server must have been stopped first. Accepts NULL. */
conn_guard *conn_guard_free(conn_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION's callback, with the guard as its closure. */
void conn_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe);
/* The connection's request has been read whole: no deadline while it is being answered. */
void conn_guard_request_read(struct MHD_Connection *c);
/* Its answer is out: the deadline runs again, for the next request on the connection. */
void conn_guard_request_done(struct MHD_Connection *c);

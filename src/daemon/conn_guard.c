/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What one HTTP server lets its clients hold (conn_guard.h): connection caps overall and per
 * address, and a deadline for a whole request.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "conn_guard.h"
#include "metrics.h"

#define ADDRESS_BUCKETS 1024

typedef struct address_count {
        uint8_t key[17]; /* family, then the address bytes */
        unsigned count;
        struct address_count *next;
} address_count;

/* One open connection. */
typedef struct tracked {
        conn_guard *guard;
        int fd;
        uint8_t key[17];
        bool has_key;       /* a TCP client, counted per address */
        bool reading;       /* a request is due: the deadline runs */
        uint64_t since_us;
        struct tracked *prev, *next;
} tracked;

struct conn_guard {
        daemon_ctx *d;
        pthread_mutex_t lock; /* guards everything below */
        pthread_cond_t wake;
        bool stop;
        pthread_t thread;
        unsigned open;
        address_count *by_address[ADDRESS_BUCKETS];
        tracked *conns;
};

static bool address_key(const struct sockaddr *sa, uint8_t key[17])
{
        memset(key, 0, 17);
        if (sa->sa_family == AF_INET) {
                key[0] = 4;
                memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                return true;
        }
        if (sa->sa_family == AF_INET6) {
                key[0] = 6;
                memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
                return true;
        }
        return false; /* the unix socket: one local client, capped overall only */
}

static address_count **bucket(conn_guard *g, const uint8_t key[17])
{
        unsigned h = 2166136261u;
        for (size_t i = 0; i < 17; i++)
                h = (h ^ key[i]) * 16777619u;
        return &g->by_address[h % ADDRESS_BUCKETS];
}

/* Adds delta to the count of key; the count after, or -1 without memory. Lock held. */
static long count_address(conn_guard *g, const uint8_t key[17], int delta)
{
        address_count **b = bucket(g, key), *a = *b, *prev = NULL;
        while (a && memcmp(a->key, key, 17)) {
                prev = a;
                a = a->next;
        }
        if (!a) {
                if (delta < 0 || !(a = calloc(1, sizeof(*a))))
                        return -1;
                memcpy(a->key, key, 17);
                a->next = *b;
                *b = a;
                prev = NULL;
        }
        a->count = (unsigned)((long)a->count + delta);
        long now = a->count;
        if (!a->count) {
                if (prev)
                        prev->next = a->next;
                else
                        *b = a->next;
                free(a);
        }
        return now;
}

static void started(conn_guard *g, struct MHD_Connection *c, void **socket_context)
{
        const union MHD_ConnectionInfo *fd_info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        tracked *t = calloc(1, sizeof(*t));
        if (!t || !fd_info) {
                free(t);
                if (fd_info)
                        shutdown(fd_info->connect_fd, SHUT_RDWR); /* no memory to watch it: not served */
                return;
        }
        *t = (tracked){.guard = g, .fd = fd_info->connect_fd, .reading = true, .since_us = now_us()};
        t->has_key = addr && addr->client_addr && address_key(addr->client_addr, t->key);
        const daemon_config *cfg = &g->d->cfg;
        pthread_mutex_lock(&g->lock);
        g->open++;
        long from_address = t->has_key ? count_address(g, t->key, +1) : 0;
        if (from_address < 0)
                t->has_key = false;
        bool overall = g->open > cfg->max_connections;
        bool per_address = t->has_key && (unsigned long)from_address > cfg->max_connections_per_address;
        t->next = g->conns;
        if (g->conns)
                g->conns->prev = t;
        g->conns = t;
        pthread_mutex_unlock(&g->lock);
        *socket_context = t;
        metrics_connection(g->d->metrics, +1);
        if (overall || per_address) {
                metrics_connection_refused(g->d->metrics, per_address);
                shutdown(t->fd, SHUT_RDWR); /* MHD closes it, and CLOSED forgets it */
        }
}

static void closed(conn_guard *g, tracked *t)
{
        pthread_mutex_lock(&g->lock);
        g->open--;
        if (t->has_key)
                count_address(g, t->key, -1);
        if (t->prev)
                t->prev->next = t->next;
        else
                g->conns = t->next;
        if (t->next)
                t->next->prev = t->prev;
        pthread_mutex_unlock(&g->lock);
        metrics_connection(g->d->metrics, -1);
        free(t);
}

void conn_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe)
{
        conn_guard *g = cls;
        if (toe == MHD_CONNECTION_NOTIFY_STARTED)
                started(g, c, socket_context);
        else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context)
                closed(g, TAKE_PTR(*socket_context));
}

static void set_reading(struct MHD_Connection *c, bool reading)
{
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        tracked *t = info ? info->socket_context : NULL;
        if (!t)
                return;
        pthread_mutex_lock(&t->guard->lock);
        t->reading = reading;
        t->since_us = now_us();
        pthread_mutex_unlock(&t->guard->lock);
}

void conn_guard_request_read(struct MHD_Connection *c)
{
        set_reading(c, false);
}

void conn_guard_request_done(struct MHD_Connection *c)
{
        set_reading(c, true);
}

/* Shuts down the connections whose request is overdue. Lock held. */
static void enforce_deadline(conn_guard *g)
{
        uint64_t now = now_us(), deadline = (uint64_t)g->d->cfg.request_deadline_s * 1000000;
        for (tracked *t = g->conns; t; t = t->next)
                if (t->reading && now - t->since_us > deadline) {
                        t->reading = false; /* once */
                        shutdown(t->fd, SHUT_RDWR);
                        metrics_request_deadline(g->d->metrics);
                }
}

static void *watchdog(void *userdata)
{
        conn_guard *g = userdata;
        pthread_mutex_lock(&g->lock);
        while (!g->stop) {
                const struct timespec until = realtime_after_ms(250);
                pthread_cond_timedwait(&g->wake, &g->lock, &until);
                if (!g->stop)
                        enforce_deadline(g);
        }
        pthread_mutex_unlock(&g->lock);
        return NULL;
}

int conn_guard_new(daemon_ctx *d, conn_guard **ret)
{
        conn_guard *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->d = d;
        pthread_mutex_init(&g->lock, NULL);
        pthread_cond_init(&g->wake, NULL);
        int r = pthread_create(&g->thread, NULL, watchdog, g);
        if (r) {
                pthread_cond_destroy(&g->wake);
                pthread_mutex_destroy(&g->lock);
                free(g);
                return -r;
        }
        *ret = g;
        return 0;
}

conn_guard *conn_guard_free(conn_guard *g)
{
        if (!g)
                return NULL;
        pthread_mutex_lock(&g->lock);
        g->stop = true;
        pthread_cond_broadcast(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
        for (size_t i = 0; i < ADDRESS_BUCKETS; i++)
                while (g->by_address[i]) {
                        address_count *next = g->by_address[i]->next;
                        free(g->by_address[i]);
                        g->by_address[i] = next;
                }
        while (g->conns) { /* the server is stopped: no CLOSED will come for these */
                tracked *next = g->conns->next;
                free(g->conns);
                g->conns = next;
        }
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
}

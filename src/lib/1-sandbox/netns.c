/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Network namespaces made ahead of time.
 *
 * A sandbox's network is a namespace with loopback up and nothing else. Left to CRIU, restoring it
 * means running `ip` five times and iptables-restore twice (~25 ms here). Templates are instead
 * dumped with their namespace marked external, and each restore hands CRIU a namespace from this
 * pool through inherit_fd: created with unshare() and configured with libnl by a background
 * thread while no one waits for it.
 */
#include <fcntl.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <sched.h>

#include "netns.h"

#define NETNS_POOL_SIZE 4

struct netns_pool {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        int fds[NETNS_POOL_SIZE];
        unsigned n;
        bool stop, thread_started;
        pthread_t thread;
};

/* Sets loopback up in the calling thread's current network namespace. */
static int loopback_up(pw_err *err)
{
        struct nl_sock *sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        struct rtnl_link *lo = NULL, *change = NULL;
        int r = nl_connect(sk, NETLINK_ROUTE);
        if (r >= 0)
                r = rtnl_link_get_kernel(sk, 0, "lo", &lo);
        if (r >= 0 && !(change = rtnl_link_alloc()))
                r = -NLE_NOMEM;
        if (r >= 0) {
                rtnl_link_set_flags(change, IFF_UP);
                r = rtnl_link_change(sk, lo, change, 0);
        }
        if (r < 0)
                err_set(err, -EIO, "bringing loopback up: %s", nl_geterror(r));
        rtnl_link_put(change);
        rtnl_link_put(lo);
        nl_socket_free(sk);
        return r < 0 ? -EIO : 0;
}

int netns_create(int *ret_fd, pw_err *err)
{
        /* The calling thread visits the new namespace and comes back; other threads stay put. */
        _cleanup_close_ int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (home < 0)
                return err_set(err, negative_errno(), "opening this thread's network namespace: %m");
        if (unshare(CLONE_NEWNET) < 0)
                return err_set(err, negative_errno(), "unshare(CLONE_NEWNET): %m");
        int r = 0;
        _cleanup_close_ int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                r = err_set(err, negative_errno(), "opening a new network namespace: %m");
        if (r >= 0)
                r = loopback_up(err);
        if (setns(home, CLONE_NEWNET) < 0) /* cannot fail for our own former namespace as root */
                r = err_set(err, negative_errno(), "returning to the engine's network namespace: %m");
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void *refill_thread(void *userdata)
{
        netns_pool *p = userdata;
        pthread_mutex_lock(&p->lock);
        while (!p->stop) {
                if (p->n == NETNS_POOL_SIZE) {
                        pthread_cond_wait(&p->wake, &p->lock);
                        continue;
                }
                pthread_mutex_unlock(&p->lock);
                pw_err err;
                int fd = -1;
                int r = netns_create(&fd, &err);
                pthread_mutex_lock(&p->lock);
                if (r < 0) {
                        /* Takers fall back to making their own and will report the reason. */
                        const struct timespec until = realtime_after_ms(1000);
                        pthread_cond_timedwait(&p->wake, &p->lock, &until);
                } else if (p->stop || p->n == NETNS_POOL_SIZE) {
                        close(fd);
                } else {
                        p->fds[p->n++] = fd;
                }
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

netns_pool *netns_pool_new(void)
{
        netns_pool *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        return p;
}

netns_pool *netns_pool_free(netns_pool *p)
{
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        if (p->thread_started)
                pthread_join(p->thread, NULL);
        for (unsigned i = 0; i < p->n; i++)
                close(p->fds[i]);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

int netns_take(netns_pool *p, int *ret_fd, pw_err *err)
{
        int fd = -1;
        pthread_mutex_lock(&p->lock);
        /* Started on first use: an engine that never restores never creates a namespace. */
        if (!p->thread_started && pthread_create(&p->thread, NULL, refill_thread, p) == 0)
                p->thread_started = true;
        if (p->n > 0)
                fd = p->fds[--p->n];
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        return netns_create(ret_fd, err);
}

void netns_pool_drain(netns_pool *p)
{
        pthread_mutex_lock(&p->lock);
        while (p->n > 0)
                close(p->fds[--p->n]);
        /* The refill thread makes new ones as soon as it can; stop it until the next take. */
        p->stop = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        if (p->thread_started)
                pthread_join(p->thread, NULL);
        pthread_mutex_lock(&p->lock);
        p->thread_started = false;
        p->stop = false;
        while (p->n > 0) /* made between the first drain and the join */
                close(p->fds[--p->n]);
        pthread_mutex_unlock(&p->lock);
}

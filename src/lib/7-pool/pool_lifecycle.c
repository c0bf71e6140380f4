/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool's life: its state made (pool.c), then its threads started (pool_threads.c); at the end
 * the threads stopped before the state goes. */
#include "pool.h"

PW_PUBLIC int pw_pool_new(pw_engine *e, const pw_pool_options *opts, pw_pool **ret)
{
        pw_pool *p = NULL;
        int r = pool_alloc(e, opts, &p);
        if (r < 0)
                return r;
        if ((r = pool_threads_start(p)) < 0) {
                pool_release(p);
                return r;
        }
        *ret = p;
        return 0;
}

PW_PUBLIC pw_pool *pw_pool_free(pw_pool *p)
{
        if (!p)
                return NULL;
        pool_threads_stop(p);
        pool_release(p);
        return NULL;
}

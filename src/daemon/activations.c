/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Records of asynchronous invocations (activations.h): started, finished, the newest kept.
 */
#include <pthread.h>
#include <sys/random.h>

#include "activations.h"

struct activations {
        pthread_mutex_t lock;
        json_t *records;  /* id -> record */
        json_t *finished; /* ids of finished records, oldest first */
        unsigned running;
};

activations *activations_new(void)
{
        activations *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        pthread_mutex_init(&a->lock, NULL);
        a->records = json_object();
        a->finished = json_array();
        if (!a->records || !a->finished)
                return activations_free(a);
        return a;
}

activations *activations_free(activations *a)
{
        if (!a)
                return NULL;
        json_decref(a->records);
        json_decref(a->finished);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
}

void random_id(char id[33])
{
        uint8_t bytes[16];
        if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes)) {
                /* Never short for 16 bytes once the pool is initialized; keep ids unique anyway. */
                static atomic_ullong fallback;
                uint64_t v = now_us() ^ atomic_fetch_add(&fallback, 1);
                memcpy(bytes, &v, sizeof(v));
                memcpy(bytes + 8, &v, sizeof(v));
        }
        hex_encode(bytes, sizeof(bytes), id);
}

int activations_start(activations *a, const char *function, char id[33])
{
        random_id(id);
        json_t *record = json_pack("{s:s, s:s, s:s, s:I}", "activation_id", id, "function", function,
                                   "status", "running", "start", (json_int_t)wall_ms());
        if (!record)
                return -ENOMEM;
        pthread_mutex_lock(&a->lock);
        int r = a->running >= ACTIVATIONS_MAX_RUNNING ? -EAGAIN : 0;
        if (r == 0 && json_object_set_new(a->records, id, record) < 0)
                r = -ENOMEM;
        else if (r == 0)
                a->running++;
        pthread_mutex_unlock(&a->lock);
        if (r < 0 && r != -ENOMEM)
                json_decref(record);
        return r;
}

/* Drops the oldest finished records beyond the limit; lock held. */
static void trim(activations *a)
{
        while (json_array_size(a->finished) > ACTIVATIONS_KEEP) {
                json_object_del(a->records, json_string_value(json_array_get(a->finished, 0)));
                json_array_remove(a->finished, 0);
        }
}

void activations_finish(activations *a, const char *id, json_t *outcome)
{
        pthread_mutex_lock(&a->lock);
        json_t *record = json_object_get(a->records, id);
        if (record) {
                json_object_update(record, outcome);
                json_object_set_new(record, "end", json_integer((json_int_t)wall_ms()));
                json_array_append_new(a->finished, json_string(id));
                a->running--;
                trim(a);
        }
        pthread_mutex_unlock(&a->lock);
        json_decref(outcome);
}

json_t *activations_get(activations *a, const char *id)
{
        pthread_mutex_lock(&a->lock);
        json_t *record = json_deep_copy(json_object_get(a->records, id));
        pthread_mutex_unlock(&a->lock);
        return record;
}

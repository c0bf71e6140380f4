/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarmd's counters, histograms and gauges, rendered in Prometheus' text format (metrics.h).
 * It calls no other file of the daemon: what it shows of the others is handed to it.
 */
#include <pthread.h>
#include <stdarg.h>

#include "metrics.h"

/* Upper bounds in seconds: a restore takes milliseconds, a cold start a few hundred, a handler
 * anything up to its timeout. */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10, 30};
#define N_BUCKETS ELEMENTSOF(buckets)

typedef struct histogram {
        uint64_t counts[N_BUCKETS]; /* per bucket, not cumulative */
        uint64_t count;
        double sum;
} histogram;

#define MAX_KINDS 24

typedef struct counter {
        char name[40];
        uint64_t value;
} counter;

struct metrics {
        pthread_mutex_t lock;
        atomic_ullong blob_cache_bytes, blobs_evicted, template_cache_bytes;
        atomic_llong connections;
        atomic_ullong refused_per_address, refused_overall, request_deadlines;
        histogram stages[_STAGE_MAX];
        counter errors[MAX_KINDS];
        counter invocations[MAX_KINDS]; /* "path source" */
        counter templates[MAX_KINDS];   /* template cache events */
};

static const char *const stage_names[] = {"restore", "specialize", "invoke", "request", "template_pull"};

static const char *const source_names[] = {"warm", "zygote", "restore", "cold_start", "second_level", "clone"};

metrics *metrics_new(void)
{
        metrics *m = calloc(1, sizeof(*m));
        if (m)
                pthread_mutex_init(&m->lock, NULL);
        return m;
}

metrics *metrics_free(metrics *m)
{
        if (m) {
                pthread_mutex_destroy(&m->lock);
                free(m);
        }
        return NULL;
}

void metrics_observe(metrics *m, metric_stage stage, uint64_t us)
{
        if (us == 0 || stage >= _STAGE_MAX)
                return;
        double s = us / 1e6;
        size_t b = 0;
        while (b < N_BUCKETS && s > buckets[b])
                b++;
        pthread_mutex_lock(&m->lock);
        histogram *h = &m->stages[stage];
        if (b < N_BUCKETS)
                h->counts[b]++;
        h->count++;
        h->sum += s;
        pthread_mutex_unlock(&m->lock);
}

/* Adds 1 to the counter called name in table (MAX_KINDS entries); a full table counts in "other". */
static void bump(counter *table, const char *name)
{
        size_t i = 0;
        for (; i < MAX_KINDS && table[i].name[0]; i++)
                if (!strcmp(table[i].name, name))
                        break;
        if (i == MAX_KINDS)
                i = MAX_KINDS - 1;
        else if (!table[i].name[0])
                str_copy(table[i].name, sizeof(table[i].name), i == MAX_KINDS - 1 ? "other" : name);
        table[i].value++;
}

void metrics_invocation(metrics *m, const char *path, int source)
{
        char key[40];
        const char *src = source >= 0 && (size_t)source < ELEMENTSOF(source_names) ? source_names[source] : "none";
        snprintf(key, sizeof(key), "%s %s", path, src);
        pthread_mutex_lock(&m->lock);
        bump(m->invocations, key);
        pthread_mutex_unlock(&m->lock);
}

void metrics_error(metrics *m, const char *kind)
{
        pthread_mutex_lock(&m->lock);
        bump(m->errors, kind);
        pthread_mutex_unlock(&m->lock);
}

void metrics_template(metrics *m, const char *event)
{
        pthread_mutex_lock(&m->lock);
        bump(m->templates, event);
        pthread_mutex_unlock(&m->lock);
}

void metrics_template_cache_bytes(metrics *m, uint64_t bytes) { atomic_store(&m->template_cache_bytes, bytes); }
void metrics_blob_cache_bytes(metrics *m, uint64_t bytes) { atomic_store(&m->blob_cache_bytes, bytes); }
void metrics_blob_evicted(metrics *m) { atomic_fetch_add(&m->blobs_evicted, 1); }
void metrics_connection(metrics *m, int delta) { atomic_fetch_add(&m->connections, delta); }
void metrics_request_deadline(metrics *m) { atomic_fetch_add(&m->request_deadlines, 1); }

void metrics_connection_refused(metrics *m, bool per_address)
{
        atomic_fetch_add(per_address ? &m->refused_per_address : &m->refused_overall, 1);
}

/* ------------------------------------------------------------------ exposition */

typedef struct text {
        char *buf;
        size_t size, cap;
        bool failed;
} text;

static void emit(text *t, const char *fmt, ...) _printf_(2, 3);
static void emit(text *t, const char *fmt, ...)
{
        if (t->failed)
                return;
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(t->buf + t->size, t->cap - t->size, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        t->failed = true;
                        return;
                }
                if ((size_t)n < t->cap - t->size) {
                        t->size += (size_t)n;
                        return;
                }
                size_t cap = t->cap * 2 + (size_t)n;
                char *bigger = realloc(t->buf, cap);
                if (!bigger) {
                        t->failed = true;
                        return;
                }
                t->buf = bigger;
                t->cap = cap;
        }
}

static void emit_histograms(text *t, const histogram *h)
{
        emit(t, "# HELP prewarm_stage_seconds Time of each stage: restore, specialize, invoke, a whole invocation request, and a template pull.\n"
                "# TYPE prewarm_stage_seconds histogram\n");
        for (size_t s = 0; s < _STAGE_MAX; s++) {
                uint64_t cumulative = 0;
                for (size_t b = 0; b < N_BUCKETS; b++) {
                        cumulative += h[s].counts[b];
                        emit(t, "prewarm_stage_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n", stage_names[s],
                             buckets[b], (unsigned long long)cumulative);
                }
                emit(t, "prewarm_stage_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", stage_names[s],
                     (unsigned long long)h[s].count);
                emit(t, "prewarm_stage_seconds_sum{stage=\"%s\"} %.6f\n", stage_names[s], h[s].sum);
                emit(t, "prewarm_stage_seconds_count{stage=\"%s\"} %llu\n", stage_names[s],
                     (unsigned long long)h[s].count);
        }
}

static void emit_counters(text *t, const counter *invocations, const counter *errors)
{
        emit(t, "# HELP prewarm_invocations_total Invocations by protocol and where their instance came from.\n"
                "# TYPE prewarm_invocations_total counter\n");
        for (size_t i = 0; i < MAX_KINDS && invocations[i].name[0]; i++) {
                char path[40];
                str_copy(path, sizeof(path), invocations[i].name);
                char *space = strchr(path, ' ');
                const char *source = space ? space + 1 : "none";
                if (space)
                        *space = '\0';
                emit(t, "prewarm_invocations_total{protocol=\"%s\",source=\"%s\"} %llu\n", path, source,
                     (unsigned long long)invocations[i].value);
        }
        emit(t, "# HELP prewarm_errors_total Failed requests by kind of failure.\n"
                "# TYPE prewarm_errors_total counter\n");
        for (size_t i = 0; i < MAX_KINDS && errors[i].name[0]; i++)
                emit(t, "prewarm_errors_total{kind=\"%s\"} %llu\n", errors[i].name,
                     (unsigned long long)errors[i].value);
}

static void emit_templates(text *t, const counter *events, uint64_t cache_bytes)
{
        emit(t, "# HELP prewarm_template_events_total Templates needed and found built (hit), pulled, failed to pull, "
                "found incompatible with this node, built here instead, and evicted from the cache.\n"
                "# TYPE prewarm_template_events_total counter\n");
        for (size_t i = 0; i < MAX_KINDS && events[i].name[0]; i++)
                emit(t, "prewarm_template_events_total{event=\"%s\"} %llu\n", events[i].name,
                     (unsigned long long)events[i].value);
        emit(t, "# HELP prewarm_template_cache_bytes Images of the templates pulled from registries and kept.\n"
                "# TYPE prewarm_template_cache_bytes gauge\nprewarm_template_cache_bytes %llu\n",
             (unsigned long long)cache_bytes);
}

static void emit_pool(text *t, pw_pool *pool)
{
        pw_pool_stats st = {.size = sizeof(st)};
        if (!pool || pw_pool_stats_get(pool, &st) < 0)
                return;
        static const char *const counters[][2] = {
                {"prewarm_pool_zygote_hits_total", "Invocations that found a ready zygote."},
                {"prewarm_pool_zygote_misses_total", "Invocations that had to restore because no zygote was ready."},
                {"prewarm_pool_warm_hits_total", "Invocations served by a warm, already specialized instance."},
                {"prewarm_pool_cold_start_fallbacks_total", "Restores that failed and fell back to a cold start."},
                {"prewarm_pool_instances_replaced_total", "Dead instances the pool replaced."},
        };
        const uint64_t cvalues[] = {st.zygote_hits, st.zygote_misses, st.warm_hits, st.cold_start_fallbacks,
                                    st.instances_replaced};
        for (size_t i = 0; i < ELEMENTSOF(cvalues); i++)
                emit(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i][0], counters[i][1],
                     counters[i][0], counters[i][0], (unsigned long long)cvalues[i]);
        emit(t, "# HELP prewarm_pool_instances Instances the pool holds, by state.\n"
                "# TYPE prewarm_pool_instances gauge\n"
                "prewarm_pool_instances{state=\"zygote\"} %u\n"
                "prewarm_pool_instances{state=\"warm\"} %u\n"
                "prewarm_pool_instances{state=\"busy\"} %u\n",
             st.zygotes_ready, st.warm_instances, st.busy_instances);
        emit(t, "# HELP prewarm_pool_memory_bytes Memory of the pool's instances by their templates' limits.\n"
                "# TYPE prewarm_pool_memory_bytes gauge\nprewarm_pool_memory_bytes %llu\n",
             (unsigned long long)st.memory_mb << 20);
}

char *metrics_render(metrics *m, daemon_ctx *d, unsigned slots_used, unsigned slots_total)
{
        /* Copied under the lock, formatted outside it. */
        histogram h[_STAGE_MAX];
        counter invocations[MAX_KINDS], errors[MAX_KINDS], templates[MAX_KINDS];
        pthread_mutex_lock(&m->lock);
        memcpy(h, m->stages, sizeof(h));
        memcpy(invocations, m->invocations, sizeof(invocations));
        memcpy(errors, m->errors, sizeof(errors));
        memcpy(templates, m->templates, sizeof(templates));
        pthread_mutex_unlock(&m->lock);

        text t = {.buf = malloc(16384), .cap = 16384};
        if (!t.buf)
                return NULL;
        t.buf[0] = '\0';
        emit(&t, "# HELP prewarmd_build_info What this prewarmd is and runs on: its version, its CRIU's, the kernel's.\n"
                 "# TYPE prewarmd_build_info gauge\nprewarmd_build_info{%s} 1\n", d->build_info);
        emit_histograms(&t, h);
        emit_counters(&t, invocations, errors);
        emit_pool(&t, d->pool);
        emit_templates(&t, templates, atomic_load(&m->template_cache_bytes));
        emit(&t, "# HELP prewarm_openwhisk_slots OpenWhisk/Fission slots, by whether they hold an action.\n"
                 "# TYPE prewarm_openwhisk_slots gauge\n"
                 "prewarm_openwhisk_slots{state=\"initialized\"} %u\n"
                 "prewarm_openwhisk_slots{state=\"free\"} %u\n",
             slots_used, slots_total - slots_used);
        pthread_mutex_lock(&d->admission_lock);
        unsigned running = d->running, waiting = d->waiting;
        pthread_mutex_unlock(&d->admission_lock);
        emit(&t, "# HELP prewarm_admission_invocations API invocations admitted (running) and waiting for admission.\n"
                 "# TYPE prewarm_admission_invocations gauge\n"
                 "prewarm_admission_invocations{state=\"running\"} %u\n"
                 "prewarm_admission_invocations{state=\"waiting\"} %u\n",
             running, waiting);
        emit(&t, "# HELP prewarm_requests_in_flight Requests and async activations being served.\n"
                 "# TYPE prewarm_requests_in_flight gauge\nprewarm_requests_in_flight %d\n",
             atomic_load(&d->in_flight));
        emit(&t, "# HELP prewarm_blob_cache_bytes Size of the cache of inline code blobs.\n"
                 "# TYPE prewarm_blob_cache_bytes gauge\nprewarm_blob_cache_bytes %llu\n"
                 "# HELP prewarm_blob_cache_evictions_total Blobs no function used, evicted to keep the cache in its bound.\n"
                 "# TYPE prewarm_blob_cache_evictions_total counter\nprewarm_blob_cache_evictions_total %llu\n",
             (unsigned long long)atomic_load(&m->blob_cache_bytes), (unsigned long long)atomic_load(&m->blobs_evicted));
        emit(&t, "# HELP prewarm_connections Open connections of the API servers.\n"
                 "# TYPE prewarm_connections gauge\nprewarm_connections %lld\n"
                 "# HELP prewarm_connections_refused_total Connections refused at a cap.\n"
                 "# TYPE prewarm_connections_refused_total counter\n"
                 "prewarm_connections_refused_total{cap=\"per_address\"} %llu\n"
                 "prewarm_connections_refused_total{cap=\"overall\"} %llu\n"
                 "# HELP prewarm_request_deadline_closes_total Connections closed because a request was not read whole in time.\n"
                 "# TYPE prewarm_request_deadline_closes_total counter\nprewarm_request_deadline_closes_total %llu\n",
             (long long)atomic_load(&m->connections), (unsigned long long)atomic_load(&m->refused_per_address),
             (unsigned long long)atomic_load(&m->refused_overall), (unsigned long long)atomic_load(&m->request_deadlines));
        if (t.failed) {
                free(t.buf);
                return NULL;
        }
        return t.buf;
}

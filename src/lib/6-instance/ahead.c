/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Restores prepared ahead: after an engine has restored a template, a background thread prepares
 * the next restore of it (restore.c: verified template, cgroup, pipes, mounts, network namespace,
 * and a CRIU already exec'd and waiting), so that the next request only sends CRIU the restore.
 * One job per template is kept; a template not restored again keeps its job until the engine is
 * freed or trimmed, or the template is rebuilt, removed or evicted.
 *
 * For a template whose instances are cloned (clone.h) the thread makes the next clone itself, so
 * that the next request takes a sandboxed, checked child that only waits for its code: the
 * namespaces, the sandbox and the check are request-independent work. One per template, under
 * the same rules; a ready clone found dead when taken (its parent died), or whose template
 * changed since (clone_still_current: what every clone promises), is discarded.
 */
#include <poll.h>
#include <sys/resource.h>

#include "ahead.h"
#include "clone.h"
#include "instance.h"

typedef struct ahead_slot {
        char *template_name;
        restore_job *job;    /* NULL while wanted but not ready */
        pw_instance *clone;  /* for a cloned template: its next instance, ready */
        bool clones;         /* its instances are cloned: prepare a clone, not a restore job */
        bool failed;         /* the last preparation failed: wait for the next restore to ask again */
        bool preparing;      /* the thread is preparing its job now */
        struct ahead_slot *next;
} ahead_slot;

struct ahead {
        pw_engine *e;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        ahead_slot *slots;
        bool stop, thread_started, busy;
        pthread_t thread;
};

/* A template's slot for restore jobs, or for clones: each its own. */
static ahead_slot *slot_find(ahead *a, const char *name, bool clones)
{
        ahead_slot *s = a->slots;
        while (s && (strcmp(s->template_name, name) || s->clones != clones))
                s = s->next;
        return s;
}

static bool slot_ready(const ahead_slot *s)
{
        return s->clones ? s->clone != NULL : s->job != NULL;
}

static ahead_slot *slot_wanting(ahead *a)
{
        ahead_slot *s = a->slots;
        while (s && (slot_ready(s) || s->failed))
                s = s->next;
        return s;
}

/* The slot's next restore job or clone, made without the lock. */
static int prepare(ahead *a, const char *name, bool clones, restore_job **ret_job, pw_instance **ret_clone)
{
        pw_err err = {""};
        int r = clones ? clone_instance(a->e, name, ret_clone, &err)
                       : restore_job_prepare(a->e, name, FAST_PATH, ret_job, &err);
        if (r < 0)
                pw_log(a->e, PW_LOG_DEBUG, "preparing %s of %s ahead: %s", clones ? "a clone" : "a restore", name, err.msg);
        return r;
}

static void *preparer(void *userdata)
{
        ahead *a = userdata;
        /* Requests come first: this thread only fills idle time. */
        setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
        pthread_mutex_lock(&a->lock);
        while (!a->stop) {
                ahead_slot *s = slot_wanting(a);
                if (!s) {
                        pthread_cond_wait(&a->wake, &a->lock);
                        continue;
                }
                _cleanup_free_ char *name = strdup(s->template_name);
                if (!name)
                        break;
                a->busy = true;
                s->preparing = true;
                bool clones = s->clones;
                pthread_mutex_unlock(&a->lock);
                restore_job *job = NULL;
                pw_instance *clone = NULL;
                int r = prepare(a, name, clones, &job, &clone);
                pthread_mutex_lock(&a->lock);
                s = slot_find(a, name, clones); /* dropped meanwhile? */
                if (s)
                        s->preparing = false;
                bool keep = s && !a->stop && r >= 0 && !slot_ready(s);
                if (s && r < 0)
                        s->failed = true;
                if (keep && clones)
                        s->clone = TAKE_PTR(clone);
                else if (keep)
                        s->job = TAKE_PTR(job);
                if (job || clone) { /* not wanted any more: not under the lock, and still busy */
                        pthread_mutex_unlock(&a->lock);
                        restore_job_free(job);
                        pw_instance_destroy(clone);
                        pthread_mutex_lock(&a->lock);
                }
                a->busy = false; /* a drop waiting for this preparation finds nothing of it left */
                pthread_cond_broadcast(&a->wake);
        }
        pthread_mutex_unlock(&a->lock);
        return NULL;
}

ahead *ahead_new(pw_engine *e)
{
        ahead *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->e = e;
        pthread_mutex_init(&a->lock, NULL);
        pthread_cond_init(&a->wake, NULL);
        return a;
}

/* Unlinks the slots of template_name (all for NULL) and returns them. Lock held. */
static ahead_slot *slots_detach(ahead *a, const char *template_name)
{
        ahead_slot *gone = NULL, **p = &a->slots;
        while (*p) {
                ahead_slot *s = *p;
                if (template_name && strcmp(s->template_name, template_name)) {
                        p = &s->next;
                        continue;
                }
                *p = s->next;
                s->next = gone;
                gone = s;
        }
        return gone;
}

static void slots_free(ahead_slot *s)
{
        while (s) {
                ahead_slot *next = s->next;
                restore_job_free(s->job);
                pw_instance_destroy(s->clone);
                free(s->template_name);
                free(s);
                s = next;
        }
}

void ahead_drop(ahead *a, const char *template_name)
{
        pthread_mutex_lock(&a->lock);
        ahead_slot *gone = slots_detach(a, template_name);
        /* A preparation in flight may hold the template: let it finish and be discarded. */
        while (a->busy)
                pthread_cond_wait(&a->wake, &a->lock);
        pthread_mutex_unlock(&a->lock);
        slots_free(gone);
}

ahead *ahead_free(ahead *a)
{
        if (!a)
                return NULL;
        pthread_mutex_lock(&a->lock);
        a->stop = true;
        pthread_cond_broadcast(&a->wake);
        pthread_mutex_unlock(&a->lock);
        if (a->thread_started)
                pthread_join(a->thread, NULL);
        slots_free(a->slots);
        pthread_cond_destroy(&a->wake);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
}

/* How long a request waits for a preparation in flight: one takes about a millisecond, and a
 * request that prepares its own instead also starts a CRIU of its own (tens of ms). */
#define TAKE_WAIT_MS 10

restore_job *ahead_take(ahead *a, const char *template_name)
{
        const struct timespec until = realtime_after_ms(TAKE_WAIT_MS);
        pthread_mutex_lock(&a->lock);
        ahead_slot *s = slot_find(a, template_name, false);
        /* Back-to-back requests catch the preparation of their job under way. */
        while (s && !s->job && s->preparing && pthread_cond_timedwait(&a->wake, &a->lock, &until) == 0)
                s = slot_find(a, template_name, false);
        restore_job *job = s ? TAKE_PTR(s->job) : NULL;
        pthread_mutex_unlock(&a->lock);
        if (job && !restore_job_current(job)) /* rebuilt or removed since */
                job = restore_job_free(job);
        return job;
}

/* Whether a ready clone still runs: its parent's death takes it along. */
static bool clone_alive(const pw_instance *i)
{
        struct pollfd p = {i->pidfd, POLLIN, 0};
        return i->pidfd >= 0 && poll(&p, 1, 0) == 0;
}

/* How long a request waits for a clone being made: one takes a few milliseconds, about what the
 * request would spend making its own. */
#define TAKE_CLONE_WAIT_MS 5

pw_instance *ahead_take_clone(ahead *a, const char *template_name)
{
        const struct timespec until = realtime_after_ms(TAKE_CLONE_WAIT_MS);
        pthread_mutex_lock(&a->lock);
        ahead_slot *s = slot_find(a, template_name, true);
        while (s && !s->clone && s->preparing && pthread_cond_timedwait(&a->wake, &a->lock, &until) == 0)
                s = slot_find(a, template_name, true);
        pw_instance *i = s ? TAKE_PTR(s->clone) : NULL;
        pthread_mutex_unlock(&a->lock);
        pw_err err = {""};
        if (i && (!clone_alive(i) || clone_still_current(a->e, i, &err) < 0)) /* the request clones anew */
                i = pw_instance_destroy(i);
        return i;
}

static void want(ahead *a, const char *template_name, bool clones)
{
        pthread_mutex_lock(&a->lock);
        ahead_slot *s = slot_find(a, template_name, clones);
        if (!s && (s = calloc(1, sizeof(*s)))) {
                s->clones = clones;
                if ((s->template_name = strdup(template_name))) {
                        s->next = a->slots;
                        a->slots = s;
                } else {
                        free(s);
                        s = NULL;
                }
        }
        if (s) {
                s->failed = false;
                /* Started on first use: an engine that never restores never prepares. */
                if (!a->thread_started && pthread_create(&a->thread, NULL, preparer, a) == 0)
                        a->thread_started = true;
                pthread_cond_broadcast(&a->wake);
        }
        pthread_mutex_unlock(&a->lock);
}

void ahead_want(ahead *a, const char *template_name)
{
        want(a, template_name, false);
}

void ahead_want_clone(ahead *a, const char *template_name)
{
        want(a, template_name, true);
}

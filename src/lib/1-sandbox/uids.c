/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host uids of sandboxes: a range reserved for them, one uid per live instance across every
 * engine of the machine, claimed with lock files.
 */
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "uids.h"

#define UID_LOCK_DIR "/run/prewarm"
#define UID_LOCK_FILE UID_LOCK_DIR "/uids.lock"

struct uid_pool {
        uid_t base;
        unsigned count;
        int lock_fd;
        pthread_mutex_t lock; /* guards used and next */
        uint8_t *used;        /* one bit per uid this engine holds */
        unsigned next;
};

static int parse_range(const char *s, unsigned *base, unsigned *count)
{
        char *end;
        errno = 0;
        unsigned long long b = strtoull(s, &end, 10);
        if (errno || *end != ':')
                return -EINVAL;
        unsigned long long c = strtoull(end + 1, &end, 10);
        if (errno || *end || b > UINT32_MAX || c > UINT32_MAX)
                return -EINVAL;
        *base = (unsigned)b;
        *count = (unsigned)c;
        return 0;
}

int uid_pool_new(unsigned base, unsigned count, uid_pool **ret, pw_err *err)
{
        const char *env = getenv("PREWARM_UID_RANGE");
        if (!base && !count && env && *env && parse_range(env, &base, &count) < 0)
                return err_set(err, -EINVAL, "PREWARM_UID_RANGE=%s: expected BASE:COUNT", env);
        if (!base)
                base = PW_DEFAULT_UID_BASE;
        if (!count)
                count = PW_DEFAULT_UID_COUNT;
        /* (uid_t)-1 means "unchanged" to setresuid: the range must end below it. */
        if (count < 2 || (uint64_t)base + count > UINT32_MAX)
                return err_set(err, -EINVAL, "uid range %u:%u must hold at least 2 uids, none of them 0 or %u",
                               base, count, UINT32_MAX);

        uid_pool *p = calloc(1, sizeof(*p));
        if (!p || !(p->used = calloc(1, count / 8 + 1))) {
                free(p);
                return -ENOMEM;
        }
        p->base = base;
        p->count = count;
        p->lock_fd = -1;
        pthread_mutex_init(&p->lock, NULL);
        if (getrandom(&p->next, sizeof(p->next), GRND_NONBLOCK) != sizeof(p->next))
                p->next = (unsigned)getpid();
        p->next %= count - 1; /* engines start apart, so they rarely probe each other's locks */
        if (mkdir(UID_LOCK_DIR, 0700) < 0 && errno != EEXIST) {
                int r = err_set(err, negative_errno(), "mkdir %s: %m", UID_LOCK_DIR);
                uid_pool_free(p);
                return r;
        }
        p->lock_fd = open(UID_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (p->lock_fd < 0) {
                int r = err_set(err, negative_errno(), "opening %s: %m", UID_LOCK_FILE);
                uid_pool_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

uid_pool *uid_pool_free(uid_pool *p)
{
        if (!p)
                return NULL;
        if (p->lock_fd >= 0)
                close(p->lock_fd); /* releases every lock this engine held */
        pthread_mutex_destroy(&p->lock);
        free(p->used);
        free(p);
        return NULL;
}

static bool bit(const uint8_t *map, unsigned i) { return map[i / 8] & (1u << (i % 8)); }

static int lock_slot(int fd, unsigned slot, short type)
{
        struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = slot, .l_len = 1};
        return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? negative_errno() : 0;
}

int uid_take(uid_pool *p, uid_t *ret, pw_err *err)
{
        const unsigned slots = p->count - 1; /* the last one is the builders' */
        pthread_mutex_lock(&p->lock);
        int r = -EAGAIN;
        for (unsigned tried = 0; tried < slots; tried++) {
                unsigned slot = (p->next + tried) % slots;
                if (bit(p->used, slot))
                        continue;
                r = lock_slot(p->lock_fd, slot, F_WRLCK);
                if (r == -EAGAIN || r == -EACCES) /* another engine's */
                        continue;
                if (r < 0)
                        break;
                p->used[slot / 8] |= (uint8_t)(1u << (slot % 8));
                p->next = (slot + 1) % slots;
                *ret = p->base + slot;
                break;
        }
        pthread_mutex_unlock(&p->lock);
        if (r == -EAGAIN || r == -EACCES)
                return err_set(err, -EAGAIN, "all %u sandbox uids from %u are in use", slots, (unsigned)p->base);
        return r < 0 ? err_set(err, r, "locking a sandbox uid: %s", strerror(-r)) : 0;
}

void uid_release(uid_pool *p, uid_t uid)
{
        if (!p || !uid_in_range(p, uid) || uid == uid_builder(p))
                return;
        unsigned slot = uid - p->base;
        pthread_mutex_lock(&p->lock);
        if (bit(p->used, slot)) {
                lock_slot(p->lock_fd, slot, F_UNLCK);
                p->used[slot / 8] &= (uint8_t)~(1u << (slot % 8));
        }
        pthread_mutex_unlock(&p->lock);
}

uid_t uid_builder(const uid_pool *p)
{
        return p->base + p->count - 1;
}

bool uid_in_range(const uid_pool *p, uid_t uid)
{
        return uid >= p->base && uid - p->base < p->count;
}

void uid_range(const uid_pool *p, uid_t *ret_base, unsigned *ret_count)
{
        *ret_base = p->base;
        *ret_count = p->count;
}

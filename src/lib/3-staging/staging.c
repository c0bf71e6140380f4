/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Image staging: a template's images are read into memory with deep-queue io_uring reads and
 * pinned there, so that restores never find them evicted.
 *
 * CRIU reads its images through the page cache (its restorer copies pages with one synchronous
 * preadv per mapping), so what CRIU can read fastest is a file whose pages are resident. After an
 * engine's first restore of a template, a stager thread reads every image file with up to
 * STAGE_QUEUE_DEPTH reads of STAGE_CHUNK in flight, then maps the files and mlock()s them: locked
 * page-cache pages stay resident under memory pressure and are shared by all restores without a
 * second copy. pw_template_evict() undoes both.
 *
 * The stager starts a moment after that first restore, not beside it: measured here, a stager
 * reading while CRIU reads the same cold files, or while the restored instance answers its first
 * request, slows them down (docs/performance.md has the numbers).
 *
 * The ring lives in the stager thread and only while it reads: CRIU cannot dump a process that
 * holds an io_uring, and restored processes never see one.
 */
#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "staging.h"

#define STAGE_QUEUE_DEPTH 16
#define STAGE_CHUNK (2u << 20)
#define STAGE_DELAY_MS 300

typedef struct pinned_file {
        void *addr;
        size_t len;
} pinned_file;

struct staged_template {
        pw_engine *e;
        char *images;      /* the template's images directory */
        dev_t dev;         /* its identity: a rebuild publishes a new directory */
        ino_t ino;
        int dir_fd;        /* open for the stager until it is done */
        bool cancel;       /* set when the staging is dropped before it began */
        pthread_t thread;
        pinned_file *files;
        size_t n_files;
        struct staged_template *next;
};

/* Joins the stager (it may still be reading) and unpins the files. */
static void staged_free(struct staged_template *s)
{
        if (!s)
                return;
        __atomic_store_n(&s->cancel, true, __ATOMIC_RELEASE);
        pthread_join(s->thread, NULL);
        for (size_t i = 0; i < s->n_files; i++)
                munmap(s->files[i].addr, s->files[i].len); /* also unlocks */
        if (s->dir_fd >= 0)
                close(s->dir_fd);
        free(s->files);
        free(s->images);
        free(s);
}

typedef struct image_file {
        int fd;
        size_t size;
        char *name;
} image_file;

typedef struct image_set {
        image_file *files;
        size_t n;
        uint64_t bytes;
} image_set;

static void image_set_done(image_set *set)
{
        for (size_t i = 0; i < set->n; i++) {
                if (set->files[i].fd >= 0)
                        close(set->files[i].fd);
                free(set->files[i].name);
        }
        free(set->files);
        set->files = NULL;
        set->n = 0;
}

/* Opens every regular file of the images directory. */
static int image_set_open(int dir_fd, const char *images, image_set *set, pw_err *err)
{
        _cleanup_close_ int walk_fd = dup(dir_fd);
        DIR *d = walk_fd >= 0 ? fdopendir(walk_fd) : NULL;
        if (!d)
                return err_set(err, negative_errno(), "opening %s: %m", images);
        walk_fd = -1; /* the DIR owns it now */
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                int fd = openat(dir_fd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0) {
                        r = err_set(err, negative_errno(), "opening %s/%s: %m", images, de->d_name);
                        if (fd >= 0)
                                close(fd);
                        break;
                }
                if (!S_ISREG(st.st_mode)) {
                        close(fd);
                        continue;
                }
                image_file *grown = realloc(set->files, (set->n + 1) * sizeof(*grown));
                if (!grown) {
                        close(fd);
                        r = -ENOMEM;
                        break;
                }
                set->files = grown;
                set->files[set->n++] = (image_file){fd, (size_t)st.st_size, strdup(de->d_name)};
                if (!set->files[set->n - 1].name)
                        r = -ENOMEM;
                set->bytes += (uint64_t)st.st_size;
        }
        closedir(d);
        return r;
}

/* One read in flight: which file, where, into which scratch slot. */
typedef struct read_op {
        unsigned file, slot;
        off_t offset;
} read_op;

typedef struct ring_reader {
        struct io_uring ring;
        bool ring_ready;
        char *scratch;  /* STAGE_QUEUE_DEPTH slots of STAGE_CHUNK: the data only has to pass by */
        read_op ops[STAGE_QUEUE_DEPTH];
        unsigned free_slots[STAGE_QUEUE_DEPTH], n_free;
} ring_reader;

static int ring_submit_next(ring_reader *rr, const image_set *set, size_t *file, off_t *offset)
{
        while (*file < set->n && (size_t)*offset >= set->files[*file].size) {
                (*file)++;
                *offset = 0;
        }
        if (*file >= set->n || rr->n_free == 0)
                return 0;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&rr->ring);
        if (!sqe)
                return 0;
        unsigned slot = rr->free_slots[--rr->n_free];
        size_t left = set->files[*file].size - (size_t)*offset;
        unsigned len = left < STAGE_CHUNK ? (unsigned)left : STAGE_CHUNK;
        io_uring_prep_read_fixed(sqe, (int)*file, rr->scratch + (size_t)slot * STAGE_CHUNK, len,
                                 (uint64_t)*offset, 0);
        sqe->flags |= IOSQE_FIXED_FILE;
        rr->ops[slot] = (read_op){(unsigned)*file, slot, *offset};
        io_uring_sqe_set_data(sqe, &rr->ops[slot]);
        *offset += len;
        return 1;
}

static void ring_reader_done(ring_reader *rr)
{
        if (rr->ring_ready)
                io_uring_queue_exit(&rr->ring);
        if (rr->scratch)
                munmap(rr->scratch, (size_t)STAGE_QUEUE_DEPTH * STAGE_CHUNK);
}

static int ring_reader_init(ring_reader *rr, const image_set *set, pw_err *err)
{
        int r = io_uring_queue_init(STAGE_QUEUE_DEPTH, &rr->ring, 0);
        if (r < 0)
                return err_set(err, r, "io_uring_queue_init: %s", strerror(-r));
        rr->ring_ready = true;
        size_t size = (size_t)STAGE_QUEUE_DEPTH * STAGE_CHUNK;
        void *scratch = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (scratch == MAP_FAILED)
                return err_set(err, negative_errno(), "staging buffers: %m");
        rr->scratch = scratch;
        rr->n_free = STAGE_QUEUE_DEPTH;
        for (unsigned i = 0; i < STAGE_QUEUE_DEPTH; i++)
                rr->free_slots[i] = i;
        _cleanup_free_ int *fds = calloc(set->n ? set->n : 1, sizeof(int));
        if (!fds)
                return -ENOMEM;
        for (size_t i = 0; i < set->n; i++)
                fds[i] = set->files[i].fd;
        /* Registered buffers and files spare the kernel a page pinning and an fd lookup per read. */
        struct iovec iov = {rr->scratch, size};
        if ((r = io_uring_register_buffers(&rr->ring, &iov, 1)) < 0 ||
            (set->n && (r = io_uring_register_files(&rr->ring, fds, (unsigned)set->n)) < 0))
                return err_set(err, r, "io_uring_register: %s", strerror(-r));
        return 0;
}

/* Reaps the completions there are; the first failed read decides the result. */
static unsigned ring_reap(ring_reader *rr, int *r, pw_err *err)
{
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&rr->ring, head, cqe) {
                read_op *op = io_uring_cqe_get_data(cqe);
                seen++;
                if (cqe->res < 0 && *r >= 0)
                        *r = err_set(err, cqe->res, "reading image %u at %lld: %s", op->file,
                                     (long long)op->offset, strerror(-cqe->res));
                rr->free_slots[rr->n_free++] = op->slot;
        }
        io_uring_cq_advance(&rr->ring, seen);
        return seen;
}

/* Reads every file of set through the page cache with up to STAGE_QUEUE_DEPTH reads in flight. */
static int read_with_ring(const image_set *set, pw_err *err)
{
        ring_reader rr = {0};
        int r = ring_reader_init(&rr, set, err);
        size_t file = 0;
        off_t offset = 0;
        unsigned in_flight = 0;
        while (r >= 0) {
                while (ring_submit_next(&rr, set, &file, &offset))
                        in_flight++;
                if (in_flight == 0)
                        break;
                int sr = io_uring_submit_and_wait(&rr.ring, 1);
                if (sr < 0 && sr != -EINTR)
                        r = err_set(err, sr, "io_uring_submit: %s", strerror(-sr));
                in_flight -= ring_reap(&rr, &r, err);
        }
        /* After a failure, what is still in flight must land before the buffers go. */
        while (in_flight > 0 && io_uring_submit_and_wait(&rr.ring, 1) >= 0)
                in_flight -= ring_reap(&rr, &r, err);
        ring_reader_done(&rr);
        return r;
}

/* Page images first: CRIU reads the small images itself at its start and the pages last. */
static int pages_first(const void *a, const void *b)
{
        const image_file *x = a, *y = b;
        bool px = !strncmp(x->name, "pages-", 6), py = !strncmp(y->name, "pages-", 6);
        return px != py ? (px ? -1 : 1) : 0;
}

/* Maps and locks each file: its resident pages stay resident until unpinned. */
static int pin_files(const image_set *set, struct staged_template *s, pw_err *err)
{
        s->files = calloc(set->n ? set->n : 1, sizeof(*s->files));
        if (!s->files)
                return -ENOMEM;
        for (size_t i = 0; i < set->n; i++) {
                if (set->files[i].size == 0)
                        continue;
                void *addr = mmap(NULL, set->files[i].size, PROT_READ, MAP_SHARED, set->files[i].fd, 0);
                if (addr == MAP_FAILED)
                        return err_set(err, negative_errno(), "mapping %s: %m", set->files[i].name);
                s->files[s->n_files++] = (pinned_file){addr, set->files[i].size};
                if (mlock(addr, set->files[i].size) < 0)
                        return err_set(err, negative_errno(), "locking %s in memory: %m", set->files[i].name);
        }
        return 0;
}

/* Reads the images into memory and pins them; a failure only costs speed, so it is logged. */
static void stage_read_and_pin(struct staged_template *s)
{
        uint64_t t0 = now_us();
        pw_err err = {""};
        image_set set = {0};
        int r = image_set_open(s->dir_fd, s->images, &set, &err);
        if (r >= 0) {
                if (set.n) /* none when the template went away meanwhile */
                        qsort(set.files, set.n, sizeof(*set.files), pages_first);
                r = read_with_ring(&set, &err);
        }
        if (r >= 0)
                r = pin_files(&set, s, &err);
        if (r < 0)
                pw_log(s->e, PW_LOG_WARNING, "staging %s: %s (restores read from disk)", s->images, err.msg);
        else
                pw_log(s->e, PW_LOG_DEBUG, "staged %s: %.1f MiB in %.2f ms", s->images,
                       set.bytes / 1048576.0, (now_us() - t0) / 1000.0);
        image_set_done(&set);
}

/* Sleeps STAGE_DELAY_MS unless the staging is cancelled meanwhile; false if it was. */
static bool stager_wait(struct staged_template *s)
{
        for (unsigned waited = 0; waited < STAGE_DELAY_MS; waited += 10) {
                if (__atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE))
                        return false;
                nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        }
        return !__atomic_load_n(&s->cancel, __ATOMIC_ACQUIRE);
}

static void *stager(void *userdata)
{
        struct staged_template *s = userdata;
        /* Background work: the request that started it is still being answered, and the next
         * restores come first. Lowest CPU priority for this thread (Linux: per thread), and a
         * pause first: reading the images from a cold disk right away makes that request's own
         * specialize and invoke wait (measured: +20 ms on a 25 ms restore, docs/performance.md). */
        setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
        if (stager_wait(s))
                stage_read_and_pin(s);
        close(s->dir_fd); /* the engine keeps no descriptor of a template it staged */
        s->dir_fd = -1;
        return NULL;
}

void staging_engine_done(pw_engine *e)
{
        while (e->staged) {
                struct staged_template *next = e->staged->next;
                staged_free(e->staged);
                e->staged = next;
        }
}

static struct staged_template **staged_find(pw_engine *e, const char *images)
{
        struct staged_template **p = &e->staged;
        while (*p && strcmp((*p)->images, images))
                p = &(*p)->next;
        return p;
}

/* A new entry whose stager thread starts reading now. */
static int stage_start(pw_engine *e, const char *images, int images_fd, const struct stat *st,
                       struct staged_template **ret, pw_err *err)
{
        struct staged_template *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct staged_template){.e = e, .dev = st->st_dev, .ino = st->st_ino};
        s->images = strdup(images);
        s->dir_fd = fcntl(images_fd, F_DUPFD_CLOEXEC, 3);
        int r = !s->images ? -ENOMEM : s->dir_fd < 0 ? negative_errno() : 0;
        if (r >= 0 && (r = -pthread_create(&s->thread, NULL, stager, s)) < 0)
                err_set(err, r, "starting the stager: %s", strerror(-r));
        if (r < 0) {
                if (s->dir_fd >= 0)
                        close(s->dir_fd);
                free(s->images);
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int stage_template(pw_engine *e, const char *images, int images_fd, pw_err *err)
{
        /* NO_IO_URING: CRIU reads the files itself, with its plain reads. NOTHING_AHEAD: a
         * one-shot caller would only wait for the stager at pw_engine_free. */
        if (e->flags & (PW_ENGINE_NO_IO_URING | PW_ENGINE_NOTHING_AHEAD))
                return 0;
        struct stat st;
        if (fstat(images_fd, &st) < 0)
                return err_set(err, negative_errno(), "stat %s: %m", images);
        pthread_mutex_lock(&e->stage_lock);
        struct staged_template **p = staged_find(e, images);
        struct staged_template *old = NULL;
        int r = 0;
        if (!*p || (*p)->dev != st.st_dev || (*p)->ino != st.st_ino) {
                if (*p) { /* the template was rebuilt: unpin the old images */
                        old = *p;
                        *p = old->next;
                }
                struct staged_template *s = NULL;
                r = stage_start(e, images, images_fd, &st, &s, err);
                if (r >= 0) {
                        s->next = e->staged;
                        e->staged = s;
                }
        }
        pthread_mutex_unlock(&e->stage_lock);
        staged_free(old);
        return r;
}

/* Drops every file of the directory from the page cache. */
static int evict_files(const char *images, pw_err *err)
{
        _cleanup_close_ int dir_fd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", images);
        image_set set = {0};
        int r = image_set_open(dir_fd, images, &set, err);
        for (size_t i = 0; r >= 0 && i < set.n; i++) {
                /* Dirty pages (a template built moments ago) are not dropped: write them first. */
                if (fdatasync(set.files[i].fd) < 0) {
                        r = err_set(err, negative_errno(), "writing %s/%s: %m", images, set.files[i].name);
                        break;
                }
                int a = posix_fadvise(set.files[i].fd, 0, 0, POSIX_FADV_DONTNEED);
                if (a)
                        r = err_set(err, -a, "evicting %s: %s", images, strerror(a));
        }
        image_set_done(&set);
        return r;
}

int unstage_template(pw_engine *e, const char *images, pw_err *err)
{
        pthread_mutex_lock(&e->stage_lock);
        struct staged_template **p = staged_find(e, images);
        struct staged_template *s = *p;
        if (s)
                *p = s->next;
        pthread_mutex_unlock(&e->stage_lock);
        staged_free(s); /* unpinned first: fadvise skips pages that are mapped */
        return evict_files(images, err);
}

PW_PUBLIC int pw_template_evict(pw_engine *e, const char *name)
{
        if (!e)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(name))
                return template_name_refused(e, name);
        _cleanup_free_ char *template_dir = engine_template_dir(e, name);
        _cleanup_free_ char *images = strdup_printf("%s/images", template_dir ? template_dir : "");
        if (!template_dir || !images)
                return -ENOMEM;
        int r = unstage_template(e, images, &err);
        if (r == -ENOENT)
                err_set(&err, r, "not built");
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "evicting template %s", name), &err));
        return 0;
}

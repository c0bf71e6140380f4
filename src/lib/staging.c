/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Image staging: a template's images are brought into memory once, with deep-queue io_uring reads,
 * and pinned there, so that CRIU never waits on the disk when it restores.
 *
 * CRIU reads its images through the page cache (its restorer copies pages with one synchronous
 * preadv per mapping), so the fastest thing CRIU can read from is a file whose pages are already
 * resident. Staging therefore reads every image file with up to STAGE_QUEUE_DEPTH large reads in
 * flight (the disk works on many at once instead of one readahead window at a time), then maps the
 * files and mlock()s the mappings: locked page-cache pages stay resident under memory pressure and
 * are shared with every restore, with no second copy. pw_template_evict() undoes both.
 *
 * The ring lives here in the engine and only for the duration of a staging: CRIU cannot dump a
 * process that holds an io_uring, and restored processes never see one.
 */
#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "staging.h"

#define STAGE_QUEUE_DEPTH 64
#define STAGE_CHUNK (512u << 10)

typedef struct staged_file {
        void *addr;
        size_t len;
} staged_file;

struct staged_template {
        char *images;      /* path of the images directory */
        dev_t dev;         /* identity of that directory: a rebuild publishes a new one */
        ino_t ino;
        staged_file *files;
        size_t n_files;
        struct staged_template *next;
};

static void staged_free(struct staged_template *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n_files; i++)
                munmap(s->files[i].addr, s->files[i].len); /* also unlocks */
        free(s->files);
        free(s->images);
        free(s);
}

void staging_free_all(struct staged_template *s)
{
        while (s) {
                struct staged_template *next = s->next;
                staged_free(s);
                s = next;
        }
}

typedef struct image_file {
        int fd;
        size_t size;
} image_file;

typedef struct image_set {
        image_file *files;
        size_t n;
        uint64_t bytes;
} image_set;

static void image_set_done(image_set *set)
{
        for (size_t i = 0; i < set->n; i++)
                if (set->files[i].fd >= 0)
                        close(set->files[i].fd);
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
                set->files[set->n++] = (image_file){fd, (size_t)st.st_size};
                set->bytes += (uint64_t)st.st_size;
        }
        closedir(d);
        return r;
}

/* One read in flight: which file, where, and which buffer slot it uses. */
typedef struct read_op {
        unsigned file, slot;
        off_t offset;
} read_op;

typedef struct ring_reader {
        struct io_uring ring;
        bool ring_ready;
        char *buffers;          /* STAGE_QUEUE_DEPTH slots of STAGE_CHUNK, registered */
        unsigned free_slots[STAGE_QUEUE_DEPTH], n_free;
        read_op ops[STAGE_QUEUE_DEPTH];
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
        io_uring_prep_read_fixed(sqe, (int)*file, rr->buffers + (size_t)slot * STAGE_CHUNK, len, *offset, 0);
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
        if (rr->buffers)
                munmap(rr->buffers, (size_t)STAGE_QUEUE_DEPTH * STAGE_CHUNK);
}

static int ring_reader_init(ring_reader *rr, const image_set *set, pw_err *err)
{
        int r = io_uring_queue_init(STAGE_QUEUE_DEPTH, &rr->ring, 0);
        if (r < 0)
                return err_set(err, r, "io_uring_queue_init: %s", strerror(-r));
        rr->ring_ready = true;
        size_t buf_size = (size_t)STAGE_QUEUE_DEPTH * STAGE_CHUNK;
        void *buffers = mmap(NULL, buf_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buffers == MAP_FAILED)
                return err_set(err, negative_errno(), "staging buffers: %m");
        rr->buffers = buffers;
        rr->n_free = STAGE_QUEUE_DEPTH;
        for (unsigned i = 0; i < STAGE_QUEUE_DEPTH; i++)
                rr->free_slots[i] = i;
        _cleanup_free_ int *fds = calloc(set->n ? set->n : 1, sizeof(int));
        if (!fds)
                return -ENOMEM;
        for (size_t i = 0; i < set->n; i++)
                fds[i] = set->files[i].fd;
        /* Registered buffers and files spare the kernel a page pinning and an fd lookup per read. */
        struct iovec iov = {rr->buffers, buf_size};
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

/* Reads every file once through the page cache with up to STAGE_QUEUE_DEPTH reads in flight. */
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
                int s = io_uring_submit_and_wait(&rr.ring, 1);
                if (s < 0 && s != -EINTR)
                        r = err_set(err, s, "io_uring_submit: %s", strerror(-s));
                in_flight -= ring_reap(&rr, &r, err);
        }
        /* After a failure, what is still in flight must land before the buffers go. */
        while (in_flight > 0 && io_uring_submit_and_wait(&rr.ring, 1) >= 0)
                in_flight -= ring_reap(&rr, &r, err);
        ring_reader_done(&rr);
        return r;
}

/* The same with one plain read at a time, for comparison (PW_ENGINE_NO_IO_URING). */
static int read_plain(const image_set *set, pw_err *err)
{
        _cleanup_free_ char *buf = malloc(STAGE_CHUNK);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < set->n; i++)
                for (off_t off = 0; (size_t)off < set->files[i].size;) {
                        ssize_t n = pread(set->files[i].fd, buf, STAGE_CHUNK, off);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                return err_set(err, n < 0 ? negative_errno() : -EIO, "reading image: %m");
                        off += n;
                }
        return 0;
}

/* Maps and locks each file: resident pages stay resident until pw_template_evict. */
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
                        return err_set(err, negative_errno(), "mapping an image: %m");
                s->files[s->n_files++] = (staged_file){addr, set->files[i].size};
                if (mlock(addr, set->files[i].size) < 0)
                        return err_set(err, negative_errno(), "locking an image in memory: %m");
        }
        return 0;
}

static struct staged_template **staged_find(pw_engine *e, const char *images)
{
        struct staged_template **p = &e->staged;
        while (*p && strcmp((*p)->images, images))
                p = &(*p)->next;
        return p;
}

int stage_template(pw_engine *e, const char *images, int images_fd, pw_err *err)
{
        struct stat st;
        if (fstat(images_fd, &st) < 0)
                return err_set(err, negative_errno(), "stat %s: %m", images);
        pthread_mutex_lock(&e->stage_lock);
        struct staged_template **p = staged_find(e, images);
        if (*p && (*p)->dev == st.st_dev && (*p)->ino == st.st_ino) {
                pthread_mutex_unlock(&e->stage_lock);
                return 0; /* the hot path: staged before, still the published images */
        }
        if (*p) { /* the template was rebuilt: let the old images go */
                struct staged_template *old = *p;
                *p = old->next;
                staged_free(old);
        }
        uint64_t t0 = now_us();
        image_set set = {0};
        struct staged_template *s = calloc(1, sizeof(*s));
        int r = s && (s->images = strdup(images)) ? 0 : -ENOMEM;
        if (r >= 0)
                r = image_set_open(images_fd, images, &set, err);
        if (r >= 0)
                r = e->flags & PW_ENGINE_NO_IO_URING ? read_plain(&set, err) : read_with_ring(&set, err);
        if (r >= 0)
                r = pin_files(&set, s, err);
        if (r >= 0) {
                s->dev = st.st_dev;
                s->ino = st.st_ino;
                s->next = e->staged;
                e->staged = TAKE_PTR(s);
                pw_log(e, PW_LOG_DEBUG, "staged %s: %zu files, %.1f MiB in %.2f ms (%s)", images, set.n,
                       set.bytes / 1048576.0, (now_us() - t0) / 1000.0,
                       e->flags & PW_ENGINE_NO_IO_URING ? "plain reads" : "io_uring");
        }
        pthread_mutex_unlock(&e->stage_lock);
        staged_free(s);
        image_set_done(&set);
        return r;
}

/* Drops every file of the directory from the page cache. Pages that someone maps stay. */
static int evict_files(const char *images, pw_err *err)
{
        _cleanup_close_ int dir_fd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", images);
        image_set set = {0};
        int r = image_set_open(dir_fd, images, &set, err);
        for (size_t i = 0; r >= 0 && i < set.n; i++) {
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
        if (*p) {
                struct staged_template *s = *p;
                *p = s->next;
                staged_free(s);
        }
        int r = evict_files(images, err);
        pthread_mutex_unlock(&e->stage_lock);
        return r;
}

PW_PUBLIC int pw_template_evict(pw_engine *e, const char *name)
{
        if (!e)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(name))
                return engine_fail(e, -EINVAL, (err_set(&err, -EINVAL, "invalid template name"), &err));
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

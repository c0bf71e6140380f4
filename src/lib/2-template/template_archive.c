/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The template's layer: a ustar archive of some of its subdirectories, compressed with zstd, and
 * its careful unpacking. Members are written in name order with their modes, owned by root and
 * dated 0, so that the same template gives the same bytes, and the same digest, at every push. Unpacking opens every parent directory
 * with O_NOFOLLOW, so no member can write through a link another member made.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "digest.h"
#include "template_archive.h"
#include "util.h"

#define BLOCK 512
#define MAX_DEPTH 32
#define MAX_LINK 100

/* ------------------------------------------------------------------ the compressed stream out */

typedef struct zwriter {
        ZSTD_CCtx *cctx;
        int fd;
        sha256_ctx *sha;
        uint64_t size;
        unsigned char out[1 << 17];
} zwriter;

static int zwriter_pump(zwriter *w, ZSTD_inBuffer *in, ZSTD_EndDirective mode)
{
        for (;;) {
                ZSTD_outBuffer out = {w->out, sizeof(w->out), 0};
                size_t left = ZSTD_compressStream2(w->cctx, &out, in, mode);
                if (ZSTD_isError(left))
                        return -EIO;
                if (out.pos) {
                        int r = write_full(w->fd, w->out, out.pos);
                        if (r < 0)
                                return r;
                        sha256_update(w->sha, w->out, out.pos);
                        w->size += out.pos;
                }
                bool done = mode == ZSTD_e_continue ? in->pos == in->size : left == 0;
                if (done)
                        return 0;
        }
}

static int zwriter_write(zwriter *w, const void *data, size_t n)
{
        ZSTD_inBuffer in = {data, n, 0};
        return zwriter_pump(w, &in, ZSTD_e_continue);
}

/* ------------------------------------------------------------------ writing the tar */

/* v in width-1 octal digits and a NUL; false if it does not fit (a file of 8 GiB or more). */
static bool octal(char *field, size_t width, uint64_t v)
{
        field[width - 1] = '\0';
        for (size_t i = width - 1; i-- > 0; v >>= 3)
                field[i] = (char)('0' + (v & 7));
        return v == 0;
}

/* A ustar name: up to 100 bytes, or a prefix of up to 155 before a '/' and the rest. */
static int split_name(const char *path, char name[100], char prefix[155])
{
        size_t len = strlen(path);
        if (len <= 100) {
                memcpy(name, path, len);
                return 0;
        }
        for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
                size_t head = (size_t)(slash - path), tail = len - head - 1;
                if (head <= 155 && tail <= 100 && tail > 0) {
                        memcpy(prefix, path, head);
                        memcpy(name, slash + 1, tail);
                        return 0;
                }
        }
        return -ENAMETOOLONG;
}

static int tar_header(zwriter *w, const char *path, const struct stat *st, char type, const char *link, pw_err *err)
{
        unsigned char h[BLOCK] = {0};
        if (split_name(path, (char *)h, (char *)h + 345) < 0)
                return err_set(err, -ENAMETOOLONG, "%s: name too long for the archive", path);
        if (link && strlen(link) > MAX_LINK)
                return err_set(err, -ENAMETOOLONG, "%s: link target too long for the archive", path);
        octal((char *)h + 100, 8, st->st_mode & 07777);
        octal((char *)h + 108, 8, 0);
        octal((char *)h + 116, 8, 0);
        if (!octal((char *)h + 124, 12, type == '0' ? (uint64_t)st->st_size : 0))
                return err_set(err, -EFBIG, "%s: 8 GiB or more, too large for the archive", path);
        octal((char *)h + 136, 12, 0);
        h[156] = (unsigned char)type;
        if (link)
                memcpy(h + 157, link, strlen(link));
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < BLOCK; i++)
                sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
        return zwriter_write(w, h, BLOCK);
}

static int tar_file_data(zwriter *w, int dirfd, const char *name, const char *path, const struct stat *st, pw_err *err)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return err_set(err, negative_errno(), "reading %s: %m", path);
        char buf[1 << 16];
        uint64_t left = (uint64_t)st->st_size;
        while (left) {
                ssize_t n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));
                if (n <= 0)
                        return err_set(err, n < 0 ? negative_errno() : -EIO, "reading %s: %s", path,
                                       n < 0 ? strerror(errno) : "it shrank while being archived");
                int r = zwriter_write(w, buf, (size_t)n);
                if (r < 0)
                        return err_set(err, r, "writing the archive: %s", strerror(-r));
                left -= (uint64_t)n;
        }
        static const char zeros[BLOCK];
        size_t pad = (BLOCK - (size_t)(st->st_size % BLOCK)) % BLOCK;
        return pad ? zwriter_write(w, zeros, pad) : 0;
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dirfd, sorted; NULL-terminated. */
static char **sorted_entries(int dirfd)
{
        int copy = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
        if (!d) {
                if (copy >= 0)
                        close(copy);
                return NULL;
        }
        _cleanup_strv_free_ char **names = NULL;
        bool ok = true;
        for (struct dirent *e; ok && (e = readdir(d));)
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                        ok = strv_push(&names, e->d_name) == 0;
        closedir(d);
        if (!ok)
                return NULL;
        if (!names)
                return calloc(1, sizeof(char *));
        qsort(names, strv_length(names), sizeof(char *), name_cmp);
        return TAKE_PTR(names);
}

static int tar_tree(zwriter *w, int dirfd, const char *path, unsigned depth, pw_err *err);

static int tar_entry(zwriter *w, int dirfd, const char *name, const char *path, unsigned depth, pw_err *err)
{
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return err_set(err, negative_errno(), "stat %s: %m", path);
        if (S_ISREG(st.st_mode)) {
                int r = tar_header(w, path, &st, '0', NULL, err);
                return r < 0 ? r : tar_file_data(w, dirfd, name, path, &st, err);
        }
        if (S_ISLNK(st.st_mode)) {
                char target[MAX_LINK + 2];
                ssize_t n = readlinkat(dirfd, name, target, sizeof(target) - 1);
                if (n < 0)
                        return err_set(err, negative_errno(), "readlink %s: %m", path);
                target[n] = '\0';
                return tar_header(w, path, &st, '2', target, err);
        }
        if (!S_ISDIR(st.st_mode))
                return err_set(err, -EPERM, "%s is neither a file, a directory nor a link", path);
        _cleanup_free_ char *as_dir = strdup_printf("%s/", path);
        if (!as_dir)
                return -ENOMEM;
        int r = tar_header(w, as_dir, &st, '5', NULL, err);
        if (r < 0)
                return r;
        _cleanup_close_ int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
                return err_set(err, negative_errno(), "opening %s: %m", path);
        return tar_tree(w, sub, path, depth + 1, err);
}

static int tar_tree(zwriter *w, int dirfd, const char *path, unsigned depth, pw_err *err)
{
        if (depth > MAX_DEPTH)
                return err_set(err, -ELOOP, "%s: nested too deep", path);
        _cleanup_strv_free_ char **names = sorted_entries(dirfd);
        if (!names)
                return err_set(err, -ENOMEM, "listing %s: %m", path);
        for (char **n = names; *n; n++) {
                _cleanup_free_ char *sub = strdup_printf("%s/%s", path, *n);
                if (!sub)
                        return -ENOMEM;
                int r = tar_entry(w, dirfd, *n, sub, depth, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A part: the directory at part->path, under its name. */
static int tar_part(zwriter *w, const template_archive_part *part, pw_err *err)
{
        _cleanup_close_ int dirfd = open(part->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dirfd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", part->path);
        struct stat st;
        if (fstat(dirfd, &st) < 0)
                return err_set(err, negative_errno(), "stat %s: %m", part->path);
        _cleanup_free_ char *as_dir = strdup_printf("%s/", part->name);
        if (!as_dir)
                return -ENOMEM;
        int r = tar_header(w, as_dir, &st, '5', NULL, err);
        return r < 0 ? r : tar_tree(w, dirfd, part->name, 1, err);
}

int template_archive_write(const template_archive_part *parts, size_t n, int out_fd, char ret_sha256[65],
                           uint64_t *ret_size, pw_err *err)
{
        zwriter *w = calloc(1, sizeof(*w));
        if (!w || !(w->cctx = ZSTD_createCCtx()) || !(w->sha = sha256_begin())) {
                if (w)
                        ZSTD_freeCCtx(w->cctx);
                free(w);
                return -ENOMEM;
        }
        w->fd = out_fd;
        /* Level 3 (zstd's default): images are mostly pages, which compress well and fast. */
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, 3);
        int r = 0;
        for (size_t k = 0; k < n && r >= 0; k++)
                r = tar_part(w, &parts[k], err);
        static const char end[2 * BLOCK];
        if (r >= 0 && (r = zwriter_write(w, end, sizeof(end))) >= 0) {
                ZSTD_inBuffer none = {NULL, 0, 0};
                r = zwriter_pump(w, &none, ZSTD_e_end);
        }
        if (r < 0 && !err->msg[0])
                err_set(err, r, "writing the archive: %s", strerror(-r));
        sha256_end_hex(w->sha, ret_sha256);
        *ret_size = w->size;
        ZSTD_freeCCtx(w->cctx);
        free(w);
        return r;
}

/* ------------------------------------------------------------------ the compressed stream in */

typedef struct zreader {
        ZSTD_DCtx *dctx;
        int fd;
        unsigned char in[1 << 17];
        ZSTD_inBuffer inb;
        bool eof;
        unsigned char out[1 << 17];
        size_t out_pos, out_len;
} zreader;

/* Refills the decompressed buffer; 0 at the end of the stream. */
static int zreader_fill(zreader *z)
{
        while (z->out_pos == z->out_len) {
                if (z->inb.pos == z->inb.size && !z->eof) {
                        ssize_t n = read(z->fd, z->in, sizeof(z->in));
                        if (n < 0)
                                return negative_errno();
                        z->eof = n == 0;
                        z->inb = (ZSTD_inBuffer){z->in, (size_t)n, 0};
                }
                if (z->inb.pos == z->inb.size && z->eof)
                        return 0;
                ZSTD_outBuffer out = {z->out, sizeof(z->out), 0};
                size_t r = ZSTD_decompressStream(z->dctx, &out, &z->inb);
                if (ZSTD_isError(r))
                        return -EBADMSG;
                z->out_pos = 0;
                z->out_len = out.pos;
        }
        return 1;
}

/* Exactly n bytes into buf (NULL: skip them); -EBADMSG if the stream ends first. */
static int zreader_read(zreader *z, void *buf, size_t n)
{
        unsigned char *p = buf;
        while (n) {
                int r = zreader_fill(z);
                if (r <= 0)
                        return r < 0 ? r : -EBADMSG;
                size_t k = z->out_len - z->out_pos < n ? z->out_len - z->out_pos : n;
                if (p) {
                        memcpy(p, z->out + z->out_pos, k);
                        p += k;
                }
                z->out_pos += k;
                n -= k;
        }
        return 0;
}

/* ------------------------------------------------------------------ unpacking */

typedef struct member {
        char path[BLOCK];
        char link[MAX_LINK + 1];
        char type;
        mode_t mode;
        uint64_t size;
} member;

static uint64_t parse_octal(const unsigned char *field, size_t width)
{
        uint64_t v = 0;
        for (size_t i = 0; i < width && field[i] >= '0' && field[i] <= '7'; i++)
                v = v * 8 + (uint64_t)(field[i] - '0');
        return v;
}

static bool header_checksum_ok(const unsigned char *h)
{
        unsigned sum = 0;
        for (size_t i = 0; i < BLOCK; i++)
                sum += i >= 148 && i < 156 ? ' ' : h[i];
        size_t at = 148;
        while (at < 156 && h[at] == ' ')
                at++;
        return sum == parse_octal(h + at, 156 - at);
}

static bool all_zero(const unsigned char *h)
{
        for (size_t i = 0; i < BLOCK; i++)
                if (h[i])
                        return false;
        return true;
}

/* The next member's header; 0 at the archive's end. */
static int read_member(zreader *z, member *m, pw_err *err)
{
        unsigned char h[BLOCK];
        int r = zreader_read(z, h, BLOCK);
        if (r < 0)
                return err_set(err, r, "the archive is truncated or not zstd");
        if (all_zero(h))
                return 0;
        if (!header_checksum_ok(h) || memcmp(h + 257, "ustar", 5))
                return err_set(err, -EBADMSG, "the archive has a damaged header");
        char name[101] = {0}, prefix[156] = {0};
        memcpy(name, h, 100);
        memcpy(prefix, h + 345, 155);
        snprintf(m->path, sizeof(m->path), "%s%s%s", prefix, prefix[0] ? "/" : "", name);
        memset(m->link, 0, sizeof(m->link));
        memcpy(m->link, h + 157, MAX_LINK);
        m->type = h[156] ? (char)h[156] : '0';
        m->mode = (mode_t)parse_octal(h + 100, 8) & 0777;
        m->size = parse_octal(h + 124, 12);
        return 1;
}

/* Splits path into components (in place), refusing "..", absolute paths and parts not named. */
static int checked_components(char *path, const char *const *parts, char **comp, size_t *n, pw_err *err)
{
        _cleanup_free_ char *shown = strdup(path);
        if (path[0] == '/')
                return err_set(err, -EPERM, "archive member %s is absolute", shown ? shown : path);
        *n = 0;
        for (char *save = NULL, *c = strtok_r(path, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (!strcmp(c, "."))
                        continue;
                if (!strcmp(c, "..") || *n == MAX_DEPTH)
                        return err_set(err, -EPERM, "archive member %s leads out of the template", shown ? shown : "");
                comp[(*n)++] = c;
        }
        bool named = false;
        for (const char *const *p = parts; *n && *p && !named; p++)
                named = !strcmp(comp[0], *p);
        if (!named)
                return err_set(err, -EPERM, "archive member %s is not part of a template", shown ? shown : "");
        return 0;
}

/* The directory holding the last component, every parent opened without following links (and
 * made when missing). */
static int open_parent(int root, char **comp, size_t n, pw_err *err)
{
        int fd = fcntl(root, F_DUPFD_CLOEXEC, 3);
        for (size_t i = 0; fd >= 0 && i + 1 < n; i++) {
                if (mkdirat(fd, comp[i], 0755) < 0 && errno != EEXIST) {
                        close(fd);
                        return err_set(err, negative_errno(), "mkdir %s: %m", comp[i]);
                }
                int next = openat(fd, comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(fd);
                if (next < 0)
                        return err_set(err, -EPERM, "archive member under %s would write through a link", comp[i]);
                fd = next;
        }
        return fd;
}

static int extract_data(zreader *z, int fd, uint64_t size, pw_err *err)
{
        char buf[1 << 16];
        for (uint64_t left = size; left;) {
                size_t k = left < sizeof(buf) ? (size_t)left : sizeof(buf);
                int r = zreader_read(z, buf, k);
                if (r < 0)
                        return err_set(err, r, "the archive is truncated");
                if ((r = write_full(fd, buf, k)) < 0)
                        return err_set(err, r, "writing: %s", strerror(-r));
                left -= k;
        }
        size_t pad = (BLOCK - (size_t)(size % BLOCK)) % BLOCK;
        int r = zreader_read(z, NULL, pad);
        return r < 0 ? err_set(err, r, "the archive is truncated") : 0;
}

static int extract_member(zreader *z, int root, member *m, const char *const *parts, pw_err *err)
{
        char *comp[MAX_DEPTH];
        size_t n = 0;
        int r = checked_components(m->path, parts, comp, &n, err);
        if (r < 0)
                return r;
        if (m->type != '0' && m->type != '5' && m->type != '2')
                return err_set(err, -EPERM, "archive member %s is a %s, which a template may not hold", comp[n - 1],
                               m->type == '1' ? "hard link" : "device or special file");
        _cleanup_close_ int parent = open_parent(root, comp, n, err);
        if (parent < 0)
                return parent;
        const char *last = comp[n - 1];
        if (m->type == '5')
                return mkdirat(parent, last, m->mode | 0700) < 0 && errno != EEXIST
                               ? err_set(err, negative_errno(), "mkdir %s: %m", last) : 0;
        if (m->type == '2')
                return symlinkat(m->link, parent, last) < 0 ? err_set(err, negative_errno(), "symlink %s: %m", last) : 0;
        _cleanup_close_ int fd = openat(parent, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m->mode);
        if (fd < 0)
                return err_set(err, negative_errno(), "creating %s: %m", last);
        return extract_data(z, fd, m->size, err);
}

int template_archive_extract(int in_fd, const char *dir, const char *const *parts, uint64_t max_bytes, pw_err *err)
{
        _cleanup_close_ int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return err_set(err, negative_errno(), "opening %s: %m", dir);
        zreader *z = calloc(1, sizeof(*z));
        if (!z || !(z->dctx = ZSTD_createDCtx())) {
                free(z);
                return -ENOMEM;
        }
        z->fd = in_fd;
        uint64_t total = 0;
        int r;
        member m;
        while ((r = read_member(z, &m, err)) > 0) {
                total += m.size;
                if (total > max_bytes) {
                        r = err_set(err, -EFBIG, "the archive unpacks to more than %llu MiB",
                                    (unsigned long long)(max_bytes >> 20));
                        break;
                }
                if ((r = extract_member(z, root, &m, parts, err)) < 0)
                        break;
        }
        ZSTD_freeDCtx(z->dctx);
        free(z);
        return r;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rewriting the credentials in CRIU's core images, at the protobuf wire level: the image format
 * (criu/images/core.proto, creds.proto) nests them as core_entry.thread_core (field 5) →
 * thread_core_entry.creds (field 10) → creds_entry fields 1-8 (uid, gid, euid, egid, suid, sgid,
 * fsuid, fsgid), all varints. Fields are copied through untouched otherwise, so whatever else a
 * newer CRIU adds survives; the enclosing lengths are recomputed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "creds_image.h"
#include "sandbox.h"

#define IMG_COMMON_MAGIC 0x54564319u
#define CORE_MAGIC 0x55053847u
#define SECCOMP_MAGIC 0x64413049u
#define SECCOMP_IMAGE "seccomp.img"

/* criu/images/seccomp.proto: seccomp_entry.seccomp_filters (1) → seccomp_filter.filter (1) */
#define SECCOMP_ENTRY_FILTERS 1
#define SECCOMP_FILTER_BYTES 1

#define CORE_THREAD_CORE 5
#define THREAD_CORE_CREDS 10
#define CREDS_LAST_ID 8 /* fields 1..8: odd ones uids, even ones gids */

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

typedef struct buf {
        uint8_t *p;
        size_t n, cap;
} buf;

static int buf_put(buf *b, const void *data, size_t n)
{
        int r = grow_buffer((void **)&b->p, &b->cap, b->n + n, 4096);
        if (r < 0)
                return r;
        memcpy(b->p + b->n, data, n);
        b->n += n;
        return 0;
}

static int put_varint(buf *b, uint64_t v)
{
        uint8_t out[10];
        size_t n = 0;
        do {
                out[n] = (uint8_t)(v & 0x7f);
                v >>= 7;
                if (v)
                        out[n] |= 0x80;
                n++;
        } while (v);
        return buf_put(b, out, n);
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
                uint8_t byte = *(*p)++;
                v |= (uint64_t)(byte & 0x7f) << shift;
                if (!(byte & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

/* Moves *p past one field's payload of the given wire type. */
static int skip_payload(const uint8_t **p, const uint8_t *end, unsigned wire)
{
        uint64_t len;
        switch (wire) {
        case WIRE_VARINT:
                return get_varint(p, end, &len);
        case WIRE_FIXED64:
                len = 8;
                break;
        case WIRE_FIXED32:
                len = 4;
                break;
        case WIRE_LEN:
                if (get_varint(p, end, &len) < 0)
                        return -EBADMSG;
                break;
        default:
                return -EBADMSG; /* groups: never written by CRIU */
        }
        if (len > (uint64_t)(end - *p))
                return -EBADMSG;
        *p += len;
        return 0;
}

typedef struct creds_change {
        uid_t uid;
        gid_t gid;
        bool seen;
        uid_t old_uid;
} creds_change;

/* Calls visit for each field of a message; visit copies it to out, changed or not. */
typedef int (*field_fn)(unsigned field, unsigned wire, const uint8_t *start, const uint8_t *payload,
                        const uint8_t *end_of_field, buf *out, void *ctx);

static int walk(const uint8_t *p, const uint8_t *end, field_fn visit, buf *out, void *ctx)
{
        while (p < end) {
                const uint8_t *start = p;
                uint64_t tag;
                if (get_varint(&p, end, &tag) < 0)
                        return -EBADMSG;
                const uint8_t *payload = p;
                if (skip_payload(&p, end, (unsigned)(tag & 7)) < 0)
                        return -EBADMSG;
                int r = visit((unsigned)(tag >> 3), (unsigned)(tag & 7), start, payload, p, out, ctx);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int copy_field(const uint8_t *start, const uint8_t *end, buf *out)
{
        return buf_put(out, start, (size_t)(end - start));
}

static int visit_creds(unsigned field, unsigned wire, const uint8_t *start, const uint8_t *payload,
                       const uint8_t *end, buf *out, void *ctx)
{
        creds_change *c = ctx;
        if (field < 1 || field > CREDS_LAST_ID || wire != WIRE_VARINT)
                return copy_field(start, end, out);
        if (field == 1) {
                uint64_t old;
                if (get_varint(&payload, end, &old) < 0)
                        return -EBADMSG;
                c->old_uid = (uid_t)old;
                c->seen = true;
        }
        int r = put_varint(out, (uint64_t)field << 3 | WIRE_VARINT);
        return r < 0 ? r : put_varint(out, field % 2 ? c->uid : c->gid);
}

/* A length-delimited field whose contents another visitor rewrites. */
static int rewrite_nested(unsigned field, const uint8_t *payload, const uint8_t *end, field_fn inner,
                          buf *out, void *ctx)
{
        uint64_t len;
        if (get_varint(&payload, end, &len) < 0)
                return -EBADMSG;
        buf sub = {0};
        int r = walk(payload, payload + len, inner, &sub, ctx);
        if (r >= 0 && (r = put_varint(out, (uint64_t)field << 3 | WIRE_LEN)) >= 0 &&
            (r = put_varint(out, sub.n)) >= 0)
                r = buf_put(out, sub.p, sub.n);
        free(sub.p);
        return r;
}

static int visit_thread_core(unsigned field, unsigned wire, const uint8_t *start, const uint8_t *payload,
                             const uint8_t *end, buf *out, void *ctx)
{
        if (field != THREAD_CORE_CREDS || wire != WIRE_LEN)
                return copy_field(start, end, out);
        return rewrite_nested(field, payload, end, visit_creds, out, ctx);
}

static int visit_core(unsigned field, unsigned wire, const uint8_t *start, const uint8_t *payload,
                      const uint8_t *end, buf *out, void *ctx)
{
        if (field != CORE_THREAD_CORE || wire != WIRE_LEN)
                return copy_field(start, end, out);
        return rewrite_nested(field, payload, end, visit_thread_core, out, ctx);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int put_le32(buf *b, uint32_t v)
{
        const uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
        return buf_put(b, le, sizeof(le));
}

int core_image_set_creds(const uint8_t *in, size_t n, uid_t uid, gid_t gid, uint8_t **ret,
                         size_t *ret_size, uid_t *ret_old_uid)
{
        if (n < 12 || get_le32(in) != IMG_COMMON_MAGIC || get_le32(in + 4) != CORE_MAGIC)
                return -EBADMSG;
        buf out = {0};
        creds_change c = {.uid = uid, .gid = gid};
        int r = buf_put(&out, in, 8);
        /* One core_entry, each entry framed by its 32-bit little-endian length. */
        for (size_t off = 8; r >= 0 && off < n;) {
                if (n - off < 4 || get_le32(in + off) > n - off - 4) {
                        r = -EBADMSG;
                        break;
                }
                uint32_t len = get_le32(in + off);
                buf entry = {0};
                r = walk(in + off + 4, in + off + 4 + len, visit_core, &entry, &c);
                if (r >= 0 && entry.n > UINT32_MAX)
                        r = -EBADMSG;
                if (r >= 0 && (r = put_le32(&out, (uint32_t)entry.n)) >= 0)
                        r = buf_put(&out, entry.p, entry.n);
                free(entry.p);
                off += 4 + len;
        }
        if (r >= 0 && !c.seen)
                r = -EBADMSG; /* no credentials: not an image we know how to restore safely */
        if (r < 0) {
                free(out.p);
                return r;
        }
        *ret = out.p;
        *ret_size = out.n;
        *ret_old_uid = c.old_uid;
        return 0;
}

/* The one filter a sandbox's task has, its instructions replaced; prev and flags copied. */
typedef struct filter_change {
        const struct sock_fprog *prog;
        unsigned filters;
} filter_change;

static int put_len_field(buf *out, unsigned field, const void *data, size_t n)
{
        int r = put_varint(out, (uint64_t)field << 3 | WIRE_LEN);
        if (r >= 0)
                r = put_varint(out, n);
        return r < 0 ? r : buf_put(out, data, n);
}

static int visit_filter(unsigned field, unsigned wire, const uint8_t *start, const uint8_t *payload,
                        const uint8_t *end, buf *out, void *ctx)
{
        const filter_change *f = ctx;
        if (field != SECCOMP_FILTER_BYTES || wire != WIRE_LEN)
                return copy_field(start, end, out);
        return put_len_field(out, field, f->prog->filter, f->prog->len * sizeof(struct sock_filter));
}

static int visit_seccomp_entry(unsigned field, unsigned wire, const uint8_t *start, const uint8_t *payload,
                               const uint8_t *end, buf *out, void *ctx)
{
        if (field != SECCOMP_ENTRY_FILTERS || wire != WIRE_LEN)
                return copy_field(start, end, out);
        ((filter_change *)ctx)->filters++;
        return rewrite_nested(field, payload, end, visit_filter, out, ctx);
}

int seccomp_image_set_filter(const uint8_t *in, size_t n, const struct sock_fprog *prog, uint8_t **ret,
                             size_t *ret_size)
{
        if (n < 12 || get_le32(in) != IMG_COMMON_MAGIC || get_le32(in + 4) != SECCOMP_MAGIC ||
            get_le32(in + 8) != n - 12)
                return -EBADMSG; /* one entry, framed by its length */
        filter_change f = {prog, 0};
        buf entry = {0}, out = {0};
        int r = walk(in + 12, in + n, visit_seccomp_entry, &entry, &f);
        if (r >= 0 && f.filters != 1)
                r = -EBADMSG; /* a sandbox installs exactly one filter */
        if (r >= 0 && (r = buf_put(&out, in, 8)) >= 0 && (r = put_le32(&out, (uint32_t)entry.n)) >= 0)
                r = buf_put(&out, entry.p, entry.n);
        free(entry.p);
        if (r < 0) {
                free(out.p);
                return r;
        }
        *ret = out.p;
        *ret_size = out.n;
        return 0;
}

static bool is_core_image(const char *name)
{
        return !strncmp(name, "core-", 5) && str_has_suffix(name, ".img");
}

/* Writes the instance's copy of core image name from src_dir into dst_dir. */
static int write_core_copy(int src_dir, int dst_dir, const char *name, uid_t uid, gid_t gid,
                           bool (*allowed)(uid_t, void *), void *userdata, uid_t *ret_old_uid, pw_err *err)
{
        _cleanup_close_ int fd = openat(src_dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return err_set(err, negative_errno(), "opening image %s: %m", name);
        _cleanup_free_ char *in = NULL;
        size_t n;
        int r = read_fd(fd, 16 << 20, &in, &n);
        if (r == -EFBIG)
                return err_set(err, -EUCLEAN, "image %s is too large for a core image", name);
        if (r < 0)
                return err_set(err, r, "reading image %s: %s", name, strerror(-r));
        _cleanup_free_ uint8_t *out = NULL;
        size_t out_n;
        uid_t old_uid;
        r = core_image_set_creds((const uint8_t *)in, n, uid, gid, &out, &out_n, &old_uid);
        if (r < 0)
                return err_set(err, -EUCLEAN, "image %s has no credentials this engine can read", name);
        if (!allowed(old_uid, userdata))
                return err_set(err, -EUCLEAN, "image %s was checkpointed as uid %u, outside the sandbox uids",
                               name, (unsigned)old_uid);
        *ret_old_uid = old_uid;
        _cleanup_close_ int dst = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (dst < 0 || write_full(dst, out, out_n) < 0)
                return err_set(err, negative_errno(), "writing image %s: %m", name);
        return 0;
}

/* Writes the view's copy of seccomp.img from src_dir into dst_dir with prog as the filter. */
static int write_seccomp_copy(int src_dir, int dst_dir, const struct sock_fprog *prog, pw_err *err)
{
        _cleanup_close_ int fd = openat(src_dir, SECCOMP_IMAGE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_free_ char *in = NULL;
        size_t n;
        int r = fd < 0 ? negative_errno() : read_fd(fd, 1 << 20, &in, &n);
        if (r < 0)
                return err_set(err, r == -ENOENT ? -EUCLEAN : r, "reading image " SECCOMP_IMAGE ": %s",
                               strerror(-r));
        _cleanup_free_ uint8_t *out = NULL;
        size_t out_n;
        if (seccomp_image_set_filter((const uint8_t *)in, n, prog, &out, &out_n) < 0)
                return err_set(err, -EUCLEAN, "image " SECCOMP_IMAGE " holds no single filter this engine can replace");
        _cleanup_close_ int dst = openat(dst_dir, SECCOMP_IMAGE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (dst < 0 || write_full(dst, out, out_n) < 0)
                return err_set(err, negative_errno(), "writing image " SECCOMP_IMAGE ": %m");
        return 0;
}

int images_view_for_uid(const char *images_dir, const char *src, const char *view, uid_t uid,
                        gid_t gid, bool (*allowed)(uid_t uid, void *userdata), void *userdata,
                        const struct sock_fprog *seccomp, uid_t *ret_old_uid, pw_err *err)
{
        if (mkdir(src, 0700) < 0 || mkdir(view, 0700) < 0)
                return err_set(err, negative_errno(), "mkdir %s: %m", view);
        /* A bind holds the directory itself, not its name: a rebuild that renames the template
         * away meanwhile changes nothing of what this restore reads. */
        int r = bind_mount_private(images_dir, src, MS_RDONLY);
        if (r < 0)
                return err_set(err, r, "bind %s: %s", images_dir, strerror(-r));
        _cleanup_close_ int dst = open(view, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *src_name = strdup(src);
        DIR *d = opendir(src);
        if (dst < 0 || !d || !src_name) {
                r = src_name ? err_set(err, negative_errno(), "opening %s: %m", d ? view : src) : -ENOMEM;
                if (d)
                        closedir(d);
                return r;
        }
        int n_cores = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (is_core_image(de->d_name)) {
                        r = write_core_copy(dirfd(d), dst, de->d_name, uid, gid, allowed, userdata,
                                            ret_old_uid, err);
                        n_cores++;
                        continue;
                }
                if (seccomp && !strcmp(de->d_name, SECCOMP_IMAGE)) {
                        r = write_seccomp_copy(dirfd(d), dst, seccomp, err);
                        continue;
                }
                /* Relative: it must resolve from the images' descriptor alone, also after CRIU
                 * entered the restored root. */
                _cleanup_free_ char *target = strdup_printf("../%s/%s", basename(src_name), de->d_name);
                if (!target)
                        r = -ENOMEM;
                else if (symlinkat(target, dst, de->d_name) < 0)
                        r = err_set(err, negative_errno(), "symlink %s/%s: %m", view, de->d_name);
        }
        closedir(d);
        if (r >= 0 && !n_cores)
                r = err_set(err, -EUCLEAN, "%s holds no core image", images_dir);
        return r;
}

/* Gives what from owns below dir (a directory fd) to to, never following a link nor leaving the
 * file system dir is on. */
static int chown_tree(int dir, dev_t dev, uid_t from, uid_t to, unsigned depth)
{
        if (depth > 64)
                return -ELOOP;
        DIR *d = fdopendir(dir);
        if (!d) {
                close(dir);
                return negative_errno();
        }
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
                        continue;
                if (st.st_uid == from && fchownat(dirfd(d), de->d_name, to, st.st_gid == from ? to : st.st_gid,
                                                  AT_SYMLINK_NOFOLLOW) < 0)
                        r = negative_errno();
                if (r >= 0 && S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                r = chown_tree(sub, dev, from, to, depth + 1);
                }
        }
        closedir(d);
        return r;
}

int restored_tmp_chown(pid_t pid, uid_t from, uid_t to)
{
        if (from == to)
                return 0;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/root/tmp", (int)pid);
        int dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (dir < 0 || fstat(dir, &st) < 0) {
                int r = negative_errno();
                if (dir >= 0)
                        close(dir);
                return r;
        }
        return chown_tree(dir, st.st_dev, from, to, 0);
}

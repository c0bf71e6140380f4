/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tar archives, plain or gzipped: POSIX ustar with pax extended headers (path, size) and the GNU
 * long-name header, which is what GNU tar, bsdtar and Python's tarfile write. A tar has no index:
 * the check pass reads the whole stream once (skipping the data), the write pass reads it again.
 */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "archive.h"
#include "util.h"

#define BLOCK 512
#define MAX_META_SIZE (64u << 10)  /* a pax or long-name header's data */
#define GZIP_MAGIC "\x1f\x8b"

/* The archive's bytes in order: straight from the blob, or inflated from it. */
typedef struct tar_stream {
        const uint8_t *blob;
        size_t size, at;
        bool gzip;
        z_stream z;
} tar_stream;

typedef struct tar {
        tar_stream in;
        unsigned meta_headers; /* pax and long-name headers, bounded like members */
        bool seen_header;
        char *why;
        size_t why_size;
} tar;

typedef struct tar_member {
        char name[PATH_MAX];
        size_t name_len;
        member_type type;
        uint64_t size;
        mode_t mode;
} tar_member;

static int corrupt(const tar *t, const char *what)
{
        return archive_fail(t->why, t->why_size, -EINVAL, "cannot unpack archive: %s", what);
}

static int stream_open(tar_stream *s)
{
        s->at = 0;
        if (!s->gzip)
                return 0;
        s->z = (z_stream){.next_in = (Bytef *)s->blob, .avail_in = (uInt)s->size};
        return inflateInit2(&s->z, 16 + MAX_WBITS) == Z_OK ? 0 : -ENOMEM; /* 16: a gzip wrapper */
}

static void stream_close(tar_stream *s)
{
        if (s->gzip)
                inflateEnd(&s->z);
}

/* Inflates up to n bytes into buf; a gzip file may be several members end to end. */
static ssize_t inflate_some(tar_stream *s, uint8_t *buf, size_t n)
{
        s->z.next_out = buf;
        s->z.avail_out = (uInt)n;
        while (s->z.avail_out) {
                int r = inflate(&s->z, Z_NO_FLUSH);
                if (r == Z_STREAM_END) {
                        if (s->z.avail_in < 2 || memcmp(s->z.next_in, GZIP_MAGIC, 2))
                                break;
                        inflateReset(&s->z);
                } else if (r != Z_OK)
                        return -EINVAL;
        }
        return (ssize_t)(n - s->z.avail_out);
}

/* Reads n bytes into buf; fewer only at the end of the archive. -EINVAL: damaged gzip data. */
static ssize_t stream_read(tar_stream *s, uint8_t *buf, size_t n)
{
        if (s->gzip)
                return inflate_some(s, buf, n);
        size_t left = s->size - s->at, k = n < left ? n : left;
        memcpy(buf, s->blob + s->at, k);
        s->at += k;
        return (ssize_t)k;
}

/* Reads exactly n bytes into buf (NULL: drops them), or fails as a truncated archive. */
static int read_exact(tar *t, uint8_t *buf, uint64_t n)
{
        uint8_t scratch[65536];
        while (n) {
                size_t want = n < sizeof(scratch) ? (size_t)n : sizeof(scratch);
                ssize_t got = stream_read(&t->in, buf ? buf : scratch, want);
                if (got < 0)
                        return corrupt(t, "its gzip data is damaged");
                if ((size_t)got < want)
                        return corrupt(t, "it is truncated");
                if (buf)
                        buf += got;
                n -= (uint64_t)got;
        }
        return 0;
}

static uint64_t padding(uint64_t size)
{
        return (BLOCK - size % BLOCK) % BLOCK;
}

/* A numeric field: octal text, or GNU's base-256 (a first byte of 0x80, then big-endian). */
static int parse_number(const uint8_t *field, size_t len, uint64_t *ret)
{
        uint64_t v = 0;
        if (field[0] == 0x80) {
                for (size_t i = 1; i < len; i++) {
                        if (v >> 56)
                                return -EINVAL;
                        v = v << 8 | field[i];
                }
                *ret = v;
                return 0;
        }
        size_t i = 0;
        while (i < len && field[i] == ' ')
                i++;
        for (; i < len && field[i] >= '0' && field[i] <= '7'; i++) {
                if (v >> 60)
                        return -EINVAL;
                v = v << 3 | (uint64_t)(field[i] - '0');
        }
        if (i < len && field[i] != ' ' && field[i] != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

static bool header_checksum_ok(const uint8_t *h)
{
        uint64_t want;
        if (parse_number(h + 148, 8, &want) < 0)
                return false;
        /* The field counts as spaces; old tars summed signed chars. */
        uint64_t plain = 8 * ' ';
        int64_t as_signed = 8 * ' ';
        for (size_t i = 0; i < BLOCK; i++)
                if (i < 148 || i >= 156) {
                        plain += h[i];
                        as_signed += (signed char)h[i];
                }
        return plain == want || (uint64_t)as_signed == want;
}

static bool all_zero(const uint8_t *h)
{
        for (size_t i = 0; i < BLOCK; i++)
                if (h[i])
                        return false;
        return true;
}

/* A pax extended header's records, "LEN key=value\n": path and size are the ones that matter. */
static int parse_pax(tar *t, const char *data, size_t n, tar_member *next, bool *has_size)
{
        for (size_t at = 0; at < n;) {
                char *end;
                unsigned long len = strtoul(data + at, &end, 10);
                const char *eq = memchr(end, '=', n - (size_t)(end - data));
                if (len == 0 || len > n - at || *end != ' ' || !eq || eq >= data + at + len || data[at + len - 1] != '\n')
                        return corrupt(t, "a pax header is damaged");
                const char *key = end + 1, *value = eq + 1;
                size_t key_len = (size_t)(eq - key), value_len = (size_t)(data + at + len - 1 - value);
                if (key_len == 4 && !memcmp(key, "path", 4)) {
                        if (value_len >= sizeof(next->name))
                                return corrupt(t, "a member's name is too long");
                        memcpy(next->name, value, value_len);
                        next->name_len = value_len;
                } else if (key_len == 4 && !memcmp(key, "size", 4)) {
                        char digits[32];
                        snprintf(digits, sizeof(digits), "%.*s", (int)value_len, value);
                        next->size = strtoull(digits, &end, 10);
                        if (*end || !value_len)
                                return corrupt(t, "a pax header is damaged");
                        *has_size = true;
                }
                at += len;
        }
        return 0;
}

/* Reads a header's data that describes the next member: its long name, or pax records. */
static int read_meta(tar *t, char type, uint64_t size, tar_member *next, bool *has_size)
{
        if (++t->meta_headers > 2 * ARCHIVE_MAX_MEMBERS)
                return archive_fail(t->why, t->why_size, -EINVAL, "archive of more than %u members is over the bounds",
                                    ARCHIVE_MAX_MEMBERS);
        if (size > MAX_META_SIZE)
                return corrupt(t, "an extended header is too large");
        char data[MAX_META_SIZE + 1];
        int r = read_exact(t, (uint8_t *)data, size);
        if (r < 0 || (r = read_exact(t, NULL, padding(size))) < 0)
                return r;
        if (type == 'x')
                return parse_pax(t, data, (size_t)size, next, has_size);
        if (type == 'L') { /* GNU: the next member's name, NUL-terminated */
                data[size] = '\0';
                next->name_len = strnlen(data, (size_t)size);
                if (next->name_len >= sizeof(next->name))
                        return corrupt(t, "a member's name is too long");
                memcpy(next->name, data, next->name_len);
        }
        return 0; /* 'g' (global pax records) and 'K' (a link's long target): nothing we use */
}

static member_type type_of(char type, const tar_member *m)
{
        switch (type) {
        case '0':
        case '7': /* contiguous file: a plain file anywhere but on some old systems */
                return MEMBER_FILE;
        case '\0': /* pre-POSIX: a directory is a file whose name ends in '/' */
                return m->name_len && m->name[m->name_len - 1] == '/' ? MEMBER_DIR : MEMBER_FILE;
        case '5':
                return MEMBER_DIR;
        case '1':
        case '2':
                return MEMBER_LINK;
        default: /* devices, FIFOs, sparse and volume headers, vendor kinds */
                return MEMBER_SPECIAL;
        }
}

/* The name of a plain ustar header: prefix/name when POSIX's prefix field is used. */
static void header_name(const uint8_t *h, tar_member *m)
{
        size_t name_len = strnlen((const char *)h, 100), prefix_len = 0;
        if (!memcmp(h + 257, "ustar\0" "00", 8))
                prefix_len = strnlen((const char *)h + 345, 155);
        m->name_len = 0;
        if (prefix_len) {
                memcpy(m->name, h + 345, prefix_len);
                m->name[prefix_len] = '/';
                m->name_len = prefix_len + 1;
        }
        memcpy(m->name + m->name_len, h, name_len);
        m->name_len += name_len;
}

/* Reads the next member's header (and the extended headers before it): 1 with *m, 0 at the end
 * of the archive, or a negative errno. The member's data follows in the stream. */
static int next_member(tar *t, tar_member *m)
{
        bool has_name = false, has_size = false;
        *m = (tar_member){0};
        for (;;) {
                uint8_t h[BLOCK];
                ssize_t got = stream_read(&t->in, h, BLOCK);
                if (got < 0)
                        return corrupt(t, "its gzip data is damaged");
                if (got == 0 && t->seen_header)
                        return 0; /* no end-of-archive blocks: an end all the same */
                if (got == BLOCK && all_zero(h) && t->seen_header)
                        return 0;
                if (got < BLOCK || !header_checksum_ok(h))
                        return corrupt(t, t->seen_header ? "a header is damaged" : "not a tar file");
                t->seen_header = true;
                uint64_t size;
                if (parse_number(h + 124, 12, &size) < 0)
                        return corrupt(t, "a header is damaged");
                char type = (char)h[156];
                if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
                        int r = read_meta(t, type, size, m, &has_size);
                        if (r < 0)
                                return r;
                        has_name = has_name || ((type == 'x' || type == 'L') && m->name_len);
                        continue;
                }
                if (!has_name)
                        header_name(h, m);
                if (!has_size)
                        m->size = size;
                uint64_t mode = 0;
                parse_number(h + 100, 8, &mode);
                m->mode = (mode_t)(mode & 07777);
                m->type = type_of(type, m);
                return 1;
        }
}

/* The check pass: every member, none written. */
static int tar_check(tar *t)
{
        archive_tally tally = {.why = t->why, .why_size = t->why_size};
        tar_member m;
        int r;
        while ((r = next_member(t, &m)) > 0) {
                char path[PATH_MAX];
                if ((r = archive_check_member(&tally, m.name, m.name_len, m.type, m.size, path)) < 0 ||
                    (r = read_exact(t, NULL, m.size + padding(m.size))) < 0)
                        return r;
        }
        return r;
}

static int member_write(tar *t, const tar_member *m, const char *path, int fd)
{
        uint8_t buf[65536];
        for (uint64_t left = m->size; left;) {
                size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
                int r = read_exact(t, buf, n);
                if (r < 0)
                        return r;
                if ((r = write_full(fd, buf, n)) < 0)
                        return archive_fail(t->why, t->why_size, r, "writing archive member '%s': %s", path, strerror(-r));
                left -= n;
        }
        return read_exact(t, NULL, padding(m->size));
}

/* The write pass, over a stream the check pass found good. */
static int tar_extract(tar *t, int dir_fd)
{
        tar_member m;
        int r;
        while ((r = next_member(t, &m)) > 0) {
                char path[PATH_MAX];
                if ((r = archive_member_path(m.name, m.name_len, path)) < 0)
                        return r;
                if (m.type == MEMBER_DIR) {
                        if ((r = archive_make_dir(dir_fd, path)) < 0)
                                return archive_fail(t->why, t->why_size, r, "making directory '%s': %s", path, strerror(-r));
                        if ((r = read_exact(t, NULL, m.size + padding(m.size))) < 0)
                                return r;
                        continue;
                }
                _cleanup_close_ int fd = archive_create_file(dir_fd, path, m.mode);
                if (fd < 0)
                        return archive_fail(t->why, t->why_size, fd, "creating '%s': %s", path, strerror(-fd));
                if ((r = member_write(t, &m, path, fd)) < 0)
                        return r;
        }
        return r;
}

/* One pass over the archive from its start. */
static int tar_pass(tar *t, int dir_fd, bool write)
{
        t->meta_headers = 0;
        t->seen_header = false;
        int r = stream_open(&t->in);
        if (r < 0)
                return r;
        r = write ? tar_extract(t, dir_fd) : tar_check(t);
        stream_close(&t->in);
        return r;
}

int tar_unpack(const uint8_t *blob, size_t size, bool gzip, int dir_fd, char *why, size_t why_size)
{
        tar t = {.in = {.blob = blob, .size = size, .gzip = gzip}, .why = why, .why_size = why_size};
        int r = tar_pass(&t, dir_fd, false);
        return r < 0 ? r : tar_pass(&t, dir_fd, true);
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Zip archives (PKWARE's APPNOTE.TXT): the central directory at the end lists every member with
 * its sizes and attributes, which is what the check pass reads; the write pass inflates each
 * member from its local header. Stored and deflated members only, no encryption, no zip64 (which
 * only members or archives past 4 GiB or 65535 members need, all over the bounds anyway).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "archive.h"
#include "util.h"

#define END_SIGNATURE 0x06054b50u     /* end of central directory record */
#define ENTRY_SIGNATURE 0x02014b50u   /* central directory file header */
#define LOCAL_SIGNATURE 0x04034b50u   /* local file header */
#define END_SIZE 22
#define ENTRY_SIZE 46
#define LOCAL_SIZE 30
#define MAX_COMMENT 65535
#define HOST_UNIX 3                   /* "version made by" high byte: external attributes hold st_mode */
#define DOS_DIRECTORY 0x10
#define METHOD_STORED 0
#define METHOD_DEFLATED 8
#define FLAG_ENCRYPTED 0x1

static uint16_t le16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct zip {
        const uint8_t *blob;
        size_t size;
        size_t entries;     /* where the central directory starts */
        size_t entries_end; /* and ends */
        unsigned count;
        char *why;
        size_t why_size;
} zip;

typedef struct zip_entry {
        const char *name;
        size_t name_len;
        uint16_t flags, method;
        uint32_t crc, packed_size, size, local_offset;
        member_type type;
        mode_t mode;
} zip_entry;

static int corrupt(const zip *z, const char *what)
{
        return archive_fail(z->why, z->why_size, -EINVAL, "cannot unpack archive: %s", what);
}

/* Finds the end record (the last one: a comment may hold the signature too) and the directory. */
static int zip_open(zip *z)
{
        if (z->size < END_SIZE)
                return corrupt(z, "not a zip file");
        size_t lowest = z->size > END_SIZE + MAX_COMMENT ? z->size - END_SIZE - MAX_COMMENT : 0;
        for (size_t at = z->size - END_SIZE + 1; at-- > lowest;) {
                const uint8_t *end = z->blob + at;
                if (le32(end) != END_SIGNATURE)
                        continue;
                uint32_t count = le16(end + 10), dir_size = le32(end + 12), dir_offset = le32(end + 16);
                if (count == 0xffff || dir_size == 0xffffffffu || dir_offset == 0xffffffffu)
                        return corrupt(z, "zip64 archives are not supported");
                if ((uint64_t)dir_offset + dir_size > at)
                        return corrupt(z, "its central directory lies outside the file");
                z->entries = dir_offset;
                z->entries_end = (size_t)dir_offset + dir_size;
                z->count = count;
                return 0;
        }
        return corrupt(z, "not a zip file");
}

/* What a member is: a directory by its name or attributes; with Unix attributes, by st_mode. */
static void classify(zip_entry *e, uint16_t made_by, uint32_t attributes)
{
        mode_t mode = (made_by >> 8) == HOST_UNIX ? attributes >> 16 : 0;
        e->mode = mode & 07777;
        bool dir = (e->name_len && e->name[e->name_len - 1] == '/') || (attributes & DOS_DIRECTORY);
        if (!(mode & S_IFMT))
                e->type = dir ? MEMBER_DIR : MEMBER_FILE;
        else
                e->type = S_ISREG(mode) ? MEMBER_FILE : S_ISDIR(mode) ? MEMBER_DIR : S_ISLNK(mode) ? MEMBER_LINK
                                                                                                  : MEMBER_SPECIAL;
}

/* Reads the central directory entry at *at and moves *at past it. */
static int entry_read(const zip *z, size_t *at, zip_entry *e)
{
        if (*at + ENTRY_SIZE > z->entries_end || le32(z->blob + *at) != ENTRY_SIGNATURE)
                return corrupt(z, "its central directory is damaged");
        const uint8_t *h = z->blob + *at;
        size_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
        size_t next = *at + ENTRY_SIZE + name_len + extra_len + comment_len;
        if (next > z->entries_end)
                return corrupt(z, "its central directory is damaged");
        *e = (zip_entry){
                .name = (const char *)h + ENTRY_SIZE, .name_len = name_len,
                .flags = le16(h + 8), .method = le16(h + 10), .crc = le32(h + 16),
                .packed_size = le32(h + 20), .size = le32(h + 24), .local_offset = le32(h + 42),
        };
        if (e->packed_size == 0xffffffffu || e->size == 0xffffffffu || e->local_offset == 0xffffffffu)
                return corrupt(z, "zip64 archives are not supported");
        classify(e, le16(h + 4), le32(h + 38));
        *at = next;
        return 0;
}

/* The rules of archive.h, and what this reader can unpack. */
static int zip_check(const zip *z)
{
        archive_tally t = {.why = z->why, .why_size = z->why_size};
        size_t at = z->entries;
        for (unsigned k = 0; k < z->count; k++) {
                zip_entry e = {0};
                char path[PATH_MAX];
                int r = entry_read(z, &at, &e);
                if (r < 0 || (r = archive_check_member(&t, e.name, e.name_len, e.type, e.size, path)) < 0)
                        return r;
                if (e.type == MEMBER_FILE && (e.flags & FLAG_ENCRYPTED))
                        return archive_fail(z->why, z->why_size, -EINVAL, "archive member '%s' is encrypted", path);
                if (e.type == MEMBER_FILE && e.method != METHOD_STORED && e.method != METHOD_DEFLATED)
                        return archive_fail(z->why, z->why_size, -EINVAL,
                                            "archive member '%s' uses compression method %u (only stored and deflated are supported)",
                                            path, e.method);
        }
        return 0;
}

/* Where a member's bytes start, after its local header. */
static int member_data(const zip *z, const zip_entry *e, const uint8_t **ret)
{
        size_t at = e->local_offset;
        if (at + LOCAL_SIZE > z->entries || le32(z->blob + at) != LOCAL_SIGNATURE)
                return corrupt(z, "a member's local header is damaged");
        size_t start = at + LOCAL_SIZE + le16(z->blob + at + 26) + le16(z->blob + at + 28);
        if (start + e->packed_size > z->entries)
                return corrupt(z, "a member's data lies outside the file");
        *ret = z->blob + start;
        return 0;
}

/* Inflates (or copies) a member into fd; it must come to the size and CRC it declared. */
static int member_write(const zip *z, const zip_entry *e, const char *path, const uint8_t *data, int fd)
{
        z_stream s = {.next_in = (Bytef *)data, .avail_in = e->packed_size};
        if (e->method == METHOD_DEFLATED && inflateInit2(&s, -MAX_WBITS) != Z_OK)
                return -ENOMEM;
        uint8_t buf[65536];
        uLong crc = crc32(0, NULL, 0);
        uint64_t written = 0;
        int r = 0, z_r = Z_OK;
        while (r >= 0 && z_r != Z_STREAM_END) {
                size_t n;
                if (e->method == METHOD_STORED) {
                        n = s.avail_in < sizeof(buf) ? s.avail_in : sizeof(buf);
                        memcpy(buf, s.next_in, n);
                        s.next_in += n;
                        s.avail_in -= (uInt)n;
                        z_r = s.avail_in ? Z_OK : Z_STREAM_END;
                } else {
                        s.next_out = buf;
                        s.avail_out = sizeof(buf);
                        z_r = inflate(&s, Z_NO_FLUSH);
                        if (z_r != Z_OK && z_r != Z_STREAM_END)
                                r = archive_fail(z->why, z->why_size, -EINVAL, "cannot unpack archive member '%s': %s",
                                                 path, s.msg ? s.msg : "its data is damaged");
                        n = sizeof(buf) - s.avail_out;
                }
                if (r >= 0 && written + n > e->size)
                        r = archive_fail(z->why, z->why_size, -EINVAL,
                                         "archive member '%s' holds more than the %u bytes it declares", path, e->size);
                crc = crc32(crc, buf, (uInt)n);
                written += n;
                if (r >= 0 && (r = write_full(fd, buf, n)) < 0)
                        r = archive_fail(z->why, z->why_size, r, "writing archive member '%s': %s", path, strerror(-r));
        }
        if (e->method == METHOD_DEFLATED)
                inflateEnd(&s);
        if (r >= 0 && (written != e->size || crc != e->crc))
                r = archive_fail(z->why, z->why_size, -EINVAL, "archive member '%s' is damaged (size or CRC)", path);
        return r;
}

static int zip_extract(const zip *z, int dir_fd)
{
        size_t at = z->entries;
        for (unsigned k = 0; k < z->count; k++) {
                zip_entry e = {0};
                char path[PATH_MAX];
                const uint8_t *data = NULL;
                int r = entry_read(z, &at, &e);
                if (r < 0 || (r = archive_member_path(e.name, e.name_len, path)) < 0)
                        return r;
                if (e.type == MEMBER_DIR) {
                        if ((r = archive_make_dir(dir_fd, path)) < 0)
                                return archive_fail(z->why, z->why_size, r, "making directory '%s': %s", path, strerror(-r));
                        continue;
                }
                if ((r = member_data(z, &e, &data)) < 0)
                        return r;
                _cleanup_close_ int fd = archive_create_file(dir_fd, path, e.mode);
                if (fd < 0)
                        return archive_fail(z->why, z->why_size, fd, "creating '%s': %s", path, strerror(-fd));
                if ((r = member_write(z, &e, path, data, fd)) < 0)
                        return r;
        }
        return 0;
}

int zip_unpack(const uint8_t *blob, size_t size, int dir_fd, char *why, size_t why_size)
{
        zip z = {.blob = blob, .size = size, .why = why, .why_size = why_size};
        int r = zip_open(&z);
        if (r >= 0)
                r = zip_check(&z);
        return r < 0 ? r : zip_extract(&z, dir_fd);
}

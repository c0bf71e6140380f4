/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the zip and tar readers share: the rules a member must follow, and writing it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "util.h"

archive_kind archive_kind_of(const char *filename)
{
        if (str_has_suffix(filename, ".zip"))
                return ARCHIVE_ZIP;
        if (str_has_suffix(filename, ".tar"))
                return ARCHIVE_TAR;
        if (str_has_suffix(filename, ".tar.gz") || str_has_suffix(filename, ".tgz"))
                return ARCHIVE_TAR_GZ;
        return ARCHIVE_NONE;
}

int archive_fail(char *why, size_t why_size, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
        return r;
}

int archive_unpack(const void *blob, size_t size, archive_kind kind, int dir_fd, char *why, size_t why_size)
{
        switch (kind) {
        case ARCHIVE_ZIP:
                return zip_unpack(blob, size, dir_fd, why, why_size);
        case ARCHIVE_TAR:
        case ARCHIVE_TAR_GZ:
                return tar_unpack(blob, size, kind == ARCHIVE_TAR_GZ, dir_fd, why, why_size);
        case ARCHIVE_NONE:
                break;
        }
        return archive_fail(why, why_size, -EINVAL, "not an archive");
}

/* The name as text for a message: NUL-terminated, cut to a readable length. */
static void shown_name(char out[256], const char *name, size_t name_len)
{
        size_t n = name_len < 255 ? name_len : 255;
        memcpy(out, name, n);
        out[n] = '\0';
}

/* Normalizes name into path: "" and "." components dropped, none may be ".."; nothing absolute,
 * no NUL. Returns 0, or -EINVAL when it leads out (or cannot be a path at all). */
static int normalize(const char *name, size_t name_len, char path[PATH_MAX])
{
        if (name_len == 0 || name[0] == '/' || memchr(name, '\0', name_len))
                return -EINVAL;
        size_t len = 0;
        for (size_t i = 0; i < name_len;) {
                const char *slash = memchr(name + i, '/', name_len - i);
                size_t n = (slash ? (size_t)(slash - name) : name_len) - i;
                const char *part = name + i;
                i += n + 1;
                if (n == 0 || (n == 1 && part[0] == '.'))
                        continue;
                if (n == 2 && part[0] == '.' && part[1] == '.')
                        return -EINVAL;
                if (len + n + 2 > PATH_MAX)
                        return -EINVAL;
                if (len)
                        path[len++] = '/';
                memcpy(path + len, part, n);
                len += n;
        }
        path[len] = '\0';
        return 0;
}

int archive_member_path(const char *name, size_t name_len, char path[PATH_MAX])
{
        return normalize(name, name_len, path);
}

int archive_check_member(archive_tally *t, const char *name, size_t name_len, member_type type, uint64_t size,
                         char path[PATH_MAX])
{
        char shown[256];
        shown_name(shown, name, name_len);
        if (normalize(name, name_len, path) < 0)
                return archive_fail(t->why, t->why_size, -EINVAL, "archive member '%s' leads out of the archive", shown);
        if (type == MEMBER_LINK || type == MEMBER_SPECIAL)
                return archive_fail(t->why, t->why_size, -EINVAL, "archive member '%s' is a %s, which an action may not hold",
                                    shown, type == MEMBER_LINK ? "link" : "device or special file");
        if (type == MEMBER_FILE && !path[0])
                return archive_fail(t->why, t->why_size, -EINVAL, "archive member '%s' is a file without a name", shown);
        t->members++;
        t->bytes += size; /* a directory's is 0; one that says otherwise is unpacked data too */
        if (t->members > ARCHIVE_MAX_MEMBERS || size > ARCHIVE_MAX_BYTES || t->bytes > ARCHIVE_MAX_BYTES)
                return archive_fail(t->why, t->why_size, -EINVAL,
                                    "archive of more than %u members or %llu bytes unpacked is over the bounds",
                                    ARCHIVE_MAX_MEMBERS, ARCHIVE_MAX_BYTES);
        return 0;
}

/* Opens (making it when missing) each directory of path[0..len) in turn under dir_fd; returns an fd
 * of the last. Links are never followed: none is ever made, and none may be met. */
static int open_dirs(int dir_fd, const char *path, size_t len)
{
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        for (size_t i = 0; fd >= 0 && i < len;) {
                const char *slash = memchr(path + i, '/', len - i);
                size_t n = (slash ? (size_t)(slash - path) : len) - i;
                char part[NAME_MAX + 1];
                if (n > NAME_MAX) {
                        close(fd);
                        return -ENAMETOOLONG;
                }
                memcpy(part, path + i, n);
                part[n] = '\0';
                i += n + 1;
                if (mkdirat(fd, part, 0755) < 0 && errno != EEXIST) {
                        int r = negative_errno();
                        close(fd);
                        return r;
                }
                int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int r = next < 0 ? negative_errno() : 0;
                close(fd);
                if (next < 0)
                        return r;
                fd = next;
        }
        return fd < 0 ? negative_errno() : fd;
}

int archive_make_dir(int dir_fd, const char *path)
{
        int fd = open_dirs(dir_fd, path, strlen(path));
        if (fd < 0)
                return fd;
        close(fd);
        return 0;
}

int archive_create_file(int dir_fd, const char *path, mode_t mode)
{
        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;
        _cleanup_close_ int parent = open_dirs(dir_fd, path, slash ? (size_t)(slash - path) : 0);
        if (parent < 0)
                return parent;
        int fd = openat(parent, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                        mode & 0111 ? 0755 : 0644);
        return fd < 0 ? negative_errno() : fd;
}

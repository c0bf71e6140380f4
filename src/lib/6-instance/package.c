/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A directory of code (a Fission package with modules that import each other, a function's
 * files beside its entry) as one blob: a POSIX ustar archive the agent unpacks in the sandbox,
 * which never sees host paths. Regular files and directories only: links are left out (one could
 * point anywhere on the host), and so is whatever lies on another file system.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "package.h"

#define BLOCK 512
#define MAX_DEPTH 32

typedef struct tar {
        char *data;
        size_t size, cap, max;
} tar;

static int tar_reserve(tar *t, size_t n)
{
        if (t->size + n + 2 * BLOCK > t->max)
                return -EFBIG;
        return grow_buffer((void **)&t->data, &t->cap, t->size + n, 64 * BLOCK);
}

/* One ustar header for name (relative, at most 100 bytes, or 255 split at a slash). */
static int tar_header(tar *t, const char *name, char type, mode_t mode, uint64_t size, time_t mtime)
{
        size_t len = strlen(name);
        const char *prefix = "", *base = name;
        char prefix_buf[156];
        if (len > 100) {
                /* the first slash that leaves at most 100 bytes after it */
                const char *slash = strchr(name + len - 101, '/');
                if (!slash || slash - name > 155)
                        return -ENAMETOOLONG;
                snprintf(prefix_buf, sizeof(prefix_buf), "%.*s", (int)(slash - name), name);
                prefix = prefix_buf;
                base = slash + 1;
        }
        int r = tar_reserve(t, BLOCK);
        if (r < 0)
                return r;
        char *h = t->data + t->size;
        memset(h, 0, BLOCK);
        memcpy(h, base, strlen(base));
        snprintf(h + 100, 8, "%07o", (unsigned)(mode & 07777));
        snprintf(h + 108, 8, "%07o", 0u);
        snprintf(h + 116, 8, "%07o", 0u);
        /* Eleven octal digits: sizes below 8 GiB (a package is at most BLOB_CEILING), times
         * before 2242. */
        snprintf(h + 124, 12, "%011llo", (unsigned long long)size & 077777777777ull);
        snprintf(h + 136, 12, "%011llo", (unsigned long long)(mtime > 0 ? mtime : 0) & 077777777777ull);
        h[156] = type;
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memcpy(h + 345, prefix, strlen(prefix));
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (int k = 0; k < BLOCK; k++)
                sum += (unsigned char)h[k];
        snprintf(h + 148, 8, "%06o", sum);
        t->size += BLOCK;
        return 0;
}

static int tar_file(tar *t, int fd, const char *name, const struct stat *st)
{
        int r = tar_header(t, name, '0', st->st_mode, (uint64_t)st->st_size, st->st_mtime);
        size_t padded = ((size_t)st->st_size + BLOCK - 1) / BLOCK * BLOCK;
        if (r < 0 || (r = tar_reserve(t, padded)) < 0)
                return r;
        ssize_t got = read_full(fd, t->data + t->size, (size_t)st->st_size);
        if (got < 0)
                return (int)got;
        if (got < st->st_size)
                return -EIO; /* shrank while we read it */
        memset(t->data + t->size + got, 0, padded - (size_t)got);
        t->size += padded;
        return 0;
}

static int tar_dir(tar *t, int dir, dev_t dev, const char *prefix, unsigned depth, pw_err *err)
{
        if (depth > MAX_DEPTH)
                return err_set(err, -ELOOP, "the package nests deeper than %d directories", MAX_DEPTH);
        int copy = fcntl(dir, F_DUPFD_CLOEXEC, 3);
        DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
        if (!d) {
                if (copy >= 0)
                        close(copy);
                return err_set(err, negative_errno(), "reading the package: %m");
        }
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *name = strdup_printf("%s%s", prefix, de->d_name);
                _cleanup_close_ int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
                struct stat st;
                if (!name)
                        r = -ENOMEM;
                else if (fd < 0 || fstat(fd, &st) < 0 || st.st_dev != dev)
                        continue; /* a link (O_NOFOLLOW), a mount point, gone meanwhile */
                else if (S_ISREG(st.st_mode))
                        r = tar_file(t, fd, name, &st);
                else if (S_ISDIR(st.st_mode)) {
                        _cleanup_free_ char *sub = strdup_printf("%s/", name);
                        r = sub ? tar_header(t, sub, '5', st.st_mode, 0, st.st_mtime) : -ENOMEM;
                        if (r >= 0)
                                r = tar_dir(t, fd, dev, sub, depth + 1, err);
                }
        }
        closedir(d);
        return r;
}

int package_directory(int dir, const char *what, size_t max, char **ret, size_t *ret_size, pw_err *err)
{
        struct stat st;
        if (fstat(dir, &st) < 0)
                return err_set(err, negative_errno(), "%s: %m", what);
        tar t = {.max = max};
        int r = tar_dir(&t, dir, st.st_dev, "", 0, err);
        if (r >= 0 && (r = tar_reserve(&t, 2 * BLOCK)) >= 0) {
                memset(t.data + t.size, 0, 2 * BLOCK); /* the end: two zero blocks */
                t.size += 2 * BLOCK;
        }
        if (r == -EFBIG)
                err_set(err, r, "%s is larger than %zu bytes", what, max);
        else if (r < 0 && !err->msg[0])
                err_set(err, r, "%s: %s", what, strerror(-r));
        if (r < 0) {
                free(t.data);
                return r;
        }
        *ret = t.data;
        *ret_size = t.size;
        return 0;
}

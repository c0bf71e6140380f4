/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The template store: templates installed in one rename, retired ones kept until nothing uses them,
 * and the locks that serialize what replaces a template.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "store.h"

int store_retire(const pw_engine *e, const char *name, pw_err *err)
{
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        _cleanup_free_ char *dir = engine_template_dir(e, name);
        _cleanup_free_ char *old = strdup_printf("%s/templates/.old-%s-%lld%09ld-%d", e->state_dir, name,
                                                 (long long)now.tv_sec, now.tv_nsec, getpid());
        if (!dir || !old)
                return -ENOMEM;
        if (rename(dir, old) < 0)
                return errno == ENOENT ? -ENOENT : err_set(err, negative_errno(), "moving %s aside: %m", dir);
        return 0;
}

/* Is some process's root directory this rootfs? (Instances run with it as their root.) */
static bool rootfs_in_use(const char *rootfs)
{
        struct stat want;
        if (stat(rootfs, &want) < 0)
                return false;
        DIR *proc = opendir("/proc");
        if (!proc)
                return true; /* cannot tell: keep it */
        bool used = false;
        struct dirent *de;
        while (!used && (de = readdir(proc))) {
                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                char path[300];
                struct stat st;
                snprintf(path, sizeof(path), "/proc/%s/root", de->d_name);
                used = stat(path, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino;
        }
        closedir(proc);
        return used;
}

static void collect_one(const char *old)
{
        _cleanup_close_ int fd = open(old, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
                return; /* a restore is reading it */
        _cleanup_free_ char *rootfs = strdup_printf("%s/rootfs", old);
        if (rootfs && !rootfs_in_use(rootfs))
                rm_rf(old);
}

void store_collect(const pw_engine *e, const char *name)
{
        _cleanup_free_ char *store = strdup_printf("%s/templates", e->state_dir);
        _cleanup_free_ char *prefix = strdup_printf(".old-%s-", name);
        DIR *d = store && prefix ? opendir(store) : NULL;
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, prefix, strlen(prefix)))
                        continue;
                _cleanup_free_ char *old = strdup_printf("%s/%s", store, de->d_name);
                if (old)
                        collect_one(old);
        }
        closedir(d);
}

int store_lock_shared(const char *template_dir, pw_err *err)
{
        int fd = open(template_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? err_set(err, -ENOENT, "not built (no %s)", template_dir)
                                       : err_set(err, negative_errno(), "opening %s: %m", template_dir);
        if (flock(fd, LOCK_SH) < 0) {
                int r = negative_errno();
                close(fd);
                return err_set(err, r, "locking %s: %s", template_dir, strerror(-r));
        }
        return fd;
}

int store_lock_name(const pw_engine *e, const char *name, pw_err *err)
{
        _cleanup_free_ char *path = strdup_printf("%s/templates/.lock-%s", e->state_dir, name);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) < 0)
                return err_set(err, negative_errno(), "locking %s: %m", path);
        return TAKE_FD(fd);
}

int store_install(const pw_engine *e, const char *name, const char *dir, pw_err *err)
{
        _cleanup_free_ char *final = engine_template_dir(e, name);
        if (!final)
                return -ENOMEM;
        int r = store_retire(e, name, err);
        if (r < 0 && r != -ENOENT)
                return r;
        if (rename(dir, final) < 0)
                return err_set(err, negative_errno(), "installing the template: %m");
        store_collect(e, name);
        return 0;
}

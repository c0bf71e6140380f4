/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What an engine that died without cleaning up leaves behind, and its removal by a later one.
 *
 * Every sandbox of an engine is named after the engine's pid: instances "TEMPLATE-PID-N" (their
 * cgroups prewarm/ID and restore directories STATE/run/ID), template builds "build-NAME-PID". An
 * object is stale when that pid no longer runs, or runs a process younger than the object: the pid
 * was reused. Stale cgroups have their processes killed (the instances a crashed engine restored
 * keep running without it) and are removed; stale mounts under STATE/run are detached and their
 * directories removed; a template build that died leaves STATE/templates/.build-NAME, stale when
 * no one holds that name's build lock. Objects of live engines, on this state dir or any other, are
 * left alone.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "cgroup.h"
#include "internal.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static bool all_digits(const char *s, size_t n)
{
        if (n == 0 || n > 9)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* The engine pid in an object's name: "TEMPLATE-PID-N" or "build-NAME-PID"; 0 if none. */
static pid_t owner_pid(const char *name)
{
        const char *last = strrchr(name, '-');
        if (!last || last == name || !all_digits(last + 1, strlen(last + 1)))
                return 0;
        const char *prev = last - 1;
        while (prev > name && *prev != '-')
                prev--;
        if (*prev == '-' && all_digits(prev + 1, (size_t)(last - prev - 1)))
                return (pid_t)atoi(prev + 1);
        if (!strncmp(name, "build-", 6))
                return (pid_t)atoi(last + 1);
        return 0;
}

/* When process pid started, in seconds since the epoch; 0 if unknown. A zombie (an engine that
 * died and that its parent has not reaped yet) counts as gone: -1. */
static time_t process_start(pid_t pid)
{
        char path[64], text[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f || !fgets(text, sizeof(text), f))
                return 0;
        const char *p = strrchr(text, ')'); /* comm may hold spaces */
        unsigned long long start = 0;
        char state;
        /* After ")": state is field 3, starttime field 22. */
        if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &state, &start) != 2)
                return 0;
        if (state == 'Z' || state == 'X')
                return -1;
        _cleanup_fclose_ FILE *s = fopen("/proc/stat", "re");
        unsigned long long btime = 0;
        char line[256];
        while (s && fgets(line, sizeof(line), s))
                if (sscanf(line, "btime %llu", &btime) == 1)
                        break;
        long hz = sysconf(_SC_CLK_TCK);
        return btime && hz > 0 ? (time_t)(btime + start / (unsigned long long)hz) : 0;
}

/* Whether the engine that named an object created at `created` is gone. */
static bool owner_gone(pid_t pid, time_t created)
{
        if (pid <= 0 || pid == getpid())
                return false;
        if (kill(pid, 0) < 0 && errno == ESRCH)
                return true;
        time_t started = process_start(pid);
        return started < 0 || (started > 0 && started > created + 1); /* reused: younger than the object */
}

static bool path_stale(const char *path, const char *name)
{
        struct stat st;
        return stat(path, &st) == 0 && owner_gone(owner_pid(name), st.st_ctime);
}

/* ------------------------------------------------------------------ cgroups */

static void kill_cgroup_procs(const char *dir)
{
        _cleanup_free_ char *procs = strdup_printf("%s/cgroup.procs", dir);
        _cleanup_fclose_ FILE *f = procs ? fopen(procs, "re") : NULL;
        int pid;
        while (f && fscanf(f, "%d", &pid) == 1)
                kill(pid, SIGKILL);
}

static int remove_cgroup(const char *dir);

/* A v2 group's leaves (cgroup.h: a template parent's and its clones'), before the group. */
static void remove_subgroups(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                _cleanup_free_ char *sub = de->d_type == DT_DIR && de->d_name[0] != '.'
                                                   ? strdup_printf("%s/%s", dir, de->d_name) : NULL;
                if (sub)
                        remove_cgroup(sub);
        }
        if (d)
                closedir(d);
}

/* Killed tasks leave the cgroup a moment after they die (their parent, not us, reaps them). */
static int remove_cgroup(const char *dir)
{
        remove_subgroups(dir);
        const struct timespec pause = {0, 5 * 1000 * 1000};
        for (int attempt = 0; attempt < 400; attempt++) {
                kill_cgroup_procs(dir);
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY)
                        return negative_errno();
                nanosleep(&pause, NULL);
        }
        return -EBUSY;
}

static int reap_cgroup_parent(pw_engine *e, const char *parent)
{
        DIR *d = opendir(parent);
        if (!d)
                return 0;
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *dir = strdup_printf("%s/%s", parent, de->d_name);
                if (!dir || !path_stale(dir, de->d_name))
                        continue;
                int r = remove_cgroup(dir);
                if (r < 0)
                        pw_log(e, PW_LOG_WARNING, "stale cgroup %s: cannot remove it: %s", dir, strerror(-r));
                else {
                        pw_log(e, PW_LOG_WARNING, "removed stale cgroup %s and its processes", dir);
                        n++;
                }
        }
        closedir(d);
        rmdir(parent); /* fails while other sandboxes live: fine */
        return n;
}

static int reap_cgroups(pw_engine *e)
{
        struct statfs fs;
        bool v2 = statfs(CGROUP_ROOT, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
        static const char *const v1[] = {CGROUP_ROOT "/memory/" CGROUP_PARENT, CGROUP_ROOT "/pids/" CGROUP_PARENT, NULL};
        static const char *const v2p[] = {CGROUP_ROOT "/" CGROUP_PARENT, NULL};
        int n = 0;
        for (const char *const *p = v2 ? v2p : v1; *p; p++)
                n += reap_cgroup_parent(e, *p);
        return n;
}

/* ------------------------------------------------------------------ STATE/run */

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
        char *o = s;
        for (char *p = s; *p; p++) {
                unsigned v;
                if (p[0] == '\\' && sscanf(p + 1, "%3o", &v) == 1 && v > 0 && v < 256) {
                        *o++ = (char)v;
                        p += 3;
                } else
                        *o++ = *p;
        }
        *o = '\0';
}

/* Detaches every mount below run/ID for the stale IDs; returns how many. */
static int detach_stale_mounts(pw_engine *e, const char *run)
{
        size_t len = strlen(run);
        int n = 0;
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[8192], mnt[4096];
        while (f && fgets(line, sizeof(line), f)) {
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                unescape(mnt);
                if (strncmp(mnt, run, len) || mnt[len] != '/')
                        continue;
                char id[256];
                str_copy(id, sizeof(id), mnt + len + 1);
                id[strcspn(id, "/")] = '\0';
                _cleanup_free_ char *dir = strdup_printf("%s/%s", run, id);
                if (!dir || !path_stale(dir, id))
                        continue;
                if (umount2(mnt, MNT_DETACH) == 0) {
                        pw_log(e, PW_LOG_WARNING, "detached stale mount %s", mnt);
                        n++;
                }
        }
        return n;
}

static int reap_run_dirs(pw_engine *e)
{
        _cleanup_free_ char *run = engine_run_dir(e);
        if (!run)
                return -ENOMEM;
        int n = detach_stale_mounts(e, run);
        DIR *d = opendir(run);
        if (!d)
                return n;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *dir = strdup_printf("%s/%s", run, de->d_name);
                if (!dir || !path_stale(dir, de->d_name))
                        continue;
                int r = rm_rf(dir); /* does not cross a mount point that could not be detached */
                if (r < 0)
                        pw_log(e, PW_LOG_WARNING, "stale restore directory %s: cannot remove it: %s", dir, strerror(-r));
                else {
                        pw_log(e, PW_LOG_WARNING, "removed stale restore directory %s", dir);
                        n++;
                }
        }
        closedir(d);
        return n;
}

/* ------------------------------------------------------------------ unfinished builds */

/* The lock of STATE/templates/ENTRY, taken if nobody holds it (the caller closes it once the
 * entry is gone), else -1: an unfinished build's is its name's build lock (.lock-NAME), a pull's
 * or push's the directory itself (fleet.c). */
typedef int (*unheld_fn)(const char *templates, const char *entry);

static int lock_if_free(const char *path, int flags)
{
        _cleanup_close_ int fd = path ? open(path, flags | O_CLOEXEC, 0600) : -1;
        return fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 ? TAKE_FD(fd) : -1;
}

static int build_unheld(const char *templates, const char *entry)
{
        _cleanup_free_ char *lock = strdup_printf("%s/.lock-%s", templates, entry + strlen(".build-"));
        return lock_if_free(lock, O_RDWR | O_CREAT);
}

static int transfer_unheld(const char *templates, const char *entry)
{
        _cleanup_free_ char *dir = strdup_printf("%s/%s", templates, entry);
        return lock_if_free(dir, O_RDONLY | O_DIRECTORY);
}

/* Removes the STATE/templates entries starting with prefix that nobody holds (an unfinished build,
 * pull or push that died, here or in another process). */
static int reap_unheld(pw_engine *e, const char *prefix, unheld_fn unheld, const char *what)
{
        _cleanup_free_ char *templates = strdup_printf("%s/templates", e->state_dir);
        DIR *d = templates ? opendir(templates) : NULL;
        if (!d)
                return 0;
        int n = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (strncmp(de->d_name, prefix, strlen(prefix)))
                        continue;
                _cleanup_close_ int lock = unheld(templates, de->d_name);
                if (lock < 0)
                        continue; /* in progress, here or in another process */
                _cleanup_free_ char *dir = strdup_printf("%s/%s", templates, de->d_name);
                if (dir && rm_rf(dir) >= 0) {
                        pw_log(e, PW_LOG_WARNING, "removed unfinished template %s %s", what, dir);
                        n++;
                }
        }
        closedir(d);
        return n;
}

PW_PUBLIC int pw_engine_reap_stale(pw_engine *e)
{
        if (!e)
                return -EINVAL;
        /* Mounts first: a restore directory can only go once nothing is mounted in it. */
        int r = reap_run_dirs(e);
        if (r < 0) {
                return engine_failf(e, r, "reaping stale restore directories: %s", strerror(-r));
        }
        return r + reap_cgroups(e) + reap_unheld(e, ".build-", build_unheld, "build") +
               reap_unheld(e, ".pull-", transfer_unheld, "pull") + reap_unheld(e, ".push-", transfer_unheld, "push");
}

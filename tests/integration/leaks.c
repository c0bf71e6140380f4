/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "leaks.h"
#include "util.h"

#define MAX_FD 4096

static bool fds_at_begin[MAX_FD];

typedef struct report {
        char *buf;
        size_t size;
        int findings;
} report;

static void add(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(report *r, const char *fmt, ...)
{
        r->findings++;
        size_t used = strlen(r->buf);
        if (used + 1 >= r->size)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->buf + used, r->size - used, fmt, ap);
        va_end(ap);
        used = strlen(r->buf);
        if (used + 1 < r->size) {
                r->buf[used] = '\n';
                r->buf[used + 1] = '\0';
        }
}

static void pause_ms(long ms)
{
        const struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
}

static void open_fds(bool out[MAX_FD])
{
        memset(out, 0, sizeof(bool) * MAX_FD);
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                char *end;
                long fd = strtol(de->d_name, &end, 10);
                if (*end || end == de->d_name || fd == dirfd(d) || fd < 0 || fd >= MAX_FD)
                        continue;
                out[fd] = true;
        }
        closedir(d);
}

void leaks_begin(void)
{
        open_fds(fds_at_begin);
}

/* Reads /proc/PID/NAME into text (NUL-terminated, truncated to size). */
static bool read_proc(pid_t pid, const char *name, char *text, size_t size)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, text, size - 1);
        close(fd);
        if (n <= 0)
                return false;
        text[n] = '\0';
        return true;
}

/* "pid (comm) S ppid ...": comm may hold spaces and parentheses, so parse from the last ')'. */
bool proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid, char *comm, size_t comm_size)
{
        char text[1024];
        if (!read_proc(pid, "stat", text, sizeof(text)))
                return false;
        char *open_paren = strchr(text, '('), *close_paren = strrchr(text, ')');
        char state;
        int ppid;
        if (!open_paren || !close_paren || sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2)
                return false;
        *close_paren = '\0';
        if (comm)
                snprintf(comm, comm_size, "%s", open_paren + 1);
        if (ret_state)
                *ret_state = state;
        if (ret_ppid)
                *ret_ppid = ppid;
        return true;
}

/* ", pid N in its namespace" when the process lives in a pid namespace of its own. */
static void ns_pid(pid_t pid, char *out, size_t size)
{
        char text[4096];
        out[0] = '\0';
        if (!read_proc(pid, "status", text, sizeof(text)))
                return;
        const char *line = strstr(text, "\nNSpid:");
        int outer, inner;
        if (line && sscanf(line + 8, " %d %d", &outer, &inner) == 2)
                snprintf(out, size, ", pid %d in its own pid namespace", inner);
}

/* Children that still run: named, killed and reaped. Zombies: reaped. */
static void check_children(report *r)
{
        for (int round = 0; round < 50; round++) {
                /* Look before reaping, to say which process it was. */
                siginfo_t si = {0};
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
                        if (errno == EINTR)
                                continue;
                        return; /* ECHILD: no children at all */
                }
                if (si.si_pid > 0) {
                        char comm[64] = "?", nspid[128] = "";
                        proc_stat(si.si_pid, NULL, NULL, comm, sizeof(comm));
                        ns_pid(si.si_pid, nspid, sizeof(nspid));
                        add(r, "child process %d (%s%s) had exited (%s %d) but was never reaped", (int)si.si_pid,
                            comm, nspid, si.si_code == CLD_EXITED ? "status" : "signal", si.si_status);
                        waitpid(si.si_pid, NULL, 0);
                        continue;
                }
                /* Some child is alive. */
                DIR *d = opendir("/proc");
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        char *end;
                        long p = strtol(de->d_name, &end, 10);
                        pid_t ppid;
                        char comm[64];
                        if (*end || end == de->d_name || !proc_stat((pid_t)p, NULL, &ppid, comm, sizeof(comm)) ||
                            ppid != getpid())
                                continue;
                        add(r, "child process %ld (%s) still running; killed", p, comm);
                        kill((pid_t)p, SIGKILL);
                        while (waitpid((pid_t)p, NULL, 0) < 0 && errno == EINTR)
                                ;
                }
                if (d)
                        closedir(d);
                pause_ms(10);
        }
        if (waitpid(-1, NULL, WNOHANG) >= 0)
                add(r, "child processes remain after killing them");
}

static void check_mounts(const char *state_dir, report *r)
{
        /* Unmounting changes the table: read it again until nothing of ours is left. */
        for (int round = 0; round < 20; round++) {
                FILE *f = fopen("/proc/self/mountinfo", "re");
                if (!f) {
                        add(r, "cannot read /proc/self/mountinfo: %s", strerror(errno));
                        return;
                }
                char line[8192], mount_point[4096];
                bool found = false;
                while (fgets(line, sizeof(line), f)) {
                        if (sscanf(line, "%*s %*s %*s %*s %4095s", mount_point) != 1 ||
                            !strstr(mount_point, state_dir))
                                continue;
                        found = true;
                        if (round == 0)
                                add(r, "mount left on the host: %s", mount_point);
                        umount2(mount_point, MNT_DETACH);
                }
                fclose(f);
                if (!found)
                        return;
        }
        add(r, "mounts under %s cannot be removed", state_dir);
}

static void kill_procs(const char *cgroup_dir)
{
        char path[4096 + 32];
        snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup_dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        int pid;
        while (fscanf(f, "%d", &pid) == 1)
                kill(pid, SIGKILL);
        fclose(f);
}

static void remove_cgroup(const char *dir)
{
        for (int attempt = 0; attempt < 200; attempt++) {
                kill_procs(dir);
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return;
                pause_ms(5);
        }
}

/* Ours: "NAME-PID-N" (instances) and "build-NAME-PID" (template builds) of this process. */
static bool cgroup_is_ours(const char *name)
{
        char infix[32], suffix[32];
        snprintf(infix, sizeof(infix), "-%d-", (int)getpid());
        snprintf(suffix, sizeof(suffix), "-%d", (int)getpid());
        size_t n = strlen(name), m = strlen(suffix);
        return strstr(name, infix) || (n > m && !strcmp(name + n - m, suffix));
}

static size_t subdirs(const char *dir, char names[][256], size_t max)
{
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.') {
                        if (n < max)
                                snprintf(names[n], 256, "%s", de->d_name);
                        n++;
                }
        closedir(d);
        return n;
}

static void check_cgroups(report *r)
{
        struct statfs fs;
        bool v2 = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
        const char *const v1_parents[] = {"/sys/fs/cgroup/memory/prewarm", "/sys/fs/cgroup/pids/prewarm", NULL};
        const char *const v2_parents[] = {"/sys/fs/cgroup/prewarm", NULL};
        for (const char *const *parent = v2 ? v2_parents : v1_parents; *parent; parent++) {
                struct stat st;
                if (stat(*parent, &st) < 0)
                        continue;
                static char names[256][256];
                size_t n = subdirs(*parent, names, 256);
                size_t others = 0;
                for (size_t k = 0; k < n && k < 256; k++) {
                        if (!cgroup_is_ours(names[k])) {
                                others++; /* another program's sandbox on this machine */
                                continue;
                        }
                        char dir[4096];
                        snprintf(dir, sizeof(dir), "%s/%s", *parent, names[k]);
                        add(r, "cgroup left behind: %s", dir);
                        remove_cgroup(dir);
                }
                if (others > 0 || n > 256)
                        continue;
                /* Empty parent: the last sandbox to go must take it along. Another program may be
                 * in the middle of doing just that, so give it a moment. */
                bool gone = false;
                for (int attempt = 0; attempt < 50 && !gone; attempt++) {
                        if (stat(*parent, &st) < 0 || subdirs(*parent, names, 256) > 0)
                                gone = true;
                        else
                                pause_ms(10);
                }
                if (!gone) {
                        add(r, "empty cgroup parent left behind: %s", *parent);
                        rmdir(*parent);
                }
        }
}

/* Reports ("WHAT left behind: PATH") and removes the entries of STATE/SUBDIR whose names start with
 * one of prefixes (up to a NULL), or all of them if prefixes is NULL. */
static void remove_entries(report *r, const char *state_dir, const char *subdir, const char *const *prefixes,
                           const char *what)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", state_dir, subdir);
        DIR *d = opendir(path);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                bool match = !prefixes && strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
                for (const char *const *p = prefixes; p && *p && !match; p++)
                        match = !strncmp(de->d_name, *p, strlen(*p));
                if (!match)
                        continue;
                char entry[4096 + 256];
                snprintf(entry, sizeof(entry), "%s/%s", path, de->d_name);
                add(r, "%s left behind: %s", what, entry);
                rm_rf(entry);
        }
        closedir(d);
}

static void check_state_dir(const char *state_dir, report *r)
{
        remove_entries(r, state_dir, "run", NULL, "restore directory");
        remove_entries(r, state_dir, "templates", (const char *const[]){".build-", ".old-", NULL},
                       "unfinished template build");
}

static void check_fds(report *r)
{
        static bool now[MAX_FD];
        open_fds(now);
        for (int fd = 0; fd < MAX_FD; fd++) {
                if (!now[fd] || fds_at_begin[fd])
                        continue;
                char link[64], target[4096] = "?";
                snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                ssize_t n = readlink(link, target, sizeof(target) - 1);
                if (n > 0)
                        target[n] = '\0';
                add(r, "file descriptor %d (%s) left open", fd, target);
                close(fd);
        }
}

int leaks_check(const char *state_dir, char *buf, size_t size)
{
        report r = {buf, size, 0};
        if (size > 0)
                buf[0] = '\0';
        check_children(&r);
        check_cgroups(&r);
        check_mounts(state_dir, &r);
        check_state_dir(state_dir, &r);
        check_fds(&r);
        return r.findings;
}

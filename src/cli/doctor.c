/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* prewarm doctor: checks what prewarm needs from this machine and says how to fix what is missing. */
#include <dirent.h>
#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <grp.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "cli.h"
#include "criu.h"
#include "definition.h"
#include "internal.h"
#include "seccomp.h"
#include "uids.h"

static int failures;

static void report(bool ok, const char *what, const char *fix, ...)
{
        printf("%-6s %s", ok ? "ok" : "FAIL", what);
        if (!ok && fix) {
                va_list ap;
                va_start(ap, fix);
                fputs("\n       fix: ", stdout);
                vprintf(fix, ap);
                va_end(ap);
                failures++;
        }
        putchar('\n');
}

static void check_criu(pw_engine *e)
{
        char line[512] = "";
        for (char **p = e->criu_argv; *p; p++)
                snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s", p == e->criu_argv ? "" : " ", *p);
        printf("       criu command: %s\n", line);
        pw_err err = {""};
        criu_version_info v;
        int r = criu_get_version(e, &v, &err);
        if (r < 0) {
                report(false, "CRIU answers over RPC", "%s; run scripts/setup", err.msg);
                return;
        }
        bool new_enough = v.major > 4 || (v.major == 4 && v.minor >= 1);
        snprintf(line, sizeof(line), "CRIU %d.%d.%d (>= 4.1 needed)", v.major, v.minor, v.sublevel);
        report(new_enough, line, "this kernel needs CRIU >= 4.1; run scripts/setup to get a private one");
        r = criu_run_check(e, &err);
        report(r >= 0, "criu check", "%s", err.msg);
}

static void check_io_uring(void)
{
        struct io_uring ring;
        int r = io_uring_queue_init(32, &ring, 0);
        if (r >= 0)
                io_uring_queue_exit(&ring);
        report(r >= 0, "io_uring (queue depth 32)",
               "io_uring_setup failed (%s): set /proc/sys/kernel/io_uring_disabled to 0", strerror(-r));
}

static void check_namespaces(void)
{
        const unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
        pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
        if (pid == 0)
                _exit(getpid() == 1 ? 0 : 1);
        int status = -1;
        if (pid > 0)
                waitpid(pid, &status, 0);
        report(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "pid, mount, net, uts and ipc namespaces", "run as root on a kernel with namespaces (%s)",
               pid < 0 ? strerror(errno) : "child failed");
}

/* Runs fn in a forked child; whether it exited 0. */
static bool in_child(int (*fn)(void))
{
        pid_t pid = fork();
        if (pid == 0)
                _exit(fn());
        int status = -1;
        if (pid > 0)
                waitpid(pid, &status, 0);
        return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int seccomp_refuses_mount(void)
{
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, sandbox_seccomp_filter()) < 0)
                return 1;
        return mount("tmpfs", "/mnt", "tmpfs", 0, NULL) < 0 && errno == EPERM ? 0 : 2;
}

/* What a template parent does for every clone, as an unprivileged uid of the sandbox range. */
static uid_t probe_uid;

static int unprivileged_user_namespace_works(void)
{
        if (setgroups(0, NULL) < 0 || setresgid(probe_uid, probe_uid, probe_uid) < 0 ||
            setresuid(probe_uid, probe_uid, probe_uid) < 0)
                return 1;
        return unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC) == 0 ? 0 : 1;
}

/* The first account or group of the machine with an id in [base, base + count), or NULL. */
static const char *account_in_range(uid_t base, unsigned count)
{
        static char found[256];
        const char *hit = NULL;
        setpwent();
        for (struct passwd *pw; !hit && (pw = getpwent());)
                if (pw->pw_uid >= base && pw->pw_uid - base < count)
                        hit = snprintf(found, sizeof(found), "user %s (%u)", pw->pw_name, (unsigned)pw->pw_uid) > 0 ? found : NULL;
        endpwent();
        setgrent();
        for (struct group *gr; !hit && (gr = getgrent());)
                if (gr->gr_gid >= base && gr->gr_gid - base < count)
                        hit = snprintf(found, sizeof(found), "group %s (%u)", gr->gr_name, (unsigned)gr->gr_gid) > 0 ? found : NULL;
        endgrent();
        return hit;
}

/* What a function meets: docs/security.md. */
static void check_sandbox(pw_engine *e)
{
        uid_t base;
        unsigned count;
        uid_range(e->uids, &base, &count);
        printf("       sandbox: functions run as uids %u-%u (one per live instance; %u for template builds), "
               "no capabilities, no_new_privs, seccomp\n",
               (unsigned)base, (unsigned)(base + count - 2), (unsigned)uid_builder(e->uids));
        const char *owner = account_in_range(base, count);
        char what[256];
        snprintf(what, sizeof(what), "no account of this machine in the sandbox uid range");
        report(!owner, what, "%s is in the range: choose another with PREWARM_UID_RANGE=BASE:COUNT", owner);
        snprintf(what, sizeof(what), "seccomp filter (%u instructions) refuses mount(2) with EPERM",
                 (unsigned)sandbox_seccomp_filter()->len);
        report(in_child(seccomp_refuses_mount), what, "this kernel lacks seccomp filters (CONFIG_SECCOMP_FILTER)");
        /* Informational: without them every cold start is a restore (docs/architecture.md). */
        probe_uid = uid_builder(e->uids);
        printf("       clones: %s\n", in_child(unprivileged_user_namespace_works)
                                               ? "unprivileged user namespaces work: cold starts are clones of a template parent"
                                               : "unprivileged user namespaces refused here: every cold start restores with CRIU");
        struct stat st;
        report(stat(e->state_dir, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == 0,
               "state directory is root's alone (0700)", "chmod 0700 %s", e->state_dir);
        bool has_resource = prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) == 1;
        printf("       CAP_SYS_RESOURCE: %s (CRIU dumps with the dumped tree's real uid either way)\n",
               has_resource ? "held" : "not held by root here");
}

static void check_cgroups(void)
{
        pw_err err = {""};
        cgroup *cg = NULL;
        char name[64];
        snprintf(name, sizeof(name), "doctor-%d", getpid());
        const cgroup_limits limits = {64, 16};
        int r = cgroup_create(name, &limits, &cg, &err);
        char what[128];
        snprintf(what, sizeof(what), "cgroups %s with memory and pids limits", cg && cg->v2 ? "v2" : "v1");
        report(r >= 0, what, "%s: mount the memory and pids controllers", err.msg);
        cgroup_destroy(cg);
}

static void check_templates(pw_engine *e)
{
        DIR *d = opendir(e->templates_dir);
        if (!d) {
                report(false, "template definitions", "cannot open %s", e->templates_dir);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                template_def *def = NULL;
                pw_err err = {""};
                char what[512];
                if (template_def_load(e->templates_dir, de->d_name, &def, &err) < 0) {
                        snprintf(what, sizeof(what), "template %s", de->d_name);
                        report(false, what, "%s", err.msg);
                        continue;
                }
                /* Without a runtime the agent is the program (the native template's). */
                const char *program = def->runtime[0] ? def->runtime[0] : def->agent_path;
                snprintf(what, sizeof(what), "template %s: runtime %s", def->name, program);
                report(access(program, X_OK) == 0, what,
                       def->runtime[0] ? "install the runtime (scripts/setup)" : "build it (ninja)");
                template_def_free(def);
        }
        closedir(d);
}

int cmd_doctor(const cli_globals *g, int argc, char **argv)
{
        report(geteuid() == 0, "running as root", "CRIU, namespaces and cgroups need root: use sudo");
        pw_engine *e = cli_engine(g);
        report(e != NULL, "state directory writable", "pass --state-dir or set PREWARM_STATE_DIR");
        if (e) {
                check_criu(e);
                check_templates(e);
                check_sandbox(e);
        }
        check_io_uring();
        check_namespaces();
        check_cgroups();
        pw_engine_free(e);
        printf("%s\n", failures ? "some checks failed" : "all checks passed");
        return failures ? 1 : 0;
}

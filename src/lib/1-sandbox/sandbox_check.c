/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the host sees of a sandbox, from /proc/PID/status and /proc/PID/ns, and the checks an
 * instance passes before it may get code: a restored one (restore.c) shares nothing but the user
 * namespace with the engine, a clone (clone.c) has the same posture and nothing shared with its
 * parent.
 */
#include <sys/stat.h>

#include "sandbox_check.h"

/* Namespaces a clone must not share with its parent, as /proc/PID/ns names them. */
static const char *const own_namespaces[] = {"user", "pid", "mnt", "net", "uts", "ipc"};
_Static_assert(ELEMENTSOF(own_namespaces) == SANDBOX_NAMESPACES, "one slot per namespace");

/* stat of /proc/PID/WHERE/NAME ("ns/net", "root/tmp", ...). */
static int proc_stat(pid_t pid, const char *where, const char *name, struct stat *st)
{
        char path[96];
        snprintf(path, sizeof(path), "/proc/%d/%s/%s", (int)pid, where, name);
        return stat(path, st) < 0 ? negative_errno() : 0;
}

const char *status_field(const char *status, const char *key, size_t *len)
{
        size_t n = strlen(key);
        for (const char *line = status; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
                if (strncmp(line, key, n) || line[n] != ':')
                        continue;
                const char *v = line + n + 1;
                v += strspn(v, " \t");
                *len = strcspn(v, "\n");
                return v;
        }
        return NULL;
}

static bool status_is(const char *status, const char *key, const char *want)
{
        size_t n;
        const char *v = status_field(status, key, &n);
        return v && n == strlen(want) && !strncmp(v, want, n);
}

static unsigned status_words(const char *status, const char *key)
{
        size_t n;
        const char *v = status_field(status, key, &n);
        unsigned words = 0;
        for (size_t k = 0; v && k < n; k++)
                if ((k == 0 || v[k - 1] == '\t' || v[k - 1] == ' ') && v[k] != '\t' && v[k] != ' ')
                        words++;
        return words;
}

static int read_status(pid_t pid, char **ret)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        size_t n;
        return read_file(path, 64 << 10, ret, &n);
}

/* The facts of pid, its /proc/PID/status text already read. */
static int facts_of(pid_t pid, const char *status, sandbox_facts *f)
{
        int r;
        size_t n;
        const char *filters = status_field(status, "Seccomp_filters", &n);
        f->seccomp_filters = filters ? (unsigned)strtoul(filters, NULL, 10) : 0;
        f->pid_depth = status_words(status, "NSpid");
        struct stat st;
        for (size_t k = 0; k < SANDBOX_NAMESPACES; k++) {
                if ((r = proc_stat(pid, "ns", own_namespaces[k], &st)) < 0)
                        return r;
                f->ns[k] = st.st_ino;
        }
        if ((r = proc_stat(pid, "root", "tmp", &st)) < 0)
                return r;
        f->tmp_dev = st.st_dev;
        if ((r = proc_stat(pid, "root", "proc", &st)) < 0)
                return r;
        f->proc_dev = st.st_dev;
        return 0;
}

int sandbox_facts_read(pid_t pid, sandbox_facts *f)
{
        _cleanup_free_ char *status = NULL;
        int r = read_status(pid, &status);
        return r < 0 ? r : facts_of(pid, status, f);
}

/* What every sandboxed process has, restored or cloned: uid and gid uid, no group, no capability,
 * no_new_privs and a seccomp filter. */
static const char *credentials_wrong(const char *status, uid_t uid)
{
        char ids[64];
        snprintf(ids, sizeof(ids), "%u\t%u\t%u\t%u", (unsigned)uid, (unsigned)uid, (unsigned)uid, (unsigned)uid);
        if (!status_is(status, "Uid", ids) || !status_is(status, "Gid", ids))
                return "it does not run as its own uid and gid";
        if (status_words(status, "Groups") != 0)
                return "it kept supplementary groups";
        static const char *const caps[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
        for (size_t k = 0; k < ELEMENTSOF(caps); k++)
                if (!status_is(status, caps[k], "0000000000000000"))
                        return "it kept capabilities";
        if (!status_is(status, "NoNewPrivs", "1") || !status_is(status, "Seccomp", "2"))
                return "it has no seccomp filter or no no_new_privs";
        return NULL;
}

/* Whether f shares its pid namespace, the namespaces from first on, /tmp or /proc with outer's:
 * the process it came from (a clone's parent) or the engine (a restored instance). */
static const char *shared_with(const sandbox_facts *outer, const sandbox_facts *f, size_t first)
{
        static const char *const shares[] = {"it shares its user namespace", "it shares its pid namespace",
                                             "it shares its mount namespace", "it shares its net namespace",
                                             "it shares its uts namespace", "it shares its ipc namespace"};
        _Static_assert(ELEMENTSOF(shares) == SANDBOX_NAMESPACES, "one message per namespace");
        if (f->pid_depth != outer->pid_depth + 1)
                return "it is not in a pid namespace of its own";
        for (size_t k = first; k < SANDBOX_NAMESPACES; k++)
                if (f->ns[k] == outer->ns[k])
                        return shares[k];
        if (f->tmp_dev == outer->tmp_dev || f->proc_dev == outer->proc_dev)
                return "it shares /tmp or /proc";
        return NULL;
}

/* The status text and facts of pid; false if they cannot be read. */
static bool read_facts(pid_t pid, char **ret_status, sandbox_facts *f)
{
        return read_status(pid, ret_status) >= 0 && facts_of(pid, *ret_status, f) >= 0;
}

const char *clone_sandbox_wrong(const sandbox_facts *parent, pid_t pid, uid_t uid)
{
        _cleanup_free_ char *status = NULL;
        sandbox_facts f;
        if (!read_facts(pid, &status, &f))
                return "its /proc entries cannot be read";
        const char *wrong = credentials_wrong(status, uid);
        if (wrong)
                return wrong;
        if (f.seccomp_filters != parent->seccomp_filters + 1)
                return "it lacks the sandbox's seccomp filter";
        return shared_with(parent, &f, 0);
}

const char *restored_sandbox_wrong(pid_t pid, uid_t uid)
{
        _cleanup_free_ char *status = NULL, *own_status = NULL;
        sandbox_facts f, engine;
        if (!read_facts(pid, &status, &f))
                return "its /proc entries cannot be read";
        if (!read_facts(getpid(), &own_status, &engine))
                return "the engine's own /proc entries cannot be read";
        const char *wrong = credentials_wrong(status, uid);
        if (wrong)
                return wrong;
        /* Filters the engine itself runs under (a service manager's) pass on to whatever it
         * starts: the sandbox's own is one more. */
        if (f.seccomp_filters <= engine.seccomp_filters)
                return "it lacks the sandbox's seccomp filter";
        /* A restored sandbox keeps the engine's user namespace (it runs as a host uid): index 0. */
        return shared_with(&engine, &f, 1);
}

pid_t sandbox_agent_under(pid_t init)
{
        /* The oldest child, listed first: the agent, forked before any code of the function ran
         * (orphans come to the init later, and are listed after it). */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
        _cleanup_free_ char *text = NULL;
        size_t n;
        if (read_file(path, 64 << 10, &text, &n) < 0)
                return 0;
        long pid = strtol(text, NULL, 10);
        return pid > 0 ? (pid_t)pid : 0;
}

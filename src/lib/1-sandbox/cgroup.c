/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One cgroup per sandbox with its memory and pids limits, on cgroup v2 or v1, and the groups a
 * template parent starts its clones in.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "cgroup.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static bool unified(void)
{
        struct statfs fs;
        return statfs(CGROUP_ROOT, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

static int knob(const char *dir, const char *name, const char *value, bool optional)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, name);
        if (!path)
                return -ENOMEM;
        int r = write_string(path, value);
        return optional && r == -ENOENT ? 0 : r;
}

/* One directory beneath prewarm/, never elsewhere. */
static bool name_ok(const char *name)
{
        return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

char *cgroup_dir(const char *controller_root, const char *name)
{
        return name_ok(name) ? strdup_printf("%s/" CGROUP_PARENT "/%s", controller_root, name) : NULL;
}

char *cgroup_controller_root(bool v2, const char *controller)
{
        return v2 ? strdup(CGROUP_ROOT) : strdup_printf(CGROUP_ROOT "/%s", controller);
}

/* Makes ROOT/prewarm/NAME. The parent can vanish under us when another sandbox removes it empty. */
static int make_dir(const char *controller_root, const char *name, char **ret)
{
        if (!name_ok(name))
                return -EINVAL;
        _cleanup_free_ char *parent = strdup_printf("%s/" CGROUP_PARENT, controller_root);
        _cleanup_free_ char *dir = cgroup_dir(controller_root, name);
        if (!parent || !dir)
                return -ENOMEM;
        for (int attempt = 0; attempt < 5; attempt++) {
                if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                if (mkdir(dir, 0755) == 0) {
                        *ret = TAKE_PTR(dir);
                        return 0;
                }
                if (errno != ENOENT)
                        return negative_errno();
        }
        return -EAGAIN;
}

int cgroup_set_memory(const cgroup *cg, unsigned memory_mb)
{
        char mem[32];
        snprintf(mem, sizeof(mem), "%llu", (unsigned long long)memory_mb << 20);
        if (cg->v2)
                return knob(cg->dirs[0], "memory.max", mem, false);
        /* v1: memsw may never be below the plain limit, so the order depends on the direction;
         * both equal means no swap beyond the limit. Try one order, then the other. */
        int r = knob(cg->dirs[0], "memory.limit_in_bytes", mem, false);
        if (r >= 0)
                return knob(cg->dirs[0], "memory.memsw.limit_in_bytes", mem, true);
        if (r != -EINVAL)
                return r;
        if ((r = knob(cg->dirs[0], "memory.memsw.limit_in_bytes", mem, true)) < 0)
                return r;
        return knob(cg->dirs[0], "memory.limit_in_bytes", mem, false);
}

/* The limits of the v2 cgroup at cg->dirs[0], and its cgroup.procs. */
static int v2_limits(cgroup *cg, const cgroup_limits *l, pw_err *err)
{
        char pids[16];
        int r;
        snprintf(pids, sizeof(pids), "%u", l->pids_max);
        if ((r = cgroup_set_memory(cg, l->memory_mb)) < 0 ||
            (r = knob(cg->dirs[0], "memory.swap.max", "0", true)) < 0 ||
            (r = knob(cg->dirs[0], "pids.max", pids, false)) < 0)
                return err_set(err, r, "cgroup %s: setting limits: %s", cg->dirs[0], strerror(-r));
        cg->procs[0] = strdup_printf("%s/cgroup.procs", cg->dirs[0]);
        return cg->procs[0] ? 0 : -ENOMEM;
}

/* Memory and pids delegated from the root down to dir, for the knobs to exist below it. */
static void v2_delegate_controllers(const char *dir)
{
        knob(dir, "cgroup.subtree_control", "+memory +pids", true);
}

static int setup_v2(cgroup *cg, const char *name, const cgroup_limits *l, pw_err *err)
{
        v2_delegate_controllers(CGROUP_ROOT);
        int r = make_dir(CGROUP_ROOT, name, &cg->dirs[0]);
        if (r < 0)
                return err_set(err, r, "cgroup %s: %s", name, strerror(-r));
        v2_delegate_controllers(CGROUP_ROOT "/" CGROUP_PARENT);
        return v2_limits(cg, l, err);
}

/* A leaf NAME of the group directory group, with the limits, its cgroup.procs owner's: clone3
 * with CLONE_INTO_CGROUP wants the caller to may write the target's too. */
static int setup_v2_in(cgroup *cg, const char *group, const char *name, const cgroup_limits *l, uid_t owner,
                       pw_err *err)
{
        if (!(cg->dirs[0] = strdup_printf("%s/%s", group, name)))
                return -ENOMEM;
        if (mkdir(cg->dirs[0], 0755) < 0)
                return err_set(err, negative_errno(), "cgroup %s: %m", cg->dirs[0]);
        int r = v2_limits(cg, l, err);
        if (r >= 0 && chown(cg->procs[0], owner, owner) < 0)
                r = err_set(err, negative_errno(), "cgroup %s: delegating it to uid %u: %m", cg->dirs[0],
                            (unsigned)owner);
        return r;
}

/* v2: the group prewarm/NAME, whose cgroup.procs owner may write (so that it may start children
 * in the group's cgroups), and the parent's own leaf in it. */
static int setup_v2_group(cgroup *cg, const char *name, const cgroup_limits *l, uid_t owner, pw_err *err)
{
        v2_delegate_controllers(CGROUP_ROOT);
        _cleanup_free_ char *group = NULL;
        int r = make_dir(CGROUP_ROOT, name, &group);
        if (r < 0)
                return err_set(err, r, "cgroup %s: %s", name, strerror(-r));
        v2_delegate_controllers(CGROUP_ROOT "/" CGROUP_PARENT);
        v2_delegate_controllers(group);
        _cleanup_free_ char *procs = strdup_printf("%s/cgroup.procs", group);
        if (!procs)
                return -ENOMEM;
        if (chown(procs, owner, owner) < 0) {
                r = negative_errno();
                rmdir(group);
                return err_set(err, r, "cgroup %s: delegating it to uid %u: %s", group, (unsigned)owner, strerror(-r));
        }
        if ((r = setup_v2_in(cg, group, CGROUP_GROUP_LEADER, l, owner, err)) < 0)
                rmdir(group);
        return r;
}

static int setup_v1(cgroup *cg, const char *name, const cgroup_limits *l, pw_err *err)
{
        _cleanup_free_ char *memory = cgroup_controller_root(false, "memory"), *pids_root = cgroup_controller_root(false, "pids");
        if (!memory || !pids_root)
                return -ENOMEM;
        int r = make_dir(memory, name, &cg->dirs[0]);
        if (r >= 0)
                r = make_dir(pids_root, name, &cg->dirs[1]);
        if (r < 0)
                return err_set(err, r, "cgroup %s: %s", name, strerror(-r));

        char pids[16];
        snprintf(pids, sizeof(pids), "%u", l->pids_max);
        if ((r = cgroup_set_memory(cg, l->memory_mb)) < 0 ||
            (r = knob(cg->dirs[0], "memory.swappiness", "0", true)) < 0 ||
            (r = knob(cg->dirs[1], "pids.max", pids, false)) < 0)
                return err_set(err, r, "cgroup %s: setting limits: %s", name, strerror(-r));
        cg->procs[0] = strdup_printf("%s/cgroup.procs", cg->dirs[0]);
        cg->procs[1] = strdup_printf("%s/cgroup.procs", cg->dirs[1]);
        return cg->procs[0] && cg->procs[1] ? 0 : -ENOMEM;
}

int cgroup_create(const char *name, const cgroup_limits *limits, cgroup **ret, pw_err *err)
{
        _cleanup_cgroup_ cgroup *cg = calloc(1, sizeof(*cg));
        if (!cg)
                return -ENOMEM;
        cg->v2 = unified();
        int r = cg->v2 ? setup_v2(cg, name, limits, err) : setup_v1(cg, name, limits, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_create_group(const char *name, const cgroup_limits *limits, uid_t owner, cgroup **ret, pw_err *err)
{
        if (!unified())
                return cgroup_create(name, limits, ret, err);
        _cleanup_cgroup_ cgroup *cg = calloc(1, sizeof(*cg));
        if (!cg)
                return -ENOMEM;
        cg->v2 = true;
        int r = setup_v2_group(cg, name, limits, owner, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_create_in(const cgroup *leader, uid_t owner, const char *name, const cgroup_limits *limits,
                     cgroup **ret, pw_err *err)
{
        if (!leader->v2)
                return cgroup_create(name, limits, ret, err);
        _cleanup_cgroup_ cgroup *cg = calloc(1, sizeof(*cg));
        _cleanup_free_ char *group = strdup(leader->dirs[0]);
        char *slash = group ? strrchr(group, '/') : NULL;
        if (!cg || !slash)
                return -ENOMEM;
        *slash = '\0';
        cg->v2 = true;
        int r = setup_v2_in(cg, group, name, limits, owner, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_attach(const cgroup *cg, pid_t pid)
{
        char s[24];
        snprintf(s, sizeof(s), "%d", (int)pid);
        for (size_t i = 0; cg->procs[i]; i++) {
                int r = write_string(cg->procs[i], s);
                if (r < 0)
                        return r;
        }
        return 0;
}

unsigned cgroup_oom_kills(const cgroup *cg)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", cg->dirs[0],
                                                  cg->v2 ? "memory.events" : "memory.oom_control");
        _cleanup_free_ char *text = NULL;
        if (!path || read_file(path, 65536, &text, NULL) < 0)
                return 0;
        const char *p = strstr(text, "oom_kill ");
        return p ? (unsigned)strtoul(p + strlen("oom_kill "), NULL, 10) : 0;
}

static size_t kill_listed(const char *procs)
{
        _cleanup_fclose_ FILE *f = fopen(procs, "re");
        if (!f)
                return 0;
        size_t n = 0;
        int pid;
        while (fscanf(f, "%d", &pid) == 1) {
                kill(pid, SIGKILL);
                n++;
        }
        return n;
}

void cgroup_kill(const cgroup *cg)
{
        if (cg->v2 && knob(cg->dirs[0], "cgroup.kill", "1", false) == 0)
                return;
        for (size_t i = 0; cg->procs[i]; i++)
                kill_listed(cg->procs[i]);
}

/* A killed task leaves its cgroup a moment after it dies; retry rmdir for up to a second. */
static void remove_dir(const char *dir)
{
        const struct timespec pause = {0, 2 * 1000 * 1000};
        for (int attempt = 0; attempt < 500; attempt++) {
                if (rmdir(dir) == 0 || errno == ENOENT)
                        break;
                if (errno != EBUSY)
                        break;
                nanosleep(&pause, NULL);
        }
        /* Then prewarm/ (or a v2 group, then prewarm/) when this was the last in it; fails while
         * other sandboxes live: fine. */
        _cleanup_free_ char *up = strdup(dir);
        for (int level = 0; up && level < 2; level++) {
                char *slash = strrchr(up, '/');
                if (!slash)
                        break;
                *slash = '\0';
                if (rmdir(up) < 0 || !strcmp(strrchr(up, '/') ? strrchr(up, '/') + 1 : up, CGROUP_PARENT))
                        break;
        }
}

cgroup *cgroup_destroy(cgroup *cg)
{
        if (!cg)
                return NULL;
        if (cg->dirs[0])
                cgroup_kill(cg);
        for (size_t i = 0; i < ELEMENTSOF(cg->dirs); i++) {
                if (cg->dirs[i])
                        remove_dir(cg->dirs[i]);
                free(cg->dirs[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(cg->procs); i++)
                free(cg->procs[i]);
        free(cg);
        return NULL;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox's root: the rootfs a template carries (a few /etc files, /prewarm/ with the agent and
 * the clone helper), the zygote started in its namespaces, and what CRIU is told is external.
 */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "sandbox.h"
#include "sandbox_inside.h"
#include "seccomp.h"

/* The host directory bound read-only into every sandbox, and the sandbox's mounts that CRIU must
 * not dump but bind again from the host on restore. */
#define HOST_USR "/usr"
static const char *const restored_from_host[] = {"tmp", "dev"};

/* On a merged-/usr system these are symlinks into /usr; the sandbox gets the same symlinks. */
static const char *const usr_links[][2] = {
        {"bin", "usr/bin"}, {"sbin", "usr/sbin"}, {"lib", "usr/lib"}, {"lib64", "usr/lib64"},
};

/* /dev holds these and nothing else: a tmpfs of its own, read-only once they are made. */
static const struct {
        const char *name;
        unsigned major, minor;
} devices[] = {
        {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
};

static const struct {
        const char *name, *text;
} etc_files[] = {
        {"passwd", "root:x:0:0:root:/tmp:/usr/sbin/nologin\n"
                   "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
        {"group", "root:x:0:\nnogroup:x:65534:\n"},
        {"hosts", "127.0.0.1 localhost prewarm\n::1 localhost\n"},
        {"nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n"},
        {"resolv.conf", ""},
};

/* Debian picks shared libraries such as libblas.so.3 through /etc/alternatives symlinks into
 * /usr; the sandbox gets copies of the ones that point into /usr, so numpy loads as on the host. */
static int copy_alternatives(const char *dir, pw_err *err)
{
        DIR *d = opendir("/etc/alternatives");
        if (!d)
                return 0;
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                char target[4096];
                ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (n <= 0)
                        continue;
                target[n] = '\0';
                if (strncmp(target, "/usr/", 5))
                        continue;
                _cleanup_free_ char *p = strdup_printf("%s/etc/alternatives/%s", dir, de->d_name);
                if (!p)
                        r = -ENOMEM;
                else if (symlink(target, p) < 0 && errno != EEXIST)
                        r = err_set(err, negative_errno(), "symlink %s: %m", p);
        }
        closedir(d);
        return r;
}

/* TLS clients in a handler verify peers against the host's CA bundle. */
static int copy_ca_bundle(const char *dir, pw_err *err)
{
        static const char bundle[] = "/etc/ssl/certs/ca-certificates.crt";
        if (access(bundle, R_OK) < 0)
                return 0; /* no bundle on the host: nothing to offer */
        _cleanup_free_ char *p = strdup_printf("%s%s", dir, bundle);
        int r = p ? copy_file(bundle, p, 16 << 20, 0644) : -ENOMEM;
        return r < 0 ? err_set(err, r, "copying %s: %s", bundle, strerror(-r)) : 0;
}

static int populate(const char *dir, pw_err *err)
{
        static const char *const dirs[] = {"usr", "tmp", "proc", "dev", "etc", "etc/alternatives",
                                           "etc/ssl", "etc/ssl/certs", "prewarm", ".masked",
                                           ".masked/dir"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, dirs[i]);
                if (!p || (mkdir(p, 0755) < 0 && errno != EEXIST))
                        return err_set(err, p ? negative_errno() : -ENOMEM, "mkdir %s: %m", p);
        }
        for (size_t i = 0; i < ELEMENTSOF(usr_links); i++) {
                _cleanup_free_ char *host = strdup_printf("/%s", usr_links[i][0]);
                _cleanup_free_ char *p = strdup_printf("%s/%s", dir, usr_links[i][0]);
                struct stat st;
                if (!host || !p)
                        return -ENOMEM;
                if (lstat(host, &st) < 0)
                        continue;
                if (!S_ISLNK(st.st_mode))
                        return err_set(err, -ENOTSUP,
                                       "%s is not a symlink into /usr: only merged-/usr hosts are supported", host);
                if (symlink(usr_links[i][1], p) < 0 && errno != EEXIST)
                        return err_set(err, negative_errno(), "symlink %s: %m", p);
        }
        _cleanup_free_ char *mask = strdup_printf("%s" MASK_FILE, dir);
        int r = mask ? write_file_atomic(mask, "", 0, 0444) : -ENOMEM;
        if (r < 0)
                return err_set(err, r, "writing %s: %s", mask, strerror(-r));
        for (size_t i = 0; i < ELEMENTSOF(etc_files); i++) {
                _cleanup_free_ char *p = strdup_printf("%s/etc/%s", dir, etc_files[i].name);
                r = p ? write_file_atomic(p, etc_files[i].text, strlen(etc_files[i].text), 0644) : -ENOMEM;
                if (r < 0)
                        return err_set(err, r, "writing %s: %s", p, strerror(-r));
        }
        _cleanup_free_ char *tmp = strdup_printf("%s/tmp", dir);
        if (!tmp || chmod(tmp, 01777) < 0)
                return -ENOMEM;
        r = copy_alternatives(dir, err);
        return r < 0 ? r : copy_ca_bundle(dir, err);
}

char *rootfs_agent_path(const char *agent_path)
{
        _cleanup_free_ char *copy = strdup(agent_path);
        return copy ? strdup_printf("/prewarm/%s", basename(copy)) : NULL;
}

int rootfs_prepare(const char *dir, const char *agent_path, const char *helper_path, pw_err *err)
{
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return err_set(err, r, "mkdir %s: %s", dir, strerror(-r));
        r = populate(dir, err);
        if (r < 0)
                return r;

        _cleanup_free_ char *inside = rootfs_agent_path(agent_path);
        _cleanup_free_ char *target = inside ? strdup_printf("%s%s", dir, inside) : NULL;
        if (!target)
                return -ENOMEM;
        r = copy_file(agent_path, target, 16 << 20, 0755); /* it may be the program itself */
        if (r < 0)
                return err_set(err, r, "installing agent %s: %s", agent_path, strerror(-r));
        if (!helper_path)
                return 0;
        _cleanup_free_ char *helper = strdup_printf("%s" ROOTFS_ZYGOTE_HELPER, dir);
        if (!helper)
                return -ENOMEM;
        if ((r = copy_file(helper_path, helper, 16 << 20, 0644)) < 0)
                return err_set(err, r, "installing the clone helper %s: %s", helper_path, strerror(-r));
        /* Its init, from the same directory: a helper without one (an older build) gives copies
         * whose agent stays pid 1. */
        const char *slash = strrchr(helper_path, '/');
        _cleanup_free_ char *init = slash ? strdup_printf("%.*s/%s", (int)(slash - helper_path), helper_path,
                                                          strrchr(ROOTFS_INIT, '/') + 1) : NULL;
        _cleanup_free_ char *init_target = strdup_printf("%s" ROOTFS_INIT, dir);
        if (!init_target)
                return -ENOMEM;
        if (init && access(init, X_OK) == 0 && (r = copy_file(init, init_target, 4 << 20, 0755)) < 0)
                return err_set(err, r, "installing the init %s: %s", init, strerror(-r));
        return 0;
}

char **sandbox_externals(const char *tmp_source, const char *dev_source)
{
        _cleanup_strv_free_ char **v = NULL;
        if (strv_push(&v, tmp_source ? "mnt[usr]:" HOST_USR : "mnt[" HOST_USR "]:usr") < 0)
                return NULL;
        const char *sources[] = {tmp_source, dev_source};
        for (size_t i = 0; i < ELEMENTSOF(restored_from_host); i++) {
                const char *key = restored_from_host[i];
                _cleanup_free_ char *s = tmp_source ? strdup_printf("mnt[%s]:%s", key, sources[i])
                                                    : strdup_printf("mnt[/%s]:%s", key, key);
                if (!s || strv_push(&v, s) < 0)
                        return NULL;
        }
        return TAKE_PTR(v);
}

/* Makes the mount at path private to the host's mount namespace, or takes it away again. */
static int private_or_undo(const char *path)
{
        if (mount(NULL, path, NULL, MS_PRIVATE, NULL) == 0)
                return 0;
        int r = negative_errno();
        umount2(path, MNT_DETACH);
        return r;
}

int tmpfs_mount(const char *path, unsigned size_mb)
{
        char opts[64];
        snprintf(opts, sizeof(opts), "size=%um,mode=1777", size_mb);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return negative_errno();
        return private_or_undo(path);
}

int bind_mount_private(const char *from, const char *to, unsigned long flags)
{
        if (mount(from, to, NULL, MS_BIND, NULL) < 0)
                return negative_errno();
        if (flags && mount(NULL, to, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0) {
                int r = negative_errno();
                umount2(to, MNT_DETACH);
                return r;
        }
        return private_or_undo(to);
}

/* Only system calls: also runs between clone and exec. */
static int devfs_fill(const char *path)
{
        if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=16k,nr_inodes=16,mode=0755") < 0)
                return negative_errno();
        int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return negative_errno();
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(devices) && r >= 0; i++)
                if (mknodat(dir, devices[i].name, S_IFCHR | 0666, makedev(devices[i].major, devices[i].minor)) < 0 ||
                    fchmodat(dir, devices[i].name, 0666, 0) < 0) /* mknod obeys the umask */
                        r = negative_errno();
        close(dir);
        /* Read-only for good: the sandbox has no capability to remount it, nor to make nodes. */
        if (r >= 0 && mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
                r = negative_errno();
        return r;
}

int devfs_mount(const char *path)
{
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        int r = devfs_fill(path);
        if (r < 0) {
                umount2(path, MNT_DETACH);
                return r;
        }
        return private_or_undo(path);
}

/* The root: the template's rootfs with the host's /usr bound into it, both read-only, nosuid and
 * nodev; then, inside it, /tmp, /dev and /proc. Mounts made here belong to the initial user
 * namespace, and the sandbox ends without CAP_SYS_ADMIN there: it can change none of them. */
static void enter_root(const zygote_params *p, const char *usr_path, const char *tmp_opts)
{
        int errfd = p->stderr_w;
        mount_or_die(errfd, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
        mount_or_die(errfd, p->rootfs, p->rootfs, NULL, MS_BIND, NULL);
        mount_or_die(errfd, HOST_USR, usr_path, NULL, MS_BIND, NULL);
        mount_or_die(errfd, NULL, usr_path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);

        if (chdir(p->rootfs) < 0)
                sandbox_die(errfd, "chdir rootfs");
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                sandbox_die(errfd, "pivot_root");
        if (umount2(".", MNT_DETACH) < 0)
                sandbox_die(errfd, "detaching the host root");
        if (chdir("/") < 0)
                sandbox_die(errfd, "chdir /");
        mount_or_die(errfd, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, tmp_opts);
        if (devfs_fill("/dev") < 0)
                sandbox_die(errfd, "/dev");
        mount_proc(errfd);
        mount_or_die(errfd, NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/* Puts the channel fds at 3 and 4 and stderr at 2, whatever numbers they had, and closes the rest. */
static void arrange_fds(const zygote_params *p)
{
        int in = fcntl(p->ctl_in, F_DUPFD_CLOEXEC, 10);
        int out = fcntl(p->ctl_out, F_DUPFD_CLOEXEC, 10);
        int errw = fcntl(p->stderr_w, F_DUPFD_CLOEXEC, 10);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (in < 0 || out < 0 || errw < 0 || null < 0)
                sandbox_die(p->stderr_w, "arranging fds");
        if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errw, 2) < 0 || dup2(in, 3) < 0 ||
            dup2(out, 4) < 0)
                sandbox_die(p->stderr_w, "dup2");
        syscall(SYS_close_range, 5, ~0U, 0);
}

static _Noreturn void zygote_child(const zygote_params *p, int sync_r, const char *usr_path,
                                   const char *tmp_opts, const struct sock_fprog *filter)
{
        char go;
        if (read(sync_r, &go, 1) != 1)
                _exit(124); /* the engine gave up before we started */
        close(sync_r);
        /* No PR_SET_PDEATHSIG: CRIU would restore it, and every copy would die with the thread
         * that restored it. The build's own cleanup kills the zygote on every path. */
        if (setsid() < 0)
                sandbox_die(p->stderr_w, "setsid");
        enter_root(p, usr_path, tmp_opts);
        loopback_up(p->stderr_w);
        if (sethostname("prewarm", strlen("prewarm")) < 0)
                sandbox_die(p->stderr_w, "sethostname");
        arrange_fds(p);
        drop_privileges(2, p->uid, p->gid, filter);
        execve(p->argv[0], p->argv, p->envp);
        sandbox_die(2, p->argv[0]);
}

int zygote_spawn(const zygote_params *p, pid_t *ret_pid, pw_err *err)
{
        if (p->uid == 0 || p->gid == 0)
                return err_set(err, -EPERM, "a sandbox never runs as root");
        /* Everything the child needs is made here: after clone it must not allocate. */
        char usr_path[4096], tmp_opts[64];
        snprintf(usr_path, sizeof(usr_path), "%s" HOST_USR, p->rootfs);
        snprintf(tmp_opts, sizeof(tmp_opts), "size=%um,mode=1777", p->tmp_mb);
        const struct sock_fprog *filter = sandbox_seccomp_filter();

        int sync[2];
        if (pipe2(sync, O_CLOEXEC) < 0)
                return err_set(err, negative_errno(), "pipe: %m");
        const unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS |
                                    CLONE_NEWIPC | SIGCHLD;
        pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
        if (pid < 0) {
                int r = negative_errno();
                close(sync[0]);
                close(sync[1]);
                return err_set(err, r, "clone into new namespaces: %s", strerror(-r));
        }
        if (pid == 0) {
                close(sync[1]);
                zygote_child(p, sync[0], usr_path, tmp_opts, filter);
        }
        close(sync[0]);
        int r = cgroup_attach(p->cg, pid);
        if (r < 0) {
                close(sync[1]);
                kill_and_reap(pid);
                return err_set(err, r, "moving the zygote into its cgroup: %s", strerror(-r));
        }
        if (write(sync[1], "g", 1) != 1)
                r = negative_errno();
        close(sync[1]);
        if (r < 0) {
                kill_and_reap(pid);
                return err_set(err, r, "starting the zygote: %s", strerror(-r));
        }
        *ret_pid = pid;
        return 0;
}

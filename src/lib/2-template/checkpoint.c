/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Second-level templates: a specialized instance checkpointed into a template of its own, whose
 * restored copies start with the function already loaded (docs/pools.md).
 *
 * Differences from a template build, each for a reason:
 *  - the instance keeps running, so CRIU dumps it with --leave-running. The engine's RPC dump
 *    always ends the dumped tree (a build's zygote is not wanted afterwards), so this rare
 *    operation runs `criu dump` from the command line with the same options;
 *  - its control pipes are the ones the restore made, so the manifest records their inodes;
 *  - its /tmp is dumped with the images unless it is empty: the function may keep files there (a
 *    .zip action is unpacked into /tmp), and its copies need them;
 *  - its network namespace is external again when the parent's was (a restore supplies one);
 *  - its rootfs is a copy of the parent's (same agent, same /etc); restores bind it read-only;
 *  - the manifest says "specialized": true and names the parent, so that a restore knows the
 *    copy needs no specialize (restore.c reads it from the manifest).
 */
#include <stdarg.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "criu.h"
#include "instance.h"
#include "manifest.h"
#include "netns.h"
#include "sandbox.h"
#include "store.h"

#define DUMP_TIMEOUT_MS 120000

typedef struct snap {
        pw_instance *i;
        const char *name;
        char *dir, *images, *rootfs; /* STATE/templates/.build-NAME/... */
        manifest *parent;
        char *parent_dir;
        host_file *host_files; /* what the instance maps of the host's /usr, for the manifest */
        size_t n_host_files;
} snap;

static void snap_cleanup(snap *s)
{
        if (s->dir)
                rm_rf(s->dir);
        free(s->dir);
        free(s->images);
        free(s->rootfs);
        free(s->parent_dir);
        host_files_free(s->host_files, s->n_host_files);
        manifest_free(s->parent);
}

/* The parent's agent file, to give the copy's rootfs the very same one. */
static char *parent_agent(const char *parent_dir)
{
        _cleanup_free_ char *dir = strdup_printf("%s/rootfs/prewarm", parent_dir);
        DIR *d = dir ? opendir(dir) : NULL;
        if (!d)
                return NULL;
        char *found = NULL;
        struct dirent *de;
        while (!found && (de = readdir(d)))
                if (de->d_name[0] != '.' && de->d_type == DT_REG && !str_has_suffix(de->d_name, ".so"))
                        found = strdup_printf("%s/%s", dir, de->d_name);
        closedir(d);
        return found;
}

static int snap_prepare(snap *s, pw_err *err)
{
        pw_engine *e = s->i->engine;
        s->dir = strdup_printf("%s/templates/.build-%s", e->state_dir, s->name);
        s->images = strdup_printf("%s/images", s->dir ? s->dir : "");
        s->rootfs = strdup_printf("%s/rootfs", s->dir ? s->dir : "");
        s->parent_dir = engine_template_dir(e, s->i->template_name);
        if (!s->dir || !s->images || !s->rootfs || !s->parent_dir)
                return -ENOMEM;
        int r = manifest_load(s->parent_dir, &s->parent, err);
        if (r < 0)
                return err_prefix(err, r, "template %s it was restored from", s->i->template_name);
        rm_rf(s->dir);
        if ((r = mkdir_p(s->images, 0700)) < 0)
                return err_set(err, r, "mkdir %s: %s", s->images, strerror(-r));
        _cleanup_free_ char *agent = parent_agent(s->parent_dir);
        if (!agent)
                return err_set(err, -ENOENT, "no agent in the rootfs of template %s", s->i->template_name);
        /* The agent maps the parent's clone helper: CRIU finds the mapping's file by its path. */
        _cleanup_free_ char *helper = strdup_printf("%s/rootfs" ROOTFS_ZYGOTE_HELPER, s->parent_dir);
        if (!helper)
                return -ENOMEM;
        return rootfs_prepare(s->rootfs, agent, access(helper, R_OK) == 0 ? helper : NULL, err);
}

/* Whether the instance's /tmp holds nothing: then it need not be dumped (CRIU archives a tmpfs
 * with tar at dump and unpacks it at every restore), and copies get a fresh one like zygotes. */
static bool tmp_is_empty(pid_t pid)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/root/tmp", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return false;
        bool empty = true;
        struct dirent *de;
        while (empty && (de = readdir(d)))
                empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
        closedir(d);
        return empty;
}

/* `criu dump` arguments: the build's, plus --leave-running, and /tmp among the externals only
 * when it is empty. */
static char **dump_argv(const pw_engine *e, pid_t pid, int images_fd, int work_fd, bool external_netns)
{
        _cleanup_strv_free_ char **v = NULL;
        for (size_t k = 0; e->criu_argv[k]; k++)
                if (strv_push(&v, e->criu_argv[k]) < 0)
                        return NULL;
        char pid_s[16], images[32], work[32];
        snprintf(pid_s, sizeof(pid_s), "%d", (int)pid);
        snprintf(images, sizeof(images), "/proc/self/fd/%d", images_fd);
        snprintf(work, sizeof(work), "/proc/self/fd/%d", work_fd);
        const char *fixed[] = {"dump", "--tree", pid_s, "--images-dir", images, "--work-dir", work,
                               "--log-file", "dump.log", "-v4", "--leave-running", "--network-lock", "skip", NULL};
        for (size_t k = 0; fixed[k]; k++)
                if (strv_push(&v, fixed[k]) < 0)
                        return NULL;
        /* The sandbox's host-backed mounts, /tmp only while it is empty. */
        _cleanup_strv_free_ char **external = sandbox_externals(NULL, NULL);
        if (!external)
                return NULL;
        bool keep_tmp = !tmp_is_empty(pid);
        for (char **ext = external; *ext; ext++)
                if (!(keep_tmp && !strcmp(*ext, "mnt[/tmp]:tmp")) &&
                    (strv_push(&v, "--external") < 0 || strv_push(&v, *ext) < 0))
                        return NULL;
        if (external_netns) {
                char path[64];
                struct stat st;
                snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
                _cleanup_free_ char *ext = stat(path, &st) == 0 ?
                        strdup_printf("net[%llu]:" NETNS_EXTERNAL_KEY, (unsigned long long)st.st_ino) : NULL;
                if (!ext || strv_push(&v, "--external") < 0 || strv_push(&v, ext) < 0)
                        return NULL;
        }
        return TAKE_PTR(v);
}

static _Noreturn void dump_child(const pw_engine *e, char **argv, uid_t uid, int images_fd, int work_fd,
                                 int null_fd)
{
        criu_child_setup(e, uid);
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        dup2(null_fd, 2);
        fcntl(images_fd, F_SETFD, 0);
        fcntl(work_fd, F_SETFD, 0);
        char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve(argv[0], argv, envp);
        _exit(127);
}

/* The last lines of CRIU's log that say "Error", for the message. */
static void dump_errors(int work_fd, char *out, size_t size)
{
        out[0] = '\0';
        _cleanup_close_ int fd = openat(work_fd, "dump.log", O_RDONLY | O_CLOEXEC);
        char buf[16385];
        off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
        ssize_t n = end >= 0 ? pread(fd, buf, sizeof(buf) - 1, end > 16384 ? end - 16384 : 0) : -1;
        if (n <= 0)
                return;
        buf[n] = '\0';
        for (char *line = buf, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (strstr(line, "Error"))
                        str_copy(out, size, line); /* the last one wins: usually the cause */
        }
}

static int snap_dump(snap *s, pw_err *err)
{
        _cleanup_close_ int images_fd = open(s->images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int work_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (images_fd < 0 || work_fd < 0 || null_fd < 0)
                return err_set(err, negative_errno(), "opening %s: %m", s->dir);
        _cleanup_strv_free_ char **argv = dump_argv(s->i->engine, s->i->pid, images_fd, work_fd,
                                                    s->parent->external_netns);
        if (!argv)
                return -ENOMEM;
        int r = criu_kdat_ensure(s->i->engine, err);
        /* The agent's mappings: under a restored copy's init, the root maps only that small program. */
        pid_t agent = s->i->agent_pid > 0 ? s->i->agent_pid : s->i->pid;
        if (r < 0 || (r = host_files_of(agent, &s->host_files, &s->n_host_files, err)) < 0)
                return r;
        pid_t pid = fork();
        if (pid == 0)
                dump_child(s->i->engine, argv, s->i->uid, images_fd, work_fd, null_fd);
        if (pid < 0)
                return err_set(err, negative_errno(), "fork: %m");
        int status = reap_within(pid, DUMP_TIMEOUT_MS);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return err_set(err, -ENOENT, "could not execute CRIU");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
                return err_set(err, -EIO, "could not take the ids of the instance for CRIU");
        char why[1024];
        dump_errors(work_fd, why, sizeof(why));
        return err_set(err, -EIO, "criu dump: %s", why[0] ? why : "failed");
}

/* The parent's manifest with this dump's images and pipes, plus the second-level fields. */
static char *snap_manifest_json(snap *s, pw_err *err)
{
        struct stat in_st, out_st;
        if (fstat(s->i->ch.to_agent, &in_st) < 0 || fstat(s->i->ch.from_agent, &out_st) < 0)
                return err_set(err, negative_errno(), "fstat of the control pipes: %m"), NULL;
        const manifest *p = s->parent;
        manifest m = {
                .name = (char *)s->name, .definition_sha256 = p->definition_sha256, .runtime = p->runtime,
                .criu_version = p->criu_version, .kernel = p->kernel, .created = time(NULL),
                .ctl_in_ino = in_st.st_ino, .ctl_out_ino = out_st.st_ino, .memory_mb = p->memory_mb,
                .pids_max = p->pids_max, .tmp_mb = p->tmp_mb, .external_netns = p->external_netns,
                .sandbox = p->sandbox, .host_files = s->host_files, .n_host_files = s->n_host_files,
        };
        int r = manifest_hash_images(s->images, &m, err);
        _cleanup_free_ char *text = r >= 0 ? manifest_to_json(&m) : NULL;
        for (size_t k = 0; k < m.n_images; k++)
                free(m.images[k].file);
        free(m.images);
        if (!text)
                return NULL;
        /* manifest.c ignores keys it does not know: the second-level ones ride along. */
        json_auto_t *root = json_loads(text, 0, NULL);
        if (!root || json_object_set_new(root, "specialized", json_true()) < 0 ||
            json_object_set_new(root, "parent", json_string(s->i->template_name)) < 0)
                return NULL;
        return json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
}

static int snap_publish(snap *s, pw_err *err)
{
        _cleanup_free_ char *json = snap_manifest_json(s, err);
        _cleanup_free_ char *path = strdup_printf("%s/manifest.json", s->dir);
        if (!json || !path)
                return err->msg[0] ? -EIO : -ENOMEM;
        int r = write_file_atomic(path, json, strlen(json), 0644);
        if (r < 0)
                return err_set(err, r, "writing %s: %s", path, strerror(-r));
        _cleanup_free_ char *final = engine_template_dir(s->i->engine, s->name);
        if (!final)
                return -ENOMEM;
        r = store_retire(s->i->engine, s->name, err);
        if (r < 0 && r != -ENOENT)
                return r;
        if (rename(s->dir, final) < 0)
                return err_set(err, negative_errno(), "installing the template: %m");
        store_collect(s->i->engine, s->name);
        return 0;
}

static int instance_error(pw_instance *i, int r, pw_err *err, const char *name)
{
        err_prefix(err, r, "checkpoint of instance %s into template %s", i->id, name ? name : "");
        i->last_error = *err;
        pw_log(i->engine, PW_LOG_ERROR, "%s", err->msg);
        return r;
}

static int checkpoint_failf(pw_instance *i, int r, const char *name, const char *fmt, ...) _printf_(4, 5);
static int checkpoint_failf(pw_instance *i, int r, const char *name, const char *fmt, ...)
{
        pw_err err = {""};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
        va_end(ap);
        return instance_error(i, r, &err, name);
}

/* Names with a definition belong to pw_template_build: a checkpoint must not replace its build. */
static bool has_definition(const pw_engine *e, const char *name)
{
        _cleanup_free_ char *conf = strdup_printf("%s/%s/template.conf", e->templates_dir, name);
        return conf && access(conf, F_OK) == 0;
}

/* Its process, and under a restored copy's init its agent too: the init outlives it a moment. */
static bool still_alive(const pw_instance *i)
{
        siginfo_t si = {0};
        return i->pid > 0 && waitid(P_PID, i->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != i->pid &&
               (i->agent_pid <= 0 || process_running(i->agent_pid));
}

PW_PUBLIC int pw_instance_checkpoint(pw_instance *i, const char *template_name)
{
        if (!i)
                return -EINVAL;
        pw_err err = {""};
        if (!name_is_valid(template_name))
                return checkpoint_failf(i, -EINVAL, template_name, "invalid template name");
        if (i->pidfd >= 0)
                return checkpoint_failf(i, -EOPNOTSUPP, template_name, "it was cloned from its "
                                      "template's parent, and only a restored instance can be checkpointed (an "
                                      "engine opened with PW_ENGINE_NO_CLONES restores every instance)");
        if (i->state == DEAD || !still_alive(i))
                return checkpoint_failf(i, -ESRCH, template_name, "instance is dead");
        if (i->state != SPECIALIZED)
                return checkpoint_failf(i, -EBADFD, template_name, "not specialized");
        if (!strcmp(template_name, i->template_name))
                return checkpoint_failf(i, -EINVAL, template_name, "it runs on that template");
        if (has_definition(i->engine, template_name))
                return checkpoint_failf(i, -EEXIST, template_name, "a template definition has that name; "
                                                           "pw_template_build owns it");

        /* One build of a name at a time, as pw_template_build: they share .build-NAME. */
        _cleanup_free_ char *lock_path = strdup_printf("%s/templates/.lock-%s", i->engine->state_dir, template_name);
        if (!lock_path)
                return -ENOMEM;
        _cleanup_close_ int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
                return checkpoint_failf(i, negative_errno(), template_name, "locking %s: %m", lock_path);

        uint64_t t0 = now_us();
        snap s = {.i = i, .name = template_name};
        int r = snap_prepare(&s, &err);
        bool hooked = r >= 0; /* whatever the before-hooks do, the after-hooks undo: run both */
        if (r >= 0 && (r = agent_run_hooks(&i->ch, "before_checkpoint", now_us() + AGENT_HOOKS_TIMEOUT_MS * 1000ull,
                                           &i->streams, &err)) < 0)
                err_prefix(&err, r, "before the checkpoint");
        if (r >= 0)
                r = snap_dump(&s, &err);
        if (r >= 0 && !still_alive(i))
                r = err_set(&err, -EIO, "the instance did not survive its dump");
        if (r >= 0)
                r = snap_publish(&s, &err);
        snap_cleanup(&s);
        /* The instance ran its before-hooks: it gets its after-hooks too, as each copy will, to
         * reopen what they closed, whether the dump was made or not. */
        pw_err after_err = {""};
        int after = hooked ? agent_run_hooks(&i->ch, "after_restore", now_us() + AGENT_HOOKS_TIMEOUT_MS * 1000ull,
                                             &i->streams, &after_err) : 0;
        if (r < 0)
                return instance_error(i, r, &err, template_name);
        if (after < 0)
                return instance_error(i, after, (err_prefix(&after_err, after, "the checkpoint was made, "
                                                            "but the instance itself failed after it"),
                                                 &after_err), template_name);
        pw_log(i->engine, PW_LOG_INFO, "instance %s checkpointed into template %s in %.1f ms", i->id,
               template_name, (now_us() - t0) / 1000.0);
        return 0;
}

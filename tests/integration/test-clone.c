/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Instances cloned from their template's parent (src/lib/5-clone/clone.c): the default path of
 * pw_instance_restore. A clone must be isolated from its parent and from other clones as a
 * restored instance is, draw random values of its own, survive nothing of a parent that dies
 * (the next cold start makes another), hold up under many at once, and never get code when it
 * could not make its sandbox.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/zygote/prewarm-zygote.h"
#include "leaks.h"
#include "common.h"
#include "util.h"

/* A clone's template parent, as the host's /proc shows it: the parent of the clone's init, whose
 * child is the agent pw_instance_pid names. */
static pid_t parent_of(pw_instance *i)
{
        pid_t init = 0, parent = 0;
        ck_assert_msg(proc_stat(pw_instance_pid(i), NULL, &init, NULL, 0) && init > 0, "no init above the agent");
        ck_assert_msg(proc_stat(init, NULL, &parent, NULL, 0) && parent > 0, "no parent above the init");
        return parent;
}

START_TEST(test_default_is_clone)
{
        pw_instance *a = t_restore("python3"), *b = t_restore("python3");
        ck_assert_int_eq(pw_instance_source(a), PW_SOURCE_CLONE);
        ck_assert_int_eq(pw_instance_source(b), PW_SOURCE_CLONE);
        ck_assert_int_eq(parent_of(a), parent_of(b)); /* one parent per template and engine */
        ck_assert_int_ne(pw_instance_pid(a), pw_instance_pid(b));
        t_specialize(a, "hello.py");
        t_specialize(b, "hello.py");
        json_decref(t_invoke_hello(a, "a"));
        json_decref(t_invoke_hello(b, "b"));
        t_destroy(a);
        json_decref(t_invoke_hello(b, "b again")); /* a sibling's end is not ours */
        t_destroy(b);
}
END_TEST

static json_t *neighbours(pw_instance *i)
{
        t_specialize(i, "neighbours.py");
        return t_invoke(i, "{}");
}

static bool dir_is_empty(const char *path)
{
        char *cmd = strdup_printf("test -z \"$(ls -A '%s')\"", path);
        int r = system(cmd);
        free(cmd);
        return r == 0;
}

/* A clone sees only its own processes and /tmp, signals nothing outside, and its writes reach
 * neither its parent nor its sibling. */
START_TEST(test_clones_isolated)
{
        pw_instance *a = t_restore("python3"), *b = t_restore("python3");
        pid_t parent = parent_of(a);
        json_t *ra = neighbours(a), *rb = neighbours(b);
        char *text = json_dumps(ra, JSON_COMPACT);
        printf("  a clone's view: %s\n", text);
        json_t *own = json_pack("[i, i]", 1, 2);
        ck_assert_msg(json_equal(json_object_get(ra, "pids"), own), "a clone sees other processes: %s", text);
        json_t *mine = json_pack("[s]", "mine");
        ck_assert_msg(json_equal(json_object_get(rb, "tmp"), mine), "b sees a's /tmp or its parent's");
        ck_assert_int_ne(json_integer_value(json_object_get(ra, "uid")), json_integer_value(json_object_get(rb, "uid")));
        /* its user namespace maps its own uid, once, and nothing else */
        json_int_t uid = json_integer_value(json_object_get(ra, "uid"));
        json_t *map = json_pack("[s, s, s]", "", "", "1");
        char idtext[32];
        snprintf(idtext, sizeof(idtext), "%lld", (long long)uid);
        json_array_set_new(map, 0, json_string(idtext));
        json_array_set_new(map, 1, json_string(idtext));
        ck_assert_msg(json_equal(json_object_get(ra, "uid_map"), map), "uid_map: %s", text);
        json_decref(map);
        /* The parent lives on, its /tmp untouched, and both clones still answer. */
        ck_assert(t_pid_alive(parent));
        char root_tmp[64];
        snprintf(root_tmp, sizeof(root_tmp), "/proc/%d/root/tmp", (int)parent);
        ck_assert_msg(dir_is_empty(root_tmp), "a clone wrote into its parent's /tmp");
        json_decref(t_invoke(a, "{}"));
        json_decref(t_invoke(b, "{}"));
        json_decref(own);
        json_decref(mine);
        json_decref(ra);
        json_decref(rb);
        free(text);
        t_destroy(a);
        t_destroy(b);
}
END_TEST

/* Every source of randomness differs in every clone, though all share the parent's memory. */
START_TEST(test_random_unique)
{
        const char *keys[] = {"random", "uuid4", "secrets", "openssl", "tempname"};
        json_t *seen[ELEMENTSOF(keys)];
        for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                seen[k] = json_object();
        for (int n = 0; n < 100; n++) {
                pw_instance *i = t_restore("python3");
                ck_assert_int_eq(pw_instance_source(i), PW_SOURCE_CLONE);
                t_specialize(i, "unique.py");
                json_t *res = t_invoke(i, "{}");
                for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                        char *v = json_dumps(json_object_get(res, keys[k]), JSON_ENCODE_ANY);
                        ck_assert_msg(!json_object_get(seen[k], v), "clone %d repeats %s %s", n, keys[k], v);
                        json_object_set_new(seen[k], v, json_true());
                        free(v);
                }
                json_decref(res);
                t_destroy(i);
        }
        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                ck_assert_uint_eq(json_object_size(seen[k]), 100);
                json_decref(seen[k]);
        }
}
END_TEST

/* A parent killed from outside takes its clones with it; the next cold start makes another. */
START_TEST(test_parent_killed_recovers)
{
        pw_instance *a = t_restore("python3");
        t_specialize(a, "hello.py");
        pid_t parent = parent_of(a);
        pid_t agent = pw_instance_pid(a);
        ck_assert_int_eq(kill(parent, SIGKILL), 0);
        for (int k = 0; k < 1000 && t_pid_alive(agent); k++) /* the kernel empties its namespace */
                usleep(10000);
        ck_assert(!t_pid_alive(agent));
        char *result = NULL;
        int r = pw_instance_invoke(a, "{\"name\": \"x\"}", 10000, &result);
        ck_assert_int_eq(r, -ECHILD);
        t_destroy(a);
        pw_instance *b = t_restore("python3");
        ck_assert_int_eq(pw_instance_source(b), PW_SOURCE_CLONE);
        ck_assert_int_ne(parent_of(b), parent);
        t_specialize(b, "hello.py");
        json_decref(t_invoke_hello(b, "after"));
        t_destroy(b);
}
END_TEST

#define THREADS 8
#define PER_THREAD 8

typedef struct worker {
        int n;
        pw_instance *live[PER_THREAD];
        int failures;
        char why[512];
} worker;

static void *clone_many(void *arg)
{
        worker *w = arg;
        for (int k = 0; k < PER_THREAD; k++) {
                pw_instance *i = NULL;
                if (pw_instance_restore(t_engine, "python3", &i) < 0 || pw_instance_source(i) != PW_SOURCE_CLONE) {
                        snprintf(w->why, sizeof(w->why), "%s", i ? "not a clone" : pw_engine_last_error(t_engine));
                        w->failures++;
                        pw_instance_destroy(i);
                        continue;
                }
                w->live[k] = i;
                char *code = t_fixture("hello.py");
                pw_function fn = {.code_uri = code};
                char args[64], want[80], *result = NULL;
                snprintf(args, sizeof(args), "{\"name\": \"t%d-%d\"}", w->n, k);
                snprintf(want, sizeof(want), "Hello, t%d-%d!", w->n, k);
                if (pw_instance_specialize(i, &fn) < 0 || pw_instance_invoke(i, args, 30000, &result) < 0 ||
                    !strstr(result, want)) {
                        snprintf(w->why, sizeof(w->why), "%s", pw_instance_last_error(i));
                        w->failures++;
                }
                free(result);
                free(code);
        }
        return NULL;
}

/* 64 clones made by 8 threads at once, all alive together, each answering for itself. */
START_TEST(test_64_concurrent)
{
        pthread_t threads[THREADS];
        worker workers[THREADS] = {{0}};
        for (int t = 0; t < THREADS; t++) {
                workers[t].n = t;
                ck_assert_int_eq(pthread_create(&threads[t], NULL, clone_many, &workers[t]), 0);
        }
        for (int t = 0; t < THREADS; t++)
                pthread_join(threads[t], NULL);
        int failures = 0;
        for (int t = 0; t < THREADS; t++) {
                failures += workers[t].failures;
                if (workers[t].failures)
                        fprintf(stderr, "  thread %d: %s\n", t, workers[t].why);
                for (int k = 0; k < PER_THREAD; k++)
                        pw_instance_destroy(workers[t].live[k]);
        }
        ck_assert_int_eq(failures, 0);
}
END_TEST

/* Puts a mask back on the parent's /proc, from inside its mount namespace: its next clone cannot
 * mount a /proc of its own (the kernel refuses where none is fully visible). */
static void remask_parent_proc(pid_t parent)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)parent);
        int ns = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(ns, 0);
        pid_t helper = fork();
        if (helper == 0)
                _exit(setns(ns, CLONE_NEWNS) == 0 && mount("/.masked/file", "/proc/keys", NULL, MS_BIND, NULL) == 0 ? 0 : 1);
        close(ns);
        int status;
        ck_assert_int_eq(waitpid(helper, &status, 0), helper);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static char warnings[8192];

static void keep_warnings(enum pw_log_level level, const char *message, void *userdata)
{
        if (level <= PW_LOG_WARNING && strlen(warnings) + strlen(message) + 2 < sizeof(warnings)) {
                strcat(warnings, message);
                strcat(warnings, "\n");
        }
}

/* A clone that cannot make its sandbox dies before it reports ready: it never gets code, and the
 * cold start is served by a restore instead. */
START_TEST(test_sandbox_failure_never_runs_code)
{
        warnings[0] = '\0';
        pw_engine *e = NULL;
        ck_assert_int_eq(pw_engine_new(&(pw_options){.state_dir = t_state, .log = keep_warnings}, &e), 0);
        pw_instance *first = NULL;
        ck_assert_int_eq(pw_instance_restore(e, "python3", &first), 0);
        ck_assert_int_eq(pw_instance_source(first), PW_SOURCE_CLONE);
        remask_parent_proc(parent_of(first));
        pw_instance *second = NULL;
        ck_assert_int_eq(pw_instance_restore(e, "python3", &second), 0);
        ck_assert_int_eq(pw_instance_source(second), PW_SOURCE_RESTORE);
        ck_assert_msg(strstr(warnings, "did not make its sandbox") && strstr(warnings, "/proc"),
                      "warnings: %s", warnings);
        char *code = t_fixture("hello.py"), *result = NULL;
        ck_assert_int_eq(pw_instance_specialize(second, &(pw_function){.code_uri = code}), 0);
        ck_assert_int_eq(pw_instance_invoke(second, "{\"name\": \"r\"}", 10000, &result), 0);
        free(result);
        free(code);
        pw_instance_destroy(first);
        pw_instance_destroy(second);
        pw_engine_free(e);
}
END_TEST

/* ---------------------------------------------------------------- cgroup v2 */

/* A cgroup v2 hierarchy: the machine's, or its unified one beside v1 (this machine's). */
static const char *cgroup2_root(void)
{
        static const char *const candidates[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
        struct statfs fs;
        for (size_t k = 0; k < ELEMENTSOF(candidates); k++)
                if (statfs(candidates[k], &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
                        return candidates[k];
        return NULL;
}

typedef int (*clone_fn)(const struct prewarm_clone_request *, int *);

/* As uid uid, in the cgroup whose cgroup.procs is leader_procs: clones with CLONE_INTO_CGROUP
 * into dst; exits 0 if the child was born there, 2 if clone3 said EACCES, 1 otherwise. */
static int clone_into(clone_fn clone_call, uid_t uid, const char *leader_procs, const char *dst,
                      const char *dst_rel)
{
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        char self[16];
        snprintf(self, sizeof(self), "%d", (int)getpid());
        int cg = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int pipes[2], sync[2];
        if (cg < 0 || write_string(leader_procs, self) < 0 || pipe2(pipes, O_CLOEXEC) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0 || setgroups(0, NULL) < 0 ||
            setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                _exit(1);
        struct prewarm_clone_request req = {sizeof(req), pipes[0], pipes[1], sync[1], cg, uid, uid, 1};
        int pidfd = -1;
        int child = clone_call(&req, &pidfd);
        if (child == 0)
                _exit(3); /* never gets "g": only reached if the helper returned in the child */
        if (child == -EACCES)
                _exit(2);
        if (child < 0)
                _exit(1);
        char path[64], *text = NULL;
        snprintf(path, sizeof(path), "/proc/%d/cgroup", child);
        bool there = read_file(path, 4096, &text, NULL) >= 0 && strstr(text, dst_rel);
        close(sync[0]); /* the child sees no "g" and exits 124 */
        waitpid(child, NULL, 0);
        _exit(there ? 0 : 1);
}

static int exit_status_of(pid_t pid)
{
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The leaf a group's leader lives in (cgroup.c's layout, docs/security.md). */
#define GROUP_LEADER "leader"

/* What cgroup_create_group lays out on v2, tried with the kernel's cgroup v2 on this machine: an
 * unprivileged parent starts a child straight into a leaf of its group (CLONE_INTO_CGROUP), and
 * into nothing outside it. */
START_TEST(test_clone_into_cgroup_v2)
{
        const char *root = cgroup2_root();
        ck_assert_msg(root, "no cgroup v2 hierarchy on this machine");
        void *helper = dlopen(ZYGOTE_HELPER, RTLD_NOW | RTLD_LOCAL);
        ck_assert_msg(helper, "%s", dlerror());
        clone_fn clone_call = (clone_fn)dlsym(helper, "prewarm_zygote_clone");
        ck_assert_ptr_nonnull(clone_call);
        char group[256], leader[300], child[300], outside[256], procs[320];
        snprintf(group, sizeof(group), "%s/prewarm-test-%d", root, (int)getpid());
        snprintf(leader, sizeof(leader), "%s/" GROUP_LEADER, group);
        snprintf(child, sizeof(child), "%s/child", group);
        snprintf(outside, sizeof(outside), "%s/prewarm-test-%d-outside", root, (int)getpid());
        const uid_t uid = 1879048192u + 65000u;
        /* The group's and both targets' cgroup.procs are the parent's uid's (clone3 checks the
         * target too); only the group makes a common ancestor with the parent's leaf. */
        const char *const owned[] = {group, child, outside};
        bool made = mkdir(group, 0755) == 0 && mkdir(leader, 0755) == 0 && mkdir(child, 0755) == 0 &&
                    mkdir(outside, 0755) == 0;
        for (size_t k = 0; made && k < ELEMENTSOF(owned); k++) {
                snprintf(procs, sizeof(procs), "%s/cgroup.procs", owned[k]);
                made = chown(procs, uid, uid) == 0;
        }
        int in_group = -1, out_of_group = -1;
        if (made) {
                char rel[256];
                snprintf(procs, sizeof(procs), "%s/cgroup.procs", leader);
                snprintf(rel, sizeof(rel), "::/%s/child\n", strrchr(group, '/') + 1);
                in_group = exit_status_of(clone_into(clone_call, uid, procs, child, rel));
                snprintf(rel, sizeof(rel), "::/%s\n", strrchr(outside, '/') + 1);
                out_of_group = exit_status_of(clone_into(clone_call, uid, procs, outside, rel));
        }
        rmdir(child);
        rmdir(leader);
        rmdir(group);
        rmdir(outside);
        dlclose(helper);
        ck_assert_msg(made, "making the cgroups under %s", root);
        ck_assert_msg(in_group == 0, "a child was not born in its group's cgroup (%d)", in_group);
        ck_assert_msg(out_of_group == 2, "a child was born outside the parent's group (%d)", out_of_group);
}
END_TEST

static Suite *clone_suite(void)
{
        Suite *s = suite_create("clone");
        TCase *tc = t_tcase("clone");
        tcase_add_test(tc, test_default_is_clone);
        tcase_add_test(tc, test_clones_isolated);
        tcase_add_test(tc, test_random_unique);
        tcase_add_test(tc, test_parent_killed_recovers);
        tcase_add_test(tc, test_64_concurrent);
        tcase_add_test(tc, test_sandbox_failure_never_runs_code);
        tcase_add_test(tc, test_clone_into_cgroup_v2);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(clone_suite, "python3", NULL);
}

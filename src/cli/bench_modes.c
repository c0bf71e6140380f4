/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm bench, the measured things: one run of each mode, from the request for a new instance to
 * the first response of the specialized handler, and the throughput phase of the restore modes.
 *
 * exec and fork_zygote speak the zygote agent's own protocol (agent.h) to the template's own agent,
 * started with the template's runtime, flags, preloads and env: they differ from the engine modes
 * only in how the ready runtime comes to be, which is what the benchmark compares.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "agent.h"
#include "bench.h"
#include "blob.h"
#include "clone.h"
#include "definition.h"
#include "instance.h"
#include "zygote.h"

#define LOAD_TIMEOUT_MS 60000
#define INVOKE_TIMEOUT_MS 60000
#define FORK_TIMEOUT_MS 10000
#define BENCH_ARGS "{\"bench\": true}"

static uint64_t deadline_in(unsigned ms)
{
        return now_us() + (uint64_t)ms * 1000;
}

static double ms_between(uint64_t a, uint64_t b)
{
        return (double)(b - a) / 1000.0;
}

const bench_mode bench_round_order[_MODE_MAX] = {
        MODE_PREWARM_COLD_NORING, MODE_PREWARM_COLD, MODE_EXEC, MODE_CRIU_CLI, MODE_FORK_ZYGOTE, MODE_WARM,
        MODE_PREWARM_RESTORE, MODE_PREWARM,
};

/* ------------------------------------------------------------------ memory */

static void add_smaps_rollup(pid_t pid, uint64_t *rss, uint64_t *pss)
{
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned long long kb;
        while (f && fgets(line, sizeof(line), f)) {
                if (sscanf(line, "Rss: %llu kB", &kb) == 1)
                        *rss += kb;
                else if (sscanf(line, "Pss: %llu kB", &kb) == 1)
                        *pss += kb;
        }
}

/* pid and its descendants: a handler may have started helpers, and they are the instance's too. */
static void add_tree_memory(pid_t pid, uint64_t *rss, uint64_t *pss, unsigned depth)
{
        char path[64];
        add_smaps_rollup(pid, rss, pss);
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
        _cleanup_fclose_ FILE *f = depth < 8 ? fopen(path, "re") : NULL;
        int child;
        while (f && fscanf(f, "%d", &child) == 1)
                add_tree_memory(child, rss, pss, depth + 1);
}

static void measure_memory(pid_t pid, bench_sample *s)
{
        s->rss_kb = s->pss_kb = 0;
        if (pid > 0)
                add_tree_memory(pid, &s->rss_kb, &s->pss_kb, 0);
}

/* ------------------------------------------------------------------ runtime processes */

/* The template's runtime argv with the given program (and its argument) appended. */
static char **runtime_argv(const template_def *def, const char *program, const char *arg)
{
        _cleanup_strv_free_ char **argv = NULL;
        for (char **p = def->runtime; *p; p++)
                if (strv_push(&argv, *p) < 0)
                        return NULL;
        if (strv_push(&argv, program) < 0 || (arg && strv_push(&argv, arg) < 0))
                return NULL;
        return TAKE_PTR(argv);
}

/* Starts argv with fd3 and fd4 (-1: none) at 3 and 4, /dev/null on stdin and stdout, our stderr
 * (a runtime that fails to start says why there). It gets a process group of its own, so that a
 * Ctrl-C at the terminal reaches only us and we tear everything down in order. */
static int spawn_runtime(char **argv, char **envp, int fd3, int fd4, pid_t *ret, pw_err *err)
{
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGPIPE);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        /* Sources above 4 (the callers make sure): dup2 onto the same number would keep CLOEXEC. */
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, fd3, 3);
        if (fd4 >= 0)
                posix_spawn_file_actions_adddup2(&fa, fd4, 4);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        int r = -posix_spawn(ret, argv[0], &fa, &attr, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        return r < 0 ? err_set(err, r, "cannot start %s: %s", argv[0], strerror(-r)) : 0;
}

/* A copy of fd above 4 (see spawn_runtime), replacing it. */
static int move_above_stdio(int *fd)
{
        int copy = fcntl(*fd, F_DUPFD_CLOEXEC, 10);
        if (copy < 0)
                return negative_errno();
        close(*fd);
        *fd = copy;
        return 0;
}

/* An agent process of exec or fork_zygote: our own child (kill and reap it), or the fork zygote's
 * (kill it through a pidfd and wait for its exit; the zygote reaps it). */
typedef struct agent_proc {
        pid_t pid;
        int pidfd;
        agent_channel ch;
} agent_proc;

static void agent_proc_done(agent_proc *p)
{
        if (p->ch.to_agent >= 0)
                close(p->ch.to_agent);
        if (p->ch.from_agent >= 0)
                close(p->ch.from_agent);
        if (p->pidfd >= 0) {
                struct pollfd pfd = {p->pidfd, POLLIN, 0};
                syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
                while (poll(&pfd, 1, 5000) < 0 && errno == EINTR)
                        ;
                close(p->pidfd);
        } else if (p->pid > 0)
                kill_and_reap(p->pid);
}

#define AGENT_PROC_INIT {0, -1, {-1, -1}}

/* Two pipes for the agent protocol: ends[0] goes to the agent as fd 3, ends[1] as fd 4; the
 * process keeps the other two, non-blocking, in p->ch. */
static int agent_pipes(agent_proc *p, int ends[2], pw_err *err)
{
        int to[2] = {-1, -1}, from[2] = {-1, -1};
        if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0) {
                int r = negative_errno();
                close_pair(to);
                return err_set(err, r, "pipe: %s", strerror(-r));
        }
        p->ch.to_agent = to[1];
        p->ch.from_agent = from[0];
        ends[0] = to[0];
        ends[1] = from[1];
        int r = fd_set_nonblocking(to[1]);
        if (r >= 0)
                r = fd_set_nonblocking(from[0]);
        if (r >= 0)
                r = move_above_stdio(&ends[0]);
        if (r >= 0)
                r = move_above_stdio(&ends[1]);
        if (r < 0) {
                close_pair(ends);
                return err_set(err, r, "arranging the agent's pipes: %s", strerror(-r));
        }
        return 0;
}

/* Reads the handler and loads it into a ready agent: what pw_instance_specialize does. */
static int agent_load(const bench_ctx *c, const agent_channel *ch, pw_err *err)
{
        blob b = {0};
        int r = blob_fetch(c->fn.code_uri, NULL, BLOB_MAX, NULL, &b, err);
        if (r < 0)
                return r;
        const agent_code code = {b.filename, "main", NULL, b.data, b.size, NULL};
        r = agent_specialize(ch, &code, deadline_in(LOAD_TIMEOUT_MS), NULL, err);
        blob_done(&b);
        return r;
}

/* Load and first invoke of an agent that is ready; stages 1 and 2 of the sample. */
static int agent_load_invoke(const bench_ctx *c, const agent_proc *p, uint64_t t0, bench_sample *s,
                             pw_err *err)
{
        uint64_t t1 = now_us();
        int r = agent_load(c, &p->ch, err);
        if (r < 0)
                return err_prefix(err, r, "loading the handler");
        uint64_t t2 = now_us();
        _cleanup_free_ char *result = NULL;
        r = agent_invoke(&p->ch, BENCH_ARGS, deadline_in(INVOKE_TIMEOUT_MS), &result, NULL, NULL, err);
        if (r < 0)
                return err_prefix(err, r, "invoking the handler");
        uint64_t t3 = now_us();
        *s = (bench_sample){.total_ms = ms_between(t0, t3),
                            .stage_ms = {ms_between(t0, t1), ms_between(t1, t2), ms_between(t2, t3)}};
        measure_memory(p->pid, s);
        return 0;
}

/* ------------------------------------------------------------------ exec */

static int run_exec(bench_ctx *c, bench_sample *s, pw_err *err)
{
        _cleanup_(agent_proc_done) agent_proc p = AGENT_PROC_INIT;
        _cleanup_strv_free_ char **argv = runtime_argv(c->def, c->def->agent_path, NULL);
        _cleanup_free_ char *runtime = NULL;
        int ends[2];
        if (!argv)
                return -ENOMEM;

        uint64_t t0 = now_us();
        int r = agent_pipes(&p, ends, err);
        if (r < 0)
                return r;
        r = spawn_runtime(argv, c->runtime_env, ends[0], ends[1], &p.pid, err);
        close_pair(ends);
        if (r < 0)
                return r;
        r = agent_wait_ready(&p.ch, deadline_in(c->def->ready_timeout_ms), &runtime, NULL, err);
        if (r < 0)
                return err_prefix(err, r, "starting %s", argv[0]);
        return agent_load_invoke(c, &p, t0, s, err);
}

/* ------------------------------------------------------------------ fork_zygote */

static int zygote_wait(const fork_zygote *z, unsigned timeout_ms, char *buf, size_t size, pw_err *err)
{
        struct pollfd pfd = {z->control, POLLIN, 0};
        int n;
        while ((n = poll(&pfd, 1, (int)timeout_ms)) < 0 && errno == EINTR)
                ;
        if (n == 0)
                return err_set(err, -ETIMEDOUT, "the fork zygote did not answer in %u ms", timeout_ms);
        ssize_t got = recv(z->control, buf, size - 1, 0);
        if (got <= 0)
                return err_set(err, -ECHILD, "the fork zygote exited (its stderr has the reason)");
        buf[got] = '\0';
        return 0;
}

static int fork_zygote_start(bench_ctx *c, pw_err *err)
{
        _cleanup_strv_free_ char **argv = c->fork_zygote_is_agent ? runtime_argv(c->def, c->fork_zygote_program, "--fork-zygote")
                                                                  : runtime_argv(c->def, c->fork_zygote_program, c->def->agent_path);
        int sp[2];
        if (!argv)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return err_set(err, negative_errno(), "socketpair: %m");
        c->zygote.control = sp[0];
        int r = move_above_stdio(&sp[1]);
        if (r >= 0)
                r = spawn_runtime(argv, c->runtime_env, sp[1], -1, &c->zygote.pid, err);
        close(sp[1]);
        if (r < 0)
                return r;
        char answer[64];
        r = zygote_wait(&c->zygote, c->def->ready_timeout_ms, answer, sizeof(answer), err);
        if (r >= 0 && strcmp(answer, "ready"))
                r = err_set(err, -EPROTO, "the fork zygote said '%s' instead of ready", answer);
        return r;
}

static void zygote_stop(fork_zygote *z)
{
        if (z->control >= 0)
                close(z->control);
        z->control = -1;
        /* The group holds the zygote and every child it forked; unreaped, its pid stays ours. */
        if (z->pid > 0) {
                kill(-z->pid, SIGKILL);
                reap(z->pid);
        }
        z->pid = 0;
}

/* Hands the zygote the agent's ends of two new pipes; it forks a child that serves them. */
static int zygote_fork(bench_ctx *c, agent_proc *p, pw_err *err)
{
        int ends[2];
        int r = agent_pipes(p, ends, err);
        if (r < 0)
                return r;
        char cbuf[CMSG_SPACE(sizeof(ends))] = {0};
        struct iovec iov = {(void *)"fork", 4};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(ends));
        memcpy(CMSG_DATA(cm), ends, sizeof(ends));
        ssize_t sent = sendmsg(c->zygote.control, &msg, MSG_NOSIGNAL);
        r = sent < 0 ? negative_errno() : 0;
        close_pair(ends);
        if (r < 0)
                return err_set(err, r, "asking the fork zygote to fork: %s", strerror(-r));

        char answer[128];
        if ((r = zygote_wait(&c->zygote, FORK_TIMEOUT_MS, answer, sizeof(answer), err)) < 0)
                return r;
        char *end;
        long pid = strtol(answer, &end, 10);
        if (*end || pid <= 0)
                return err_set(err, -EPROTO, "the fork zygote answered '%s'", answer);
        /* The child blocks on our pipe until we let it go, so this pid is still the child's. Without
         * a pidfd it is not ours to kill: closing its pipes ends it. */
        p->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
        if (p->pidfd < 0)
                return err_set(err, negative_errno(), "pidfd_open %ld: %m", pid);
        p->pid = (pid_t)pid;
        return 0;
}

static int run_fork(bench_ctx *c, bench_sample *s, pw_err *err)
{
        _cleanup_(agent_proc_done) agent_proc p = AGENT_PROC_INIT;
        uint64_t t0 = now_us();
        int r = zygote_fork(c, &p, err);
        if (r < 0)
                return r;
        return agent_load_invoke(c, &p, t0, s, err);
}

/* ------------------------------------------------------------------ engine modes */

static pw_engine *engine_of(const bench_ctx *c, bench_mode m)
{
        return m == MODE_PREWARM_COLD_NORING ? c->engine_noring : c->engine;
}

static int restore(bench_ctx *c, bench_mode m, pw_instance **ret, pw_err *err)
{
        pw_engine *e = engine_of(c, m);
        /* prewarm: the default path, a clone of the template's parent; the others restore. */
        int r = m == MODE_CRIU_CLI   ? instance_restore_stock(e, c->template_name, ret)
                : m == MODE_PREWARM ? pw_instance_restore(e, c->template_name, ret)
                                    : instance_restore_full(e, c->template_name, ret);
        return r < 0 ? err_set(err, r, "%s", pw_engine_last_error(e)) : 0;
}

/* A cold restore finds nothing of the template in memory: not in the page cache, and not pinned
 * by any engine of ours either (the pages another engine's staging keeps locked would survive an
 * eviction by this one). */
static int evict_everywhere(bench_ctx *c, pw_err *err)
{
        pw_engine *engines[] = {c->engine, c->engine_noring};
        for (size_t k = 0; k < ELEMENTSOF(engines); k++) {
                int r = engines[k] ? pw_template_evict(engines[k], c->template_name) : 0;
                if (r < 0)
                        return err_set(err, r, "%s", pw_engine_last_error(engines[k]));
        }
        return 0;
}

/* One restore + specialize + first invoke + destroy; the destroy is not timed. */
static int run_restore(bench_ctx *c, bench_mode m, bench_sample *s, bool memory, pw_err *err)
{
        bool cold = m == MODE_PREWARM_COLD || m == MODE_PREWARM_COLD_NORING;
        int r = cold ? evict_everywhere(c, err) : 0;
        if (r < 0)
                return r;

        _cleanup_(instance_destroyp) pw_instance *i = NULL;
        _cleanup_free_ char *result = NULL;
        uint64_t t0 = now_us();
        if ((r = restore(c, m, &i, err)) < 0)
                return r;
        if ((r = pw_instance_specialize(i, &c->fn)) < 0 ||
            (r = pw_instance_invoke(i, BENCH_ARGS, INVOKE_TIMEOUT_MS, &result)) < 0)
                return err_set(err, r, "%s", pw_instance_last_error(i));
        uint64_t t1 = now_us();
        pw_timings t = {.size = sizeof(t)};
        pw_instance_timings(i, &t);
        *s = (bench_sample){.total_ms = ms_between(t0, t1),
                            .stage_ms = {t.restore_us / 1000.0, t.specialize_us / 1000.0, t.invoke_us / 1000.0}};
        if (memory)
                measure_memory(pw_instance_pid(i), s);
        return 0;
}

static int run_warm(bench_ctx *c, bench_sample *s, pw_err *err)
{
        _cleanup_free_ char *result = NULL;
        uint64_t t0 = now_us();
        int r = pw_instance_invoke(c->warm, BENCH_ARGS, INVOKE_TIMEOUT_MS, &result);
        if (r < 0)
                return err_set(err, r, "%s", pw_instance_last_error(c->warm));
        uint64_t t1 = now_us();
        pw_timings t = {.size = sizeof(t)};
        pw_instance_timings(c->warm, &t);
        *s = (bench_sample){.total_ms = ms_between(t0, t1), .stage_ms = {0, 0, t.invoke_us / 1000.0}};
        measure_memory(pw_instance_pid(c->warm), s);
        return 0;
}

/* The main engine stages a template after its first restore since an eviction. prewarm measures
 * a long-lived engine's restores, so when only prewarm_cold_noring has evicted the template since
 * (prewarm_cold restores on the main engine and stages it again), an untimed restore stages it. */
static int restage(bench_ctx *c, pw_err *err)
{
        _cleanup_(instance_destroyp) pw_instance *i = NULL;
        int r = instance_restore_full(c->engine, c->template_name, &i);
        return r < 0 ? err_set(err, r, "restaging: %s", pw_engine_last_error(c->engine)) : 0;
}

int bench_run_once(bench_ctx *c, bench_mode m, bench_sample *ret, pw_err *err)
{
        bench_sample s = {0};
        int r;
        if (m == MODE_PREWARM_RESTORE && c->unstaged && (r = restage(c, err)) < 0)
                return r;
        if (m == MODE_PREWARM_RESTORE || m == MODE_PREWARM_COLD || m == MODE_PREWARM_COLD_NORING)
                c->unstaged = m == MODE_PREWARM_COLD_NORING;
        switch (m) {
        case MODE_EXEC: r = run_exec(c, &s, err); break;
        case MODE_FORK_ZYGOTE: r = run_fork(c, &s, err); break;
        case MODE_WARM: r = run_warm(c, &s, err); break;
        default: r = run_restore(c, m, &s, true, err); break;
        }
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

/* ------------------------------------------------------------------ density */

/* The PSS of every process of an instance: its init and what runs under it. */
static uint64_t instance_pss_kb(const pw_instance *i)
{
        uint64_t rss = 0, pss = 0;
        add_tree_memory(i->pid, &rss, &pss, 0);
        return pss;
}

int bench_density(bench_ctx *c, bench_mode m, unsigned n, bench_mode_result *mr, pw_err *err)
{
        _cleanup_free_ pw_instance **live = calloc(n, sizeof(*live));
        if (!live)
                return -ENOMEM;
        int r = 0;
        unsigned made = 0;
        for (; made < n && r >= 0 && !*c->interrupted; made++) {
                _cleanup_free_ char *result = NULL;
                if ((r = restore(c, m, &live[made], err)) < 0)
                        break;
                if ((r = pw_instance_specialize(live[made], &c->fn)) < 0 ||
                    (r = pw_instance_invoke(live[made], BENCH_ARGS, INVOKE_TIMEOUT_MS, &result)) < 0)
                        err_set(err, r, "%s", pw_instance_last_error(live[made]));
        }
        if (r >= 0 && *c->interrupted)
                r = err_set(err, -EINTR, "interrupted");
        uint64_t pss = 0, parent = 0;
        pid_t parent_pid = made && live[0] ? clone_parent_pid(live[0]) : 0;
        for (unsigned k = 0; r >= 0 && k < made; k++)
                pss += instance_pss_kb(live[k]);
        if (r >= 0 && parent_pid > 0) {
                uint64_t rss = 0;
                add_smaps_rollup(parent_pid, &rss, &parent);
        }
        for (unsigned k = 0; k < made; k++)
                pw_instance_destroy(live[k]);
        if (r < 0)
                return r;
        mr->density_instances = n;
        mr->density_pss_kb = pss;
        mr->density_parent_pss_kb = parent;
        return 0;
}

/* ------------------------------------------------------------------ throughput */

typedef struct throughput {
        bench_ctx *c;
        bench_mode m;
        atomic_int remaining;
        atomic_bool failed;
        pthread_mutex_t lock; /* guards err and r */
        pw_err err;
        int r;
} throughput;

static void *throughput_thread(void *userdata)
{
        throughput *t = userdata;
        while (!*t->c->interrupted && !atomic_load(&t->failed) && atomic_fetch_sub(&t->remaining, 1) > 0) {
                bench_sample s;
                pw_err err = {""};
                int r = run_restore(t->c, t->m, &s, false, &err);
                if (r >= 0)
                        continue;
                pthread_mutex_lock(&t->lock);
                if (!atomic_exchange(&t->failed, true)) {
                        t->err = err;
                        t->r = r;
                }
                pthread_mutex_unlock(&t->lock);
        }
        return NULL;
}

int bench_throughput(bench_ctx *c, bench_mode m, unsigned threads, unsigned total, double *ret_wall_s,
                     pw_err *err)
{
        throughput t = {.c = c, .m = m, .remaining = (int)total, .lock = PTHREAD_MUTEX_INITIALIZER};
        _cleanup_free_ pthread_t *tids = calloc(threads, sizeof(pthread_t));
        unsigned started = 0;
        int r = 0;
        if (!tids)
                return -ENOMEM;
        uint64_t t0 = now_us();
        for (; started < threads; started++)
                if ((r = -pthread_create(&tids[started], NULL, throughput_thread, &t)) < 0) {
                        atomic_store(&t.failed, true); /* the started ones stop after their current restore */
                        err_set(err, r, "starting a thread: %s", strerror(-r));
                        break;
                }
        for (unsigned k = 0; k < started; k++)
                pthread_join(tids[k], NULL);
        uint64_t t1 = now_us();
        if (r < 0)
                return r;
        if (atomic_load(&t.failed)) {
                *err = t.err;
                return t.r;
        }
        if (*c->interrupted)
                return err_set(err, -EINTR, "interrupted");
        *ret_wall_s = (double)(t1 - t0) / 1e6;
        return 0;
}

/* ------------------------------------------------------------------ setup */

/* The template's environment for agents on the host, with a TMPDIR of their own that teardown
 * removes: what they unpack stays out of the host's /tmp. */
static int host_agent_env(bench_ctx *c, pw_err *err)
{
        if (!(c->runtime_env = zygote_env(c->def)) || !(c->host_tmp = strdup("/tmp/prewarm-bench-XXXXXX")))
                return -ENOMEM;
        if (!mkdtemp(c->host_tmp)) {
                int r = err_set(err, negative_errno(), "mkdtemp: %m");
                free(c->host_tmp);
                c->host_tmp = NULL;
                return r;
        }
        for (char **p = c->runtime_env; *p; p++)
                if (!strncmp(*p, "TMPDIR=", 7)) {
                        char *own = strdup_printf("TMPDIR=%s", c->host_tmp);
                        if (!own)
                                return -ENOMEM;
                        free(*p);
                        *p = own;
                }
        return 0;
}

int bench_ctx_setup(bench_ctx *c, const bool selected[_MODE_MAX], pw_err *err)
{
        int r;
        c->zygote = (fork_zygote){0, -1};
        if ((selected[MODE_EXEC] || selected[MODE_FORK_ZYGOTE]) && (r = host_agent_env(c, err)) < 0)
                return r;
        /* A runtime that cannot fork by itself (Node) forks through the clone helper's module. */
        if (selected[MODE_FORK_ZYGOTE] && c->engine->zygote_helper) {
                _cleanup_free_ char *helper = strdup_printf("PREWARM_ZYGOTE_HELPER=%s", c->engine->zygote_helper);
                if (!helper || strv_push(&c->runtime_env, helper) < 0)
                        return -ENOMEM;
        }
        if (selected[MODE_FORK_ZYGOTE] && (r = fork_zygote_start(c, err)) < 0)
                return err_prefix(err, r, "fork zygote");
        if (selected[MODE_WARM]) {
                if ((r = pw_instance_restore(c->engine, c->template_name, &c->warm)) < 0)
                        return err_set(err, r, "warm instance: %s", pw_engine_last_error(c->engine));
                if ((r = pw_instance_specialize(c->warm, &c->fn)) < 0)
                        return err_set(err, r, "warm instance: %s", pw_instance_last_error(c->warm));
        }
        return 0;
}

void bench_ctx_teardown(bench_ctx *c)
{
        c->warm = pw_instance_destroy(c->warm);
        zygote_stop(&c->zygote);
        strv_free(c->runtime_env);
        c->runtime_env = NULL;
        if (c->host_tmp)
                rm_rf(c->host_tmp);
        free(c->host_tmp);
        c->host_tmp = NULL;
}

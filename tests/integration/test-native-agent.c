/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm-agent-native on its own, outside any sandbox, as `prewarm bench` runs it (exec and
 * fork_zygote): the protocol's refusals (what the engine never sends), its frame limit, and the
 * --fork-zygote mode, which speaks bench/fork_zygote.py's protocol.
 */
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "frame.h"
#include "util.h"

#define AGENT AGENT_DIR "/prewarm-agent-native"
#define ANSWER_MS 10000 /* how long an answer may take before the test gives up on it */

typedef struct agent_proc {
        pid_t pid;
        int to, from;
} agent_proc;

/* fd moved above the numbers the agent gets (3 and 4), close-on-exec. */
static int above_channel(int fd)
{
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 16);
        ck_assert_int_ge(high, 0);
        close(fd);
        return high;
}

/* Starts argv with fd3 and fd4 (-1: none) at 3 and 4, and TMPDIR in the state dir. */
static pid_t spawn_agent(char *const argv[], int fd3, int fd4)
{
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, fd3, 3);
        if (fd4 >= 0)
                posix_spawn_file_actions_adddup2(&fa, fd4, 4);
        char *tmpdir = strdup_printf("TMPDIR=%s", t_state);
        char *envp[] = {tmpdir, "PATH=/usr/bin:/bin", NULL};
        pid_t pid;
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        free(tmpdir);
        ck_assert_msg(r == 0, "starting %s: %s", argv[0], strerror(r));
        return pid;
}

/* The agent's channel: two pipes, its ends at 3 and 4. */
static void channel_open(int ends[2], agent_proc *a)
{
        int req[2], rep[2];
        ck_assert_int_eq(pipe2(req, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(rep, O_CLOEXEC), 0);
        ends[0] = above_channel(req[0]);
        ends[1] = above_channel(rep[1]);
        a->to = req[1];
        a->from = rep[0];
}

static agent_proc agent_start(void)
{
        agent_proc a;
        int ends[2];
        channel_open(ends, &a);
        char *argv[] = {AGENT, NULL};
        a.pid = spawn_agent(argv, ends[0], ends[1]);
        close(ends[0]);
        close(ends[1]);
        return a;
}

static uint64_t deadline(void)
{
        return now_us() + ANSWER_MS * 1000ull;
}

static void agent_send(const agent_proc *a, const void *data, size_t size)
{
        int r = frame_write(a->to, data, size, deadline());
        ck_assert_msg(r == 0, "sending to the agent: %s", strerror(-r));
}

static void agent_send_text(const agent_proc *a, const char *text)
{
        agent_send(a, text, strlen(text));
}

static json_t *agent_recv(const agent_proc *a)
{
        char *text = NULL;
        size_t size = 0;
        int r = frame_read(a->from, deadline(), &text, &size);
        ck_assert_msg(r == 0, "reading from the agent: %s", strerror(-r));
        json_t *reply = json_loadb(text, size, 0, NULL);
        ck_assert_msg(reply && json_is_object(reply), "not a JSON object: %s", text);
        free(text);
        return reply;
}

/* Asserts the reply's kind and that its error holds reason. */
static void assert_refusal(json_t *reply, const char *kind, const char *reason)
{
        char *text = json_dumps(reply, JSON_COMPACT);
        ck_assert_msg(json_is_false(json_object_get(reply, "ok")), "not refused: %s", text);
        const char *got = json_string_value(json_object_get(reply, "kind"));
        ck_assert_msg(got && !strcmp(got, kind), "kind %s, not %s: %s", got, kind, text);
        ck_assert_contains(json_string_value(json_object_get(reply, "error")), reason);
        free(text);
        json_decref(reply);
}

/* Closes the channel; returns how the agent ended when it is our child. */
static int agent_end(agent_proc *a, bool ours)
{
        close(a->to);
        close(a->from);
        return ours ? reap(a->pid) : 0;
}

static void specialize_hello(const agent_proc *a)
{
        char *blob = NULL;
        size_t size = 0;
        ck_assert_int_eq(read_file(NATIVE_HELLO, 16 << 20, &blob, &size), 0);
        agent_send_text(a, "{\"op\": \"specialize\", \"filename\": \"hello.so\", \"main\": \"main\", \"env\": {}}");
        agent_send(a, blob, size);
        free(blob);
        json_t *reply = agent_recv(a);
        ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "specialize: %s", json_dumps(reply, JSON_COMPACT));
        json_decref(reply);
}

static void assert_hello(const agent_proc *a, const char *name)
{
        char *args = strdup_printf("{\"op\": \"invoke\", \"args\": {\"name\": \"%s\"}}", name);
        agent_send_text(a, args);
        json_t *reply = agent_recv(a);
        json_t *want = json_pack("{s:s, s:{s:s}}", "hello", name, "args", "name", name);
        ck_assert_msg(json_equal(json_object_get(reply, "result"), want), "%s", json_dumps(reply, JSON_COMPACT));
        ck_assert_str_eq(json_string_value(json_object_get(reply, "logs")), ""); /* always there */
        json_decref(want);
        json_decref(reply);
        free(args);
}

/* ---------------------------------------------------------------- the protocol */

START_TEST(test_protocol)
{
        agent_proc a = agent_start();
        json_t *ready = agent_recv(&a);
        ck_assert_str_eq(json_string_value(json_object_get(ready, "op")), "ready");
        ck_assert_contains(json_string_value(json_object_get(ready, "runtime")), "native (glibc ");
        ck_assert_int_eq(json_integer_value(json_object_get(ready, "pid")), a.pid);
        if (access("/prewarm/libprewarm-zygote.so", F_OK) < 0) /* the host has no sandbox's rootfs */
                ck_assert(json_is_false(json_object_get(ready, "clone")));
        json_decref(ready);

        static const struct {
                const char *request, *kind, *reason;
                bool blob; /* a specialize: a code blob follows */
        } refused[] = {
                {"not json", "protocol", "malformed JSON", false},
                {"[1, 2]", "protocol", "must be a JSON object", false},
                {"{\"op\": 7}", "protocol", "needs an op", false},
                {"{\"op\": \"dance\"}", "protocol", "unknown op 'dance'", false},
                {"{\"op\": \"invoke\", \"args\": {}}", "state", "before a successful specialize", false},
                {"{\"op\": \"parent\"}", "state", "clone helper", false},
                {"{\"op\": \"specialize\", \"filename\": \"main.py\"}", "protocol", "filename must", true},
                {"{\"op\": \"specialize\", \"filename\": \"../hello.so\"}", "protocol", "filename must", true},
                {"{\"op\": \"specialize\", \"filename\": \"hello.so\", \"convention\": \"fission\"}", "protocol",
                 "openwhisk convention only", true},
                {"{\"op\": \"specialize\", \"filename\": \"hello.so\", \"env\": {\"A\": 1}}", "protocol",
                 "env must be", true},
                {"{\"op\": \"specialize\", \"filename\": \"hello.so\", \"main\": 3}", "protocol", "main must", true},
        };
        for (size_t k = 0; k < ELEMENTSOF(refused); k++) {
                agent_send_text(&a, refused[k].request);
                if (refused[k].blob)
                        agent_send_text(&a, "not read as code");
                assert_refusal(agent_recv(&a), refused[k].kind, refused[k].reason);
        }
        agent_send_text(&a, "{\"op\": \"before_checkpoint\"}");
        json_t *hooks = agent_recv(&a), *none = json_pack("{s:b, s:i}", "ok", 1, "hooks", 0);
        ck_assert(json_equal(hooks, none));
        json_decref(hooks);
        json_decref(none);

        /* None of that counted as the one specialize an instance takes. A function without hooks
         * has none to run. */
        specialize_hello(&a);
        agent_send_text(&a, "{\"op\": \"after_restore\"}");
        hooks = agent_recv(&a);
        none = json_pack("{s:b, s:i}", "ok", 1, "hooks", 0);
        ck_assert(json_equal(hooks, none));
        json_decref(hooks);
        json_decref(none);
        assert_hello(&a, "direct");
        agent_send_text(&a, "{\"op\": \"invoke\", \"args\": \"text\"}");
        assert_refusal(agent_recv(&a), "protocol", "args must be an object or an array");
        agent_send_text(&a, "{\"op\": \"specialize\", \"filename\": \"hello.so\"}");
        agent_send_text(&a, "");
        assert_refusal(agent_recv(&a), "state", "already specialized");
        assert_hello(&a, "still");
        int status = agent_end(&a, true);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the agent ended with status 0x%x", status);

        /* The code went into a private directory under TMPDIR, and only there. */
        char *pattern = strdup_printf("%s/action-*/*", t_state);
        glob_t g;
        ck_assert_int_eq(glob(pattern, 0, NULL, &g), 0);
        ck_assert_uint_eq(g.gl_pathc, 1);
        ck_assert_contains(g.gl_pathv[0], "/hello.so");
        globfree(&g);
        free(pattern);
}
END_TEST

/* A length over 64 MiB is answered, then the channel closed: the agent exits 1. */
START_TEST(test_frame_limit)
{
        agent_proc a = agent_start();
        json_decref(agent_recv(&a));
        ck_assert_int_eq(write_full(a.to, "\xff\xff\xff\xff", 4), 0);
        assert_refusal(agent_recv(&a), "protocol", "exceeds the limit");
        int status = agent_end(&a, true);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "the agent ended with status 0x%x", status);
}
END_TEST

/* ---------------------------------------------------------------- --fork-zygote */

static void control_send(int sock, const char *text, const int *fds, size_t n_fds)
{
        struct iovec iov = {(void *)text, strlen(text)};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } c = {0};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
        if (n_fds) {
                msg.msg_control = c.buf;
                msg.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
                struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
                *h = (struct cmsghdr){.cmsg_len = CMSG_LEN(n_fds * sizeof(int)), .cmsg_level = SOL_SOCKET,
                                      .cmsg_type = SCM_RIGHTS};
                memcpy(CMSG_DATA(h), fds, n_fds * sizeof(int));
        }
        ck_assert_int_eq(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)strlen(text));
}

static void control_recv(int sock, char *buf, size_t size)
{
        struct pollfd p = {sock, POLLIN, 0};
        ck_assert_msg(poll(&p, 1, ANSWER_MS) == 1, "the fork zygote did not answer");
        ssize_t n = recv(sock, buf, size - 1, 0);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
}

/* Asks the zygote for a child and returns it, serving on a channel of its own. */
static agent_proc fork_child(int sock)
{
        agent_proc child;
        int ends[2];
        channel_open(ends, &child);
        control_send(sock, "fork", ends, 2);
        close(ends[0]);
        close(ends[1]);
        char answer[64];
        control_recv(sock, answer, sizeof(answer));
        child.pid = atoi(answer);
        ck_assert_msg(child.pid > 0, "the fork zygote answered '%s'", answer);
        return child;
}

/* Ends a child of the zygote (not ours to reap): it exits once its channel is closed. */
static void child_end(agent_proc *child)
{
        int pidfd = (int)syscall(SYS_pidfd_open, child->pid, 0);
        ck_assert_int_ge(pidfd, 0);
        agent_end(child, false);
        struct pollfd p = {pidfd, POLLIN, 0};
        ck_assert_msg(poll(&p, 1, ANSWER_MS) == 1, "the zygote's child %d did not exit", (int)child->pid);
        close(pidfd);
}

START_TEST(test_fork_zygote)
{
        int sp[2];
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        sp[1] = above_channel(sp[1]);
        char *argv[] = {AGENT, "--fork-zygote", AGENT, NULL};
        pid_t zygote = spawn_agent(argv, sp[1], -1);
        close(sp[1]);
        char answer[128];
        control_recv(sp[0], answer, sizeof(answer));
        ck_assert_str_eq(answer, "ready");
        control_send(sp[0], "spoon", NULL, 0);
        control_recv(sp[0], answer, sizeof(answer));
        ck_assert_str_eq(answer, "error: expected 'fork' with two descriptors");

        for (int n = 0; n < 2; n++) { /* each child its own, the zygote unchanged */
                agent_proc child = fork_child(sp[0]);
                specialize_hello(&child);
                assert_hello(&child, n ? "second child" : "first child");
                child_end(&child);
        }
        close(sp[0]);
        int status = reap(zygote);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the fork zygote ended with status 0x%x", status);
}
END_TEST

static Suite *native_agent_suite(void)
{
        Suite *s = suite_create("native-agent");
        TCase *tc = t_tcase("native-agent");
        tcase_add_test(tc, test_protocol);
        tcase_add_test(tc, test_frame_limit);
        tcase_add_test(tc, test_fork_zygote);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return t_main(native_agent_suite, NULL);
}

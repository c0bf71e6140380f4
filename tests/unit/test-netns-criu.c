/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Two of the engine's outside ends, on this machine (root): network namespaces made with libnl
 * (netns.h: loopback up, each namespace its own, the pool's refills), and CRIU through its RPC
 * (criu.h: version, check, cpuinfo dump and check, and its errors coming back as reasons). */
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "criu.h"
#include "netns.h"
#include "unit.h"

/* In a child that joined the namespace: 1 if lo is up, 0 if not, -1 on error. */
static int loopback_up_in(int fd)
{
        pid_t pid = fork();
        if (pid == 0) {
                if (setns(fd, CLONE_NEWNET) < 0)
                        _exit(3);
                int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                struct ifreq ifr = {0};
                snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
                if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                        _exit(3);
                _exit(ifr.ifr_flags & IFF_UP ? 1 : 0);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) && WEXITSTATUS(status) <= 1 ? WEXITSTATUS(status) : -1;
}

static ino_t ino_of(int fd)
{
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        return st.st_ino;
}

START_TEST(test_netns_create)
{
        pw_err err = {""};
        int a = -1, b = -1;
        ck_assert_msg(netns_create(&a, &err) == 0, "%s", err.msg);
        ck_assert_msg(netns_create(&b, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(loopback_up_in(a), 1);
        ck_assert_int_ne(ino_of(a), ino_of(b)); /* each its own */
        int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ne(ino_of(a), ino_of(host));
        close(host);
        close(a);
        close(b);
}
END_TEST

START_TEST(test_netns_pool)
{
        pw_err err = {""};
        netns_pool *p = netns_pool_new();
        ck_assert_ptr_nonnull(p);
        int seen[4];
        for (int k = 0; k < 4; k++) {
                int fd = -1;
                ck_assert_msg(netns_take(p, &fd, &err) == 0, "%s", err.msg);
                ck_assert_int_eq(loopback_up_in(fd), 1);
                seen[k] = (int)ino_of(fd);
                for (int j = 0; j < k; j++)
                        ck_assert_int_ne(seen[j], seen[k]); /* never one handed out twice */
                close(fd);
        }
        netns_pool_drain(p);
        int fd = -1;
        ck_assert_int_eq(netns_take(p, &fd, &err), 0); /* drained, it makes one on demand */
        close(fd);
        netns_pool_free(p);
}
END_TEST

static pw_engine *engine(void)
{
        pw_engine *e = NULL;
        char *state = tmp_path("state");
        int r = pw_engine_new(&(pw_options){.state_dir = state}, &e);
        free(state);
        ck_assert_msg(r == 0, "pw_engine_new: %s", strerror(-r));
        return e;
}

START_TEST(test_criu_rpc)
{
        pw_engine *e = engine();
        pw_err err = {""};
        criu_version_info v;
        ck_assert_msg(criu_get_version(e, &v, &err) == 0, "%s", err.msg);
        ck_assert_msg(v.major > 4 || (v.major == 4 && v.minor >= 1), "CRIU %d.%d is older than 4.1", v.major, v.minor);
        ck_assert_msg(criu_run_check(e, &err) == 0, "criu check: %s", err.msg);

        char *dir = tmp_path("cpuinfo"), *img = tmp_path("cpuinfo/cpuinfo.img");
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        ck_assert_msg(criu_cpuinfo_dump(e, dir, &err) == 0, "%s", err.msg);
        ck_assert(path_exists(img));
        ck_assert_msg(criu_cpuinfo_check(e, dir, &err) == 0, "%s", err.msg);
        /* A damaged image: CRIU's reason comes back, prefixed. */
        put_text(img, "not an image of CRIU's");
        err.msg[0] = '\0';
        ck_assert_int_lt(criu_cpuinfo_check(e, dir, &err), 0);
        ck_assert_msg(!strncmp(err.msg, "criu: ", 6), "'%s'", err.msg);
        /* Nowhere to look. */
        char *missing = tmp_path("nowhere");
        err.msg[0] = '\0';
        ck_assert_int_eq(criu_cpuinfo_check(e, missing, &err), -ENOENT);
        ck_assert_msg(strstr(err.msg, "nowhere"), "'%s'", err.msg);
        free(missing);
        free(dir);
        free(img);
        pw_engine_free(e);
}
END_TEST

static Suite *outside_suite(void)
{
        Suite *s = suite_create("netns-criu");
        TCase *tc = tcase_create("outside");
        tcase_add_tmp_dir(tc);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_netns_create);
        tcase_add_test(tc, test_netns_pool);
        tcase_add_test(tc, test_criu_rpc);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "unit-netns-criu needs root\n");
                return 77;
        }
        return run_suite(outside_suite());
}

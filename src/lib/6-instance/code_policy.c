/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where code may come from: file roots resolved with openat2 beneath them, and the addresses
 * http(s) fetches may connect to (public ones, plus the CIDRs allowed).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "blob.h"
#include "code_policy.h"

typedef struct cidr {
        int family;
        uint8_t addr[16];
        unsigned prefix;
} cidr;

struct code_policy {
        char **roots;  /* absolute, without a trailing slash */
        cidr *allow;
        size_t n_allow;
        uint64_t max_code_bytes;
};

/* Refused unless opened: what is not the public internet. */
static const struct {
        const char *cidr, *what;
} special[] = {
        {"0.0.0.0/8", "an unspecified address"},     {"127.0.0.0/8", "a loopback address"},
        {"10.0.0.0/8", "a private address"},         {"172.16.0.0/12", "a private address"},
        {"192.168.0.0/16", "a private address"},     {"100.64.0.0/10", "a shared (carrier-grade NAT) address"},
        {"169.254.0.0/16", "a link-local address"},  {"192.0.0.0/24", "an IETF protocol address"},
        {"198.18.0.0/15", "a benchmarking address"}, {"224.0.0.0/4", "a multicast address"},
        {"240.0.0.0/4", "a reserved address"},       {"::/128", "an unspecified address"},
        {"::1/128", "a loopback address"},           {"fc00::/7", "a unique-local address"},
        {"fe80::/10", "a link-local address"},       {"ff00::/8", "a multicast address"},
        {"64:ff9b:1::/48", "a local-use NAT64 address"},
};

int cidr_parse(const char *s, int *ret_family, uint8_t ret_addr[16], unsigned *ret_prefix)
{
        const char *slash = strchr(s, '/');
        char host[INET6_ADDRSTRLEN];
        if (!slash || (size_t)(slash - s) >= sizeof(host) || !slash[1])
                return -EINVAL;
        memcpy(host, s, (size_t)(slash - s));
        host[slash - s] = '\0';
        char *end;
        unsigned long prefix = strtoul(slash + 1, &end, 10);
        int family = strchr(host, ':') ? AF_INET6 : AF_INET;
        if (*end || prefix > (family == AF_INET6 ? 128u : 32u))
                return -EINVAL;
        memset(ret_addr, 0, 16);
        if (inet_pton(family, host, ret_addr) != 1)
                return -EINVAL;
        *ret_family = family;
        *ret_prefix = (unsigned)prefix;
        return 0;
}

static bool cidr_holds(const cidr *c, int family, const uint8_t *addr)
{
        if (c->family != family)
                return false;
        unsigned full = c->prefix / 8, rest = c->prefix % 8;
        if (memcmp(c->addr, addr, full))
                return false;
        return !rest || ((c->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

code_policy *code_policy_free(code_policy *p)
{
        if (!p)
                return NULL;
        strv_free(p->roots);
        free(p->allow);
        free(p);
        return NULL;
}

static int add_root(code_policy *p, const char *root, pw_err *err)
{
        struct stat st;
        if (root[0] != '/' || stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
                return err_set(err, -EINVAL, "code root %s is not an absolute path of a directory", root);
        _cleanup_free_ char *copy = strdup(root);
        if (!copy)
                return -ENOMEM;
        size_t n = strlen(copy);
        while (n > 1 && copy[n - 1] == '/')
                copy[--n] = '\0';
        return strv_push(&p->roots, copy);
}

int code_policy_new(const pw_code_policy *in, code_policy **ret, pw_err *err)
{
        code_policy *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        int r = 0;
        p->max_code_bytes = in->max_code_bytes ? in->max_code_bytes : BLOB_MAX;
        if (p->max_code_bytes > BLOB_CEILING)
                r = err_set(err, -EINVAL, "a code size limit of %llu bytes is over the ceiling of %u",
                            (unsigned long long)p->max_code_bytes, BLOB_CEILING);
        for (size_t i = 0; in->file_roots && in->file_roots[i] && r >= 0; i++)
                r = add_root(p, in->file_roots[i], err);
        size_t n = 0;
        while (in->fetch_allow && in->fetch_allow[n])
                n++;
        if (r >= 0 && n && !(p->allow = calloc(n, sizeof(*p->allow))))
                r = -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                cidr *c = &p->allow[p->n_allow++];
                if (cidr_parse(in->fetch_allow[i], &c->family, c->addr, &c->prefix) < 0)
                        r = err_set(err, -EINVAL, "'%s' is not a CIDR such as 10.0.0.0/8 or fd00::/8",
                                    in->fetch_allow[i]);
        }
        if (r < 0) {
                code_policy_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

/* The root path lies beneath, and the rest of path relative to it; NULL when none holds it. */
static const char *root_of(const code_policy *p, const char *path, const char **ret_rest)
{
        for (char **root = p->roots; root && *root; root++) {
                if (!path_within(path, *root))
                        continue;
                const char *rest = path + strlen(*root);
                while (*rest == '/')
                        rest++;
                *ret_rest = *rest ? rest : "."; /* "." is the root itself: a package directory of code */
                return *root;
        }
        return NULL;
}

int code_policy_open(const code_policy *p, const char *path, int *ret_fd, pw_err *err)
{
        const char *rest = NULL;
        const char *root = root_of(p, path, &rest);
        /* The same answer for a file that exists and one that does not: nothing is learnt of
         * what lies outside the roots. */
        if (!root)
                return err_set(err, -EACCES, "%s is not beneath a code root of this daemon", path);
        _cleanup_close_ int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return err_set(err, negative_errno(), "code root %s: %m", root);
        struct open_how how = {
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        int fd = (int)syscall(SYS_openat2, dir, rest, &how, sizeof(how));
        if (fd < 0 && (errno == EXDEV || errno == ELOOP))
                return err_set(err, -EACCES, "%s leads out of its code root %s", path, root);
        if (fd < 0)
                return err_set(err, negative_errno(), "cannot read %s: %m", path);
        struct stat st;
        if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
                close(fd);
                return err_set(err, -EACCES, "%s is not a regular file or a directory", path);
        }
        *ret_fd = fd;
        return 0;
}

/* The address family and bytes of sa, IPv4-mapped IPv6 as IPv4. */
static bool address_bytes(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
        memset(addr, 0, 16);
        if (sa->sa_family == AF_INET) {
                memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                *family = AF_INET;
                return true;
        }
        if (sa->sa_family != AF_INET6)
                return false;
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
                memcpy(addr, a6->s6_addr + 12, 4);
                *family = AF_INET;
        } else {
                memcpy(addr, a6->s6_addr, 16);
                *family = AF_INET6;
        }
        return true;
}

uint64_t code_policy_max_bytes(const code_policy *p)
{
        return p ? p->max_code_bytes : BLOB_MAX;
}

bool code_policy_address_ok(const code_policy *p, const struct sockaddr *sa, char *why, size_t n)
{
        int family;
        uint8_t addr[16];
        char text[INET6_ADDRSTRLEN] = "?";
        if (!address_bytes(sa, &family, addr)) {
                snprintf(why, n, "not an IP address");
                return false;
        }
        inet_ntop(family, addr, text, sizeof(text));
        for (size_t i = 0; i < p->n_allow; i++)
                if (cidr_holds(&p->allow[i], family, addr))
                        return true;
        for (size_t i = 0; i < ELEMENTSOF(special); i++) {
                cidr c;
                if (cidr_parse(special[i].cidr, &c.family, c.addr, &c.prefix) == 0 && cidr_holds(&c, family, addr)) {
                        snprintf(why, n, "%s is %s (open it with --fetch-allow)", text, special[i].what);
                        return false;
                }
        }
        return true;
}

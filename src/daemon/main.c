/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarmd: the sidecar daemon. Options, signals and the lifecycle: lock the state dir, reap what
 * a crashed predecessor left, serve, and on SIGTERM/SIGINT stop accepting, let in-flight requests
 * finish (or fail them after the grace period), destroy every instance.
 */
#include <fcntl.h>
#include <grp.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

#include "activations.h"
#include "api.h"
#include "config.h"
#include "functions.h"
#include "blob.h"
#include "code_policy.h"
#include "criu.h"
#include "http.h"
#include "metrics.h"
#include "template_sources.h"
#include "slots.h"

static void library_log(enum pw_log_level level, const char *message, void *userdata)
{
        dlog(level, "engine: %s", message);
}

static int kill_busy(const pw_pool_instance_info *i, void *userdata)
{
        if (!strcmp(i->state, "busy") && i->pid > 0) {
                dlog(PW_LOG_WARNING, "shutdown: killing busy instance %s (pid %d)", i->id, (int)i->pid);
                kill(i->pid, SIGKILL);
        }
        return 0;
}

void daemon_fail_busy(daemon_ctx *d)
{
        if (d->pool)
                pw_pool_foreach_instance(d->pool, kill_busy, NULL);
        slots_kill_instances(d->slots);
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *f)
{
        fprintf(f,
                "usage: prewarmd [OPTIONS]\n\n"
                "  --state-dir DIR          template store and state (default $PREWARM_STATE_DIR, else %s)\n"
                "  --templates-dir DIR      template definitions\n"
                "  --socket PATH            unix socket of the API (default STATE/prewarmd.sock, mode 0660;\n"
                "                           STATE is root's alone: give a group the socket elsewhere)\n"
                "  --socket-group GROUP     the group that may use the unix socket (default: root only)\n"
                "  --listen HOST:PORT       also serve the API on TCP; every TCP request needs the bearer token\n"
                "                           (--token-file's, else one made at first start in STATE/api.token)\n"
                "  --token-file FILE        require 'Authorization: Bearer TOKEN' on every API request\n"
                "  --openwhisk-ports A-B    one action slot per port on 127.0.0.1 (OpenWhisk, Knative, Fission);\n"
                "                           'env': one slot on $PORT, default 8080 (Knative's container contract)\n"
                "  --slot-template NAME     template of the slots' instances (default python3)\n"
                "  --fission-root DIR       where Fission's deployment packages are (default /userfunc)\n"
                "  --code-root DIR          file:// code may come from beneath DIR (repeatable; default: none,\n"
                "                           only code uploaded inline, kept in STATE/blobs)\n"
                "  --fetch-allow CIDR       http(s) code may come from this range too (repeatable; default:\n"
                "                           public addresses only, no loopback, private or link-local)\n"
                "  --zygotes MIN-MAX        zygotes kept ready per template a function uses (default 32-64)\n"
                "  --memory-budget MB       memory the pool may keep ready, by the templates' limits (default: no limit)\n"
                "  --max-invocations N      invocations running at once; more wait their turn (default 32 per CPU, 0: no limit)\n"
                "  --blob-cache-mb MB       bound of the cache of inline code; blobs no function uses go first (default 1024)\n"
                "  --max-connections N      open connections per API server (default 4096)\n"
                "  --max-connections-per-address N\n"
                "                           open TCP connections per client address (default 256)\n"
                "  --request-deadline S     seconds to send a whole request, however slowly (default 30)\n"
                "  --max-code-mb MB         largest code blob, inline (a request body holds it in base64) or\n"
                "                           fetched (default 48, OpenWhisk's exec-size-limit; at most 60)\n"
                "  --grace SECONDS          how long shutdown waits for requests in flight (default 30)\n"
                "  --template-from NAME=REF template NAME comes from registry reference REF, pulled when first\n"
                "                           needed, and at start for /readyz (repeatable; see docs/fleet.md)\n"
                "  --template-cache-mb MB   bound of the pulled templates kept; the least recently used that\n"
                "                           no function or slot needs go first (default: no bound)\n"
                "  --registry-plain-http    reach registries over plain HTTP (one on the node itself)\n"
                "  --registry-ca-file PEM   CA bundle to check registries' certificates with\n"
                "  --registry-username USER credentials for registries; the password comes from\n"
                "                           $PREWARM_REGISTRY_PASSWORD\n"
                "  -v, --verbose            debug logging\n",
                PW_DEFAULT_STATE_DIR);
}

static int parse_range(const char *s, unsigned *a, unsigned *b, unsigned max)
{
        char *end;
        unsigned long x = strtoul(s, &end, 10), y = x;
        if (*end == '-')
                y = strtoul(end + 1, &end, 10);
        if (*end || x == 0 || y < x || y > max)
                return -EINVAL;
        *a = (unsigned)x;
        *b = (unsigned)y;
        return 0;
}

static int parse_options(int argc, char **argv, daemon_config *c)
{
        static const struct option options[] = {
                {"state-dir", required_argument, NULL, 's'}, {"templates-dir", required_argument, NULL, 't'},
                {"socket", required_argument, NULL, 'S'},    {"listen", required_argument, NULL, 'l'},
                {"token-file", required_argument, NULL, 'T'}, {"openwhisk-ports", required_argument, NULL, 'o'},
                {"slot-template", required_argument, NULL, 'm'}, {"zygotes", required_argument, NULL, 'z'},
                {"fission-root", required_argument, NULL, 'F'}, {"max-invocations", required_argument, NULL, 'M'},
                {"grace", required_argument, NULL, 'g'},    {"memory-budget", required_argument, NULL, 'b'},
                {"code-root", required_argument, NULL, 'C'}, {"fetch-allow", required_argument, NULL, 'A'},
                {"socket-group", required_argument, NULL, 'G'}, {"blob-cache-mb", required_argument, NULL, 'B'},
                {"max-connections", required_argument, NULL, 'X'},
                {"max-connections-per-address", required_argument, NULL, 'P'},
                {"max-code-mb", required_argument, NULL, 'K'},
                {"request-deadline", required_argument, NULL, 'D'},
                {"template-from", required_argument, NULL, 'f'}, {"template-cache-mb", required_argument, NULL, 'c'},
                {"registry-plain-http", no_argument, NULL, 'H'}, {"registry-ca-file", required_argument, NULL, 'a'},
                {"registry-username", required_argument, NULL, 'u'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},           {"version", no_argument, NULL, 'V'},
                {0},
        };
        int ch;
        while ((ch = getopt_long(argc, argv, "vh", options, NULL)) != -1) {
                switch (ch) {
                case 's': c->state_dir = optarg; break;
                case 't': setenv("PREWARM_TEMPLATES_DIR", optarg, 1); break;
                case 'S': c->socket_path = optarg; break;
                case 'G': c->socket_group = optarg; break;
                case 'l': c->listen = optarg; break;
                case 'T': c->token_file = optarg; break;
                case 'm': c->slot_template = optarg; break;
                case 'F': c->fission_root = optarg; break;
                case 'C':
                        if (optarg[0] != '/')
                                return fprintf(stderr, "prewarmd: --code-root wants an absolute directory, got '%s'\n", optarg), -EINVAL;
                        if (strv_push(&c->code_roots, optarg) < 0)
                                return -ENOMEM;
                        break;
                case 'A': {
                        int family;
                        uint8_t addr[16];
                        unsigned prefix;
                        if (cidr_parse(optarg, &family, addr, &prefix) < 0)
                                return fprintf(stderr, "prewarmd: --fetch-allow wants a CIDR such as 10.0.0.0/8, got '%s'\n", optarg), -EINVAL;
                        if (strv_push(&c->fetch_allow, optarg) < 0)
                                return -ENOMEM;
                        break;
                }
                case 'v': c->verbose = true; break;
                case 'f':
                        if (strv_push(&c->template_from, optarg) < 0)
                                return -ENOMEM;
                        break;
                case 'c': {
                        char *end;
                        unsigned long long v = strtoull(optarg, &end, 10);
                        if (*end || !*optarg || v > (1ull << 30))
                                return fprintf(stderr, "prewarmd: --template-cache-mb wants megabytes\n"), -EINVAL;
                        c->template_cache_mb = v;
                        break;
                }
                case 'H': c->registry.plain_http = true; break;
                case 'a': c->registry.ca_file = optarg; break;
                case 'u': c->registry.username = optarg; break;
                case 'h': usage(stdout); exit(0);
                case 'V': printf("prewarmd %s\n", PW_VERSION); exit(0);
                case 'o':
                        if (!strcmp(optarg, "env")) { /* Knative tells a container its port in $PORT */
                                const char *port = getenv("PORT");
                                char *end;
                                unsigned long v = port && *port ? strtoul(port, &end, 10) : 8080;
                                if ((port && *port && *end) || v == 0 || v > 65535)
                                        return fprintf(stderr, "prewarmd: $PORT is not a port: '%s'\n", port), -EINVAL;
                                c->ow_port_first = c->ow_port_last = (unsigned)v;
                        } else if (parse_range(optarg, &c->ow_port_first, &c->ow_port_last, 65535) < 0)
                                return fprintf(stderr, "prewarmd: --openwhisk-ports wants A-B, got '%s'\n", optarg), -EINVAL;
                        break;
                case 'z':
                        if (parse_range(optarg, &c->zygotes_min, &c->zygotes_max, 256) < 0)
                                return fprintf(stderr, "prewarmd: --zygotes wants MIN-MAX (1-256), got '%s'\n", optarg), -EINVAL;
                        break;
                case 'b': {
                        char *end;
                        unsigned long long v = strtoull(optarg, &end, 10);
                        if (*end || !*optarg || v > (1ull << 30))
                                return fprintf(stderr, "prewarmd: --memory-budget wants megabytes\n"), -EINVAL;
                        c->memory_budget_mb = v;
                        break;
                }
                case 'M': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || !*optarg || v > 100000)
                                return fprintf(stderr, "prewarmd: --max-invocations wants a number (0: no limit)\n"), -EINVAL;
                        c->max_invocations = (unsigned)v;
                        break;
                }
                case 'B': case 'X': case 'P': case 'D': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || !*optarg || v == 0 || v > 1000000)
                                return fprintf(stderr, "prewarmd: --%s wants a number from 1 to 1000000\n",
                                               ch == 'B' ? "blob-cache-mb" : ch == 'X' ? "max-connections"
                                               : ch == 'P' ? "max-connections-per-address" : "request-deadline"), -EINVAL;
                        if (ch == 'B')
                                c->blob_cache_mb = v;
                        else if (ch == 'X')
                                c->max_connections = (unsigned)v;
                        else if (ch == 'P')
                                c->max_connections_per_address = (unsigned)v;
                        else
                                c->request_deadline_s = (unsigned)v;
                        break;
                }
                case 'K': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || !*optarg || v == 0 || v > (BLOB_CEILING >> 20))
                                return fprintf(stderr, "prewarmd: --max-code-mb wants a number from 1 to %u\n",
                                               BLOB_CEILING >> 20), -EINVAL;
                        c->max_code_mb = (unsigned)v;
                        break;
                }
                case 'g': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v > 3600)
                                return fprintf(stderr, "prewarmd: --grace wants seconds (0-3600)\n"), -EINVAL;
                        c->grace_s = (unsigned)v;
                        break;
                }
                default: usage(stderr); return -EINVAL;
                }
        }
        if (optind < argc)
                return fprintf(stderr, "prewarmd: unexpected argument '%s'\n", argv[optind]), -EINVAL;
        return 0;
}

/* ------------------------------------------------------------------ startup */

/* Each connection and each instance holds descriptors; the default soft limit of 1024 is too low
 * for a daemon with hundreds of both. */
static void raise_fd_limit(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* One daemon per state dir: a second one would reap the first one's instances as its own. */
static int lock_state_dir(const char *state_dir, int *ret_fd)
{
        int r = mkdir_private(state_dir); /* nobody else's: docs/security.md */
        _cleanup_free_ char *path = strdup_printf("%s/prewarmd.lock", state_dir);
        if (r < 0 || !path)
                return r < 0 ? r : -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        /* A predecessor killed while it had just forked (a CRIU or zygote child that has not
         * exec'd yet) leaves the lock to that child for a moment: give it a few seconds. */
        const struct timespec pause = {0, 100 * 1000 * 1000};
        for (int attempt = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; attempt++) {
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                if (attempt == 30)
                        return -EBUSY;
                nanosleep(&pause, NULL);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int read_token(const char *path, char **ret)
{
        _cleanup_free_ char *text = NULL;
        int r = read_file(path, 4096, &text, NULL);
        if (r < 0)
                return r;
        text[strcspn(text, "\r\n")] = '\0';
        if (strlen(text) < 16)
                return -EINVAL;
        *ret = TAKE_PTR(text);
        return 0;
}

/* TCP's token when the operator gave none: made once, kept 0600 in the state dir (root's alone). */
static int tcp_token(daemon_ctx *d, char **ret)
{
        if (d->token)
                return (*ret = strdup(d->token)) ? 0 : -ENOMEM;
        _cleanup_free_ char *path = strdup_printf("%s/api.token", d->cfg.state_dir);
        if (!path)
                return -ENOMEM;
        int r = read_token(path, ret);
        if (r != -ENOENT) {
                if (r < 0)
                        dlog(PW_LOG_ERROR, "token file %s: %s", path, strerror(-r));
                else
                        dlog(PW_LOG_INFO, "TCP API: bearer token in %s", path);
                return r;
        }
        uint8_t bytes[32];
        if (getrandom(bytes, sizeof(bytes), 0) != sizeof(bytes))
                return dlog(PW_LOG_ERROR, "no randomness for a token: %m"), -EIO;
        char text[2 * sizeof(bytes) + 2];
        hex_encode(bytes, sizeof(bytes), text);
        strcat(text, "\n");
        if ((r = write_file_atomic(path, text, strlen(text), 0600)) < 0)
                return dlog(PW_LOG_ERROR, "writing %s: %s", path, strerror(-r)), r;
        dlog(PW_LOG_INFO, "TCP API: made a bearer token in %s (send 'Authorization: Bearer TOKEN')", path);
        return read_token(path, ret);
}

static int give_socket_group(const char *path, const char *group)
{
        struct group *g = getgrnam(group);
        if (!g)
                return dlog(PW_LOG_ERROR, "--socket-group %s: no such group", group), -ENOENT;
        if (chown(path, (uid_t)-1, g->gr_gid) < 0)
                return dlog(PW_LOG_ERROR, "chown %s to group %s: %m", path, group), negative_errno();
        dlog(PW_LOG_INFO, "API socket %s: group %s may use it", path, group);
        return 0;
}

typedef struct servers {
        http_server *unix_api, *tcp_api;
        char *socket_path;
        bool socket_bound; /* ours to remove at exit */
} servers;

static int start_api(daemon_ctx *d, servers *s)
{
        s->socket_path = d->cfg.socket_path ? strdup(d->cfg.socket_path)
                                            : strdup_printf("%s/prewarmd.sock", d->cfg.state_dir);
        int fd, r;
        if (!s->socket_path)
                return -ENOMEM;
        /* Before anything listens: whoever sees the daemon answer can read the token already. */
        if (d->cfg.listen && (r = tcp_token(d, &d->tcp_token)) < 0)
                return r;
        if ((r = http_listen_unix(s->socket_path, &fd)) < 0)
                return dlog(PW_LOG_ERROR, "cannot listen on %s: %s", s->socket_path,
                            r == -EEXIST ? "a file that is not a socket has that name" : strerror(-r)), r;
        s->socket_bound = true;
        if (d->cfg.socket_group && (r = give_socket_group(s->socket_path, d->cfg.socket_group)) < 0) {
                close(fd);
                return r;
        }
        http_server_config cfg = {.name = "api", .listen_fd = fd, .routes = api_routes,
                                  .n_routes = api_n_routes, .data = d, .token = d->token};
        if ((r = http_server_start(d, &cfg, &s->unix_api)) < 0)
                return dlog(PW_LOG_ERROR, "cannot serve %s", s->socket_path), r;
        dlog(PW_LOG_INFO, "API on unix:%s", s->socket_path);
        if (!d->cfg.listen)
                return 0;
        bool loopback; /* a token however: any local user can reach a loopback port */
        if ((r = http_listen_tcp(d->cfg.listen, &fd, &loopback)) < 0)
                return dlog(PW_LOG_ERROR, "cannot listen on %s: %s", d->cfg.listen, strerror(-r)), r;
        cfg.name = "api-tcp";
        cfg.listen_fd = fd;
        cfg.token = d->tcp_token;
        if ((r = http_server_start(d, &cfg, &s->tcp_api)) < 0)
                return dlog(PW_LOG_ERROR, "cannot serve %s", d->cfg.listen), r;
        dlog(PW_LOG_INFO, "API on tcp:%s (bearer token required)", d->cfg.listen);
        return 0;
}

/* prewarmd_build_info's labels: version, CRIU version, kernel release. */
static void make_build_info(daemon_ctx *d)
{
        criu_version_info v;
        pw_err err = {""};
        char criu[32] = "unknown";
        if (criu_get_version(d->engine, &v, &err) >= 0)
                snprintf(criu, sizeof(criu), "%d.%d.%d", v.major, v.minor, v.sublevel);
        struct utsname u;
        uname(&u);
        snprintf(d->build_info, sizeof(d->build_info), "version=\"%s\",criu_version=\"%s\",kernel=\"%s\"",
                 PW_VERSION, criu, u.release);
}

static int open_engine(daemon_ctx *d)
{
        const pw_options opts = {.state_dir = d->cfg.state_dir, .log = library_log,
                                 .log_level = d->cfg.verbose ? PW_LOG_DEBUG : PW_LOG_INFO};
        int r = pw_engine_new(&opts, &d->engine);
        if (r < 0)
                return dlog(PW_LOG_ERROR, "cannot open the engine on %s: %s", d->cfg.state_dir, strerror(-r)), r;
        r = pw_engine_reap_stale(d->engine);
        if (r > 0)
                dlog(PW_LOG_WARNING, "reaped %d object(s) a crashed predecessor left behind", r);
        else if (r < 0)
                dlog(PW_LOG_WARNING, "reaping what a predecessor left: %s", pw_engine_last_error(d->engine));
        const pw_pool_options po = {.zygotes_min = d->cfg.zygotes_min, .zygotes_max = d->cfg.zygotes_max,
                                    .memory_budget_mb = d->cfg.memory_budget_mb, .adaptive = true};
        if ((r = pw_pool_new(d->engine, &po, &d->pool)) < 0)
                return dlog(PW_LOG_ERROR, "cannot create the pool: %s", strerror(-r)), r;
        make_build_info(d);
        return 0;
}

/* Code only from where the operator said: --code-root directories, the blob cache (inline code)
 * and the Fission package root; http(s) to public addresses and --fetch-allow ranges. */
static int restrict_code(daemon_ctx *d)
{
        _cleanup_strv_free_ char **roots = NULL;
        struct stat st;
        if (strv_push(&roots, d->blob_dir) < 0)
                return -ENOMEM;
        if (stat(d->cfg.fission_root, &st) == 0 && S_ISDIR(st.st_mode) && strv_push(&roots, d->cfg.fission_root) < 0)
                return -ENOMEM;
        _cleanup_free_ char *state = realpath(d->cfg.state_dir, NULL);
        for (char **r = d->cfg.code_roots; r && *r; r++) {
                /* A root above the state dir would hand out the token, the blobs, functions.json. */
                _cleanup_free_ char *root = realpath(*r, NULL);
                if (root && state && path_within(state, root))
                        return dlog(PW_LOG_ERROR, "--code-root %s holds the state dir %s", *r, state), -EINVAL;
                if (strv_push(&roots, *r) < 0)
                        return -ENOMEM;
        }
        const pw_code_policy policy = {sizeof(policy), (const char *const *)roots, (const char *const *)d->cfg.fetch_allow,
                                       (uint64_t)d->cfg.max_code_mb << 20};
        pw_err err = {""};
        int r = code_policy_new(&policy, &d->code_policy, &err);
        if (r >= 0 && (r = pw_engine_restrict_code(d->engine, &policy)) < 0)
                err_set(&err, r, "%s", pw_engine_last_error(d->engine));
        if (r < 0)
                return dlog(PW_LOG_ERROR, "%s", err.msg), r;
        for (char **p = roots; *p; p++)
                dlog(PW_LOG_INFO, "code: file:// beneath %s", *p);
        for (char **p = d->cfg.fetch_allow; p && *p; p++)
                dlog(PW_LOG_INFO, "code: http(s) also from %s", *p);
        return 0;
}

static int open_state(daemon_ctx *d)
{
        pw_err err = {""};
        int r = registry_open(d->cfg.state_dir, &d->functions, &err);
        if (r < 0)
                return dlog(PW_LOG_ERROR, "function registry: %s", err.msg[0] ? err.msg : strerror(-r)), r;
        d->blob_dir = strdup_printf("%s/blobs", d->cfg.state_dir);
        if (!d->blob_dir || (r = mkdir_private(d->blob_dir)) < 0)
                return dlog(PW_LOG_ERROR, "cannot create the blob cache %s", d->blob_dir), -ENOMEM;
        if ((r = restrict_code(d)) < 0)
                return r;
        if ((r = blob_cache_gc(d)) > 0)
                dlog(PW_LOG_INFO, "blob cache: removed %d blob(s) no function uses", r);
        d->metrics = metrics_new();
        d->activations = activations_new();
        d->building = json_object();
        if (!d->metrics || !d->activations || !d->building)
                return -ENOMEM;
        d->cfg.registry.size = sizeof(d->cfg.registry);
        d->cfg.registry.password = getenv("PREWARM_REGISTRY_PASSWORD");
        if ((r = template_sources_open(d, d->cfg.template_from, &d->cfg.registry, &d->sources, &err)) < 0)
                return dlog(PW_LOG_ERROR, "template sources: %s", err.msg[0] ? err.msg : strerror(-r)), r;
        return api_register_all(d);
}

/* ------------------------------------------------------------------ shutdown */

/* Waits until nothing is in flight or timeout_ms passed; true when drained. */
static bool drain(daemon_ctx *d, unsigned timeout_ms)
{
        const struct timespec pause = {0, 10 * 1000 * 1000};
        uint64_t end = now_us() + (uint64_t)timeout_ms * 1000;
        while (atomic_load(&d->in_flight) > 0) {
                if (now_us() >= end)
                        return false;
                nanosleep(&pause, NULL);
        }
        return true;
}

static void shutdown_daemon(daemon_ctx *d, servers *s)
{
        atomic_store(&d->stopping, true);
        http_server_quiesce(s->unix_api);
        http_server_quiesce(s->tcp_api);
        slots_quiesce(d->slots);
        int n = atomic_load(&d->in_flight);
        if (n > 0)
                dlog(PW_LOG_INFO, "waiting up to %u s for %d request(s) in flight", d->cfg.grace_s, n);
        if (!drain(d, d->cfg.grace_s * 1000)) {
                dlog(PW_LOG_WARNING, "grace period over: failing %d request(s) in flight", atomic_load(&d->in_flight));
                /* Their instances die, so their invokes return; the pool must not be freed under a
                 * request still inside it, so this waits for as long as that takes. */
                for (;;) {
                        daemon_fail_busy(d);
                        if (drain(d, 5000))
                                break;
                        dlog(PW_LOG_WARNING, "%d request(s) still in flight", atomic_load(&d->in_flight));
                }
        }
        s->unix_api = http_server_free(s->unix_api);
        s->tcp_api = http_server_free(s->tcp_api);
        d->slots = slots_free(d->slots);
        d->pool = pw_pool_free(d->pool);
        if (s->socket_bound)
                unlink(s->socket_path);
}

static void release(daemon_ctx *d, servers *s)
{
        shutdown_daemon(d, s);
        d->engine = pw_engine_free(d->engine);
        d->functions = registry_free(d->functions);
        d->metrics = metrics_free(d->metrics);
        d->activations = activations_free(d->activations);
        d->sources = template_sources_free(d->sources);
        strv_free(d->cfg.template_from);
        json_decref(d->building);
        free(d->blob_dir);
        code_policy_free(d->code_policy);
        strv_free(d->cfg.code_roots);
        strv_free(d->cfg.fetch_allow);
        free(d->token);
        free(d->tcp_token);
        free(s->socket_path);
        pthread_mutex_destroy(&d->build_lock);
        pthread_mutex_destroy(&d->admission_lock);
        pthread_cond_destroy(&d->admission_free);
}

static int wait_for_signal(const sigset_t *set)
{
        for (;;) {
                int sig = sigwaitinfo(set, NULL);
                if (sig > 0)
                        return sig;
        }
}

static int serve(daemon_ctx *d, servers *s, const sigset_t *set)
{
        int r;
        if ((r = open_engine(d)) < 0 || (r = open_state(d)) < 0 || (r = start_api(d, s)) < 0 ||
            (r = slots_start(d, &d->slots)) < 0)
                return r;
        /* A slot template that comes from a registry is pulled, and its zygotes made, by the prefetch. */
        templates_prefetch(d);
        _cleanup_free_ char *slot_source = d->cfg.ow_port_first ? template_source_get(d, d->cfg.slot_template) : NULL;
        if (d->cfg.ow_port_first && !slot_source && !template_built(d, d->cfg.slot_template))
                dlog(PW_LOG_WARNING, "slots: template %s is not built yet (POST /v1/templates/%s/build)",
                     d->cfg.slot_template, d->cfg.slot_template);
        else if (d->cfg.ow_port_first && !slot_source && pw_pool_prewarm(d->pool, d->cfg.slot_template) < 0)
                dlog(PW_LOG_WARNING, "slots: cannot keep zygotes of %s ready: %s", d->cfg.slot_template,
                     pw_pool_last_error(d->pool));
        dlog(PW_LOG_INFO, "ready (state %s)", d->cfg.state_dir);
        int sig = wait_for_signal(set);
        dlog(PW_LOG_INFO, "%s: stopping", strsignal(sig));
        return 0;
}

int main(int argc, char **argv)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        daemon_ctx d = {.cfg = {.grace_s = 30, .slot_template = "python3", .fission_root = "/userfunc",
                                .max_invocations = 32 * (unsigned)(cpus > 0 ? cpus : 1), .blob_cache_mb = 1024,
                                .max_connections = 4096, .max_connections_per_address = 256,
                                .request_deadline_s = 30,
                                /* Zygotes are clones of the template's parent: a ready one costs
                                 * a few MiB, and a burst of first invocations takes one each. */
                                .zygotes_min = 32, .zygotes_max = 64, .max_code_mb = 48}};
        if (parse_options(argc, argv, &d.cfg) < 0)
                return 2;
        if (!d.cfg.state_dir)
                d.cfg.state_dir = getenv("PREWARM_STATE_DIR") && *getenv("PREWARM_STATE_DIR")
                                          ? getenv("PREWARM_STATE_DIR") : PW_DEFAULT_STATE_DIR;
        dlog_set_verbose(d.cfg.verbose);
        /* Before any thread exists, so that every thread inherits the mask and only sigwaitinfo
         * below takes these signals. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();
        pthread_mutex_init(&d.build_lock, NULL);
        pthread_mutex_init(&d.admission_lock, NULL);
        pthread_cond_init(&d.admission_free, NULL);

        _cleanup_close_ int lock_fd = -1;
        int r = lock_state_dir(d.cfg.state_dir, &lock_fd);
        if (r < 0) {
                dlog(PW_LOG_ERROR, "%s: %s", d.cfg.state_dir,
                     r == -EBUSY ? "another prewarmd serves this state dir" : strerror(-r));
                return 1;
        }
        if (d.cfg.token_file && (r = read_token(d.cfg.token_file, &d.token)) < 0) {
                dlog(PW_LOG_ERROR, "token file %s: %s", d.cfg.token_file,
                     r == -EINVAL ? "the token must be at least 16 characters" : strerror(-r));
                return 1;
        }
        servers s = {0};
        r = serve(&d, &s, &set);
        release(&d, &s);
        dlog(PW_LOG_INFO, "stopped");
        return r < 0 ? 1 : 0;
}

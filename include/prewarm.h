/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm — serverless cold starts removed by checkpoint/restore.
 *
 * A *template* is a checkpoint (CRIU images) of a generic language runtime, the zygote, that has
 * booted and imported its common libraries inside a sandbox. An *instance* is one restored copy of
 * a template, in namespaces and a cgroup of its own. An instance is *specialized* once with a
 * function's code and then *invoked* any number of times.
 *
 * Conventions:
 *  - every function that can fail returns 0 (or a count) on success and a negative errno on failure;
 *    a human-readable reason is kept per handle (pw_engine_last_error, pw_instance_last_error);
 *  - ret_ out-parameters come last and are written only on success;
 *  - structures the caller fills or receives start with `size`: set it to sizeof the structure as
 *    your header has it (0 means this header's); the library reads and writes only that much, so
 *    a structure can grow without breaking programs built against an older header;
 *  - strings passed in are copied when kept; strings returned through ret_ pointers belong to the
 *    caller and are released with free();
 *  - the library never prints: it reports through the log callback of pw_options;
 *  - one engine and its instances may be used from several threads as long as no instance is used
 *    by two threads at once. The engine's own background threads (restores and clones made ahead,
 *    image staging, network namespaces, a pool's refills) log too: the log callback must be safe
 *    to call from any thread.
 */
#ifndef PREWARM_H
#define PREWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PW_PUBLIC __attribute__((visibility("default")))
#else
#define PW_PUBLIC
#endif

/* The version of this header; pw_version() is the library's, which may be newer (same major). */
#define PW_VERSION_MAJOR 0
#define PW_VERSION_MINOR 2
#define PW_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library loaded. */
PW_PUBLIC const char *pw_version(void);

typedef struct pw_engine pw_engine;
typedef struct pw_instance pw_instance;

enum pw_log_level {
        PW_LOG_ERROR = 3,
        PW_LOG_WARNING = 4,
        PW_LOG_INFO = 6,
        PW_LOG_DEBUG = 7,
};

/* Receives each log line of the library (no trailing newline). Called from the thread that made
 * the call which logs, or from one of the engine's background threads (see Conventions): it must
 * be thread-safe, and must not call back into the library. */
typedef void (*pw_log_fn)(enum pw_log_level level, const char *message, void *userdata);

/* Engine options. Zero-initialize and set what you need; NULL / 0 selects the default. */
typedef struct pw_options {
        size_t size; /* sizeof(pw_options), or 0: this header's */
        /* Template store and run directory. Default: $PREWARM_STATE_DIR, else /var/lib/prewarm. */
        const char *state_dir;
        /* Where template definitions live (one directory per template).
         * Default: $PREWARM_TEMPLATES_DIR, else the source tree's or the installed criu-templates. */
        const char *templates_dir;
        /* CRIU binary to run. Default: $PREWARM_CRIU, else the project's private CRIU root when it
         * exists, else criu from the system. */
        const char *criu_path;
        pw_log_fn log;
        void *log_userdata;
        /* Most verbose level passed to log. Default (0) PW_LOG_INFO. */
        enum pw_log_level log_level;
        /* PW_ENGINE_* bits. Default 0: the full fast path. */
        unsigned flags;
        /* Host uids reserved for sandboxes: function code runs as uid_base + k (and the gid of the
         * same number), a different k for every live instance of every engine on the machine, with
         * no capability. Default: $PREWARM_UID_RANGE ("BASE:COUNT"), else 1879048192 (0x70000000,
         * just above systemd's container range) and 65536. No other user of the machine may own
         * uids or gids in the range. See docs/security.md. */
        unsigned uid_base;
        unsigned uid_count;
} pw_options;

enum pw_engine_flags {
        /* Read template images with plain reads instead of io_uring (also $PREWARM_NO_IO_URING=1). */
        PW_ENGINE_NO_IO_URING = 1u << 0,
        /* Prepare nothing ahead of requests: no restore prepared after a restore, no image staging.
         * For callers that restore once and exit, like `prewarm run`. */
        PW_ENGINE_NOTHING_AHEAD = 1u << 1,
        /* Restore every instance with CRIU instead of cloning it from its template's parent
         * (pw_instance_restore). For comparison, and for callers that must not keep a parent. */
        PW_ENGINE_NO_CLONES = 1u << 2,
};

/* Opens an engine. On success *ret owns a new engine to be released with pw_engine_free().
 * Stdio slots 0-2 that the caller left closed are filled with /dev/null, so that no descriptor
 * the engine hands to a sandbox can land there.
 * The state dir and its store and run directories are made (or made again) root-only, 0700.
 * Errors: -ENOMEM, -EACCES/-EPERM (state dir not writable, or owned by another user), -ENOENT
 * (no CRIU found), -EINVAL (uid range, or a size smaller than pw_options of 0.2). */
PW_PUBLIC int pw_engine_new(const pw_options *opts, pw_engine **ret);

/* Releases the engine. Accepts NULL; always returns NULL. Instances must be destroyed first. */
PW_PUBLIC pw_engine *pw_engine_free(pw_engine *e);

/* Releases what the engine keeps ready ahead of requests: the restore it prepared per template (a
 * started CRIU, a cgroup, mounts under the state dir), its network namespaces made ahead, and
 * its staged (memory-pinned) template images. They are made again as restores need them. For
 * memory pressure, and for callers that must see nothing of the engine between requests.
 * Errors: -EINVAL (NULL). */
PW_PUBLIC int pw_engine_trim(pw_engine *e);

/* Where an engine may take function code from. By default an engine reads any local path and
 * fetches http(s) code from any address: right for a root caller loading its own code (the CLI),
 * wrong for one that loads URIs other people give it (prewarmd). */
typedef struct pw_code_policy {
        size_t size; /* sizeof(pw_code_policy), or 0: this header's */
        /* Directories beneath which file:// URIs and plain paths are read, NULL-terminated;
         * NULL or empty: no local file at all. Paths are resolved beneath their root with
         * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): "..", symlinks,
         * magic links and mount points cannot lead out. */
        const char *const *file_roots;
        /* CIDRs ("10.0.0.0/8", "fd00::/8") that http(s) fetches may reach besides public
         * addresses, NULL-terminated. Without them loopback, link-local, private, shared,
         * unique-local, multicast and reserved destinations are refused, checked on every address
         * a fetch connects to, redirects included. Proxies from the environment are not used. */
        const char *const *fetch_allow;
        /* The largest code blob taken, in bytes; 0: 48 MiB (OpenWhisk's exec-size-limit), at most
         * 60 MiB (what fits one frame of the agent protocol with room to spare). */
        uint64_t max_code_bytes;
} pw_code_policy;

/* Restricts where e takes code from, for every later specialize; call before using e. Copies p.
 * Errors: -EINVAL (a root that is not an absolute path of a directory, a malformed CIDR, a
 * max_code_bytes over 60 MiB). */
PW_PUBLIC int pw_engine_restrict_code(pw_engine *e, const pw_code_policy *p);

/* The reason for the last failure of a call on e made by this thread, "" if none. Like errno,
 * each thread sees its own. Valid until this thread's next call on e. */
PW_PUBLIC const char *pw_engine_last_error(const pw_engine *e);

/* Builds template NAME from its definition: starts the zygote in a sandbox, waits for the agent to
 * report ready and checkpoints it with CRIU into the template store, replacing an older build.
 * Errors: -ENOENT (no definition), -EINVAL (bad definition), -ETIMEDOUT (agent never ready),
 * -ECHILD (zygote exited), -EIO (CRIU failed). */
PW_PUBLIC int pw_template_build(pw_engine *e, const char *name);

/* Removes a built template from the store. Errors: -ENOENT (not built). */
PW_PUBLIC int pw_template_remove(pw_engine *e, const char *name);

typedef struct pw_template_info {
        size_t size;               /* sizeof what the library fills: fields past it are not there */
        const char *name;
        const char *runtime;       /* the runtime's own version string, e.g. "Python 3.11.2" */
        const char *criu_version;
        const char *kernel;
        int64_t created;           /* seconds since the epoch */
        uint64_t image_bytes;      /* sum of the image files */
} pw_template_info;

/* Calls fn once per built template, in name order; fields are valid during the call only.
 * A non-zero return of fn stops the walk and is returned. Errors: -EINVAL (NULL), -EIO and the
 * errors of opendir(3) on the store. */
typedef int (*pw_template_fn)(const pw_template_info *info, void *userdata);
PW_PUBLIC int pw_template_foreach(pw_engine *e, pw_template_fn fn, void *userdata);

/* Drops template NAME's images from the page cache and from this engine's in-memory copy, so that
 * the next restore reads them from disk (cold-start measurements, memory reclaim).
 * Errors: -ENOENT (not built). */
PW_PUBLIC int pw_template_evict(pw_engine *e, const char *name);

/* ---------------------------------------------------------------- templates across nodes */

/* How to reach an OCI registry (docs/fleet.md). Zero-initialize and set what you need. */
typedef struct pw_registry_options {
        size_t size; /* sizeof(pw_registry_options), or 0: this header's */
        /* Credentials, sent as HTTP basic authentication to the registry or to the token service
         * its Bearer challenge names. NULL: anonymous. */
        const char *username;
        const char *password;
        /* PEM bundle to check the registry's TLS certificate with. NULL: the system's. */
        const char *ca_file;
        /* Plain HTTP instead of HTTPS: a registry on the node itself, or a test's. */
        bool plain_http;
} pw_registry_options;

/* Pushes built template NAME to REF, HOST[:PORT]/REPOSITORY[:TAG] (tag "latest" if none), as an
 * OCI artifact: its manifest.json as the config, its images and rootfs as one zstd tar layer, and
 * annotations saying where it can run (CRIU version, kernel, cgroup version, architecture; CPU
 * features ride in the layer for CRIU's cpuinfo check). Blobs the registry has are not sent
 * again. *ret_digest (NULL to ignore; caller frees) is the manifest's "sha256:HEX", which a pull
 * can pin. Errors: -EINVAL (bad name, or a reference with no tag), -ENOENT (not built),
 * -EUCLEAN (from before the hardened sandbox), -EACCES (the registry refused the credentials),
 * -EHOSTUNREACH (registry unreachable or failing), -EPROTO (an answer that is not the protocol's),
 * -EIO (CRIU's cpuinfo dump). */
PW_PUBLIC int pw_template_push(pw_engine *e, const char *name, const char *ref, const pw_registry_options *opts,
                               char **ret_digest);

/* Pulls REF (HOST[:PORT]/REPOSITORY[:TAG] or ...@sha256:HEX) and installs it as template AS_NAME
 * (NULL: the name it was pushed with), replacing a template of that name as a rebuild does. Every
 * digest is checked; the layer is unpacked beside the store and renamed into place, so a
 * template that is half pulled never exists under its name. A pulled template restores, clones
 * and specializes like a built one. *ret_digest as for push. Errors: -EINVAL (bad reference or
 * name), -ENOENT (no such tag, digest or repository), -EACCES, -EHOSTUNREACH, -EPROTO (not a
 * prewarm template), -EBADMSG (a blob or manifest that does not match its digest), -EFBIG (larger
 * than the bounds), -EXDEV (this node cannot restore it: its CRIU is older, its kernel, cgroup
 * version or architecture differs, or its CPU lacks features the template was checkpointed
 * with; the message says which). */
PW_PUBLIC int pw_template_pull(pw_engine *e, const char *ref, const char *as_name, const pw_registry_options *opts,
                               char **ret_digest);

/* Restores a new instance of template NAME into fresh namespaces and a cgroup of its own, after
 * checking the template's image digests. On success *ret owns the instance; release it with
 * pw_instance_destroy().
 * Unless the engine was opened with PW_ENGINE_NOTHING_AHEAD or PW_ENGINE_NO_CLONES, the instance is
 * cloned copy-on-write from the template's *parent*: one restore of the template per engine,
 * made on the first call (or by pw_pool_prewarm), that never runs function code and lives until
 * the template is rebuilt, pw_engine_trim, or pw_engine_free; a clone has the same sandbox as a
 * restored copy (docs/security.md) and ends with its parent. Where no parent can be kept, or a
 * clone fails, the instance is restored with CRIU. pw_instance_source says which. Errors: -EINVAL (invalid name), -ENOENT (not built), -EUCLEAN (template
 * corrupt or built on another kernel), -EIO (CRIU failed; the engine's last error has CRIU's
 * reason), -ETIMEDOUT (CRIU did not answer). */
PW_PUBLIC int pw_instance_restore(pw_engine *e, const char *template_name, pw_instance **ret);

typedef struct pw_function {
        size_t size; /* sizeof(pw_function), or 0: this header's */
        /* Code blob: file:///abs/path, /abs/path, http://... or https://...; a .py source file, or
         * a .zip, .tar, .tar.gz or .tgz archive with __main__.py (files and directories only, no
         * member outside it, bounded in size and count). For the native template, a .so of the
         * ABI of prewarm-handler.h, or such an archive with handler.so. Read on the host side
         * and handed to the sandbox. */
        const char *code_uri;
        /* Entry point called by invoke. Default "main" (native: the symbol pw_handler). */
        const char *main;
        /* "sha256:HEX" that the blob must match, or NULL. */
        const char *digest;
        /* NULL-terminated "KEY=VALUE" strings for the handler's environment, or NULL. */
        const char *const *env;
        /* How the runtime calls the function. NULL or "openwhisk": main(args) with the invoke's
         * argument, returning an object or array. "fission": Fission's Python environment — main
         * names "module.function" (of a package directory: code_uri may name a directory, sent
         * as one archive), the function takes no argument and reads the request from
         * flask.request; the invoke's argument describes the HTTP request, {"method", "path",
         * "query", "headers": [[name, value], ...], "body_b64"}, and its result the response
         * Flask made of what the function returned, {"status", "headers", "body_b64"}. */
        const char *convention;
} pw_function;

/* Loads the function's code into the instance. Once per instance.
 * Errors: -EINVAL (bad URI, digest pin or env entry), -ENOENT (blob missing), -EBADMSG (digest
 * mismatch), -EFBIG (blob over 48 MiB, or over pw_code_policy.max_code_bytes), -EHOSTUNREACH
 * (fetch failed), -ENOEXEC (syntax error or load failure; the message has the interpreter's), -EALREADY (already specialized), -ESRCH
 * (instance dead), and, leaving the instance dead: -ETIMEDOUT, -ENOMEM (memory limit hit),
 * -ECHILD (it died). */
PW_PUBLIC int pw_instance_specialize(pw_instance *i, const pw_function *fn);

/* Changes the instance's memory limit (its template's by default) to memory_mb, e.g. to a
 * function's own limit before specializing. Errors: -EINVAL (0), -ESRCH (dead), -EBUSY (the
 * instance already uses more than that). */
PW_PUBLIC int pw_instance_set_memory_limit(pw_instance *i, unsigned memory_mb);

/* Calls the function with args_json, a JSON object or array (NULL means {}). On success *ret_result
 * is a newly allocated JSON text, an object or an array, owned by the caller. timeout_ms <= 0
 * means no limit. Errors: -EINVAL (args neither an object nor an array), -EREMOTEIO (the handler
 * raised; message has its text), -EPROTO (result neither), -ETIMEDOUT (instance killed), -ENOMEM (memory limit
 * hit; instance killed), -ECHILD (instance died), -ESRCH (instance already dead),
 * -EBADFD (not specialized). After -ETIMEDOUT, -ENOMEM or -ECHILD the instance is dead. */
PW_PUBLIC int pw_instance_invoke(pw_instance *i, const char *args_json, int timeout_ms,
                                 char **ret_result);

/* Like pw_instance_invoke, and also returns what the handler printed (caller frees), or NULL.
 * Unlike other ret_ outputs, *ret_logs is always written (NULL when there is nothing): a handler
 * that raised has usually printed something worth reading (the agent appends the traceback). */
PW_PUBLIC int pw_instance_invoke_logs(pw_instance *i, const char *args_json, int timeout_ms,
                                      char **ret_result, char **ret_logs);

/* What the code printed in the instance's last specialize or invoke, each stream apart (for
 * platforms that keep them apart; the logs above are both, in order). *ret_stdout and *ret_stderr
 * point into the instance, valid until its next call; NULL for a stream with nothing. Either
 * ret_ may be NULL. Errors: -EINVAL (NULL i). */
PW_PUBLIC int pw_instance_output(const pw_instance *i, const char **ret_stdout, const char **ret_stderr);

/* Starts a new instance of template NAME without CRIU: boots the template's runtime and agent in a
 * fresh sandbox exactly as a template build does, and hands it out unspecialized. The slow path a
 * caller falls back to when a restore fails. Same ownership and errors as pw_instance_restore,
 * plus -ETIMEDOUT (agent never ready) and -ECHILD (runtime exited). */
PW_PUBLIC int pw_instance_cold_start(pw_engine *e, const char *template_name, pw_instance **ret);

/* Checkpoints a specialized instance into a new template NAME (a "second-level" template): later
 * copies restored from it start with the function already loaded (pw_instance_specialize on them
 * returns -EALREADY), with its memory and /tmp as they were. The instance keeps running. The copies
 * share the random state the instance had: the agent reseeds only a zygote's copies (docs/pools.md).
 * A template of NAME is replaced (a rebuild's way); NAME must not be the instance's own template nor
 * have a definition (those belong to pw_template_build). Errors: -EBADFD (not specialized), -ESRCH
 * (dead), -EINVAL (invalid name, or the instance's template), -EEXIST (a definition has that name),
 * -EIO (CRIU failed), -EOPNOTSUPP (a clone, see pw_instance_restore: CRIU dumps restored instances
 * only), -ECANCELED (a hook of the function's failed: its before_checkpoint hooks, in reverse order,
 * run before the dump and its after_restore hooks, in order, in the instance after it and in every
 * copy restored from it, where a failing one fails that restore with -ECANCELED). */
PW_PUBLIC int pw_instance_checkpoint(pw_instance *i, const char *template_name);

/* The template an instance was restored from, and its id (unique in the process). Owned by the
 * instance. */
PW_PUBLIC const char *pw_instance_template(const pw_instance *i);
PW_PUBLIC const char *pw_instance_id(const pw_instance *i);

/* Kills the instance's whole sandbox, reaps it and removes its cgroup. Accepts NULL; returns NULL. */
PW_PUBLIC pw_instance *pw_instance_destroy(pw_instance *i);

typedef struct pw_timings {
        size_t size;            /* set by the caller: sizeof(pw_timings), or 0 */
        uint64_t restore_us;    /* request to a restored, answering instance */
        uint64_t specialize_us; /* reading the blob, loading the code */
        uint64_t invoke_us;     /* the last invoke, round trip */
} pw_timings;

/* Stage times of the instance so far (0 for stages not run). Errors: -EINVAL (NULL). */
PW_PUBLIC int pw_instance_timings(const pw_instance *i, pw_timings *ret);

/* The host pid of the instance's agent, the process that runs the function, or -ESRCH once the
 * instance is dead: the child of its pid namespace's init for a clone, and for a restored
 * instance from its first specialize on (before, the agent is that init itself). Killing it
 * kills the instance. */
PW_PUBLIC pid_t pw_instance_pid(const pw_instance *i);

enum pw_instance_source {
        PW_SOURCE_WARM = 0,       /* a warm specialized instance was reused */
        PW_SOURCE_ZYGOTE = 1,     /* a ready zygote was taken and specialized */
        PW_SOURCE_RESTORE = 2,    /* restored on demand (pool miss) */
        PW_SOURCE_COLD_START = 3, /* restore failed; booted without CRIU */
        PW_SOURCE_SECOND_LEVEL = 4, /* restored from the function's second-level template */
        PW_SOURCE_CLONE = 5,      /* cloned on demand from its template's parent (pool miss) */
};

/* Where the instance came from: an enum pw_instance_source (PW_SOURCE_CLONE, PW_SOURCE_RESTORE or
 * PW_SOURCE_COLD_START), or -EINVAL for NULL. */
PW_PUBLIC int pw_instance_source(const pw_instance *i);
/* The reason for the instance's last failure, "" if none. */
PW_PUBLIC const char *pw_instance_last_error(const pw_instance *i);

/*
 * Pools: ready instances handed out on demand.
 *
 * A pool keeps, per template, restored but unspecialized instances ("zygotes", one-to-all) and,
 * per registered function, specialized instances kept warm for a keep-alive period (one-to-one).
 * Background threads refill and retire them; sizes adapt to the observed arrivals within a memory
 * budget. All pw_pool_* calls are thread-safe.
 */
typedef struct pw_pool pw_pool;

/* What a pool does when a restore fails. */
enum pw_cold_start_fallback {
        PW_COLD_START_FALLBACK_ON = 0, /* boot the runtime without CRIU (pw_instance_cold_start); the default */
        PW_COLD_START_FALLBACK_OFF = -1, /* fail the invocation */
};

typedef struct pw_pool_options {
        size_t size; /* sizeof(pw_pool_options), or 0: this header's */
        /* Zygotes kept ready per template that has been used (or named in pw_pool_prewarm). The
         * adaptive policy stays within [zygotes_min, zygotes_max]. Default 1..4. */
        unsigned zygotes_min, zygotes_max;
        /* Memory of all instances the pool holds (by their templates' limits). 0: no limit. */
        uint64_t memory_budget_mb;
        /* Size pools from observed arrivals instead of the fixed minimum: keep-alive and pre-warm
         * windows per function from its idle-time histogram, zygotes per template from its recent
         * demand bursts (docs/pools.md). */
        bool adaptive;
        /* Whether restore failures fall back to pw_instance_cold_start (counted). */
        enum pw_cold_start_fallback cold_start_fallback;
} pw_pool_options;

/* Creates a pool over engine e; e must outlive it. Starts the pool's two threads (refill, reap).
 * The memory budget bounds what the pool keeps ready (zygotes, warm instances): to make room it
 * evicts zygotes, then the least recently used warm instances. An invocation that finds no room
 * still runs (admission is the caller's business) and counts in memory_mb while it does.
 * Errors: -EINVAL (NULL, or options of an unknown size), -ENOMEM, -EAGAIN (a thread could not
 * be started). */
PW_PUBLIC int pw_pool_new(pw_engine *e, const pw_pool_options *opts, pw_pool **ret);
/* Stops the pool's threads and destroys every instance it holds. Accepts NULL; returns NULL.
 * No other call on p may run or follow. */
PW_PUBLIC pw_pool *pw_pool_free(pw_pool *p);

/* The reason for the last failure of a pw_pool_* call on p made by this thread, "" if none
 * (like pw_engine_last_error; for a failed invocation it has the instance's reason). */
PW_PUBLIC const char *pw_pool_last_error(const pw_pool *p);

/* Starts keeping zygotes of template ready now, before its first use. Errors: -EINVAL (NULL or an
 * invalid name), -ENOMEM. */
PW_PUBLIC int pw_pool_prewarm(pw_pool *p, const char *template_name);

/* When a pool makes a function's second-level template (pw_instance_checkpoint) and restores
 * from it. */
enum pw_second_level {
        /* Never, the default: it only pays when the function's own loading outweighs a restore. */
        PW_SECOND_LEVEL_NEVER = 0,
        /* Made once the function's specialize is measured to take longer than a restore, and
         * restored from on a miss while that measures faster than specializing a zygote. */
        PW_SECOND_LEVEL_AUTO = 1,
        /* Made after the first invocation and always restored from. */
        PW_SECOND_LEVEL_ALWAYS = 2,
};

typedef struct pw_pool_function {
        size_t size; /* sizeof(pw_pool_function), or 0: this header's */
        const char *template_name;
        pw_function fn;
        int timeout_ms;          /* per invoke; <= 0: none */
        unsigned keepalive_s;    /* warm instances live this long after their last use; 0: default 600.
                                  * With adaptive sizing, the fixed window the histogram policy
                                  * falls back to (docs/pools.md) */
        /* Invocations one instance takes at once; 0: 1. The agent serves one request at a time,
         * so above 1 the extra ones queue on a busy instance, served in turn, instead of starting
         * another: fewer instances for more latency. */
        unsigned max_concurrency;
        /* Second-level template of the function, made by the pool in the background from one of
         * its warm instances (docs/pools.md). */
        enum pw_second_level second_level;
        /* Memory limit of the function's instances (pw_instance_set_memory_limit); 0: the
         * template's. */
        unsigned memory_mb;
} pw_pool_function;

/* Registers or replaces function KEY. Warm instances of an older version are retired.
 * The structure and its strings are copied. Errors: -EINVAL. */
PW_PUBLIC int pw_pool_set_function(pw_pool *p, const char *key, const pw_pool_function *f);
/* Removes function KEY and destroys its warm instances. Errors: -ENOENT. */
PW_PUBLIC int pw_pool_remove_function(pw_pool *p, const char *key);

typedef struct pw_invoke_info {
        size_t size;          /* set by the caller: sizeof(pw_invoke_info), or 0 */
        enum pw_instance_source source;
        uint64_t restore_us, specialize_us, invoke_us, total_us;
        char instance_id[96];
} pw_invoke_info;

/* Invokes function KEY with args_json: on a warm instance if one is free, else queued behind a
 * busy one (max_concurrency), else on a copy of its second-level template (second_level), else on
 * a zygote it specializes, else on one restored (or cold-started) now; ret_info says which. The
 * result (caller frees) is a JSON object; *ret_logs (caller frees, may be NULL) what the handler
 * printed. ret_result, ret_logs and ret_info may be NULL. Errors: those of pw_instance_restore,
 * pw_instance_invoke and pw_instance_specialize, -ENOENT (unknown function); the reason is in
 * pw_pool_last_error. A dead instance is replaced, never reused. */
PW_PUBLIC int pw_pool_invoke(pw_pool *p, const char *key, const char *args_json, char **ret_result,
                             char **ret_logs, pw_invoke_info *ret_info);

/* Takes a zygote of template (ready, or restored/cold-started now) out of the pool: the caller
 * owns *ret and destroys it. For callers that manage one instance themselves, like an OpenWhisk
 * action slot. ret_source may be NULL. Errors: those of pw_instance_restore and
 * pw_instance_cold_start; -EINVAL (NULL or an invalid name). */
PW_PUBLIC int pw_pool_take_zygote(pw_pool *p, const char *template_name, pw_instance **ret,
                                  enum pw_instance_source *ret_source);

typedef struct pw_pool_instance_info {
        size_t size; /* sizeof what the library fills: fields past it are not there */
        const char *id, *template_name, *function; /* function NULL for a zygote */
        const char *state;                          /* "zygote", "idle", "busy" */
        uint64_t age_ms, idle_ms;
        pid_t pid;
} pw_pool_instance_info;

/* Calls fn for each instance the pool holds; fields valid during the call only. A non-zero return
 * of fn stops the walk and is returned. Errors: -EINVAL (NULL), -ENOMEM. */
PW_PUBLIC int pw_pool_foreach_instance(pw_pool *p,
                                       int (*fn)(const pw_pool_instance_info *info, void *userdata),
                                       void *userdata);
/* Destroys the pool's instance ID (not one busy in an invoke: -EBUSY). Errors: -ENOENT. */
PW_PUBLIC int pw_pool_destroy_instance(pw_pool *p, const char *id);

typedef struct pw_pool_stats {
        size_t size; /* set by the caller: sizeof(pw_pool_stats), or 0 */
        uint64_t zygote_hits, zygote_misses, warm_hits, cold_start_fallbacks, instances_replaced;
        unsigned zygotes_ready, warm_instances, busy_instances;
        uint64_t memory_mb; /* by the templates' limits */
        uint64_t second_level_restores;  /* instances restored from a function's second-level template */
        unsigned second_level_templates; /* functions that have one in use */
        uint64_t prewarms; /* instances loaded ahead of an expected arrival (adaptive keep-alive) */
} pw_pool_stats;

/* Counters of the pool so far, over all templates and functions. Errors: -EINVAL (NULL). */
PW_PUBLIC int pw_pool_stats_get(pw_pool *p, pw_pool_stats *ret);

/*
 * Recovery: what an engine that died without cleaning up left behind.
 */

/* Removes what engines that are gone left: their instances' processes (killed through their
 * cgroups), their cgroups under prewarm/ (instances and template builds), the mounts and
 * directories of their restores under STATE/run, and unfinished builds in STATE/templates. An object belongs to the engine whose pid is in
 * its name; it is stale when that pid no longer runs or now names a younger process. Objects of
 * live engines are left alone, so this is safe while other engines run — as long as they all see
 * the same pids: an engine in another pid namespace sharing the cgroup tree would look gone. Meant
 * for a long-lived caller (a daemon) at startup. Returns how many objects it removed (each logged at warning
 * level), or a negative errno. */
PW_PUBLIC int pw_engine_reap_stale(pw_engine *e);

#ifdef __cplusplus
}
#endif
#endif

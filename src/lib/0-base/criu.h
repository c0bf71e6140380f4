/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CRIU through its RPC protocol (rpc.proto, protobuf-c), one `criu swrk` per request. */
#pragma once

#include "internal.h"

/* Finds CRIU: an explicit binary, else the private root's loader + binary, else the system's.
 * *ret is the argv prefix to exec. */
int criu_locate(const char *explicit_path, char ***ret, pw_err *err);

/* Where CRIU's kernel-feature cache is kept when /run cannot keep it; NULL if not needed. */
char *criu_kdat_dir(void);

typedef struct criu_version_info {
        int major, minor, sublevel;
} criu_version_info;

int criu_get_version(const pw_engine *e, criu_version_info *ret, pw_err *err);
/* Runs CRIU's own kernel checks. */
/* Records this machine's CPU features as DIR/cpuinfo.img (CRIU's cpuinfo dump), and checks that
 * the CPU features recorded there are all this machine's (cpuinfo check: the images taken where
 * they were recorded can be restored here). The log goes to DIR/cpuinfo.log. */
int criu_cpuinfo_dump(const pw_engine *e, const char *dir, pw_err *err);
int criu_cpuinfo_check(const pw_engine *e, const char *dir, pw_err *err);
int criu_run_check(const pw_engine *e, pw_err *err);

typedef struct criu_inherit {
        const char *key; /* e.g. "pipe:[1234]" */
        int fd;          /* in the engine; the same number is used in CRIU's process */
} criu_inherit;

typedef struct criu_dump_params {
        pid_t pid;
        uid_t uid;                   /* the uid and gid the dumped tree runs as */
        int images_fd, work_fd;
        const char *const *external; /* "mnt[/usr]:usr" ... */
} criu_dump_params;

/* For a forked child about to exec CRIU: shows it the engine's kernel-feature cache as /run
 * (criu_kdat_dir) and, when dump_uid is not 0, makes its real uid and gid those of the tree it
 * dumps, its effective and saved ones staying 0. Reading another process's rlimits (prlimit64,
 * part of every dump) takes matching ids or CAP_SYS_RESOURCE, which root need not have (this
 * machine's does not); with effective uid 0 CRIU keeps its other capabilities. Only system calls;
 * exits 126 when the ids cannot be taken. */
void criu_child_setup(const pw_engine *e, uid_t dump_uid);

/* Makes sure CRIU's kernel-feature cache exists, by running CRIU once as plain root if needed: a
 * CRIU whose real uid is not 0 cannot probe every feature (libnftables refuses to work in such a
 * process), so a dump as another uid must find the cache. */
int criu_kdat_ensure(const pw_engine *e, pw_err *err);

int criu_dump(const pw_engine *e, const criu_dump_params *p, pw_err *err);

typedef struct criu_restore_params {
        int images_fd, work_fd;
        const char *root;             /* host path that becomes the restored root */
        const char *const *external;  /* "mnt[usr]:/usr" ... */
        const criu_inherit *inherit;
        size_t n_inherit;
        const char *const *cgroup_procs; /* cgroup.procs files CRIU joins before it restores */
} criu_restore_params;

#define CRIU_MAX_INHERIT 8

/* A restore as a child of the calling process, in two steps, so that CRIU's start (exec, loader,
 * joining the cgroups) can happen before the request: criu_restore_worker starts a CRIU that holds p's descriptors and waits;
 * criu_restore_on sends it the restore of p (the same p, or one with the same descriptors) and
 * always consumes the worker. criu_worker_free discards a worker that was never used. */
typedef struct criu_worker criu_worker;
int criu_restore_worker(const pw_engine *e, const criu_restore_params *p, criu_worker **ret, pw_err *err);
int criu_restore_on(criu_worker *w, const criu_restore_params *p, pid_t *ret_pid, pw_err *err);
criu_worker *criu_worker_free(criu_worker *w);

/* The same through the stock command line, `criu restore` exec'd for this one restore, as systems
 * without a CRIU service do it (the benchmark's baseline). */
int criu_restore_cli(const pw_engine *e, const criu_restore_params *p, pid_t *ret_pid, pw_err *err);

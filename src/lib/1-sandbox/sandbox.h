/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The sandbox a zygote runs in: its own pid, mount, net, uts and ipc namespaces; a read-only,
 * nosuid, nodev root made of a small template rootfs with the host's /usr bound the same way into
 * it; a private size-limited tmpfs on /tmp; a read-only /dev holding null, zero, full, random and
 * urandom; /proc of its own pid namespace with the kernel's knobs read-only and its memory, keys
 * and timers masked; loopback only. It runs as an unprivileged host uid (uids.h) with no
 * capability, no_new_privs and the seccomp filter of seccomp.c; docs/security.md.
 *
 * Restored instances get the same sandbox from CRIU, which restores the mounts, credentials and
 * filter it dumped: the mounts listed by sandbox_externals() are the ones CRIU must not dump but
 * bind again from the host on restore, and creds_image.h gives each copy its own uid.
 */
#pragma once

#include "cgroup.h"
#include "internal.h"

/* Where the agents find the clone helper (src/zygote/) in the sandbox. */
#define ROOTFS_ZYGOTE_HELPER "/prewarm/libprewarm-zygote.so"
/* The init of restored copies (src/zygote/init.c), beside the helper wherever it comes from. */
#define ROOTFS_INIT "/prewarm/prewarm-init"

/* Fills dir with the sandbox's root: mount points, symlinks to /usr, device nodes, a minimal /etc,
 * the agent at /prewarm/AGENT_NAME and, unless helper_path is NULL, the clone helper. */
int rootfs_prepare(const char *dir, const char *agent_path, const char *helper_path, pw_err *err);

/* The path inside the sandbox where rootfs_prepare put the agent. Caller frees. */
char *rootfs_agent_path(const char *agent_path);

/* CRIU "external" entries for the sandbox's host-backed mounts: dump form "mnt[/usr]:usr" when
 * tmp_source is NULL, restore form "mnt[usr]:/usr" + "mnt[tmp]:TMP_SOURCE" +
 * "mnt[dev]:DEV_SOURCE" otherwise. */
char **sandbox_externals(const char *tmp_source, const char *dev_source);

typedef struct zygote_params {
        const char *rootfs;
        unsigned tmp_mb;
        char *const *argv;
        char *const *envp;
        int ctl_in;   /* read end the agent gets as fd 3 */
        int ctl_out;  /* write end the agent gets as fd 4 */
        int stderr_w; /* the agent's stderr until it is ready */
        const cgroup *cg;
        uid_t uid;    /* the unprivileged host uid and gid it runs as; never 0 */
        gid_t gid;
} zygote_params;

/* Starts the zygote as our child, already inside its cgroup and namespaces. */
int zygote_spawn(const zygote_params *p, pid_t *ret_pid, pw_err *err);

/* Mounts a fresh tmpfs of size_mb at path (created), private to the host's mount namespace. */
int tmpfs_mount(const char *path, unsigned size_mb);

/* Binds from at to with the mount flags (MS_RDONLY, ...; 0: as they come), private to the host's
 * mount namespace; nothing is left mounted on failure. */
int bind_mount_private(const char *from, const char *to, unsigned long flags);

/* Mounts at path (created) a sandbox's /dev: a small read-only tmpfs with the five devices,
 * private to the host's mount namespace. */
int devfs_mount(const char *path);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The seccomp-bpf filter every sandbox runs under, modelled on the container runtimes' default
 * profiles: system calls that reach beyond the sandbox (mounts, file handles, namespaces, modules,
 * kexec, bpf, tracing, keyrings, clocks, ...) fail with EPERM instead of killing the caller, so
 * runtimes degrade gracefully; clone3 and io_uring fail with ENOSYS, which glibc and libuv take
 * as "use the older call". The list and its reasons: docs/security.md.
 */
#pragma once

#include <linux/filter.h>

/* The filter, built once; valid for the life of the process. Safe to use after clone(). */
const struct sock_fprog *sandbox_seccomp_filter(void);

/* The filter a template parent (clone.h) is restored with: the sandbox's, but clone3, clone into
 * new namespaces and mount allowed, which it needs to make its children's sandboxes; each child
 * installs sandbox_seccomp_filter() on top before it runs any function code. */
const struct sock_fprog *parent_seccomp_filter(void);

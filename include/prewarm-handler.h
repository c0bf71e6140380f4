/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm-handler.h — the C ABI of a function for the `native` template.
 *
 * A native function is a shared object (build it with -shared -fPIC) that exports one entry point,
 * pw_handler unless the function's `main` names another symbol of the same type. The template's
 * agent (src/agent-native/, docs/agent-protocol.md#native) loads it with dlopen(RTLD_NOW |
 * RTLD_LOCAL) inside the instance's sandbox when the instance is specialized, and calls it once
 * per invoke. The code blob is the .so itself, or a .zip, .tar, .tar.gz or .tgz holding it (the
 * archive's top-level handler.so, or else its only top-level .so; the archive is unpacked into a
 * private directory under /tmp, which becomes the working directory, so the object finds files
 * shipped beside it by relative path and libraries beside it through an rpath of $ORIGIN).
 *
 * Where it runs: in the agent's process, inside the sandbox (docs/security.md), as an unprivileged
 * uid of its own with no capability, a read-only root with the host's /usr, a private /tmp,
 * loopback only, and the instance's memory and pids limits. The libraries of the host's /usr can
 * be linked; a library the template preloads (its `preload` list) is already mapped.
 *
 * Calls: one at a time, from the agent's only thread. A handler may start threads or fork (within
 * the pids limit); a forked child must end with _exit() or exec, never return into the agent.
 * What it writes on stdout and stderr during a call (stdio and the descriptors 1 and 2 both) is
 * the reply's "logs"; between calls those descriptors lead to /dev/null. The environment holds
 * the function's env and, per call, the variables the caller passes in the reserved argument
 * __prewarm_env (getenv reads them). A crash (SIGSEGV, abort, exit) ends the instance: the engine
 * reports -ECHILD and never reuses it; running past the invoke's timeout or the memory limit ends
 * it the same way (-ETIMEDOUT, -ENOMEM).
 *
 * Static constructors run at load, once per instance: their output is the specialize reply's.
 */
#ifndef PREWARM_HANDLER_H
#define PREWARM_HANDLER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PW_HANDLER_EXPORT __attribute__((visibility("default")))
#else
#define PW_HANDLER_EXPORT
#endif

/* The default entry point's name. */
#define PW_HANDLER_SYMBOL "pw_handler"

/*
 * The entry point. args_json is the invoke's argument as compact UTF-8 JSON text of args_len bytes,
 * followed by a NUL the length does not count; it is the agent's and valid during the call only.
 * It is an object or an array (any JSON value when the caller passed one under __prewarm_value),
 * with the reserved key __prewarm_env removed.
 *
 * On entry *result_json is NULL and *result_len 0. The function sets *result_json to a buffer it
 * allocated with malloc() (the agent frees it with free()) and *result_len to its length in bytes;
 * a length left at 0 means strlen(*result_json).
 *  - Returning 0: the buffer is the result, UTF-8 JSON text of an object or an array. Anything
 *    else (no buffer, not JSON, a string or a number) is refused: pw_instance_invoke returns
 *    -EPROTO and the instance lives on.
 *  - Returning non-zero: the call failed; the buffer, if any, is the message, as text.
 *    pw_instance_invoke returns -EREMOTEIO with that message, and the instance lives on.
 */
typedef int pw_handler_fn(const char *args_json, size_t args_len, char **result_json, size_t *result_len);

PW_HANDLER_EXPORT pw_handler_fn pw_handler;

/*
 * Optional hooks around a checkpoint of an instance running the function (a second-level
 * template, pw_instance_checkpoint): the agent calls pw_before_checkpoint, when the object
 * exports it, before the dump (close connections, forget secrets), and pw_after_restore after it,
 * in the instance and first thing in every copy restored from the checkpoint (reconnect, reseed
 * what the function keeps random: every copy starts with the checkpoint's memory). Each returns 0,
 * or non-zero with a message it malloc'd in *message (the agent frees it), which fails that
 * checkpoint, or that copy's restore, with -ECANCELED naming the hook. Each has 10 s: past that
 * the agent fails the checkpoint or restore the same way and ends the instance (a hook uses
 * SIGALRM's handler and alarm(2) meanwhile, so it must not use them itself).
 */
typedef int pw_hook_fn(char **message);

PW_HANDLER_EXPORT pw_hook_fn pw_before_checkpoint;
PW_HANDLER_EXPORT pw_hook_fn pw_after_restore;

#ifdef __cplusplus
}
#endif
#endif

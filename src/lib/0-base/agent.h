/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The engine's side of the zygote agent protocol (docs/agent-protocol.md). */
#pragma once

#include "internal.h"

typedef struct agent_channel {
        int to_agent;   /* write end, non-blocking */
        int from_agent; /* read end, non-blocking */
} agent_channel;

/* Waits for {"op":"ready"}; *ret_runtime gets the runtime's version string, *ret_clone whether
 * the agent can be a template parent (either may be NULL). -ECONNRESET if the agent exits first,
 * -ETIMEDOUT past the deadline. */
int agent_wait_ready(const agent_channel *ch, uint64_t deadline_us, char **ret_runtime, bool *ret_clone,
                     pw_err *err);

typedef struct agent_code {
        const char *filename; /* "main.py" or "action.zip" */
        const char *main;
        char *const *env;     /* KEY=VALUE, may be NULL */
        const void *blob;
        size_t size;
        const char *convention; /* pw_function's; NULL: the agent's default */
} agent_code;

/* What the code printed on its stdout and stderr (NULL: nothing), each on its own. */
typedef struct agent_streams {
        char *out, *err;
} agent_streams;
void agent_streams_done(agent_streams *s);

/* Errors: -ENOEXEC (syntax, load or entry failure: err has the interpreter's message),
 * -EALREADY (specialized before), -ECONNRESET (agent gone), -ETIMEDOUT. *streams (may be NULL)
 * gets what the module printed while it loaded, and its traceback when it failed. */
int agent_specialize(const agent_channel *ch, const agent_code *code, uint64_t deadline_us, agent_streams *streams,
                     pw_err *err);

/* Runs the user code's hooks of phase "before_checkpoint" or "after_restore" (the agent's
 * `prewarm` module). Errors: -ECANCELED (a hook raised or the phase ran out of time: err says
 * which and why), those of agent_invoke. */
/* What one phase of hooks may take, as the engine waits for it: the agent stops them at 10 s. */
#define AGENT_HOOKS_TIMEOUT_MS 30000
int agent_run_hooks(const agent_channel *ch, const char *phase, uint64_t deadline_us, agent_streams *streams,
                    pw_err *err);

/* Makes the agent a template parent (clone.h): *ret_fd gets the number, in the agent's process,
 * of the engine's end of its socket. Errors as agent_invoke's. */
int agent_become_parent(const agent_channel *ch, uint64_t deadline_us, int *ret_fd, pw_err *err);

/* args_json must be a JSON object or array. *ret_result gets the result (an object or array) as
 * compact JSON, *ret_logs what the handler printed, both streams in order, *streams each stream on
 * its own (any may be NULL to ignore). Errors: -EINVAL (args neither object nor array), -EREMOTEIO
 * (handler raised), -EPROTO (result neither), -EBADFD (not specialized), -ECONNRESET, -ETIMEDOUT. */
int agent_invoke(const agent_channel *ch, const char *args_json, uint64_t deadline_us,
                 char **ret_result, char **ret_logs, agent_streams *streams, pw_err *err);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Specialize: a function's code blob fetched on the host (blob.c) and loaded by the instance's
 * agent, once per instance. */
#include "agent.h"
#include "blob.h"
#include "code_policy.h"
#include "instance.h"

#define SPECIALIZE_TIMEOUT_MS 60000

PW_PUBLIC int pw_instance_specialize(pw_instance *i, const pw_function *caller_fn)
{
        pw_function given;
        const pw_function *fn = &given;
        if (!i || !caller_fn || SIZED_IN(given, caller_fn) < 0)
                return -EINVAL;
        if (i->state == DEAD)
                return instance_failf(i, -ESRCH, "specialize", "instance is dead");
        if (i->state == SPECIALIZED)
                return instance_failf(i, -EALREADY, "specialize", "already specialized");
        pw_err err = {""};

        uint64_t t0 = now_us();
        blob b = {0};
        int r = blob_fetch(fn->code_uri, fn->digest, code_policy_max_bytes(i->engine->code_policy),
                           i->engine->code_policy, &b, &err);
        if (r < 0)
                return instance_fail(i, r, &err, "specialize");
        const agent_code code = {b.filename, fn->main && *fn->main ? fn->main : "main",
                                 (char *const *)fn->env, b.data, b.size, fn->convention};
        r = agent_specialize(&i->ch, &code, deadline_after(SPECIALIZE_TIMEOUT_MS), &i->streams, &err);
        blob_done(&b);
        instance_find_agent(i); /* it forked before it loaded the code, if it was pid 1 */
        if (channel_lost(r))
                r = instance_lost(i, r, SPECIALIZE_TIMEOUT_MS, &err);
        if (r < 0)
                return instance_fail(i, r, &err, "specialize");
        i->state = SPECIALIZED;
        i->timings.specialize_us = now_us() - t0;
        return 0;
}


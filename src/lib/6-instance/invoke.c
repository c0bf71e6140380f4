/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Invoke: one call of the specialized function through the agent, its result and what it printed;
 * an instance whose agent stops answering is dead (instance_lost says why). */
#include "agent.h"
#include "instance.h"

PW_PUBLIC int pw_instance_invoke_logs(pw_instance *i, const char *args_json, int timeout_ms,
                                      char **ret_result, char **ret_logs)
{
        if (ret_logs)
                *ret_logs = NULL;
        if (!i)
                return -EINVAL;
        if (i->state == DEAD)
                return instance_failf(i, -ESRCH, "invoke", "instance is dead");
        if (i->state != SPECIALIZED)
                return instance_failf(i, -EBADFD, "invoke", "not specialized");
        pw_err err = {""};

        uint64_t t0 = now_us();
        _cleanup_free_ char *result = NULL, *logs = NULL;
        agent_streams_done(&i->streams);
        int r = agent_invoke(&i->ch, args_json, deadline_after(timeout_ms), &result, &logs, &i->streams, &err);
        if (channel_lost(r))
                r = instance_lost(i, r, (unsigned)timeout_ms, &err);
        i->timings.invoke_us = now_us() - t0;
        if (ret_logs)
                *ret_logs = TAKE_PTR(logs);
        if (r < 0)
                return instance_fail(i, r, &err, "invoke");
        if (ret_result)
                *ret_result = TAKE_PTR(result);
        return 0;
}

PW_PUBLIC int pw_instance_invoke(pw_instance *i, const char *args_json, int timeout_ms, char **ret_result)
{
        return pw_instance_invoke_logs(i, args_json, timeout_ms, ret_result, NULL);
}


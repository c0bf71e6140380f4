/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The function's hooks around a checkpoint (prewarm-handler.h): pw_before_checkpoint before a
 * second-level dump, pw_after_restore after it and in every copy. A function without them, or an
 * instance without a function, has nothing to run: {"ok": true, "hooks": 0}.
 */
#include <stdio.h>

#include "agent.h"
#include "capture.h"
#include "util.h"

json_t *agent_run_hook(agent *a, const char *phase)
{
        bool before = !strcmp(phase, "before_checkpoint");
        pw_hook_fn *hook = before ? a->before_checkpoint : a->after_restore;
        if (!hook)
                return json_pack("{s:b, s:i}", "ok", 1, "hooks", 0);
        _cleanup_capture_ capture cap = CAPTURE_INIT;
        refusal why = {0};
        int r = capture_begin(&cap);
        if (r < 0) {
                refuse(&why, "hook", "%s: capturing the output: %s", phase, strerror(-r));
                return refusal_reply(&why);
        }
        _cleanup_free_ char *message = NULL;
        int status = hook(&message);
        capture_end(&cap);
        if (status != 0)
                refuse(&why, "hook", "%s hook %s: %s", phase, before ? "pw_before_checkpoint" : "pw_after_restore",
                       message ? message : "failed without a message");
        json_t *reply = status ? refusal_reply(&why) : json_pack("{s:b, s:i}", "ok", 1, "hooks", 1);
        if (reply && capture_add_fields(&cap, reply, false) < 0)
                reply = (json_decref(reply), NULL);
        return reply;
}

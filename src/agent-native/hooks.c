/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The function's hooks around a checkpoint (prewarm-handler.h): pw_before_checkpoint before a
 * second-level dump, pw_after_restore after it and in every copy. A function without them, or an
 * instance without a function, has nothing to run: {"ok": true, "hooks": 0}. A hook gets
 * HOOK_LIMIT_S, as the Python and Node agents give a phase's hooks.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "frame.h"

#include "agent.h"
#include "capture.h"
#include "util.h"

#define HOOK_LIMIT_S 10

/* The refusal of a hook past its time, framed before it started: what the alarm's handler sends. */
static uint8_t overdue_frame[512];
static size_t overdue_len;

/* C code cannot be stopped and then go on safely: past its time a hook ends the agent, after the
 * reply the engine waits for (write(2) and _exit(2) are async-signal-safe). */
static void hook_overdue(int sig)
{
        for (size_t done = 0; done < overdue_len;) {
                ssize_t n = write(REP_FD, overdue_frame + done, overdue_len - done);
                if (n <= 0)
                        break;
                done += (size_t)n;
        }
        _exit(124);
}

static bool frame_overdue(const char *phase, const char *name)
{
        char text[sizeof(overdue_frame) - 4];
        _cleanup_free_ char *error = strdup_printf("%s hook %s: it did not return within %d s; the instance ends", phase,
                                                   name, HOOK_LIMIT_S);
        json_auto_t *reply = error ? json_pack("{s:b, s:s, s:s}", "ok", 0, "kind", "hook", "error", error) : NULL;
        if (!reply)
                return false;
        _cleanup_free_ char *json = json_dumps(reply, JSON_COMPACT);
        size_t n = json ? strlen(json) : 0;
        if (!json || n > sizeof(text))
                return false;
        frame_put_length(overdue_frame, (uint32_t)n);
        memcpy(overdue_frame + 4, json, n);
        overdue_len = n + 4;
        return true;
}

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
        const char *name = before ? "pw_before_checkpoint" : "pw_after_restore";
        struct sigaction overdue = {.sa_handler = hook_overdue}, saved;
        bool limited = frame_overdue(phase, name) && sigaction(SIGALRM, &overdue, &saved) == 0;
        if (limited)
                alarm(HOOK_LIMIT_S);
        int status = hook(&message);
        if (limited) {
                alarm(0);
                sigaction(SIGALRM, &saved, NULL);
        }
        capture_end(&cap);
        if (status != 0)
                refuse(&why, "hook", "%s hook %s: %s", phase, name, message ? message : "failed without a message");
        json_t *reply = status ? refusal_reply(&why) : json_pack("{s:b, s:i}", "ok", 1, "hooks", 1);
        if (reply && capture_add_fields(&cap, reply, false) < 0)
                reply = (json_decref(reply), NULL);
        return reply;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request loop on the control channel: framing, dispatch by op, refusals, replies. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "frame.h"
#include "util.h"

int refuse(refusal *why, const char *kind, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why->message, sizeof(why->message), fmt, ap);
        va_end(ap);
        why->kind = kind;
        return -EINVAL;
}

json_t *refusal_reply(const refusal *why)
{
        /* Messages quote what the code or the engine sent: make sure they are text. */
        size_t len;
        _cleanup_free_ char *text = utf8_clean(why->message, strlen(why->message), &len);
        if (!text)
                return NULL;
        return json_pack("{s:b, s:s, s:s%}", "ok", 0, "kind", why->kind, "error", text, len);
}

int reply_send(json_t *reply)
{
        _cleanup_free_ char *text = json_dumps(reply, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        if (len > FRAME_MAX) {
                char message[128];
                snprintf(message, sizeof(message), "reply of %zu bytes exceeds the frame limit", len);
                json_auto_t *instead =
                        json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "kind", "result", "logs", "", "error", message);
                free(text);
                text = instead ? json_dumps(instead, JSON_COMPACT) : NULL;
                if (!text)
                        return -ENOMEM;
                len = strlen(text);
        }
        return frame_write(REP_FD, text, len, 0);
}

/* The reply to a request the agent cannot read: kind "protocol". */
static json_t *protocol_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *protocol_error(const char *fmt, ...)
{
        refusal why = {.kind = "protocol"};
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why.message, sizeof(why.message), fmt, ap);
        va_end(ap);
        return refusal_reply(&why);
}

/* Reads the next frame. A length over the limit is answered here, then the channel is given up
 * (-EPROTO): nothing after it could be told from the rest of that frame. */
static int next_frame(char **ret, size_t *ret_size)
{
        int r = frame_read(REQ_FD, 0, ret, ret_size);
        if (r == -EPROTO) {
                json_auto_t *reply = protocol_error("a frame exceeds the limit of %u bytes", FRAME_MAX);
                if (reply)
                        reply_send(reply);
        }
        return r;
}

/* {"op": "specialize"} and the code blob that always follows it, even when it is refused. */
static int run_specialize(agent *a, json_t *req, json_t **ret_reply)
{
        _cleanup_free_ char *blob = NULL;
        size_t size = 0;
        int r = next_frame(&blob, &size);
        if (r < 0)
                return r == -ECONNRESET ? -EPIPE : r; /* gone in the middle of a request */
        *ret_reply = agent_specialize(a, req, blob, size);
        return 0;
}

/* {"op": "parent"}: when it can be one, the parent replies itself and ends the loop. */
static int run_parent(agent *a, json_t **ret_reply)
{
        refusal why = {0};
        int r = agent_parent(a, &why);
        if (r == -EINVAL)
                *ret_reply = refusal_reply(&why);
        return r == -EINVAL ? 0 : r;
}

/* Runs one request: 0 with its reply in *ret_reply (NULL: out of memory), or how the loop ends. */
static int run_request(agent *a, json_t *req, json_t **ret_reply)
{
        const char *op = json_string_value(json_object_get(req, "op"));
        if (!op)
                *ret_reply = protocol_error("a request needs an op");
        else if (!strcmp(op, "specialize"))
                return run_specialize(a, req, ret_reply);
        else if (!strcmp(op, "invoke"))
                *ret_reply = agent_invoke(a, req);
        else if (!strcmp(op, "parent"))
                return run_parent(a, ret_reply);
        else if (!strcmp(op, "before_checkpoint") || !strcmp(op, "after_restore"))
                *ret_reply = agent_run_hook(a, op);
        else
                *ret_reply = protocol_error("unknown op '%.200s'", op);
        return 0;
}

/* Reads the next request into *ret_req, or the answer to one that is not a JSON object into
 * *ret_reply. Returns 0, SERVE_HANGUP at the end of the channel, or a negative errno. */
static int read_request(json_t **ret_req, json_t **ret_reply)
{
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r = next_frame(&text, &size);
        if (r == -ECONNRESET)
                return SERVE_HANGUP;
        if (r < 0)
                return r;
        json_error_t jerr;
        json_t *req = json_loadb(text, size, 0, &jerr);
        if (req && json_is_object(req))
                *ret_req = req;
        else
                *ret_reply = req ? protocol_error("a request must be a JSON object")
                                 : protocol_error("malformed JSON: %s", jerr.text);
        if (req && !json_is_object(req))
                json_decref(req);
        return *ret_req || *ret_reply ? 0 : -ENOMEM;
}

int serve(agent *a)
{
        for (;;) {
                json_auto_t *req = NULL, *reply = NULL;
                int r = read_request(&req, &reply);
                if (r == 0 && req)
                        r = run_request(a, req, &reply);
                if (r != 0)
                        return r;
                if (!reply)
                        return -ENOMEM;
                if ((r = reply_send(reply)) < 0)
                        return r;
        }
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * {"op": "invoke"}: the function called with the invoke's arguments through the ABI of
 * prewarm-handler.h, its output captured, its result checked and freed.
 */
#include <stdio.h>

#include "agent.h"
#include "capture.h"
#include "util.h"

/* Per-invocation environment from __prewarm_env: what the last one set and this one does not is
 * unset (OpenWhisk's __OW_* variables change with every activation). */
static int apply_call_env(agent *a, json_t *env, refusal *why)
{
        if (!env_is_valid(env))
                return refuse(why, "protocol", "__prewarm_env must be an object of strings");
        for (char **name = a->call_env; name && *name; name++)
                if (!json_object_get(env, *name))
                        unsetenv(*name);
        strv_free(a->call_env);
        a->call_env = NULL;
        const char *key;
        json_t *value;
        json_object_foreach(env, key, value) {
                if (setenv(key, json_string_value(value), 1) < 0 || strv_push(&a->call_env, key) < 0)
                        return refuse(why, "protocol", "setting %s in the environment: %m", key);
        }
        return 0;
}

/* The arguments the function gets, as JSON text: the invoke's, without __prewarm_env, unwrapped
 * from __prewarm_value. */
static int call_args(agent *a, json_t *req, char **ret_text, refusal *why)
{
        json_auto_t *none = NULL;
        json_t *args = json_object_get(req, "args");
        if (!args && !(args = none = json_object())) /* absent: {} */
                return -ENOMEM;
        if (!json_is_object(args) && !json_is_array(args))
                return refuse(why, "protocol", "args must be an object or an array");
        json_t *env = json_object_get(args, "__prewarm_env");
        int r = env ? apply_call_env(a, env, why) : 0;
        if (r < 0)
                return r;
        json_object_del(args, "__prewarm_env");
        json_t *value = json_object_get(args, "__prewarm_value");
        *ret_text = json_dumps(value ? value : args, JSON_COMPACT | JSON_ENCODE_ANY);
        return *ret_text ? 0 : -ENOMEM;
}

/* The reply to what the function returned. */
static json_t *result_reply(int status, const char *result, size_t len)
{
        refusal why = {0};
        if (status != 0 && result)
                refuse(&why, "exception", "%.*s", (int)(len < 4000 ? len : 4000), result);
        else if (status != 0)
                refuse(&why, "exception", "the handler returned %d without a message", status);
        else if (!result)
                refuse(&why, "result", "the handler returned no result");
        if (why.kind)
                return refusal_reply(&why);
        json_error_t jerr;
        json_t *value = json_loadb(result, len, 0, &jerr);
        if (!value) {
                refuse(&why, "result", "the handler's result is not a JSON object or array: %s", jerr.text);
                return refusal_reply(&why);
        }
        return json_pack("{s:b, s:o}", "ok", 1, "result", value);
}

json_t *agent_invoke(agent *a, json_t *req)
{
        refusal why = {0};
        if (!a->handler) {
                refuse(&why, "state", "invoke before a successful specialize");
                return refusal_reply(&why);
        }
        _cleanup_free_ char *args = NULL;
        int r = call_args(a, req, &args, &why);
        if (r < 0)
                return why.kind ? refusal_reply(&why) : NULL;
        _cleanup_capture_ capture cap = CAPTURE_INIT;
        if ((r = capture_begin(&cap)) < 0) {
                refuse(&why, "exception", "capturing the handler's output: %s", strerror(-r));
                return refusal_reply(&why);
        }
        _cleanup_free_ char *result = NULL;
        size_t len = 0;
        int status = a->handler(args, strlen(args), &result, &len);
        capture_end(&cap);
        if (result && len == 0)
                len = strlen(result);
        json_t *reply = result_reply(status, result, len);
        if (reply && capture_add_fields(&cap, reply, true) < 0)
                reply = (json_decref(reply), NULL);
        return reply;
}

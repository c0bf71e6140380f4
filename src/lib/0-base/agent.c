/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine's side of the agent protocol (docs/agent-protocol.md): waiting for ready, specialize,
 * invoke and the hooks, each a framed JSON request and its reply over the instance's pipes.
 */
#include <jansson.h>

#include "agent.h"
#include "frame.h"


static int send_json(const agent_channel *ch, json_t *msg, uint64_t deadline_us, pw_err *err)
{
        _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        int r = frame_write(ch->to_agent, text, strlen(text), deadline_us);
        if (r == -EPIPE)
                r = -ECONNRESET;
        return r < 0 ? err_set(err, r, "sending to the agent: %s", strerror(-r)) : 0;
}

static int recv_json(const agent_channel *ch, uint64_t deadline_us, json_t **ret, pw_err *err)
{
        _cleanup_free_ char *text = NULL;
        size_t n = 0;
        int r = frame_read(ch->from_agent, deadline_us, &text, &n);
        if (r == -ECONNRESET)
                return err_set(err, r, "the agent closed its channel");
        if (r == -ETIMEDOUT)
                return err_set(err, r, "no answer from the agent in time");
        if (r < 0)
                return err_set(err, r, "reading from the agent: %s", strerror(-r));
        json_error_t jerr;
        json_t *msg = json_loadb(text, n, 0, &jerr);
        if (!msg || !json_is_object(msg)) {
                if (msg)
                        json_decref(msg);
                return err_set(err, -EPROTO, "the agent sent something that is not a JSON object");
        }
        *ret = msg;
        return 0;
}

/* One request and its reply. */
static int exchange(const agent_channel *ch, json_t *req, uint64_t deadline_us, json_t **ret, pw_err *err)
{
        int r = send_json(ch, req, deadline_us, err);
        return r < 0 ? r : recv_json(ch, deadline_us, ret, err);
}

int agent_wait_ready(const agent_channel *ch, uint64_t deadline_us, char **ret_runtime, bool *ret_clone,
                     pw_err *err)
{
        json_auto_t *msg = NULL;
        int r = recv_json(ch, deadline_us, &msg, err);
        if (r < 0)
                return r;
        const char *op = json_string_value(json_object_get(msg, "op"));
        const char *runtime = json_string_value(json_object_get(msg, "runtime"));
        if (!op || strcmp(op, "ready") || !runtime)
                return err_set(err, -EPROTO, "the agent's first message is not 'ready'");
        if (ret_runtime && !(*ret_runtime = strdup(runtime)))
                return -ENOMEM;
        if (ret_clone)
                *ret_clone = json_is_true(json_object_get(msg, "clone"));
        return 0;
}

/* Turns {"ok": false, "kind": K, "error": MSG} into an errno and a message. */
static int reply_error(json_t *reply, bool specializing, pw_err *err)
{
        const char *kind = json_string_value(json_object_get(reply, "kind"));
        const char *msg = json_string_value(json_object_get(reply, "error"));
        if (!kind)
                kind = "protocol";
        if (!msg)
                msg = "(no message)";
        int r = !strcmp(kind, "syntax") || !strcmp(kind, "load") || !strcmp(kind, "entry") ? -ENOEXEC
                : !strcmp(kind, "exception")                                              ? -EREMOTEIO
                : !strcmp(kind, "result")                                                 ? -EPROTO
                : !strcmp(kind, "hook")                                                   ? -ECANCELED
                : !strcmp(kind, "state") ? (specializing ? -EALREADY : -EBADFD)
                                         : -EPROTO;
        return err_set(err, r, "%s", msg);
}

static int env_object(char *const *env, json_t **ret)
{
        json_t *obj = json_object();
        if (!obj)
                return -ENOMEM;
        for (size_t i = 0; env && env[i]; i++) {
                const char *eq = strchr(env[i], '=');
                if (!eq || eq == env[i]) {
                        json_decref(obj);
                        return -EINVAL;
                }
                _cleanup_free_ char *key = strndup(env[i], (size_t)(eq - env[i]));
                if (!key || json_object_set_new(obj, key, json_string(eq + 1)) < 0) {
                        json_decref(obj);
                        return -ENOMEM;
                }
        }
        *ret = obj;
        return 0;
}

void agent_streams_done(agent_streams *s)
{
        if (!s)
                return;
        free(s->out);
        free(s->err);
        s->out = s->err = NULL;
}

/* What the code printed, from a reply's "stdout" and "stderr". */
static int keep_streams(json_t *reply, agent_streams *s)
{
        if (!s)
                return 0;
        agent_streams_done(s);
        const char *out = json_string_value(json_object_get(reply, "stdout"));
        const char *err = json_string_value(json_object_get(reply, "stderr"));
        if ((out && !(s->out = strdup(out))) || (err && !(s->err = strdup(err))))
                return -ENOMEM;
        return 0;
}

int agent_specialize(const agent_channel *ch, const agent_code *code, uint64_t deadline_us, agent_streams *streams,
                     pw_err *err)
{
        json_t *env = NULL;
        int r = env_object(code->env, &env);
        if (r < 0)
                return err_set(err, r, "environment entries must be KEY=VALUE");
        json_auto_t *req = json_pack("{s:s, s:s, s:s, s:o}", "op", "specialize", "filename",
                                               code->filename, "main", code->main, "env", env);
        if (!req || (code->convention && json_object_set_new(req, "convention", json_string(code->convention)) < 0))
                return -ENOMEM;
        r = send_json(ch, req, deadline_us, err);
        if (r >= 0) {
                r = frame_write(ch->to_agent, code->blob, code->size, deadline_us);
                if (r < 0)
                        return err_set(err, r == -EPIPE ? -ECONNRESET : r, "sending the code: %s", strerror(-r));
        }
        if (r < 0)
                return r;
        json_auto_t *reply = NULL;
        r = recv_json(ch, deadline_us, &reply, err);
        if (r < 0 || (r = keep_streams(reply, streams)) < 0)
                return r;
        return json_is_true(json_object_get(reply, "ok")) ? 0 : reply_error(reply, true, err);
}

int agent_invoke(const agent_channel *ch, const char *args_json, uint64_t deadline_us,
                 char **ret_result, char **ret_logs, agent_streams *streams, pw_err *err)
{
        json_error_t jerr;
        json_t *args = json_loads(args_json ? args_json : "{}", 0, &jerr);
        if (!args || (!json_is_object(args) && !json_is_array(args))) {
                if (args)
                        json_decref(args);
                return err_set(err, -EINVAL, "arguments must be a JSON object or array%s%s", args ? "" : ": ",
                               args ? "" : jerr.text);
        }
        json_auto_t *req = json_pack("{s:s, s:o}", "op", "invoke", "args", args);
        if (!req)
                return -ENOMEM;
        json_auto_t *reply = NULL;
        int r = exchange(ch, req, deadline_us, &reply, err);
        if (r < 0 || (r = keep_streams(reply, streams)) < 0)
                return r;
        if (ret_logs) {
                const char *logs = json_string_value(json_object_get(reply, "logs"));
                *ret_logs = logs && *logs ? strdup(logs) : NULL;
        }
        if (!json_is_true(json_object_get(reply, "ok")))
                return reply_error(reply, false, err);
        json_t *result = json_object_get(reply, "result");
        if (!json_is_object(result) && !json_is_array(result))
                return err_set(err, -EPROTO, "the result is not a JSON object or array");
        if (ret_result && !(*ret_result = json_dumps(result, JSON_COMPACT)))
                return -ENOMEM;
        return 0;
}

/* {"op": op} and its reply; what the code printed into streams (may be NULL). */
static int op_request(const agent_channel *ch, const char *op, uint64_t deadline_us, json_t **ret,
                      agent_streams *streams, pw_err *err)
{
        json_auto_t *req = json_pack("{s:s}", "op", op);
        if (!req)
                return -ENOMEM;
        int r = exchange(ch, req, deadline_us, ret, err);
        return r < 0 ? r : keep_streams(*ret, streams);
}

int agent_become_parent(const agent_channel *ch, uint64_t deadline_us, int *ret_fd, pw_err *err)
{
        json_auto_t *reply = NULL;
        int r = op_request(ch, "parent", deadline_us, &reply, NULL, err);
        if (r < 0)
                return r;
        json_t *fd = json_object_get(reply, "fd");
        if (!json_is_true(json_object_get(reply, "ok")))
                return reply_error(reply, false, err);
        if (!json_is_integer(fd) || json_integer_value(fd) < 0 || json_integer_value(fd) > INT32_MAX)
                return err_set(err, -EPROTO, "the agent's parent reply has no descriptor");
        *ret_fd = (int)json_integer_value(fd);
        return 0;
}

int agent_run_hooks(const agent_channel *ch, const char *phase, uint64_t deadline_us, agent_streams *streams,
                    pw_err *err)
{
        json_auto_t *reply = NULL;
        int r = op_request(ch, phase, deadline_us, &reply, streams, err);
        if (r < 0)
                return r;
        return json_is_true(json_object_get(reply, "ok")) ? 0 : reply_error(reply, false, err);
}

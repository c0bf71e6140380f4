/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The smallest program that uses libprewarm: build (once) the python3 template, restore an
 * instance, load a function into it, call it, print the result and the stage times.
 *
 *   cc embed.c $(pkg-config --cflags --libs prewarm) -o embed
 *   sudo ./embed file:///path/to/hello.py '{"name": "embedder"}'
 */
#include <errno.h>
#include <prewarm.h>
#include <stdio.h>
#include <stdlib.h>

static void log_line(enum pw_log_level level, const char *message, void *userdata)
{
        (void)userdata;
        if (level <= PW_LOG_WARNING)
                fprintf(stderr, "prewarm: %s\n", message);
}

static int ensure_template(pw_engine *e, const char *name)
{
        pw_instance *probe = NULL;
        int r = pw_instance_restore(e, name, &probe);
        pw_instance_destroy(probe);
        return r == -ENOENT ? pw_template_build(e, name) : r;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: %s CODE_URI [ARGS_JSON]\n", argv[0]);
                return 2;
        }
        const pw_options opts = {.log = log_line, .log_level = PW_LOG_WARNING};
        pw_engine *e = NULL;
        int r = pw_engine_new(&opts, &e);
        if (r < 0) {
                fprintf(stderr, "cannot open engine: %d\n", r);
                return 1;
        }

        pw_instance *i = NULL;
        char *result = NULL;
        const pw_function fn = {.code_uri = argv[1]};
        if ((r = ensure_template(e, "python3")) < 0 || (r = pw_instance_restore(e, "python3", &i)) < 0)
                fprintf(stderr, "%s\n", pw_engine_last_error(e));
        else if ((r = pw_instance_specialize(i, &fn)) < 0 ||
                 (r = pw_instance_invoke(i, argc > 2 ? argv[2] : "{}", 10000, &result)) < 0)
                fprintf(stderr, "%s\n", pw_instance_last_error(i));
        else {
                pw_timings t = {.size = sizeof(t)};
                pw_instance_timings(i, &t);
                printf("%s\n", result);
                fprintf(stderr, "restore %.2f ms, specialize %.2f ms, invoke %.2f ms\n",
                        t.restore_us / 1e3, t.specialize_us / 1e3, t.invoke_us / 1e3);
        }
        free(result);
        pw_instance_destroy(i);
        pw_engine_free(e);
        return r < 0 ? 1 : 0;
}

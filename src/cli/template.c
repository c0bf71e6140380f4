/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* prewarm template build|list|rm */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int print_template(const pw_template_info *t, void *userdata)
{
        char when[32];
        time_t created = (time_t)t->created;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&created));
        printf("%-16s %-16s %8.1f MB  %s  criu %s  kernel %s\n", t->name, t->runtime,
               t->image_bytes / 1e6, when, t->criu_version, t->kernel);
        return 0;
}

static int build(pw_engine *e, int argc, char **argv)
{
        if (argc < 1)
                return cli_error("template build: which template? (usage: prewarm template build NAME...)");
        for (int i = 0; i < argc; i++) {
                fprintf(stderr, "building template %s...\n", argv[i]);
                if (pw_template_build(e, argv[i]) < 0)
                        return cli_error("%s", pw_engine_last_error(e));
                fprintf(stderr, "template %s ready\n", argv[i]);
        }
        return 0;
}

int cmd_template(const cli_globals *g, int argc, char **argv)
{
        if (argc < 2)
                return cli_error("usage: prewarm template build NAME... | list | rm NAME...");
        const char *verb = argv[1];
        if (strcmp(verb, "build") && strcmp(verb, "list") && strcmp(verb, "rm"))
                return cli_error("template: unknown action '%s' (build, list or rm)", verb);
        pw_engine *e = cli_engine(g);
        if (!e)
                return 1;
        int status = 0;
        if (!strcmp(verb, "build"))
                status = build(e, argc - 2, argv + 2);
        else if (!strcmp(verb, "list")) {
                if (pw_template_foreach(e, print_template, NULL) < 0)
                        status = cli_error("%s", pw_engine_last_error(e));
        } else {
                if (argc < 3)
                        status = cli_error("template rm: which template?");
                for (int i = 2; i < argc && status == 0; i++)
                        if (pw_template_remove(e, argv[i]) < 0)
                                status = cli_error("%s", pw_engine_last_error(e));
        }
        pw_engine_free(e);
        return status;
}

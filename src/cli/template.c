/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* prewarm template build|list|rm|push|pull */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
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

#define REGISTRY_USAGE                                                                            \
        "[--plain-http] [--ca-file PEM] [--username USER] (password: $PREWARM_REGISTRY_PASSWORD)"

/* The registry options after the verb; sets *ret_as for pull's --as. Returns optind or -1. */
static int registry_args(int argc, char **argv, bool pull, pw_registry_options *opts, const char **ret_as)
{
        static const struct option longopts[] = {
                {"plain-http", no_argument, NULL, 'p'}, {"ca-file", required_argument, NULL, 'c'},
                {"username", required_argument, NULL, 'u'}, {"as", required_argument, NULL, 'a'}, {0},
        };
        *opts = (pw_registry_options){.size = sizeof(*opts), .password = getenv("PREWARM_REGISTRY_PASSWORD")};
        optind = 1;
        for (int c; (c = getopt_long(argc, argv, "+", longopts, NULL)) != -1;) {
                switch (c) {
                case 'p': opts->plain_http = true; break;
                case 'c': opts->ca_file = optarg; break;
                case 'u': opts->username = optarg; break;
                case 'a':
                        if (!pull)
                                return cli_error("template push: --as is pull's"), -1;
                        *ret_as = optarg;
                        break;
                default: return -1;
                }
        }
        return optind;
}

/* prewarm template push NAME REF */
static int push(pw_engine *e, int argc, char **argv)
{
        pw_registry_options opts;
        const char *unused = NULL;
        int i = registry_args(argc, argv, false, &opts, &unused);
        if (i < 0 || argc - i != 2)
                return cli_error("usage: prewarm template push " REGISTRY_USAGE " NAME HOST[:PORT]/REPO[:TAG]");
        char *digest = NULL;
        if (pw_template_push(e, argv[i], argv[i + 1], &opts, &digest) < 0)
                return cli_error("%s", pw_engine_last_error(e));
        printf("%s@%s\n", argv[i + 1], digest);
        free(digest);
        return 0;
}

/* prewarm template pull REF [--as NAME] */
static int pull(pw_engine *e, int argc, char **argv)
{
        pw_registry_options opts;
        const char *as = NULL;
        int i = registry_args(argc, argv, true, &opts, &as);
        if (i < 0 || argc - i != 1)
                return cli_error("usage: prewarm template pull " REGISTRY_USAGE " [--as NAME] HOST[:PORT]/REPO[:TAG|@sha256:HEX]");
        char *digest = NULL;
        if (pw_template_pull(e, argv[i], as, &opts, &digest) < 0)
                return cli_error("%s", pw_engine_last_error(e));
        printf("%s\n", digest);
        free(digest);
        return 0;
}

int cmd_template(const cli_globals *g, int argc, char **argv)
{
        if (argc < 2)
                return cli_error("usage: prewarm template build NAME... | list | rm NAME... | push NAME REF | pull REF");
        const char *verb = argv[1];
        if (strcmp(verb, "build") && strcmp(verb, "list") && strcmp(verb, "rm") && strcmp(verb, "push") &&
            strcmp(verb, "pull"))
                return cli_error("template: unknown action '%s' (build, list, rm, push or pull)", verb);
        pw_engine *e = cli_engine(g);
        if (!e)
                return 1;
        int status = 0;
        if (!strcmp(verb, "build"))
                status = build(e, argc - 2, argv + 2);
        else if (!strcmp(verb, "push"))
                status = push(e, argc - 1, argv + 1);
        else if (!strcmp(verb, "pull"))
                status = pull(e, argc - 1, argv + 1);
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

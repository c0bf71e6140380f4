/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Template definitions: criu-templates/NAME/template.conf (format in docs/templates.md). */
#pragma once

#include "internal.h"

typedef struct template_def {
        char *name;
        char *description;
        char **runtime;     /* argv of the runtime; the agent's sandbox path is appended. Empty
                             * (never NULL): the agent is the program itself */
        char *agent_path;   /* host path of the agent file */
        bool agent_bare;    /* named without a directory: maybe a build product (template_def_load) */
        char **preload;     /* module names */
        char **env;         /* KEY=VALUE */
        unsigned memory_mb;
        unsigned pids_max;
        unsigned tmp_mb;
        unsigned ready_timeout_ms;
        char sha256[65];    /* of the definition text and the agent, to tell builds apart */
} template_def;

template_def *template_def_free(template_def *d);
static inline void template_def_freep(template_def **d) { template_def_free(*d); }
#define _cleanup_def_ _cleanup_(template_def_freep)

/* Parses definition text; dir is the template's directory (relative agent paths start there) and
 * dir_name the default name. Pure apart from nothing: no file access. */
int template_def_parse(const char *text, const char *dir, const char *dir_name, template_def **ret,
                       pw_err *err);

/* Loads templates_dir/NAME/template.conf and the agent it names. An agent named without a
 * directory that is not in the template's directory is an agent this project builds
 * (prewarm-agent-native): it is looked for beside the engine's clone helper
 * (zygote_helper_locate: installed, both are in libexec/prewarm/) and then in the build tree's
 * PW_BUILD_AGENT_DIR, and agent_path names where it was found. */
int template_def_load(const char *templates_dir, const char *name, template_def **ret, pw_err *err);

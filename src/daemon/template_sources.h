/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where prewarmd's templates come from (docs/fleet.md): a template may name a registry reference
 * (`from`), given by --template-from NAME=REF or PUT /v1/templates/NAME {"from": REF} (kept in
 * STATE/template-sources.json), and is pulled the first time something needs it. A node that
 * cannot restore what the registry has (-EXDEV) builds the template from its own definition when
 * it has one. --template-from's templates are this node's own: pulled at start, kept, and what
 * /readyz waits for. Pulled templates form a cache bounded by --template-cache-mb: after a pull,
 * the least recently used ones that no registered function, slot or --template-from needs are
 * removed until the rest fit (and pulled again when next needed). Counted in the metrics (pulls, hits, local builds, evictions, pull time).
 */
#pragma once

#include "daemon.h"

typedef struct template_sources template_sources;

/* specs: the --template-from NAME=REF arguments (NULL-terminated, may be NULL); they override
 * what the state dir keeps. opts: registry access for every pull (copied). */
int template_sources_open(daemon_ctx *d, char **specs, const pw_registry_options *opts, template_sources **ret,
                          pw_err *err);
template_sources *template_sources_free(template_sources *s);

/* Sets (and keeps) NAME's source. -EINVAL for a bad name or reference. */
int template_source_set(daemon_ctx *d, const char *name, const char *ref, pw_err *err);
/* NAME's source reference (caller frees), or NULL. */
char *template_source_get(daemon_ctx *d, const char *name);

/* Makes sure template NAME is built here: at once if it is (a cache hit, which counts as a use),
 * else by pulling it from its source (one pull per name at a time; others wait for it), else
 * -ENOENT. Errors of the pull or of the local build, with the reason in err. */
int template_ensure(daemon_ctx *d, const char *name, pw_err *err);

/* Removes the least recently used pulled templates that nothing needs until the pulled ones fit
 * in --template-cache-mb (after every pull; also for pulls through the API). */
void templates_trim(daemon_ctx *d);

/* Whether template NAME is built here (in the engine's store). */
bool template_built(daemon_ctx *d, const char *name);

/* Forgets that NAME is built (it was removed, or a restore found it gone). */
void template_forget(daemon_ctx *d, const char *name);

/* Whether every --template-from template, and the slots' template, is built here. */
bool templates_ready(daemon_ctx *d);

/* Pulls, in the background, every --template-from template not built yet, so that /readyz turns
 * ready once they are. */
void templates_prefetch(daemon_ctx *d);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Template parents, restored once per engine, and instances cloned from them (clone.c). */
#pragma once

#include "instance.h"

typedef struct parents parents;
typedef struct template_parent template_parent;

int parents_new(parents **ret);
/* Destroys every parent, with whatever clone of theirs still lives. Accepts NULL. */
void parents_free(parents *ps);

/* A new instance of template name cloned from its parent, made first if there is none (or it is
 * gone, or of an older build). -ENOTSUP when the template cannot keep a parent (built without the
 * clone helper, or second-level); other errors say why this clone failed, for the caller to fall
 * back to a restore. The instance holds its parent until it is destroyed. */
int clone_instance(pw_engine *e, const char *name, pw_instance **ret, pw_err *err);
/* Whether clone i, made ahead of the request that takes it, may still be handed out: its template
 * is the one its parent came from (-ESTALE: rebuilt, removed or trimmed since) and its images
 * still match the manifest, as every clone promises (manifest_verify's errors; the parent is then
 * retired). */
int clone_still_current(pw_engine *e, pw_instance *i, pw_err *err);

/* The host pid of the parent i was cloned from, or 0 if i is not a clone. */
pid_t clone_parent_pid(const pw_instance *i);

/* A clone of p was destroyed. */
void parent_release(pw_engine *e, template_parent *p);

/* Retires every parent: those without clones are destroyed now, the others with their last. */
void parents_trim(pw_engine *e);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restores, and clones, prepared ahead of the requests that will run them (ahead.c). */
#pragma once

#include "restore.h"

typedef struct ahead ahead;

ahead *ahead_new(pw_engine *e);
/* Stops the preparing thread and discards every prepared job. Accepts NULL; returns NULL. */
ahead *ahead_free(ahead *a);

/* The job prepared for template_name, if one is ready or becomes ready within a few milliseconds
 * (its preparation is under way) and the template is unchanged; the caller owns it. NULL
 * otherwise. */
restore_job *ahead_take(ahead *a, const char *template_name);
/* Asks for a job of template_name to be prepared in the background (after each restore). */
void ahead_want(ahead *a, const char *template_name);
/* The same for a template whose instances are cloned: the next clone itself, ready and checked,
 * taken by the caller (who owns it), or NULL (none ready within a few milliseconds, or the one
 * ready had died). */
pw_instance *ahead_take_clone(ahead *a, const char *template_name);
void ahead_want_clone(ahead *a, const char *template_name);
/* Discards the jobs of template_name (NULL: of all templates) and stops preparing them. */
void ahead_drop(ahead *a, const char *template_name);

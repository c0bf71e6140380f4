/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The template store's retired templates. Live instances run on a bind mount of their template's
 * rootfs, so a rebuilt or removed template is not deleted at once: it is renamed to
 * .old-NAME-ID and deleted once no instance runs on it and no restore reads it.
 */
#pragma once

#include "internal.h"

/* Serializes what replaces template NAME (builds, pulls) across threads and processes: an
 * exclusive lock on STATE/templates/.lock-NAME, held until the returned fd is closed. */
int store_lock_name(const pw_engine *e, const char *name, pw_err *err);

/* Makes dir (a complete template directory on the store's filesystem) template NAME in one
 * rename, the template it replaces retired and collected when nothing uses it. */
int store_install(const pw_engine *e, const char *name, const char *dir, pw_err *err);

/* Renames STATE/templates/NAME aside. -ENOENT when it is not there. */
int store_retire(const pw_engine *e, const char *name, pw_err *err);

/* Deletes NAME's retired templates that nothing uses any more. Cheap when there are none. */
void store_collect(const pw_engine *e, const char *name);

/* A restore holds this shared lock on its template directory while CRIU reads it, so that a
 * collection never deletes images under it. Returns the locked fd (close to unlock). */
int store_lock_shared(const char *template_dir, pw_err *err);

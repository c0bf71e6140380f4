/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Template images read into memory ahead of restores (io_uring) and kept there. */
#pragma once

#include "internal.h"

/* Makes sure the images directory (open as images_fd) is resident and pinned in memory for this
 * engine; cheap when it already is. Reads with io_uring unless PW_ENGINE_NO_IO_URING. */
int stage_template(pw_engine *e, const char *images, int images_fd, pw_err *err);

/* Unpins the staged copy, if any, and drops the files from the page cache. */
int unstage_template(pw_engine *e, const char *images, pw_err *err);

struct staged_template;
void staging_free_all(struct staged_template *s);

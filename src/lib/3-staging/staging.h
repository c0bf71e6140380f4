/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Template images read into memory ahead of restores (io_uring) and kept there. */
#pragma once

#include "internal.h"

/* Makes sure the images directory (open as images_fd) gets resident and pinned in memory for this
 * engine: the first call starts a stager thread that reads the files with io_uring and returns at
 * once; later calls are cheap. Nothing with PW_ENGINE_NO_IO_URING or PW_ENGINE_NOTHING_AHEAD.
 * A staging failure only costs speed: it is logged, and restores read from disk. */
int stage_template(pw_engine *e, const char *images, int images_fd, pw_err *err);

/* Unpins the template's images, if staged, and drops its files from the page cache. */
int unstage_template(pw_engine *e, const char *images, pw_err *err);

/* Waits for the engine's stagers and unpins everything. */
void staging_engine_done(pw_engine *e);

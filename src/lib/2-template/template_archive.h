/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A template directory as one zstd-compressed tar stream (the layer of its OCI artifact,
 * docs/fleet.md), and back. Only what a restore needs travels: the directories named when
 * writing, with their regular files, directories and symbolic links; never a device, a hard link
 * or anything outside them.
 */
#pragma once

#include <stdint.h>

#include "internal.h"

/* One directory of the archive: written under `name`, read from `path`. */
typedef struct template_archive_part {
        const char *name;
        const char *path;
} template_archive_part;

/* Writes the directories (n of them) as a ustar archive compressed with zstd to out_fd: names in
 * order, modes kept, owners and times not, so that the same files give the same stream. Returns
 * the stream's sha256 (hex) and size. */
int template_archive_write(const template_archive_part *parts, size_t n, int out_fd, char ret_sha256[65],
                           uint64_t *ret_size, pw_err *err);

/* Unpacks such a stream from in_fd into dir (an existing, empty directory). Every member must lie
 * under one of `parts`; a member that is absolute, has "..", is a device, FIFO or hard link, or
 * would write through a symbolic link is refused, and so is more than max_bytes unpacked. On
 * error dir may hold part of the archive: the caller removes it. */
int template_archive_extract(int in_fd, const char *dir, const char *const *parts, uint64_t max_bytes, pw_err *err);

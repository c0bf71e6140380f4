/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Unpacking a function's archive (.zip, .tar, .tar.gz, .tgz) into a private directory, with the
 * Python agent's rules (docs/security.md, "Code archives"): only files and directories, none of
 * them outside the directory (no absolute path, no ".."), no link, no device or other special
 * file, at most ARCHIVE_MAX_MEMBERS members and ARCHIVE_MAX_BYTES unpacked. Every member is
 * checked before anything is written: each reader walks the archive twice, once to check, once
 * to write, and a member that holds more than it declared is refused while it is written.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARCHIVE_MAX_MEMBERS 20000
#define ARCHIVE_MAX_BYTES (512ull << 20)

typedef enum archive_kind {
        ARCHIVE_NONE,
        ARCHIVE_ZIP,
        ARCHIVE_TAR,
        ARCHIVE_TAR_GZ,
} archive_kind;

/* By the file name's suffix: .zip, .tar, .tar.gz or .tgz. */
archive_kind archive_kind_of(const char *filename);

/* Unpacks blob into the directory open at dir_fd. Errors: -EINVAL (refused: the archive breaks a
 * rule, or it is not one; why says which member and why), -EIO, -ENOSPC and the like (writing,
 * why says where), -ENOMEM. */
int archive_unpack(const void *blob, size_t size, archive_kind kind, int dir_fd, char *why, size_t why_size);

/* ---- for the readers (archive_zip.c, archive_tar.c) */

typedef enum member_type {
        MEMBER_FILE,
        MEMBER_DIR,
        MEMBER_LINK,    /* symbolic or hard */
        MEMBER_SPECIAL, /* device, FIFO, socket, or a kind the reader does not know */
} member_type;

/* What the check pass has seen so far. */
typedef struct archive_tally {
        unsigned members;
        uint64_t bytes;
        char *why;
        size_t why_size;
} archive_tally;

/* Checks one member in the first pass: its path leads nowhere outside (written normalized into
 * path, "" for the directory itself), its type is a file or a directory, and the bounds still
 * hold. -EINVAL with the reason in t->why. */
int archive_check_member(archive_tally *t, const char *name, size_t name_len, member_type type, uint64_t size,
                         char path[PATH_MAX]);

/* The same rules in the second pass, without counting: the path a member is written to. */
int archive_member_path(const char *name, size_t name_len, char path[PATH_MAX]);

/* Makes directory path (normalized) under dir_fd, with its parents. */
int archive_make_dir(int dir_fd, const char *path);

/* Creates file path (normalized) under dir_fd, its parents too, for writing; returns the fd. The
 * mode keeps only the permission bits that matter: executable or not. */
int archive_create_file(int dir_fd, const char *path, mode_t mode);

/* Formats a reason into why (always NUL-terminated) and returns r. */
int archive_fail(char *why, size_t why_size, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

int zip_unpack(const uint8_t *blob, size_t size, int dir_fd, char *why, size_t why_size);
int tar_unpack(const uint8_t *blob, size_t size, bool gzip, int dir_fd, char *why, size_t why_size);

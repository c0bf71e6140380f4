/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host's files a checkpoint refers to, recorded at build and compared on another node
 * (host_files.c). */
#pragma once

#include <sys/types.h>

#include "internal.h"

/* A file of the host's /usr that the checkpointed tasks map (the runtime, its libraries, the
 * template's npm packages' native parts): CRIU's images name it by path and check, at restore,
 * its size and, for ELF files, its build id. */
typedef struct host_file {
        char *path;
        uint64_t size;
        char build_id[41]; /* hex, "" when the file has none */
} host_file;

void host_files_free(host_file *files, size_t n);

/* The distinct files under /usr that process pid maps, with their size and build id, sorted by
 * path; *ret_n may be 0. */
int host_files_of(pid_t pid, host_file **ret, size_t *ret_n, pw_err *err);

/* 0 if this host has each of files with the same size and build id; else -EXDEV, naming the
 * first that differs or is missing (a restore here would fail on it). */
int host_files_check(const host_file *files, size_t n, pw_err *err);

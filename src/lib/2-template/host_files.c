/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host files a checkpoint refers to. The sandbox sees the host's /usr, so a template's images
 * name its runtime and libraries by path instead of carrying them, and CRIU refuses the restore
 * when such a file has another size or ELF build id than at the dump. A template built on one
 * node and pulled on another (fleet.c) is checked against the same facts at pull, so that a node
 * whose /usr differs learns it then, with the file named, instead of at every restore.
 */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "host_files.h"

#define HOST_PREFIX "/usr/"
#define MAX_HOST_FILES 4096
#define MAX_NOTES_BYTES (64u << 10)

void host_files_free(host_file *files, size_t n)
{
        for (size_t k = 0; k < n; k++)
                free(files[k].path);
        free(files);
}

/* The GNU build id in the notes of [at, at + size) of fd, as hex, or "" when there is none. */
static void notes_build_id(int fd, uint64_t at, uint64_t size, char out[41])
{
        if (size > MAX_NOTES_BYTES)
                size = MAX_NOTES_BYTES;
        _cleanup_free_ uint8_t *notes = malloc(size ? size : 1);
        if (!notes || pread(fd, notes, size, (off_t)at) != (ssize_t)size)
                return;
        for (uint64_t off = 0; off + sizeof(Elf64_Nhdr) <= size;) {
                const Elf64_Nhdr *n = (const Elf64_Nhdr *)(notes + off);
                uint64_t name_at = off + sizeof(*n), desc_at = name_at + ((n->n_namesz + 3u) & ~3u);
                uint64_t next = desc_at + ((n->n_descsz + 3u) & ~3u);
                if (next > size)
                        return;
                if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(notes + name_at, "GNU", 4) &&
                    n->n_descsz > 0 && n->n_descsz <= 20) {
                        for (unsigned k = 0; k < n->n_descsz; k++)
                                snprintf(out + 2 * k, 3, "%02x", notes[desc_at + k]);
                        return;
                }
                off = next;
        }
}

/* The build id of the ELF file fd (64-bit, as on the only architectures prewarm runs on), from
 * its PT_NOTE segments; "" for any other file. */
static void elf_build_id(int fd, char out[41])
{
        out[0] = '\0';
        Elf64_Ehdr eh;
        if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
                return;
        for (unsigned k = 0; k < eh.e_phnum && !out[0]; k++) {
                Elf64_Phdr ph;
                if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)k * sizeof(ph))) != (ssize_t)sizeof(ph))
                        return;
                if (ph.p_type == PT_NOTE)
                        notes_build_id(fd, ph.p_offset, ph.p_filesz, out);
        }
}

/* Size and build id of the file at path on this host. */
static int describe(const char *path, host_file *f)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        f->size = (uint64_t)st.st_size;
        elf_build_id(fd, f->build_id);
        return 0;
}

static int by_path(const void *a, const void *b)
{
        return strcmp(((const host_file *)a)->path, ((const host_file *)b)->path);
}

/* The path of a /proc/PID/maps line's file mapping under /usr, or NULL. */
static const char *mapped_path(char *line)
{
        line[strcspn(line, "\n")] = '\0';
        char *path = strchr(line, '/');
        if (!path || strncmp(path, HOST_PREFIX, strlen(HOST_PREFIX)) || str_has_suffix(path, " (deleted)"))
                return NULL;
        return path;
}

int host_files_of(pid_t pid, host_file **ret, size_t *ret_n, pw_err *err)
{
        char maps_path[64], line[PATH_MAX + 256];
        snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
        _cleanup_fclose_ FILE *maps = fopen(maps_path, "re");
        if (!maps)
                return err_set(err, negative_errno(), "reading %s: %m", maps_path);
        host_file *files = NULL;
        size_t n = 0;
        int r = 0;
        while (r >= 0 && fgets(line, sizeof(line), maps)) {
                const char *path = mapped_path(line);
                bool seen = false;
                for (size_t k = 0; path && k < n && !seen; k++)
                        seen = !strcmp(files[k].path, path);
                if (!path || seen)
                        continue;
                if (n == MAX_HOST_FILES) {
                        r = err_set(err, -E2BIG, "process %d maps more than %d files of the host", (int)pid, MAX_HOST_FILES);
                        break;
                }
                host_file *more = realloc(files, (n + 1) * sizeof(*files));
                if (!more || !(more[n].path = strdup(path))) {
                        files = more ? more : files;
                        r = -ENOMEM;
                        break;
                }
                files = more;
                if (describe(path, &files[n]) < 0) /* gone or replaced: CRIU judges it at restore */
                        free(files[n].path);
                else
                        n++;
        }
        if (r < 0) {
                host_files_free(files, n);
                return r;
        }
        qsort(files, n, sizeof(*files), by_path);
        *ret = files;
        *ret_n = n;
        return 0;
}

int host_files_check(const host_file *files, size_t n, pw_err *err)
{
        for (size_t k = 0; k < n; k++) {
                host_file here = {0};
                int r = describe(files[k].path, &here);
                if (r < 0)
                        return err_set(err, -EXDEV, "it maps the host file %s, which this node lacks (%s)", files[k].path,
                                       strerror(-r));
                if (here.size != files[k].size)
                        return err_set(err, -EXDEV, "it maps the host file %s of %llu bytes, this node's has %llu: "
                                       "the nodes' /usr differ", files[k].path, (unsigned long long)files[k].size,
                                       (unsigned long long)here.size);
                if (strcmp(here.build_id, files[k].build_id))
                        return err_set(err, -EXDEV, "it maps the host file %s with build id %s, this node's has %s: "
                                       "the nodes' /usr differ", files[k].path, files[k].build_id[0] ? files[k].build_id : "none",
                                       here.build_id[0] ? here.build_id : "none");
        }
        return 0;
}

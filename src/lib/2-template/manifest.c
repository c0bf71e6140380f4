/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A built template's manifest.json: written at build, read at every restore, and the check that the
 * images are the ones it lists (cached by inode, size, mtime and ctime).
 */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>

#include "digest.h"
#include "manifest.h"

struct verified_template {
        char *images_dir;
        char signature[65];
        struct verified_template *next;
};

manifest *manifest_free(manifest *m)
{
        if (!m)
                return NULL;
        free(m->name);
        free(m->definition_sha256);
        free(m->runtime);
        free(m->criu_version);
        free(m->kernel);
        for (size_t i = 0; i < m->n_images; i++)
                free(m->images[i].file);
        free(m->images);
        host_files_free(m->host_files, m->n_host_files);
        free(m);
        return NULL;
}


char *manifest_to_json(const manifest *m)
{
        json_auto_t *images = json_object();
        if (!images)
                return NULL;
        for (size_t i = 0; i < m->n_images; i++)
                json_object_set_new(images, m->images[i].file,
                                    json_pack("{s:s, s:I}", "sha256", m->images[i].sha256, "size",
                                              (json_int_t)m->images[i].size));
        json_auto_t *root = json_pack(
                "{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:{s:I, s:I}, s:{s:i, s:i, s:i}, s:O}",
                "format", 1, "name", m->name, "definition_sha256", m->definition_sha256,
                "runtime", m->runtime, "criu_version", m->criu_version, "kernel", m->kernel,
                "created", (json_int_t)m->created,
                "control_pipes", "in_inode", (json_int_t)m->ctl_in_ino, "out_inode", (json_int_t)m->ctl_out_ino,
                "limits", "memory_mb", (int)m->memory_mb, "pids_max", (int)m->pids_max, "tmp_mb", (int)m->tmp_mb,
                "images", images);
        if (root && m->external_netns)
                json_object_set_new(root, "external_netns", json_true());
        if (root && m->sandbox)
                json_object_set_new(root, "sandbox", json_integer(m->sandbox));
        if (root && m->clone)
                json_object_set_new(root, "clone", json_true());
        json_t *host = m->n_host_files ? json_array() : NULL;
        for (size_t i = 0; host && i < m->n_host_files; i++) {
                const host_file *f = &m->host_files[i];
                json_array_append_new(host, f->build_id[0] ? json_pack("{s:s, s:I, s:s}", "path", f->path, "size",
                                                                      (json_int_t)f->size, "build_id", f->build_id)
                                                           : json_pack("{s:s, s:I}", "path", f->path, "size",
                                                                      (json_int_t)f->size));
        }
        if (root && host)
                json_object_set_new(root, "host_files", host);
        return root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(((const manifest_image *)a)->file, ((const manifest_image *)b)->file);
}

static int parse_images(json_t *images, manifest *m, pw_err *err)
{
        size_t n = json_object_size(images);
        if (n == 0)
                return err_set(err, -EUCLEAN, "manifest lists no images");
        m->images = calloc(n, sizeof(*m->images));
        if (!m->images)
                return -ENOMEM;
        const char *file;
        json_t *entry;
        json_object_foreach(images, file, entry) {
                const char *sha = NULL;
                json_int_t size = -1;
                if (json_unpack(entry, "{s:s, s:I}", "sha256", &sha, "size", &size) < 0 ||
                    !*file || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64 ||
                    size < 0 || strchr(file, '/') || file[0] == '.')
                        return err_set(err, -EUCLEAN, "manifest entry for image '%s' is malformed", file);
                manifest_image *img = &m->images[m->n_images++];
                img->file = strdup(file);
                if (!img->file)
                        return -ENOMEM;
                img->size = (uint64_t)size;
                memcpy(img->sha256, sha, 65);
        }
        qsort(m->images, m->n_images, sizeof(*m->images), compare_names);
        return 0;
}

/* "host_files": [{"path", "size", "build_id"?}], optional. */
static int parse_host_files(json_t *list, manifest *m, pw_err *err)
{
        if (!list)
                return 0;
        if (!json_is_array(list))
                return err_set(err, -EUCLEAN, "manifest's host_files is not a list");
        m->host_files = calloc(json_array_size(list) ? json_array_size(list) : 1, sizeof(*m->host_files));
        if (!m->host_files)
                return -ENOMEM;
        size_t k;
        json_t *f;
        json_array_foreach(list, k, f) {
                const char *path = json_string_value(json_object_get(f, "path"));
                const char *build_id = json_string_value(json_object_get(f, "build_id"));
                json_t *size = json_object_get(f, "size");
                /* Only /usr paths without "..": a manifest must not make a node look at other files. */
                if (!path || strncmp(path, "/usr/", 5) || strstr(path, "/../") || str_has_suffix(path, "/..") ||
                    !json_is_integer(size) ||
                    json_integer_value(size) < 0 || (build_id && strlen(build_id) >= sizeof(m->host_files[k].build_id)))
                        return err_set(err, -EUCLEAN, "manifest's host file %zu is malformed", k);
                host_file *h = &m->host_files[m->n_host_files];
                if (!(h->path = strdup(path)))
                        return -ENOMEM;
                m->n_host_files++;
                h->size = (uint64_t)json_integer_value(size);
                str_copy(h->build_id, sizeof(h->build_id), build_id ? build_id : "");
        }
        return 0;
}

int manifest_from_json(const char *text, manifest **ret, pw_err *err)
{
        json_error_t jerr;
        json_auto_t *root = json_loads(text, 0, &jerr);
        if (!root)
                return err_set(err, -EUCLEAN, "manifest is not JSON: %s (line %d)", jerr.text, jerr.line);

        const char *name, *def, *runtime, *criu, *kernel;
        json_int_t created, in_ino, out_ino;
        int memory, pids, tmp, format;
        json_t *images;
        if (json_unpack_ex(root, &jerr, 0,
                           "{s:i, s:s, s:s, s:s, s:s, s:s, s:I, s:{s:I, s:I}, s:{s:i, s:i, s:i}, s:o}",
                           "format", &format, "name", &name, "definition_sha256", &def, "runtime",
                           &runtime, "criu_version", &criu, "kernel", &kernel, "created", &created,
                           "control_pipes", "in_inode", &in_ino, "out_inode", &out_ino, "limits",
                           "memory_mb", &memory, "pids_max", &pids, "tmp_mb", &tmp, "images", &images) < 0)
                return err_set(err, -EUCLEAN, "manifest is incomplete: %s", jerr.text);
        if (format != 1 || !json_is_object(images) || memory <= 0 || pids <= 0 || tmp <= 0)
                return err_set(err, -EUCLEAN, "manifest has unexpected values");

        _cleanup_manifest_ manifest *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->name = strdup(name);
        m->definition_sha256 = strdup(def);
        m->runtime = strdup(runtime);
        m->criu_version = strdup(criu);
        m->kernel = strdup(kernel);
        if (!m->name || !m->definition_sha256 || !m->runtime || !m->criu_version || !m->kernel)
                return -ENOMEM;
        m->created = created;
        m->ctl_in_ino = (uint64_t)in_ino;
        m->ctl_out_ino = (uint64_t)out_ino;
        m->memory_mb = (unsigned)memory;
        m->pids_max = (unsigned)pids;
        m->tmp_mb = (unsigned)tmp;
        /* Optional: templates built before namespaces were made ahead of time lack it. */
        m->external_netns = json_is_true(json_object_get(root, "external_netns"));
        m->specialized = json_is_true(json_object_get(root, "specialized"));
        m->clone = json_is_true(json_object_get(root, "clone"));
        json_t *sandbox = json_object_get(root, "sandbox");
        m->sandbox = json_is_integer(sandbox) && json_integer_value(sandbox) > 0 ? (unsigned)json_integer_value(sandbox) : 0;
        int r = parse_images(images, m, err);
        if (r < 0 || (r = parse_host_files(json_object_get(root, "host_files"), m, err)) < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

int manifest_check_sandbox(const manifest *m, pw_err *err)
{
        if (m->sandbox == MANIFEST_SANDBOX)
                return 0;
        if (m->sandbox > MANIFEST_SANDBOX)
                return err_set(err, -EUCLEAN, "template %s was built by a newer prewarm (sandbox %u); rebuild it "
                               "with `prewarm template build %s`", m->name, m->sandbox, m->name);
        /* A second-level template is rebuilt from its parent: a new checkpoint of a new instance. */
        if (m->specialized)
                return err_set(err, -EUCLEAN, "template %s was checkpointed without the hardened sandbox; "
                               "checkpoint it again from an instance of a rebuilt template", m->name);
        return err_set(err, -EUCLEAN, "template %s was built without the hardened sandbox; rebuild it with "
                       "`prewarm template build %s`", m->name, m->name);
}

int manifest_load(const char *template_dir, manifest **ret, pw_err *err)
{
        _cleanup_free_ char *path = strdup_printf("%s/manifest.json", template_dir);
        _cleanup_free_ char *text = NULL;
        if (!path)
                return -ENOMEM;
        int r = read_file(path, 1 << 20, &text, NULL);
        if (r == -ENOENT)
                return err_set(err, r, "not built (no %s)", path);
        if (r < 0)
                return err_set(err, r, "reading %s: %s", path, strerror(-r));
        r = manifest_from_json(text, ret, err);
        return r < 0 ? err_prefix(err, r, "%s", path) : 0;
}

static int hash_file(int dirfd, const char *file, uint64_t *ret_size, char out[65])
{
        _cleanup_close_ int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EUCLEAN;
        *ret_size = (uint64_t)st.st_size;
        return sha256_fd_hex(fd, out);
}

int manifest_hash_images(const char *images_dir, manifest *m, pw_err *err)
{
        DIR *d = opendir(images_dir);
        if (!d)
                return err_set(err, negative_errno(), "opening %s: %m", images_dir);
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                manifest_image *bigger = realloc(m->images, (m->n_images + 1) * sizeof(*bigger));
                if (!bigger) {
                        r = -ENOMEM;
                        break;
                }
                m->images = bigger;
                manifest_image *img = &m->images[m->n_images];
                if (!(img->file = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                m->n_images++;
                r = hash_file(dirfd(d), de->d_name, &img->size, img->sha256);
                if (r < 0)
                        err_set(err, r, "hashing %s/%s: %s", images_dir, de->d_name, strerror(-r));
        }
        closedir(d);
        if (r >= 0)
                qsort(m->images, m->n_images, sizeof(*m->images), compare_names);
        return r;
}

/* Identity of the directory's current contents without reading them. */
static int stat_signature(const char *images_dir, const manifest *m, char out[65])
{
        sha256_ctx *ctx = sha256_begin();
        if (!ctx)
                return -ENOMEM;
        size_t entries = 0;
        DIR *d = opendir(images_dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                const uint64_t id[] = {st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                                       (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ctim.tv_sec,
                                       (uint64_t)st.st_ctim.tv_nsec};
                sha256_update(ctx, de->d_name, strlen(de->d_name) + 1);
                sha256_update(ctx, id, sizeof(id));
                entries++;
        }
        if (d)
                closedir(d);
        /* The expected digests are part of what was verified, not only the files. */
        sha256_update(ctx, &m->created, sizeof(m->created));
        for (size_t i = 0; i < m->n_images; i++) {
                sha256_update(ctx, m->images[i].file, strlen(m->images[i].file) + 1);
                sha256_update(ctx, m->images[i].sha256, 64);
        }
        sha256_end_hex(ctx, out);
        return entries > 0 ? 0 : -ENOENT;
}

static bool cache_has(pw_engine *e, const char *images_dir, const char *signature)
{
        bool hit = false;
        pthread_mutex_lock(&e->lock);
        for (struct verified_template *v = e->verified; v && !hit; v = v->next)
                hit = !strcmp(v->images_dir, images_dir) && !strcmp(v->signature, signature);
        pthread_mutex_unlock(&e->lock);
        return hit;
}

static void cache_put(pw_engine *e, const char *images_dir, const char *signature)
{
        struct verified_template *v = calloc(1, sizeof(*v));
        if (!v || !(v->images_dir = strdup(images_dir))) {
                free(v);
                return;
        }
        memcpy(v->signature, signature, 65);
        pthread_mutex_lock(&e->lock);
        v->next = e->verified;
        e->verified = v;
        pthread_mutex_unlock(&e->lock);
}

void verified_cache_free(struct verified_template *v)
{
        while (v) {
                struct verified_template *next = v->next;
                free(v->images_dir);
                free(v);
                v = next;
        }
}

int manifest_verify(pw_engine *e, const char *images_dir, const manifest *m, pw_err *err)
{
        char signature[65];
        if (stat_signature(images_dir, m, signature) < 0)
                return err_set(err, -EUCLEAN, "images missing in %s", images_dir);
        if (cache_has(e, images_dir, signature))
                return 0;

        _cleanup_manifest_ manifest *found = calloc(1, sizeof(*found));
        if (!found)
                return -ENOMEM;
        int r = manifest_hash_images(images_dir, found, err);
        if (r < 0)
                return err_prefix(err, -EUCLEAN, "verifying %s", images_dir);
        size_t i = 0, j = 0;
        while (i < m->n_images || j < found->n_images) {
                int c = i == m->n_images ? 1 : j == found->n_images ? -1 :
                        strcmp(m->images[i].file, found->images[j].file);
                if (c < 0)
                        return err_set(err, -EUCLEAN, "image %s is missing", m->images[i].file);
                if (c > 0)
                        return err_set(err, -EUCLEAN, "unexpected file %s among the images", found->images[j].file);
                if (strcmp(m->images[i].sha256, found->images[j].sha256))
                        return err_set(err, -EUCLEAN, "image %s does not match its sha256 digest", m->images[i].file);
                i++, j++;
        }
        cache_put(e, images_dir, signature);
        return 0;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Templates across nodes: pw_template_push and pw_template_pull, a built template as an OCI
 * artifact in a registry (the format is docs/fleet.md's). A push sends the template's
 * manifest.json as the artifact's config and its images, rootfs and this CPU's features
 * (CRIU's cpuinfo.img) as one zstd tar layer, and says in annotations what a node needs to
 * restore it. A pull checks those before it downloads the layer, checks every digest, unpacks
 * into a directory beside the store, asks CRIU whether this CPU has the features recorded, and
 * only then renames the result into place.
 */
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "ahead.h"
#include "config.h"
#include "criu.h"
#include "digest.h"
#include "fleet.h"
#include "manifest.h"
#include "oci_registry.h"
#include "store.h"
#include "template_archive.h"
#include "util.h"

#define MAX_CONFIG_BYTES (1u << 20)
#define MAX_LAYER_BYTES (8ull << 30)    /* what a pull downloads */
#define MAX_UNPACKED_BYTES (16ull << 30) /* and what it may unpack to */

static const char *const layer_parts[] = {"images", "rootfs", "cpuinfo", NULL};

/* ------------------------------------------------------------------ what a node is */

static const char *cgroup_version(void)
{
        struct stat st;
        return stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0 ? "v2" : "v1";
}

/* "MAJOR.MINOR" of a kernel release ("6.18.44-fc" -> "6.18"). */
static void kernel_series(const char *release, char *out, size_t size)
{
        unsigned major = 0, minor = 0;
        sscanf(release, "%u.%u", &major, &minor);
        snprintf(out, size, "%u.%u", major, minor);
}

static int criu_version_text(pw_engine *e, char out[32], pw_err *err)
{
        criu_version_info v;
        int r = criu_get_version(e, &v, err);
        if (r >= 0)
                snprintf(out, 32, "%d.%d.%d", v.major, v.minor, v.sublevel);
        return r;
}

/* STATE/templates/PREFIX-NAME-XXXXXX, made and locked for as long as *ret_fd is open. */
static int locked_work_dir(pw_engine *e, const char *prefix, const char *name, char **ret, int *ret_fd, pw_err *err)
{
        _cleanup_free_ char *dir = strdup_printf("%s/templates/%s-%s-XXXXXX", e->state_dir, prefix, name);
        if (!dir)
                return -ENOMEM;
        if (!mkdtemp(dir))
                return err_set(err, negative_errno(), "mkdtemp %s: %m", dir);
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX) < 0) {
                int r = err_set(err, negative_errno(), "locking %s: %m", dir);
                if (fd >= 0)
                        close(fd);
                rm_rf(dir);
                return r;
        }
        *ret = TAKE_PTR(dir);
        *ret_fd = fd;
        return 0;
}

/* ------------------------------------------------------------------ push */

/* The artifact's manifest: config and layer descriptors, and what a node needs. */
static char *artifact_manifest(const manifest *m, const char *config_digest, uint64_t config_size,
                               const char *layer_digest, uint64_t layer_size, const char *criu_version)
{
        struct utsname u;
        uname(&u);
        char created[32];
        struct tm tm;
        time_t t = (time_t)m->created;
        strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        json_t *annotations = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                        "org.opencontainers.image.created", created,
                                        "org.opencontainers.image.title", m->name,
                                        ANNOTATION_ENGINE, "prewarm", ANNOTATION_ENGINE_VERSION, PW_VERSION,
                                        ANNOTATION_TEMPLATE, m->name,
                                        ANNOTATION_RUNTIME, m->runtime,
                                        ANNOTATION_CRIU_VERSION, criu_version,
                                        ANNOTATION_KERNEL, u.release,
                                        ANNOTATION_CGROUP, cgroup_version(),
                                        ANNOTATION_ARCH, u.machine,
                                        ANNOTATION_CPUINFO, "cpuinfo/cpuinfo.img");
        json_t *doc = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I, s:{s:s}}], s:o}",
                                "schemaVersion", 2, "mediaType", OCI_MANIFEST_TYPE, "artifactType", ARTIFACT_TYPE,
                                "config", "mediaType", CONFIG_TYPE, "digest", config_digest, "size", (json_int_t)config_size,
                                "layers", "mediaType", LAYER_TYPE, "digest", layer_digest, "size", (json_int_t)layer_size,
                                "annotations", "org.opencontainers.image.title", "template.tar.zst",
                                "annotations", annotations);
        char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(doc);
        return text;
}

typedef struct push {
        pw_engine *e;
        const char *name;
        const pw_registry_options *opts;
        oci_ref ref;
        oci_registry *reg;
        char *template_dir;
        char *work;         /* STATE/templates/.push-NAME-XXXXXX */
        int work_fd;        /* its lock: a live push's (recover.c reaps those nobody holds) */
        int lock_fd;        /* shared lock: no collection deletes the images being read */
        manifest *m;
        char *config;
        size_t config_size;
} push;

static void push_done(push *p)
{
        oci_registry_close(p->reg);
        oci_ref_done(&p->ref);
        if (p->lock_fd >= 0)
                close(p->lock_fd);
        if (p->work)
                rm_rf(p->work);
        if (p->work_fd >= 0)
                close(p->work_fd);
        free(p->work);
        free(p->template_dir);
        manifest_free(p->m);
        free(p->config);
}

/* A blob from fd (size bytes, that digest), unless the registry has it. */
static int push_blob(push *p, int fd, uint64_t size, const char *digest, pw_err *err)
{
        bool has;
        int r = oci_blob_exists(p->reg, digest, &has, err);
        if (r < 0 || has)
                return r;
        return oci_blob_put(p->reg, fd, size, digest, err);
}

/* The layer, written to WORK/layer.tar.zst; its fd, digest and size. */
static int write_layer(push *p, char digest[72], uint64_t *size, pw_err *err)
{
        _cleanup_free_ char *cpuinfo = strdup_printf("%s/cpuinfo", p->work);
        _cleanup_free_ char *images = strdup_printf("%s/images", p->template_dir);
        _cleanup_free_ char *rootfs = strdup_printf("%s/rootfs", p->template_dir);
        _cleanup_free_ char *path = strdup_printf("%s/layer.tar.zst", p->work);
        if (!cpuinfo || !images || !rootfs || !path)
                return -ENOMEM;
        int r = mkdir(cpuinfo, 0700) < 0 ? err_set(err, negative_errno(), "mkdir %s: %m", cpuinfo) : 0;
        if (r < 0 || (r = criu_cpuinfo_dump(p->e, cpuinfo, err)) < 0)
                return r < 0 ? err_prefix(err, r, "recording this CPU's features") : r;
        unlinkat(AT_FDCWD, path, 0);
        char cpuinfo_log[4096];
        snprintf(cpuinfo_log, sizeof(cpuinfo_log), "%s/cpuinfo.log", cpuinfo);
        unlink(cpuinfo_log); /* the layer carries what a restore needs, not our log */
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return err_set(err, negative_errno(), "creating %s: %m", path);
        const template_archive_part parts[] = {{"images", images}, {"rootfs", rootfs}, {"cpuinfo", cpuinfo}};
        char hex[65];
        r = template_archive_write(parts, ELEMENTSOF(parts), fd, hex, size, err);
        if (r < 0) {
                close(fd);
                return r;
        }
        snprintf(digest, 72, "sha256:%s", hex);
        return fd;
}

static int push_template(push *p, const char *ref_text, char **ret_digest, pw_err *err)
{
        int r = oci_ref_parse(ref_text, &p->ref, err);
        if (r < 0)
                return r;
        if (!p->ref.tag)
                return err_set(err, -EINVAL, "'%s': a push needs a tag, not a digest", ref_text);
        if (!(p->template_dir = engine_template_dir(p->e, p->name)))
                return -ENOMEM;
        if ((r = manifest_load(p->template_dir, &p->m, err)) < 0 || (r = manifest_check_sandbox(p->m, err)) < 0)
                return r;
        if ((p->lock_fd = store_lock_shared(p->template_dir, err)) < 0)
                return p->lock_fd;
        _cleanup_free_ char *manifest_path = strdup_printf("%s/manifest.json", p->template_dir);
        if (!manifest_path)
                return -ENOMEM;
        if ((r = read_file(manifest_path, MAX_CONFIG_BYTES, &p->config, &p->config_size)) < 0)
                return err_set(err, r, "reading %s: %s", manifest_path, strerror(-r));
        if ((r = locked_work_dir(p->e, ".push", p->name, &p->work, &p->work_fd, err)) < 0)
                return r;
        char layer_digest[72], config_digest[72], criu_version[32], hex[65];
        uint64_t layer_size;
        _cleanup_close_ int layer_fd = write_layer(p, layer_digest, &layer_size, err);
        if (layer_fd < 0)
                return layer_fd;
        if ((r = criu_version_text(p->e, criu_version, err)) < 0 ||
            (r = sha256_buffer_hex(p->config, p->config_size, hex)) < 0)
                return r;
        snprintf(config_digest, sizeof(config_digest), "sha256:%s", hex);
        _cleanup_close_ int config_fd = memfd_create("prewarm-config", MFD_CLOEXEC);
        if (config_fd < 0 || write_full(config_fd, p->config, p->config_size) < 0)
                return err_set(err, negative_errno(), "memfd: %m");
        _cleanup_free_ char *json = artifact_manifest(p->m, config_digest, p->config_size, layer_digest, layer_size,
                                                      criu_version);
        if (!json)
                return -ENOMEM;
        if ((r = oci_registry_open(&p->ref, p->opts, true, &p->reg, err)) < 0 ||
            (r = push_blob(p, config_fd, p->config_size, config_digest, err)) < 0 ||
            (r = push_blob(p, layer_fd, layer_size, layer_digest, err)) < 0)
                return r;
        return oci_manifest_put(p->reg, p->ref.tag, json, ret_digest, err);
}

/* ------------------------------------------------------------------ pull */

typedef struct pull {
        pw_engine *e;
        const pw_registry_options *opts;
        const char *ref_text;
        oci_ref ref;
        oci_registry *reg;
        json_t *artifact; /* the OCI manifest */
        char *artifact_digest;
        const char *config_digest, *layer_digest; /* in artifact */
        uint64_t config_size, layer_size;
        json_t *config; /* the template's manifest.json */
        char *name;     /* what it is installed as */
        char *work;     /* STATE/templates/.pull-NAME-XXXXXX, renamed into place at the end */
        int work_fd;    /* its lock (recover.c reaps what nobody holds) */
        int lock_fd;
} pull;

static void pull_done(pull *p)
{
        oci_registry_close(p->reg);
        oci_ref_done(&p->ref);
        json_decref(p->artifact);
        json_decref(p->config);
        free(p->artifact_digest);
        free(p->name);
        if (p->work)
                rm_rf(p->work);
        free(p->work);
        if (p->work_fd >= 0)
                close(p->work_fd);
        if (p->lock_fd >= 0)
                close(p->lock_fd);
}

/* A descriptor's digest and size, of the media type expected. */
static int descriptor(json_t *d, const char *type, uint64_t max, const char **ret_digest, uint64_t *ret_size,
                      const char *what, pw_err *err)
{
        const char *media = json_string_value(json_object_get(d, "mediaType"));
        const char *digest = json_string_value(json_object_get(d, "digest"));
        json_t *size = json_object_get(d, "size");
        char hex[65];
        if (!media || strcmp(media, type))
                return err_set(err, -EPROTO, "not a prewarm template: its %s is %s, not %s", what, media ? media : "untyped", type);
        if (!digest || digest_parse(digest, hex) < 0 || !json_is_integer(size) || json_integer_value(size) <= 0)
                return err_set(err, -EPROTO, "its %s descriptor has no valid digest and size", what);
        if ((uint64_t)json_integer_value(size) > max)
                return err_set(err, -EFBIG, "its %s of %lld bytes is over the bound of %llu", what,
                               (long long)json_integer_value(size), (unsigned long long)max);
        *ret_digest = digest;
        *ret_size = (uint64_t)json_integer_value(size);
        return 0;
}

static int parse_artifact(pull *p, const char *text, pw_err *err)
{
        json_error_t je;
        if (!(p->artifact = json_loads(text, 0, &je)) || !json_is_object(p->artifact))
                return err_set(err, -EPROTO, "its manifest is not JSON: %s", je.text);
        const char *type = json_string_value(json_object_get(p->artifact, "artifactType"));
        if (json_integer_value(json_object_get(p->artifact, "schemaVersion")) != 2 || !type || strcmp(type, ARTIFACT_TYPE))
                return err_set(err, -EPROTO, "not a prewarm template (artifact type %s, not %s)", type ? type : "none", ARTIFACT_TYPE);
        json_t *layers = json_object_get(p->artifact, "layers");
        if (json_array_size(layers) != 1)
                return err_set(err, -EPROTO, "a prewarm template has exactly one layer, this has %zu", json_array_size(layers));
        int r = descriptor(json_object_get(p->artifact, "config"), CONFIG_TYPE, MAX_CONFIG_BYTES, &p->config_digest,
                           &p->config_size, "config", err);
        return r < 0 ? r : descriptor(json_array_get(layers, 0), LAYER_TYPE, MAX_LAYER_BYTES, &p->layer_digest,
                                      &p->layer_size, "layer", err);
}

static const char *annotation(const pull *p, const char *key)
{
        return json_string_value(json_object_get(json_object_get(p->artifact, "annotations"), key));
}

static bool version_at_least(const char *have, const char *need)
{
        unsigned h[3] = {0}, n[3] = {0};
        sscanf(have, "%u.%u.%u", &h[0], &h[1], &h[2]);
        sscanf(need, "%u.%u.%u", &n[0], &n[1], &n[2]);
        for (int k = 0; k < 3; k++)
                if (h[k] != n[k])
                        return h[k] > n[k];
        return true;
}

/* What the annotations say the template needs, against this node, before its layer comes. */
static int check_node(pull *p, pw_err *err)
{
        const char *keys[] = {ANNOTATION_CRIU_VERSION, ANNOTATION_KERNEL, ANNOTATION_CGROUP, ANNOTATION_ARCH};
        for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                if (!annotation(p, keys[k]))
                        return err_set(err, -EPROTO, "not a prewarm template: no %s annotation", keys[k]);
        struct utsname u;
        uname(&u);
        char criu[32], theirs[32], ours[32];
        int r = criu_version_text(p->e, criu, err);
        if (r < 0)
                return r;
        kernel_series(annotation(p, ANNOTATION_KERNEL), theirs, sizeof(theirs));
        kernel_series(u.release, ours, sizeof(ours));
        if (strcmp(annotation(p, ANNOTATION_ARCH), u.machine))
                return err_set(err, -EXDEV, "it was checkpointed on %s, this node is %s", annotation(p, ANNOTATION_ARCH), u.machine);
        if (!version_at_least(criu, annotation(p, ANNOTATION_CRIU_VERSION)))
                return err_set(err, -EXDEV, "it was checkpointed by CRIU %s, this node has CRIU %s, which cannot read its images",
                               annotation(p, ANNOTATION_CRIU_VERSION), criu);
        if (strcmp(theirs, ours))
                return err_set(err, -EXDEV, "it was checkpointed on kernel %s, this node runs %s (a template restores on the kernel series it was made on)",
                               annotation(p, ANNOTATION_KERNEL), u.release);
        if (strcmp(annotation(p, ANNOTATION_CGROUP), cgroup_version()))
                return err_set(err, -EXDEV, "it was made on cgroup %s, this node has cgroup %s", annotation(p, ANNOTATION_CGROUP),
                               cgroup_version());
        return 0;
}

/* The config (the template's manifest.json), checked, and the name to install it as. */
static int fetch_config(pull *p, const char *as_name, pw_err *err)
{
        _cleanup_close_ int fd = memfd_create("prewarm-config", MFD_CLOEXEC);
        if (fd < 0)
                return err_set(err, negative_errno(), "memfd: %m");
        int r = oci_blob_get(p->reg, p->config_digest, p->config_size, MAX_CONFIG_BYTES, fd, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = NULL;
        size_t n;
        lseek(fd, 0, SEEK_SET);
        if ((r = read_fd(fd, MAX_CONFIG_BYTES, &text, &n)) < 0)
                return err_set(err, r, "reading the config: %s", strerror(-r));
        _cleanup_manifest_ manifest *m = NULL;
        if ((r = manifest_from_json(text, &m, err)) < 0)
                return err_prefix(err, -EPROTO, "its config is not a template manifest");
        if ((r = manifest_check_sandbox(m, err)) < 0)
                return r;
        /* Before its layer comes: a node whose /usr differs could not restore it anyway. */
        if ((r = host_files_check(m->host_files, m->n_host_files, err)) < 0)
                return r;
        const char *name = as_name ? as_name : m->name;
        if (!name_is_valid(name))
                return err_set(err, -EINVAL, "invalid template name '%s'", name);
        p->config = json_loads(text, 0, NULL);
        p->name = strdup(name);
        if (!p->config || !p->name || json_object_set_new(p->config, "name", json_string(name)) < 0)
                return -ENOMEM;
        return 0;
}

/* The layer into WORK, unpacked and its download removed. */
static int fetch_layer(pull *p, pw_err *err)
{
        _cleanup_free_ char *path = strdup_printf("%s/layer.tar.zst", p->work);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return err_set(err, negative_errno(), "creating %s: %m", path);
        int r = oci_blob_get(p->reg, p->layer_digest, p->layer_size, MAX_LAYER_BYTES, fd, err);
        if (r < 0)
                return r;
        unlink(path); /* the open fd reads on; nothing is left if we stop */
        lseek(fd, 0, SEEK_SET);
        if ((r = template_archive_extract(fd, p->work, layer_parts, MAX_UNPACKED_BYTES, err)) < 0)
                return err_prefix(err, r == -ENOMEM ? r : -EBADMSG, "unpacking its layer");
        return 0;
}

/* CRIU's word on whether this CPU has every feature the template's had. */
static int check_cpu(pull *p, pw_err *err)
{
        _cleanup_free_ char *dir = strdup_printf("%s/cpuinfo", p->work), *img = strdup_printf("%s/cpuinfo/cpuinfo.img", p->work);
        if (!dir || !img)
                return -ENOMEM;
        if (access(img, F_OK) < 0)
                return err_set(err, -EPROTO, "its layer has no cpuinfo/cpuinfo.img");
        int r = criu_cpuinfo_check(p->e, dir, err);
        if (r < 0)
                return err_prefix(err, -EXDEV, "this node's CPU lacks features of the one it was checkpointed on");
        return 0;
}

/* manifest.json (under its new name), the images checked against it, and where it came from. */
static int finish_directory(pull *p, pw_err *err)
{
        _cleanup_free_ char *text = json_dumps(p->config, JSON_INDENT(2) | JSON_SORT_KEYS);
        _cleanup_free_ char *path = strdup_printf("%s/manifest.json", p->work), *images = strdup_printf("%s/images", p->work);
        _cleanup_free_ char *source_path = strdup_printf("%s/" SOURCE_FILE, p->work);
        json_t *source = json_pack("{s:s, s:s, s:I}", "ref", p->ref_text, "digest", p->artifact_digest,
                                   "pulled", (json_int_t)time(NULL));
        _cleanup_free_ char *source_text = source ? json_dumps(source, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(source);
        if (!text || !path || !images || !source_path || !source_text)
                return -ENOMEM;
        int r = write_file_atomic(path, text, strlen(text), 0644);
        if (r >= 0)
                r = write_file_atomic(source_path, source_text, strlen(source_text), 0644);
        if (r < 0)
                return err_set(err, r, "writing %s: %s", path, strerror(-r));
        _cleanup_manifest_ manifest *m = NULL;
        if ((r = manifest_from_json(text, &m, err)) < 0 || (r = manifest_verify(p->e, images, m, err)) < 0)
                return err_prefix(err, -EBADMSG, "its images do not match its manifest");
        return 0;
}

static int pull_template(pull *p, const char *as_name, char **ret_digest, pw_err *err)
{
        int r = oci_ref_parse(p->ref_text, &p->ref, err);
        if (r < 0 || (r = oci_registry_open(&p->ref, p->opts, false, &p->reg, err)) < 0)
                return r;
        _cleanup_free_ char *text = NULL;
        if ((r = oci_manifest_get(p->reg, p->ref.digest ? p->ref.digest : p->ref.tag, &text, &p->artifact_digest, err)) < 0 ||
            (r = parse_artifact(p, text, err)) < 0 || (r = check_node(p, err)) < 0 || (r = fetch_config(p, as_name, err)) < 0)
                return r;
        if ((p->lock_fd = store_lock_name(p->e, p->name, err)) < 0)
                return p->lock_fd;
        if ((r = locked_work_dir(p->e, ".pull", p->name, &p->work, &p->work_fd, err)) < 0)
                return r;
        if ((r = fetch_layer(p, err)) < 0 || (r = check_cpu(p, err)) < 0 || (r = finish_directory(p, err)) < 0)
                return r;
        if ((r = store_install(p->e, p->name, p->work, err)) < 0)
                return r;
        free(p->work);
        p->work = NULL; /* it is the template now */
        ahead_drop(p->e->ahead, p->name);
        if (ret_digest && !(*ret_digest = strdup(p->artifact_digest)))
                return -ENOMEM;
        return 0;
}

/* ------------------------------------------------------------------ the API */

PW_PUBLIC int pw_template_push(pw_engine *e, const char *name, const char *ref, const pw_registry_options *opts,
                               char **ret_digest)
{
        if (!e)
                return -EINVAL;
        if (ret_digest)
                *ret_digest = NULL;
        pw_err err = {""};
        if (!name_is_valid(name))
                return template_name_refused(e, name);
        pw_registry_options given = {0};
        if (opts && SIZED_IN(given, opts) < 0)
                return engine_failf(e, -EINVAL, "pw_registry_options of an unknown size");
        push p = {.e = e, .name = name, .opts = &given, .lock_fd = -1, .work_fd = -1};
        char *digest = NULL;
        int r = push_template(&p, ref, &digest, &err);
        push_done(&p);
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "push of template %s to %s", name, ref ? ref : ""), &err));
        pw_log(e, PW_LOG_INFO, "template %s pushed to %s as %s", name, ref, digest);
        if (ret_digest)
                *ret_digest = digest;
        else
                free(digest);
        return 0;
}

PW_PUBLIC int pw_template_pull(pw_engine *e, const char *ref, const char *as_name, const pw_registry_options *opts,
                               char **ret_digest)
{
        if (!e)
                return -EINVAL;
        if (ret_digest)
                *ret_digest = NULL;
        pw_err err = {""};
        if (as_name && !name_is_valid(as_name))
                return template_name_refused(e, as_name);
        pw_registry_options given = {0};
        if (opts && SIZED_IN(given, opts) < 0)
                return engine_failf(e, -EINVAL, "pw_registry_options of an unknown size");
        pull p = {.e = e, .opts = &given, .ref_text = ref, .lock_fd = -1, .work_fd = -1};
        uint64_t t0 = now_us();
        int r = pull_template(&p, as_name, ret_digest, &err);
        if (r >= 0)
                pw_log(e, PW_LOG_INFO, "template %s pulled from %s (%s, %llu MiB layer) in %.1f ms", p.name, ref,
                       p.artifact_digest, (unsigned long long)(p.layer_size >> 20), (now_us() - t0) / 1000.0);
        pull_done(&p);
        if (r < 0)
                return engine_fail(e, r, (err_prefix(&err, r, "pull of %s", ref ? ref : ""), &err));
        return 0;
}

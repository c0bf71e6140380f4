/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* manifest.h: JSON round trip and validation, hashing and verifying an images directory. */
#include <jansson.h>
#include <sys/time.h>

#include "digest.h"
#include "manifest.h"
#include "unit.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_D "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"

/* A complete manifest; images deliberately not in name order. */
static manifest *sample_manifest(void)
{
        manifest *m = calloc(1, sizeof(*m));
        ck_assert_ptr_nonnull(m);
        m->name = strdup("python3");
        m->definition_sha256 = strdup(SHA_D);
        m->runtime = strdup("Python 3.11.2");
        m->criu_version = strdup("4.1");
        m->kernel = strdup("6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC");
        m->created = 5000000000LL; /* past 2038 */
        m->ctl_in_ino = 123456789012ULL;
        m->ctl_out_ino = 42;
        m->memory_mb = 512;
        m->pids_max = 32;
        m->tmp_mb = 64;
        m->n_images = 3;
        m->images = calloc(3, sizeof(*m->images));
        ck_assert_ptr_nonnull(m->images);
        m->images[0] = (manifest_image){.file = strdup("pages-1.img"), .size = 3ULL << 30};
        memcpy(m->images[0].sha256, SHA_A, 65);
        m->images[1] = (manifest_image){.file = strdup("core-1.img"), .size = 0};
        memcpy(m->images[1].sha256, SHA_B, 65);
        m->images[2] = (manifest_image){.file = strdup("inventory.img"), .size = 77};
        memcpy(m->images[2].sha256, SHA_D, 65);
        return m;
}

static const char *const sorted_files[] = {"core-1.img", "inventory.img", "pages-1.img"};

START_TEST(test_round_trip)
{
        _cleanup_manifest_ manifest *m = sample_manifest();
        _cleanup_free_ char *json = manifest_to_json(m);
        ck_assert_ptr_nonnull(json);

        pw_err err = {""};
        _cleanup_manifest_ manifest *back = NULL;
        int r = manifest_from_json(json, &back, &err);
        ck_assert_msg(r == 0, "%d %s\n%s", r, err.msg, json);
        ck_assert_str_eq(back->name, "python3");
        ck_assert_str_eq(back->definition_sha256, SHA_D);
        ck_assert_str_eq(back->runtime, "Python 3.11.2");
        ck_assert_str_eq(back->criu_version, "4.1");
        ck_assert_str_eq(back->kernel, "6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC");
        ck_assert_int_eq(back->created, 5000000000LL);
        ck_assert_uint_eq(back->ctl_in_ino, 123456789012ULL);
        ck_assert_uint_eq(back->ctl_out_ino, 42);
        ck_assert_uint_eq(back->memory_mb, 512);
        ck_assert_uint_eq(back->pids_max, 32);
        ck_assert_uint_eq(back->tmp_mb, 64);
        ck_assert_uint_eq(back->n_images, 3);
        /* sorted by file name */
        for (size_t i = 0; i < 3; i++)
                ck_assert_str_eq(back->images[i].file, sorted_files[i]);
        ck_assert_uint_eq(back->images[0].size, 0);
        ck_assert_str_eq(back->images[0].sha256, SHA_B);
        ck_assert_uint_eq(back->images[1].size, 77);
        ck_assert_str_eq(back->images[1].sha256, SHA_D);
        ck_assert_uint_eq(back->images[2].size, 3ULL << 30);
        ck_assert_str_eq(back->images[2].sha256, SHA_A);

        /* The text is stable: a second trip gives the same JSON. */
        _cleanup_free_ char *again = manifest_to_json(back);
        ck_assert_str_eq(again, json);
}
END_TEST

START_TEST(test_json_shape)
{
        /* The documented layout, read back with jansson rather than with our own parser. */
        _cleanup_manifest_ manifest *m = sample_manifest();
        _cleanup_free_ char *text = manifest_to_json(m);
        json_error_t jerr;
        json_t *root = json_loads(text, 0, &jerr);
        ck_assert_ptr_nonnull(root);
        ck_assert_int_eq(json_integer_value(json_object_get(root, "format")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(root, "name")), "python3");
        json_t *pipes = json_object_get(root, "control_pipes");
        ck_assert_int_eq(json_integer_value(json_object_get(pipes, "in_inode")), 123456789012LL);
        ck_assert_int_eq(json_integer_value(json_object_get(pipes, "out_inode")), 42);
        json_t *limits = json_object_get(root, "limits");
        ck_assert_int_eq(json_integer_value(json_object_get(limits, "memory_mb")), 512);
        json_t *images = json_object_get(root, "images");
        ck_assert_uint_eq(json_object_size(images), 3);
        json_t *inv = json_object_get(images, "inventory.img");
        ck_assert_str_eq(json_string_value(json_object_get(inv, "sha256")), SHA_D);
        ck_assert_int_eq(json_integer_value(json_object_get(inv, "size")), 77);
        json_decref(root);
}
END_TEST

START_TEST(test_from_json_sorts_images)
{
        /* Written by hand, images out of order: they come back sorted by name. */
        const char *text =
                "{\"format\": 1, \"name\": \"t\", \"definition_sha256\": \"" SHA_D "\",\n"
                " \"runtime\": \"r\", \"criu_version\": \"4.1\", \"kernel\": \"k\", \"created\": 7,\n"
                " \"control_pipes\": {\"out_inode\": 2, \"in_inode\": 1},\n"
                " \"limits\": {\"tmp_mb\": 3, \"pids_max\": 2, \"memory_mb\": 1},\n"
                " \"images\": {\"zz.img\": {\"size\": 3, \"sha256\": \"" SHA_A "\"},\n"
                "            \"aa.img\": {\"sha256\": \"" SHA_B "\", \"size\": 1},\n"
                "            \"mm.img\": {\"sha256\": \"" SHA_D "\", \"size\": 2}}}";
        pw_err err = {""};
        _cleanup_manifest_ manifest *m = NULL;
        int r = manifest_from_json(text, &m, &err);
        ck_assert_msg(r == 0, "%d %s", r, err.msg);
        ck_assert_uint_eq(m->n_images, 3);
        ck_assert_str_eq(m->images[0].file, "aa.img");
        ck_assert_str_eq(m->images[0].sha256, SHA_B);
        ck_assert_uint_eq(m->images[0].size, 1);
        ck_assert_str_eq(m->images[1].file, "mm.img");
        ck_assert_uint_eq(m->images[1].size, 2);
        ck_assert_str_eq(m->images[2].file, "zz.img");
        ck_assert_str_eq(m->images[2].sha256, SHA_A);
        ck_assert_int_eq(m->created, 7);
        ck_assert_uint_eq(m->ctl_in_ino, 1);
        ck_assert_uint_eq(m->ctl_out_ino, 2);
        ck_assert_uint_eq(m->memory_mb, 1);
        ck_assert_uint_eq(m->pids_max, 2);
        ck_assert_uint_eq(m->tmp_mb, 3);
}
END_TEST

/* Parses text expecting -EUCLEAN, a reason, and *ret untouched. */
static void from_json_fails(const char *text, const char *why)
{
        pw_err err = {""};
        manifest *sentinel = (manifest *)0x1, *m = sentinel;
        int r = manifest_from_json(text, &m, &err);
        ck_assert_msg(r == -EUCLEAN, "%s: expected -EUCLEAN, got %d", why, r);
        ck_assert_ptr_eq(m, sentinel);
        ck_assert_msg(err.msg[0] != '\0', "%s: no reason given", why);
}

/* The sample's JSON with one change applied by edit. */
static char *edited_json(void (*edit)(json_t *root))
{
        _cleanup_manifest_ manifest *m = sample_manifest();
        _cleanup_free_ char *text = manifest_to_json(m);
        json_error_t jerr;
        json_t *root = json_loads(text, 0, &jerr);
        ck_assert_ptr_nonnull(root);
        edit(root);
        char *out = json_dumps(root, JSON_SORT_KEYS);
        json_decref(root);
        ck_assert_ptr_nonnull(out);
        return out;
}

static json_t *images_of(json_t *root) { return json_object_get(root, "images"); }

static void edit_format_2(json_t *root) { json_object_set_new(root, "format", json_integer(2)); }
static void edit_format_string(json_t *root) { json_object_set_new(root, "format", json_string("1")); }
static void edit_name_number(json_t *root) { json_object_set_new(root, "name", json_integer(7)); }
static void edit_slash(json_t *root)
{
        json_t *img = json_deep_copy(json_object_get(images_of(root), "core-1.img"));
        json_object_set_new(images_of(root), "sub/core-1.img", img);
}
static void edit_empty_name(json_t *root)
{
        json_t *img = json_deep_copy(json_object_get(images_of(root), "core-1.img"));
        json_object_set_new(images_of(root), "", img);
}
static void edit_nonhex_sha(json_t *root)
{
        json_object_set_new(json_object_get(images_of(root), "core-1.img"), "sha256",
                            json_string("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"));
}
static void edit_dotdot(json_t *root)
{
        json_t *img = json_deep_copy(json_object_get(images_of(root), "core-1.img"));
        json_object_set_new(images_of(root), "..", img);
}
static void edit_short_sha(json_t *root)
{
        json_object_set_new(json_object_get(images_of(root), "core-1.img"), "sha256",
                            json_string(SHA_B + 1));
}
static void edit_long_sha(json_t *root)
{
        json_object_set_new(json_object_get(images_of(root), "core-1.img"), "sha256",
                            json_string(SHA_B "0"));
}
static void edit_no_sha(json_t *root) { json_object_del(json_object_get(images_of(root), "core-1.img"), "sha256"); }
static void edit_negative_size(json_t *root)
{
        json_object_set_new(json_object_get(images_of(root), "core-1.img"), "size", json_integer(-1));
}
static void edit_string_size(json_t *root)
{
        json_object_set_new(json_object_get(images_of(root), "core-1.img"), "size", json_string("5"));
}
static void edit_image_not_object(json_t *root) { json_object_set_new(images_of(root), "core-1.img", json_string(SHA_B)); }
static void edit_no_images(json_t *root) { json_object_clear(images_of(root)); }
static void edit_images_array(json_t *root) { json_object_set_new(root, "images", json_array()); }
static void edit_zero_memory(json_t *root)
{
        json_object_set_new(json_object_get(root, "limits"), "memory_mb", json_integer(0));
}
static void edit_no_out_inode(json_t *root) { json_object_del(json_object_get(root, "control_pipes"), "out_inode"); }

START_TEST(test_from_json_malformed)
{
        from_json_fails("", "empty text");
        from_json_fails("not json", "not JSON");
        from_json_fails("{\"format\": 1,", "truncated");
        from_json_fails("[]", "an array");
        from_json_fails("{}", "an empty object");
        from_json_fails("null", "null");

        /* every top-level member is required */
        static const char *const members[] = {"format", "name", "definition_sha256", "runtime",
                                              "criu_version", "kernel", "created", "control_pipes",
                                              "limits", "images"};
        for (size_t i = 0; i < ELEMENTSOF(members); i++) {
                _cleanup_manifest_ manifest *m = sample_manifest();
                _cleanup_free_ char *text = manifest_to_json(m);
                json_error_t jerr;
                json_t *root = json_loads(text, 0, &jerr);
                ck_assert_int_eq(json_object_del(root, members[i]), 0);
                _cleanup_free_ char *out = json_dumps(root, 0);
                json_decref(root);
                from_json_fails(out, members[i]);
        }

        static const struct {
                void (*edit)(json_t *);
                const char *why;
        } edits[] = {
                {edit_format_2, "format 2"},
                {edit_format_string, "format as a string"},
                {edit_name_number, "name not a string"},
                {edit_slash, "image name with '/'"},
                {edit_dotdot, "image name '..'"},
                {edit_short_sha, "sha256 of 63 digits"},
                {edit_long_sha, "sha256 of 65 digits"},
                {edit_no_sha, "image without sha256"},
                {edit_negative_size, "negative size"},
                {edit_string_size, "size as a string"},
                {edit_image_not_object, "image entry not an object"},
                {edit_no_images, "no images"},
                {edit_images_array, "images as an array"},
                {edit_zero_memory, "memory_mb 0"},
                {edit_no_out_inode, "control_pipes without out_inode"},
                {edit_empty_name, "image with an empty name"},
                {edit_nonhex_sha, "sha256 that is not hex"},
        };
        for (size_t i = 0; i < ELEMENTSOF(edits); i++) {
                _cleanup_free_ char *text = edited_json(edits[i].edit);
                from_json_fails(text, edits[i].why);
        }

        /* The specific reasons of two of them. */
        _cleanup_free_ char *empty = edited_json(edit_no_images);
        pw_err err = {""};
        manifest *m = NULL;
        ck_assert_int_eq(manifest_from_json(empty, &m, &err), -EUCLEAN);
        ck_assert_str_eq(err.msg, "manifest lists no images");
        _cleanup_free_ char *slash = edited_json(edit_slash);
        ck_assert_int_eq(manifest_from_json(slash, &m, &err), -EUCLEAN);
        ck_assert_str_eq(err.msg, "manifest entry for image 'sub/core-1.img' is malformed");
        ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_manifest_load)
{
        pw_err err = {""};
        manifest *m = NULL;
        ck_assert_int_eq(manifest_load(tmp_dir, &m, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "not built"));

        _cleanup_free_ char *path = tmp_path("manifest.json");
        put_text(path, "{\"format\": 1}");
        ck_assert_int_eq(manifest_load(tmp_dir, &m, &err), -EUCLEAN);
        ck_assert_ptr_nonnull(strstr(err.msg, path)); /* the reason names the file */
        ck_assert_ptr_null(m);

        _cleanup_manifest_ manifest *sample = sample_manifest();
        _cleanup_free_ char *json = manifest_to_json(sample);
        put_text(path, json);
        ck_assert_int_eq(manifest_load(tmp_dir, &m, &err), 0);
        ck_assert_str_eq(m->name, "python3");
        ck_assert_uint_eq(m->n_images, 3);
        manifest_free(m);
}
END_TEST

/* Hashing and verifying: a scratch images directory and an engine. */

static pw_engine *engine;
static char *images;
static char *big;     /* content of pages-1.img */
#define BIG_SIZE ((3u << 20) + 12345u) /* more than sha256_fd_hex's 1 MiB chunk */

static void engine_setup(void)
{
        _cleanup_free_ char *state = tmp_path("state");
        ck_assert_int_eq(mkdir_p(state, 0755), 0);
        pw_options opts = {.state_dir = state};
        int r = pw_engine_new(&opts, &engine);
        ck_assert_msg(r == 0, "pw_engine_new: %d (%s)", r, strerror(-r));

        images = tmp_path("images");
        ck_assert_int_eq(mkdir(images, 0755), 0);
        big = malloc(BIG_SIZE);
        ck_assert_ptr_nonnull(big);
        for (size_t i = 0; i < BIG_SIZE; i++)
                big[i] = (char)(i * 2654435761u >> 13);
        _cleanup_free_ char *p1 = tmp_path("images/pages-1.img");
        _cleanup_free_ char *p2 = tmp_path("images/core-1.img");
        _cleanup_free_ char *p3 = tmp_path("images/inventory.img");
        put_file(p1, big, BIG_SIZE);
        put_text(p2, "core of the zygote");
        put_file(p3, "", 0);
}

static void engine_teardown(void)
{
        engine = pw_engine_free(engine);
        free(images);
        free(big);
        images = big = NULL;
}

static manifest *hashed(void)
{
        manifest *m = sample_manifest();
        for (size_t i = 0; i < m->n_images; i++)
                free(m->images[i].file);
        free(m->images);
        m->images = NULL;
        m->n_images = 0;
        pw_err err = {""};
        int r = manifest_hash_images(images, m, &err);
        ck_assert_msg(r == 0, "hash: %d %s", r, err.msg);
        return m;
}

static void verify_fails(const manifest *m, const char *want)
{
        pw_err err = {""};
        int r = manifest_verify(engine, images, m, &err);
        ck_assert_msg(r == -EUCLEAN, "expected -EUCLEAN, got %d (%s)", r, err.msg);
        ck_assert_str_eq(err.msg, want);
}

static void verify_ok(const manifest *m)
{
        pw_err err = {""};
        int r = manifest_verify(engine, images, m, &err);
        ck_assert_msg(r == 0, "verify: %d %s", r, err.msg);
}

START_TEST(test_hash_images)
{
        _cleanup_free_ char *hidden = tmp_path("images/.lock");
        put_text(hidden, "dot files are not images");
        _cleanup_manifest_ manifest *m = hashed();
        ck_assert_uint_eq(m->n_images, 3);
        for (size_t i = 0; i < 3; i++)
                ck_assert_str_eq(m->images[i].file, sorted_files[i]);

        char want[65];
        ck_assert_int_eq(sha256_buffer_hex("core of the zygote", 18, want), 0);
        ck_assert_uint_eq(m->images[0].size, 18);
        ck_assert_str_eq(m->images[0].sha256, want);
        ck_assert_uint_eq(m->images[1].size, 0);
        ck_assert_str_eq(m->images[1].sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        ck_assert_int_eq(sha256_buffer_hex(big, BIG_SIZE, want), 0);
        ck_assert_uint_eq(m->images[2].size, BIG_SIZE);
        ck_assert_str_eq(m->images[2].sha256, want);

        /* survives the JSON round trip */
        _cleanup_free_ char *json = manifest_to_json(m);
        pw_err err = {""};
        _cleanup_manifest_ manifest *back = NULL;
        ck_assert_int_eq(manifest_from_json(json, &back, &err), 0);
        ck_assert_uint_eq(back->n_images, 3);
        ck_assert_str_eq(back->images[2].sha256, want);
        ck_assert_uint_eq(back->images[2].size, BIG_SIZE);
        verify_ok(back);

        _cleanup_free_ char *missing = tmp_path("nothing-here");
        _cleanup_manifest_ manifest *none = calloc(1, sizeof(*none));
        ck_assert_int_eq(manifest_hash_images(missing, none, &err), -ENOENT);
        ck_assert_ptr_nonnull(strstr(err.msg, missing));
}
END_TEST

START_TEST(test_verify_untouched)
{
        _cleanup_manifest_ manifest *m = hashed();
        verify_ok(m);
        verify_ok(m); /* from the cache */

        /* reading the files does not change what they are */
        _cleanup_free_ char *p = tmp_path("images/pages-1.img"), *text = NULL;
        ck_assert_int_eq(read_file(p, BIG_SIZE, &text, NULL), 0);
        verify_ok(m);
}
END_TEST

/* Overwrites one byte in place (same inode, same size). */
static void flip_byte(const char *name, off_t offset)
{
        _cleanup_free_ char *p = tmp_path(name);
        _cleanup_close_ int fd = open(p, O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        char c;
        ck_assert_int_eq(pread(fd, &c, 1, offset), 1);
        c ^= 0x01;
        ck_assert_int_eq(pwrite(fd, &c, 1, offset), 1);
}

START_TEST(test_verify_modified_byte)
{
        _cleanup_manifest_ manifest *m = hashed();
        flip_byte("images/pages-1.img", BIG_SIZE - 1); /* the last byte of the last chunk */
        verify_fails(m, "image pages-1.img does not match its sha256 digest");
}
END_TEST

START_TEST(test_verify_modified_after_cached)
{
        _cleanup_manifest_ manifest *m = hashed();
        verify_ok(m);
        flip_byte("images/core-1.img", 0);
        /* A distinct mtime, whatever the file system's timestamp granularity. */
        _cleanup_free_ char *p = tmp_path("images/core-1.img");
        const struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
        ck_assert_int_eq(utimes(p, tv), 0);
        verify_fails(m, "image core-1.img does not match its sha256 digest");
        verify_fails(m, "image core-1.img does not match its sha256 digest"); /* not cached */
}
END_TEST

START_TEST(test_verify_missing_file)
{
        _cleanup_manifest_ manifest *m = hashed();
        verify_ok(m);
        _cleanup_free_ char *p = tmp_path("images/inventory.img");
        ck_assert_int_eq(unlink(p), 0);
        verify_fails(m, "image inventory.img is missing");
}
END_TEST

START_TEST(test_verify_extra_file)
{
        _cleanup_manifest_ manifest *m = hashed();
        verify_ok(m);
        _cleanup_free_ char *p = tmp_path("images/zz-extra.img");
        put_text(p, "stowaway");
        verify_fails(m, "unexpected file zz-extra.img among the images");
        ck_assert_int_eq(unlink(p), 0);
        _cleanup_free_ char *q = tmp_path("images/aa-extra.img");
        put_text(q, "");
        verify_fails(m, "unexpected file aa-extra.img among the images");
}
END_TEST

START_TEST(test_verify_replaced_and_special)
{
        _cleanup_manifest_ manifest *m = hashed();
        /* a symlink standing in for an image is not followed */
        _cleanup_free_ char *p = tmp_path("images/core-1.img");
        _cleanup_free_ char *copy = tmp_path("core-copy");
        put_text(copy, "core of the zygote");
        ck_assert_int_eq(unlink(p), 0);
        ck_assert_int_eq(symlink(copy, p), 0);
        pw_err err = {""};
        ck_assert_int_eq(manifest_verify(engine, images, m, &err), -EUCLEAN);

        /* an empty or missing directory */
        _cleanup_free_ char *empty = tmp_path("empty");
        ck_assert_int_eq(mkdir(empty, 0755), 0);
        ck_assert_int_eq(manifest_verify(engine, empty, m, &err), -EUCLEAN);
        _cleanup_free_ char *want = strdup_printf("images missing in %s", empty);
        ck_assert_str_eq(err.msg, want);
        _cleanup_free_ char *gone = tmp_path("gone");
        ck_assert_int_eq(manifest_verify(engine, gone, m, &err), -EUCLEAN);
}
END_TEST

static Suite *manifest_suite(void)
{
        Suite *s = suite_create("manifest");

        TCase *tc = tcase_create("json");
        tcase_add_tmp_dir(tc);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_json_shape);
        tcase_add_test(tc, test_from_json_sorts_images);
        tcase_add_test(tc, test_from_json_malformed);
        tcase_add_test(tc, test_manifest_load);
        suite_add_tcase(s, tc);

        tc = tcase_create("verify");
        tcase_add_tmp_dir(tc);
        /* after tmp_dir's setup, before its teardown */
        tcase_add_checked_fixture(tc, engine_setup, engine_teardown);
        tcase_add_test(tc, test_hash_images);
        tcase_add_test(tc, test_verify_untouched);
        tcase_add_test(tc, test_verify_modified_byte);
        tcase_add_test(tc, test_verify_modified_after_cached);
        tcase_add_test(tc, test_verify_missing_file);
        tcase_add_test(tc, test_verify_extra_file);
        tcase_add_test(tc, test_verify_replaced_and_special);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return run_suite(manifest_suite());
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * {"op": "specialize"}: the function's shared object, from the code blob, loaded with dlopen. A
 * .so blob is written into a private directory under $TMPDIR (/tmp in the sandbox); an archive is
 * unpacked into one, which becomes the working directory, and its handler is its top-level
 * handler.so, or else its only top-level .so. Its entry point is the symbol `main` names
 * (docs/agent-protocol.md#native).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "agent.h"
#include "archive.h"
#include "capture.h"
#include "util.h"

#define HANDLER_IN_ARCHIVE "handler.so"

typedef struct code_request {
        const char *filename;
        const char *entry;
        json_t *env;
} code_request;

bool env_is_valid(json_t *env)
{
        const char *key;
        json_t *value;
        if (!json_is_object(env))
                return false;
        json_object_foreach(env, key, value)
                if (!json_is_string(value) || !key[0] || strchr(key, '='))
                        return false;
        return true;
}

/* The request's fields; anything malformed is a protocol error. */
static int request_read(json_t *req, code_request *c, refusal *why)
{
        json_t *entry = json_object_get(req, "main"), *convention = json_object_get(req, "convention");
        c->filename = json_string_value(json_object_get(req, "filename"));
        c->env = json_object_get(req, "env");
        if (!c->filename || strchr(c->filename, '/') ||
            (!str_has_suffix(c->filename, ".so") && archive_kind_of(c->filename) == ARCHIVE_NONE))
                return refuse(why, "protocol", "filename must be a file name ending in .so, .zip, .tar, .tar.gz or .tgz");
        if (entry && !json_is_string(entry))
                return refuse(why, "protocol", "main must be a string");
        if (c->env && !env_is_valid(c->env))
                return refuse(why, "protocol", "env must be an object of strings with names that hold no '='");
        if (convention && (!json_is_string(convention) || strcmp(json_string_value(convention), "openwhisk")))
                return refuse(why, "protocol", "the native agent serves the openwhisk convention only");
        /* "main" is every runtime's default in the engine; no function's entry point is main(). */
        c->entry = json_string_value(entry);
        if (!c->entry || !c->entry[0] || !strcmp(c->entry, "main"))
                c->entry = PW_HANDLER_SYMBOL;
        return 0;
}

static int apply_env(json_t *env, refusal *why)
{
        const char *key;
        json_t *value;
        json_object_foreach(env, key, value)
                if (setenv(key, json_string_value(value), 1) < 0)
                        return refuse(why, "load", "setting %s in the environment: %m", key);
        return 0;
}

/* The .so blob as the file dir/filename. */
static int write_object(const char *dir, const char *filename, const void *blob, size_t size, char **ret_path,
                        refusal *why)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s", dir, filename);
        if (!path)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        int r = fd < 0 ? negative_errno() : write_full(fd, blob, size);
        if (r < 0 && fd >= 0)
                unlink(path);
        if (r < 0)
                return refuse(why, "load", "writing %s: %s", path, strerror(-r));
        *ret_path = TAKE_PTR(path);
        return 0;
}

static bool is_regular(int dir_fd, const char *name)
{
        struct stat st;
        return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* The archive's handler: its top-level handler.so, or else its only top-level .so. */
static int find_handler(const char *dir, char **ret_path, refusal *why)
{
        DIR *d = opendir(dir);
        if (!d)
                return refuse(why, "load", "opening %s: %m", dir);
        _cleanup_strv_free_ char **found = NULL;
        bool named = false;
        struct dirent *de;
        while (!named && (de = readdir(d)))
                if (str_has_suffix(de->d_name, ".so") && is_regular(dirfd(d), de->d_name)) {
                        named = !strcmp(de->d_name, HANDLER_IN_ARCHIVE);
                        if (named)
                                strv_free(TAKE_PTR(found));
                        if (strv_push(&found, de->d_name) < 0) {
                                closedir(d);
                                return -ENOMEM;
                        }
                }
        closedir(d);
        size_t n = strv_length(found);
        if (n == 0)
                return refuse(why, "load", "the archive holds no " HANDLER_IN_ARCHIVE " (nor any other .so) at its top");
        if (n > 1)
                return refuse(why, "load", "the archive holds %zu .so files at its top (%s, %s%s) and no "
                              HANDLER_IN_ARCHIVE " to say which is the function", n, found[0], found[1], n > 2 ? ", ..." : "");
        *ret_path = strdup_printf("%s/%s", dir, found[0]);
        return *ret_path ? 0 : -ENOMEM;
}

static int unpack(const char *dir, archive_kind kind, const void *blob, size_t size, char **ret_path, refusal *why)
{
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return refuse(why, "load", "opening %s: %m", dir);
        int r = archive_unpack(blob, size, kind, dir_fd, why->message, sizeof(why->message));
        if (r < 0) {
                why->kind = "load";
                return r;
        }
        if ((r = find_handler(dir, ret_path, why)) < 0)
                return r;
        /* Relative paths reach the files shipped beside the function. */
        if (chdir(dir) < 0)
                return refuse(why, "load", "chdir %s: %m", dir);
        return 0;
}

/* Loads the object and finds its entry point; what its constructors print goes to cap. */
static int open_handler(agent *a, const char *path, const char *entry, capture *cap, refusal *why)
{
        int r = capture_begin(cap);
        if (r < 0)
                return refuse(why, "load", "capturing the output: %s", strerror(-r));
        void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        capture_end(cap);
        const char *name = strrchr(path, '/') + 1;
        if (!library)
                return refuse(why, "load", "cannot load %s: %s", name, dlerror());
        dlerror();
        void *symbol = dlsym(library, entry);
        if (!symbol)
                return refuse(why, "load", "%s has no symbol '%s' to call: %s", name, entry, dlerror());
        a->library = library;
        a->handler = (pw_handler_fn *)symbol;
        a->before_checkpoint = (pw_hook_fn *)dlsym(library, "pw_before_checkpoint");
        a->after_restore = (pw_hook_fn *)dlsym(library, "pw_after_restore");
        return 0;
}

/* A new private directory under $TMPDIR or /tmp; NULL with errno set. */
static char *private_dir(void)
{
        const char *tmp = getenv("TMPDIR");
        char *dir = strdup_printf("%s/action-XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
        if (dir && !mkdtemp(dir)) {
                free(dir);
                return NULL;
        }
        return dir;
}

static int specialize(agent *a, json_t *req, const void *blob, size_t size, capture *cap, refusal *why)
{
        if (a->specialized)
                return refuse(why, "state", "already specialized; an instance loads code only once");
        code_request c = {0};
        int r = request_read(req, &c, why);
        if (r < 0)
                return r;
        a->specialized = true; /* from here on the function's code may run, even if loading fails */
        if ((r = helper_go_under_init()) < 0) /* before any of its code: the init reaps its orphans */
                return refuse(why, "load", "forking the agent under an init: %s", strerror(-r));
        _cleanup_free_ char *dir = private_dir(); /* the agent's TMPDIR, not one the function sets */
        if (!dir)
                return refuse(why, "load", "making a directory for the code: %m");
        if (c.env && (r = apply_env(c.env, why)) < 0)
                return r;
        _cleanup_free_ char *path = NULL;
        archive_kind kind = archive_kind_of(c.filename);
        if (kind != ARCHIVE_NONE) {
                r = unpack(dir, kind, blob, size, &path, why);
                return r < 0 ? r : open_handler(a, path, c.entry, cap, why);
        }
        /* The file stays: a checkpoint of the instance (a second-level template) dumps /tmp with
         * it, while CRIU would have to copy a deleted one into its images, and refuses to past
         * 1 MiB. */
        r = write_object(dir, c.filename, blob, size, &path, why);
        return r < 0 ? r : open_handler(a, path, c.entry, cap, why);
}

json_t *agent_specialize(agent *a, json_t *req, const void *blob, size_t size)
{
        refusal why = {0};
        _cleanup_capture_ capture cap = CAPTURE_INIT;
        int r = specialize(a, req, blob, size, &cap, &why);
        if (r < 0 && !why.kind)
                refuse(&why, "load", "loading the code: %s", strerror(-r));
        json_t *reply = r < 0 ? refusal_reply(&why) : json_pack("{s:b}", "ok", 1);
        if (reply && capture_add_fields(&cap, reply, false) < 0)
                reply = (json_decref(reply), NULL);
        return reply;
}

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A restore's own view of a template's images in which every task runs as the instance's uid.
 *
 * CRIU restores each task's credentials from its core-PID.img (thread_core.creds: uids, gids,
 * capabilities, securebits, no_new_privs); it has no option to change them. So that copies of one
 * template never share a host uid, and are never privileged for a moment, a restore reads a view
 * of the template's (verified) images: copies of the core images with their uid and gid fields
 * replaced, and for every other image a relative symlink into a read-only bind of the template's
 * images directory beside the view. Relative, because CRIU reads some images after it entered the
 * restored root, where host paths do not resolve; a bind, because it holds the directory itself
 * and not its name, and no template file becomes a mount point (which could not be renamed).
 */
#pragma once

#include <linux/filter.h>

#include "internal.h"

/* Rewrites one core image (the bytes of core-PID.img) so that its task's real, effective, saved
 * and filesystem uids are uid and its gids gid; nothing else changes. *ret_old_uid gets the uid it
 * had. Caller frees *ret. Errors: -EBADMSG (not a core image CRIU wrote), -ENOMEM. */
int core_image_set_creds(const uint8_t *in, size_t n, uid_t uid, gid_t gid, uint8_t **ret,
                         size_t *ret_size, uid_t *ret_old_uid);

/* Rewrites seccomp.img (its bytes) so that its one filter is prog instead. Caller frees *ret.
 * Errors: -EBADMSG (not a seccomp image CRIU wrote, or not exactly one filter), -ENOMEM. */
int seccomp_image_set_filter(const uint8_t *in, size_t n, const struct sock_fprog *prog, uint8_t **ret,
                             size_t *ret_size);

/* Binds images_dir at src and fills view with the view described above (src and view are created,
 * 0700, side by side; the bind is private to the host's mount namespace, and on success the
 * caller unmounts src when done, also after a failure of this call once src exists). Every task of
 * the template must have run as a uid for which allowed(uid) holds: a template whose tasks ran as
 * another uid (root, before the hardened sandbox) is -EUCLEAN. With seccomp, the view's seccomp.img
 * is a copy with that filter instead of the checkpointed one (a template parent's, clone.h). */
int images_view_for_uid(const char *images_dir, const char *src, const char *view, uid_t uid,
                        gid_t gid, bool (*allowed)(uid_t uid, void *userdata), void *userdata,
                        const struct sock_fprog *seccomp, uid_t *ret_old_uid, pw_err *err);

/* A second-level template's /tmp comes back with the files the function left there, owned by the
 * uid it was checkpointed as: this gives the restored instance pid (as uid to) what from owns in
 * its /tmp, through /proc/PID/root without following any link the function could have planted. */
int restored_tmp_chown(pid_t pid, uid_t from, uid_t to);

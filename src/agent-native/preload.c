/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the native template loads before its checkpoint: the libraries its definition preloads. */
#include <dlfcn.h>
#include <stdio.h>

#include "agent.h"
#include "util.h"

int preload_libraries(void)
{
        const char *list = getenv("PREWARM_PRELOAD");
        _cleanup_strv_free_ char **names = strv_split_ws(list ? list : "");
        if (!names)
                return -ENOMEM;
        /* RTLD_NOW: their relocations are done here, once, for every copy. A function that links
         * one of them finds it by its soname, already mapped. */
        for (char **name = names; *name; name++)
                if (!dlopen(*name, RTLD_NOW | RTLD_LOCAL)) {
                        fprintf(stderr, "prewarm agent: cannot preload %s: %s\n", *name, dlerror());
                        return -ENOENT;
                }
        return 0;
}

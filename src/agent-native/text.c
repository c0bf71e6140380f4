/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Text the agent puts into JSON replies: what a function printed or said must be UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "util.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* The length of the well-formed UTF-8 character at s[0..n), or 0 if there is none. */
static size_t char_length(const unsigned char *s, size_t n)
{
        size_t want = s[0] < 0x80 ? 1 : s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
        return want && want <= n && utf8_valid((const char *)s, want) ? want : 0;
}

char *utf8_clean(const char *text, size_t n, size_t *ret_len)
{
        /* Each byte becomes at most the three of U+FFFD. */
        char *out = malloc(n * 3 + 1);
        if (!out)
                return NULL;
        size_t len = 0;
        for (size_t i = 0; i < n;) {
                size_t k = char_length((const unsigned char *)text + i, n - i);
                if (k) {
                        memcpy(out + len, text + i, k);
                        len += k;
                        i += k;
                } else {
                        memcpy(out + len, replacement, 3);
                        len += 3;
                        i++;
                }
        }
        out[len] = '\0';
        *ret_len = len;
        return out;
}

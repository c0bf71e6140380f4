/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Second-level templates (checkpoint.c): checkpoints of specialized instances. */
#pragma once

#include "internal.h"

/* Whether template_name is a second-level template, whose restored copies come back specialized:
 * its manifest says "specialized": true. False when it cannot tell (no manifest). */
bool template_restores_specialized(const pw_engine *e, const char *template_name);

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Second-level templates (checkpoint.c): checkpoints of specialized instances. */
#pragma once

#include "internal.h"


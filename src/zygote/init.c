/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * prewarm-init AGENT_PID: the init of a restored copy (or a cold start), whose agent is pid 1 of
 * its namespace until its first specialize. There the agent forks: it goes on in the child, and
 * the parent, pid 1, closes the channel and executes this small program, so that the
 * init holds none of the runtime's memory (a second-level checkpoint dumps it too). The engine
 * reads the agent's end from this process's exit status (init_loop.h). Copied into every
 * template's rootfs at /prewarm/ beside the clone helper.
 */
#include <stdlib.h>
#include <unistd.h>

#include "init_loop.h"

int main(int argc, char **argv)
{
        char *end = NULL;
        long agent = argc == 2 ? strtol(argv[1], &end, 10) : 0;
        if (agent <= 1 || !end || *end)
                return 2;
        init_serve((pid_t)agent, -1);
}

/* The shares of the open-file limit: a pure computation over the limit. */
#include "core/fd_budget.h"

#include <sys/resource.h>

static size_t min_size(uint64_t a, uint64_t b)
{
    return (size_t)(a < b ? a : b);
}

void gd_fd_budget_compute(gd_fd_budget_t *b, uint64_t limit)
{
    if (limit > GD_FD_LIMIT_CAP) limit = GD_FD_LIMIT_CAP;
    b->limit = limit;
    b->headroom = min_size(GD_FD_HEADROOM, limit / 2);
    uint64_t usable = limit - b->headroom;
    b->commands = min_size(GD_FD_COMMANDS_MAX * GD_FD_PER_COMMAND + GD_FD_SPAWN, usable / 2);
    uint64_t rest = usable - b->commands;
    b->collectors = min_size(rest / 2, GD_FD_COLLECTORS_CAP);
    b->file_handles = min_size(rest / 4, GD_FD_FILE_HANDLES_CAP);
    b->max_commands = b->commands > GD_FD_SPAWN + GD_FD_PER_COMMAND
                          ? (unsigned)((b->commands - GD_FD_SPAWN) / GD_FD_PER_COMMAND)
                          : 1;
}

void gd_fd_budget_from_rlimit(gd_fd_budget_t *b)
{
    struct rlimit rl;
    uint64_t limit = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        limit = rl.rlim_cur == RLIM_INFINITY ? GD_FD_LIMIT_CAP : (uint64_t)rl.rlim_cur;
    gd_fd_budget_compute(b, limit);
}

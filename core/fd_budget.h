/* How the agent's open-file limit (RLIMIT_NOFILE, read once at start) is
 * shared between the parts that open files for the host or per process:
 * a fixed headroom, the running commands (children's pipes, file.*), the
 * collectors' kept-open /proc and sysfs files, and guest-file-open handles.
 * Each consumer stays within its share, so no host request can take the
 * fds another part (or the channel) needs. */
#ifndef GUESTD_FD_BUDGET_H
#define GUESTD_FD_BUDGET_H

#include <stddef.h>
#include <stdint.h>

/* stdio, the log, the loop's own fds, both channels and their listeners,
 * the listeners' reserve fds, the collectors' fixed /proc files, the
 * metrics log, a configuration reload: about 30 in use, twice that kept. */
#define GD_FD_HEADROOM 64
/* A running command holds its child's three pipes (exec, guest-exec) or
 * one file (file.*), plus one spare. */
#define GD_FD_PER_COMMAND 4
/* A child's pipes (both ends) and libuv's error pipe while it starts (one at a time:
 * spawning happens on the loop). */
#define GD_FD_SPAWN 8
/* The ceiling of commands.max_concurrent (core/config.c). */
#define GD_FD_COMMANDS_MAX 64
/* Caps whatever the limit: the processes collector's old cap, and
 * qemu-ga hosts open a few handles at a time. */
#define GD_FD_COLLECTORS_CAP 65536
#define GD_FD_FILE_HANDLES_CAP 1024
/* An unlimited or huge limit is sized as this one. */
#define GD_FD_LIMIT_CAP (UINT64_C(1) << 20)

typedef struct gd_fd_budget_s {
    uint64_t limit;        /* RLIMIT_NOFILE's soft limit (capped) */
    size_t headroom;       /* min(GD_FD_HEADROOM, limit / 2) */
    size_t commands;       /* min(GD_FD_COMMANDS_MAX * PER_COMMAND + SPAWN, rest / 2) */
    size_t collectors;     /* min(the remainder / 2, GD_FD_COLLECTORS_CAP) */
    size_t file_handles;   /* min(the remainder / 4, GD_FD_FILE_HANDLES_CAP) */
    unsigned max_commands; /* commands the commands share holds (>= 1) */
} gd_fd_budget_t;

/* The shares for an open-file limit of limit; the last quarter of the
 * remainder is slack for what no share counts (libraries' own opens). */
void gd_fd_budget_compute(gd_fd_budget_t *b, uint64_t limit);
/* The same for this process's RLIMIT_NOFILE now (1024 when unreadable). */
void gd_fd_budget_from_rlimit(gd_fd_budget_t *b);

#endif

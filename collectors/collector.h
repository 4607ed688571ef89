/* The collector interface: each collector is one file exporting one const
 * descriptor. init returns the collector's state; collect reads its sources
 * into that state (plain structs, no allocation in steady state); write
 * appends its section of the sample from the state; fini frees it. */
#ifndef GUESTD_COLLECTOR_H
#define GUESTD_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include <uv.h>

#include "core/json/writer.h"

typedef int (*gd_statvfs_fn)(const char *path, struct statvfs *out);

/* The collectors' share of the open-file limit (core/fd_budget.h), for
 * the files they keep open between cycles (/proc/<pid>/stat, sysfs
 * attributes). Past it a file is opened and closed at each read. */
typedef struct gd_fd_pool_s {
    size_t budget, held;
} gd_fd_pool_t;

/* Whether one more fd may be kept open; counts it when so. */
static inline int gd_fd_pool_take(gd_fd_pool_t *p)
{
    if (p->held >= p->budget) return 0;
    p->held++;
    return 1;
}

/* A kept fd was closed. */
static inline void gd_fd_pool_give(gd_fd_pool_t *p)
{
    if (p->held > 0) p->held--;
}

/* What a collector is created with. Strings stay valid for its lifetime. */
typedef struct gd_collector_env_s {
    uv_loop_t *loop;
    const char *proc_root;
    const char *sys_root;
    int top_processes;        /* metrics.top_processes */
    gd_statvfs_fn statvfs_fn; /* statvfs(3) unless a test injects one */
    uint64_t fs_timeout_ns;   /* a statvfs slower than this is reported */
    gd_fd_pool_t *fd_pool;    /* shared by every collector; never NULL */
} gd_collector_env_t;

/* One cycle's clock. */
typedef struct gd_collect_ctx_s {
    uint64_t now_ns;  /* monotonic */
    double elapsed_s; /* since this collector's previous collect; 0 when priming */
} gd_collect_ctx_t;

enum {
    /* The section holds rates: a collect closer than the minimum window to
     * the previous one is skipped and the previous values are written. */
    GD_COLLECTOR_RATES = 1u << 0,
};

typedef struct gd_collector_s {
    const char *name;
    unsigned flags;
    /* Creates the state. -ENOENT (or -EOPNOTSUPP) when the source is
     * missing: the collector is then disabled; err says which file. */
    int (*init)(void **state, const gd_collector_env_t *env, char *err, size_t errlen);
    /* Reads the sources into the state. 0 or a negative errno. */
    int (*collect)(void *state, const gd_collect_ctx_t *ctx);
    /* Appends the key and value of its section to w. */
    void (*write)(void *state, gd_jw_t *w);
    void (*fini)(void *state);
    /* Applies runtime keys (top_processes); may be NULL. */
    void (*configure)(void *state, const gd_collector_env_t *env);
} gd_collector_t;

#endif

/* The metrics sampler: the enabled collectors run as one cycle that writes a
 * metrics sample (protocol.md, "Metrics sample") as one JSON object. */
#ifndef GUESTD_METRICS_H
#define GUESTD_METRICS_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/buf.h"
#include "core/config.h"

typedef struct gd_metrics_s gd_metrics_t;

#define GD_METRICS_ALL 0xffffffffu

/* Creates the collectors named by cfg->metrics.collectors ("all" or a comma
 * list) and primes their counters so the first sample already has rates.
 * A collector whose source is missing is disabled with one log line.
 * Returns 0, or -EINVAL with err set for an unknown collector name. */
int gd_metrics_new(gd_metrics_t **out, uv_loop_t *loop, const gd_config_t *cfg, char *err,
                   size_t errlen);
/* Runs one cycle of the enabled collectors in mask and writes the sample
 * object into out (reset first). Never blocks the loop. */
int gd_metrics_collect(gd_metrics_t *m, uint32_t mask, gd_buf_t *out);
/* The same for a request (metrics.get): gauges are collected now; a rate
 * collector (cpu, disks, network, processes) gives the section of the
 * latest periodic cycle, so a request never moves the periodic rate window
 * (before the first periodic cycle it is collected, over the time since
 * the priming). */
int gd_metrics_collect_now(gd_metrics_t *m, uint32_t mask, gd_buf_t *out);
/* Mask for an array of collector names; -EINVAL naming the bad one in err. */
int gd_metrics_mask_from_json(const cJSON *names, uint32_t *mask, char *err, size_t errlen);
/* Runtime keys (metrics.top_processes). */
void gd_metrics_apply_config(gd_metrics_t *m, const gd_config_t *cfg);
/* {"cpu": {"ok": true, "errors": 0, "last_us": 12}, ...} for health. */
cJSON *gd_metrics_stats_json(const gd_metrics_t *m);
/* Errors counted by all collectors since start. */
uint64_t gd_metrics_total_errors(const gd_metrics_t *m);
/* Cancels outstanding thread-pool work; safe to call with the loop stopped. */
void gd_metrics_free(gd_metrics_t *m);

/* Additions beyond the lead's interface (tests, the benchmark, commands). */

/* Two collects of a rate collector closer than this are not a window: the
 * second repeats the first's values instead of dividing by nearly nothing. */
#define GD_METRICS_MIN_WINDOW_MS 50
/* A statvfs out longer than this marks its filesystem "timeout". */
#define GD_METRICS_FS_TIMEOUT_MS 5000

struct statvfs;

/* What tests and the benchmark inject; zeroed fields take the defaults. */
typedef struct gd_metrics_opts_s {
    uint64_t (*now_ns)(void *ctx); /* monotonic clock; uv_hrtime() by default */
    void *clock_ctx;
    int (*statvfs_fn)(const char *path, struct statvfs *out); /* statvfs(3) */
    uint64_t fs_timeout_ms;                                   /* GD_METRICS_FS_TIMEOUT_MS */
    /* Files the collectors keep open (stat files, sysfs attributes); 0:
     * the collectors' share of the fd budget (core/fd_budget.h). */
    size_t proc_fd_budget;
} gd_metrics_opts_t;

/* gd_metrics_new with injected clock and statvfs; opts may be NULL. */
int gd_metrics_new_ex(gd_metrics_t **out, uv_loop_t *loop, const gd_config_t *cfg,
                      const gd_metrics_opts_t *opts, char *err, size_t errlen);
/* Mask for "all" or a comma-separated list of names (metrics.collectors).
 * -EINVAL naming the bad one in err. */
int gd_metrics_mask_from_list(const char *list, uint32_t *mask, char *err, size_t errlen);
/* The collectors that are running (selected, and their source present). */
uint32_t gd_metrics_enabled_mask(const gd_metrics_t *m);

#endif

/* The metrics sampler: the enabled collectors run as one cycle that writes a
 * metrics sample (protocol.md, "Metrics sample") as one JSON object. */
#ifndef GUESTD_METRICS_H
#define GUESTD_METRICS_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "agent/buf.h"
#include "agent/config.h"

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

#endif

/* Per-guest metrics logs on the host (log.dir): every metrics and health
 * line a guest sends, byte for byte, appended to DIR/NAME/metrics.ndjson
 * with the agent's own writer and rotation (core/metrics_log.h), so
 * `guestctl log` reads them as it reads a guest's. */
#ifndef GUESTD_HUB_GUESTLOG_H
#define GUESTD_HUB_GUESTLOG_H

#include <stddef.h>

#include <uv.h>

#include "core/config.h"
#include "core/metrics_log.h"

typedef struct gd_guestlog_s {
    struct gd_guestlog_s *next; /* on the retired list once closed */
    gd_metrics_log_t *log;
} gd_guestlog_t;

/* The settings every guest's log shares (size, keep, fsync); cfg must
 * outlive every log opened with it. */
void gd_guestlog_config(gd_config_t *cfg, int64_t max_bytes, int64_t keep);
/* Creates DIR/NAME (0750) and opens the log there. 0 or a negative errno. */
int gd_guestlog_open(gd_guestlog_t **out, uv_loop_t *loop, gd_config_t *cfg, const char *dir,
                     const char *name, char *err, size_t errlen);
/* Appends one line (without its '\n') of event name. */
void gd_guestlog_write(gd_guestlog_t *gl, const char *event, const char *line, size_t len);
/* Stops taking lines; what is queued is still written. The log goes on
 * *retired, freed by gd_guestlog_free_retired once the loop has ended. */
void gd_guestlog_close(gd_guestlog_t *gl, gd_guestlog_t **retired);
void gd_guestlog_free_retired(gd_guestlog_t **retired);

#endif

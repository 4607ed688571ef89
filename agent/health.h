/* The agent's own health: a report (protocol.md "Health report") built on
 * the health timer and on demand, published as a `health` event, and told to
 * systemd (READY, STATUS, WATCHDOG, STOPPING) when running under it.
 *
 * Checks, worst wins (docs/health.md has the thresholds):
 *   loop        the longest stretch the loop spent away from poll, recently
 *   memory      the agent's RSS against health.max_rss_bytes
 *   fds         open descriptors against RLIMIT_NOFILE
 *   channel     host attached, how long since it last spoke, reading its replies
 *   collectors  errors in the last metrics cycle, time the cycle took
 *   events      events dropped (channel out-queue, bus lag) recently
 *   metrics_log writable, free space against health.min_free_bytes
 * `failing` (memory, fds) is what a restart cures: the systemd watchdog is
 * then no longer fed. Every other problem is `degraded`.
 *
 * Health also owns the metrics log (core/metrics_log): it creates it from
 * the configuration, starts it with the loop, watches it, and stops it. */
#ifndef GUESTD_HEALTH_H
#define GUESTD_HEALTH_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct gd_agent_s;
struct gd_metrics_log_s;

typedef enum { GD_HEALTH_OK = 0, GD_HEALTH_DEGRADED = 1, GD_HEALTH_FAILING = 2 } gd_health_status_t;

/* Sets up the checks, their loop handles and the metrics log, on a->loop,
 * from a->cfg. 0, or a negative errno with err set. */
int gd_health_init(struct gd_agent_s *a, char *err, size_t errlen);
/* The loop runs: READY=1 and STATUS= to systemd, the metrics log opens, and
 * status changes are watched from now on. */
void gd_health_started(struct gd_agent_s *a);
/* One health timer tick: report, publish, STATUS= on change, WATCHDOG=1 when
 * not failing. */
void gd_health_tick(struct gd_agent_s *a);
/* STOPPING=1; closes health's handles and stops the metrics log (its last
 * lines are still written before the loop ends). */
void gd_health_stopping(struct gd_agent_s *a);
/* After the loop has ended. */
void gd_health_free(struct gd_agent_s *a);
/* The report, computed now (health.get). */
cJSON *gd_health_report(struct gd_agent_s *a);
/* The status of the latest health event (or of the start), -1 before start. */
int gd_health_status(const struct gd_agent_s *a);
/* The metrics log, NULL when metrics.log_path is none. */
struct gd_metrics_log_s *gd_health_metrics_log(const struct gd_agent_s *a);
const char *gd_health_status_name(int status);

#endif

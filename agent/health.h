/* The agent's own health: a report (protocol.md "Health report") built on
 * the health timer and on demand, published as a `health` event, and told to
 * systemd (READY, STATUS, WATCHDOG, STOPPING) when running under it. */
#ifndef GUESTD_HEALTH_H
#define GUESTD_HEALTH_H

#include <cjson/cJSON.h>

#include "commands/command.h"

struct gd_agent_s;

void gd_health_init(struct gd_agent_s *a);
/* The loop runs: READY=1 to systemd. */
void gd_health_started(struct gd_agent_s *a);
/* One health timer tick: report, publish, watchdog. */
void gd_health_tick(struct gd_agent_s *a);
void gd_health_stopping(struct gd_agent_s *a);
void gd_health_free(struct gd_agent_s *a);
/* The report, computed now (health.get). */
cJSON *gd_health_report(struct gd_agent_s *a);

extern const gd_command_t gd_commands_health[];

#endif

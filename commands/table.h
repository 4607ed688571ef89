/* The command table: every family's commands, looked up by name. */
#ifndef GUESTD_TABLE_H
#define GUESTD_TABLE_H

#include "commands/command.h"

/* NULL-terminated list of the families' NULL-name terminated arrays. */
extern const gd_command_t *const gd_command_families[];

const gd_command_t *gd_command_find(const char *name);

/* Calls fn for every command in table order. */
void gd_command_foreach(void (*fn)(const gd_command_t *cmd, void *ctx), void *ctx);

struct gd_agent_s;
/* The agent is stopping: families with work in flight (children, timers)
 * end it so every handle closes. */
void gd_commands_shutdown(struct gd_agent_s *agent);

#endif

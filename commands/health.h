/* health.get: the agent's health report, computed now. */
#ifndef GUESTD_COMMANDS_HEALTH_H
#define GUESTD_COMMANDS_HEALTH_H

#include "commands/command.h"

extern const gd_command_t gd_commands_health[];

#endif

/* metrics.get and metrics.history: a fresh sample, and the in-memory ring. */
#ifndef GUESTD_COMMANDS_METRICS_H
#define GUESTD_COMMANDS_METRICS_H

#include "commands/command.h"

extern const gd_command_t gd_commands_metrics[];

#endif

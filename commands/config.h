/* config.get and config.set over the configuration table (core/config.h).
 * config.set changes runtime keys only and applies them at once; the
 * policy keys (commands.allow, commands.deny) cannot be set by the host. */
#ifndef GUESTD_COMMANDS_CONFIG_H
#define GUESTD_COMMANDS_CONFIG_H

#include "commands/command.h"

extern const gd_command_t gd_commands_config[];

#endif

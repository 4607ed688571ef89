/* power.shutdown and power.reboot: answer, wait until the answer has been
 * written to the host, wait delay_s, then run commands.poweroff_argv or
 * commands.reboot_argv (split on spaces) as a child. */
#ifndef GUESTD_POWER_H
#define GUESTD_POWER_H

#include "commands/command.h"

#define GD_POWER_MAX_DELAY_S 86400

extern const gd_command_t gd_commands_power[];

/* The agent is stopping: actions still waiting out their delay_s are
 * cancelled (and logged), so the loop can end. A command already running
 * is left to finish. */
void gd_power_shutdown(const gd_cmd_env_t *env);

#endif

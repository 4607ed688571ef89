/* The command families the agent serves, guestd's own and qemu-ga's
 * dialect's, and how those with work in flight end it. */
#ifndef GUESTD_FAMILIES_H
#define GUESTD_FAMILIES_H

#include "commands/command.h"

/* The agent is stopping: families with work in flight (children, timers)
 * end it so every handle closes. */
void gd_commands_shutdown(const gd_cmd_env_t *env);

#endif

/* exec and exec.cancel: run a program as a child of the agent, in its own
 * process group, with a timeout that kills the whole group, bounded output
 * and, on request, output streamed as exec.output events. */
#ifndef GUESTD_EXEC_H
#define GUESTD_EXEC_H

#include "commands/command.h"

/* The family: exec, exec.cancel. */
extern const gd_command_t gd_commands_exec[];

/* The agent is stopping: SIGKILLs the process group of every running exec
 * and closes its handles, so the loop ends and uv_loop_close() returns 0.
 * Their replies go out only if the dispatcher is still open. */
void gd_exec_shutdown(const gd_cmd_env_t *env);

#endif

/* The command table: every family's commands, looked up by name. */
#ifndef GUESTD_TABLE_H
#define GUESTD_TABLE_H

#include "commands/command.h"

/* NULL-terminated list of the families' NULL-name terminated arrays. The
 * program that links commands/ defines it: the agent's in agent/families.c,
 * so commands/ never names the families it serves. */
extern const gd_command_t *const gd_command_families[];

const gd_command_t *gd_command_find(const char *name);

/* Calls fn for every command in table order. */
void gd_command_foreach(void (*fn)(const gd_command_t *cmd, void *ctx), void *ctx);

#endif

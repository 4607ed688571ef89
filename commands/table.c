/* The command table: every family's commands, looked up by name. Which
 * families there are is the composition root's choice (agent/families.c). */
#include "commands/table.h"

#include <string.h>

const gd_command_t *gd_command_find(const char *name)
{
    for (const gd_command_t *const *fam = gd_command_families; *fam; fam++)
        for (const gd_command_t *c = *fam; c->name; c++)
            if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

void gd_command_foreach(void (*fn)(const gd_command_t *cmd, void *ctx), void *ctx)
{
    for (const gd_command_t *const *fam = gd_command_families; *fam; fam++)
        for (const gd_command_t *c = *fam; c->name; c++)
            fn(c, ctx);
}

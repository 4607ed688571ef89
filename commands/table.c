/* The command table: every family's commands, looked up by name. */
#include "commands/table.h"

#include <string.h>

#include "agent/health.h"

/* One line per family; each family lives in its own file under commands/. */
const gd_command_t *const gd_command_families[] = {
    gd_commands_info,
    gd_commands_health,
    NULL,
};

const gd_command_t *gd_command_find(const char *name)
{
    for (const gd_command_t *const *fam = gd_command_families; *fam; fam++)
        for (const gd_command_t *c = *fam; c->name; c++)
            if (strcmp(c->name, name) == 0)
                return c;
    return NULL;
}

void gd_command_foreach(void (*fn)(const gd_command_t *cmd, void *ctx), void *ctx)
{
    for (const gd_command_t *const *fam = gd_command_families; *fam; fam++)
        for (const gd_command_t *c = *fam; c->name; c++)
            fn(c, ctx);
}

void gd_commands_shutdown(struct gd_agent_s *agent)
{
    (void)agent;
}

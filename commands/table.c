/* The command table: every family's commands, looked up by name. */
#include "commands/table.h"

#include <string.h>

#include "agent/health.h"
#include "commands/config.h"
#include "commands/exec.h"
#include "commands/file.h"
#include "commands/metrics.h"
#include "commands/power.h"
#include "commands/process.h"
#include "commands/service.h"
#include "commands/system.h"

/* One line per family; each family lives in its own file under commands/. */
const gd_command_t *const gd_command_families[] = {
    gd_commands_info,
    gd_commands_system,
    gd_commands_metrics,
    gd_commands_health,
    gd_commands_exec,
    gd_commands_process,
    gd_commands_service,
    gd_commands_file,
    gd_commands_power,
    gd_commands_config,
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
    gd_exec_shutdown(agent);
    gd_service_shutdown(agent);
    gd_power_shutdown(agent);
}

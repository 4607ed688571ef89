/* The command families the agent serves: the lists commands/table.c and the
 * qemu-ga dialect (commands/qga/qga.c) look commands up in. */
#include "agent/families.h"

#include "commands/config.h"
#include "commands/exec.h"
#include "commands/file.h"
#include "commands/health.h"
#include "commands/metrics.h"
#include "commands/power.h"
#include "commands/process.h"
#include "commands/qga/internal.h"
#include "commands/service.h"
#include "commands/system.h"
#include "commands/table.h"

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

/* qemu-ga's dialect, in the order guest-info lists them. */
const gd_qga_cmd_t *const gd_qga_families[] = {
    gd_qga_cmds_sync, gd_qga_cmds_system, gd_qga_cmds_stats,
    gd_qga_cmds_net,  gd_qga_cmds_fs,     gd_qga_cmds_exec,
    gd_qga_cmds_file, gd_qga_cmds_user,   NULL,
};

void gd_commands_shutdown(const gd_cmd_env_t *env)
{
    gd_exec_shutdown(env);
    gd_service_shutdown(env);
    gd_power_shutdown(env);
}

/* service.list, .status, .start, .stop, .restart: systemd units through
 * systemctl, run as a child (never on the loop). Guests without systemd
 * (no /run/systemd/system) answer `unsupported`. */
#ifndef GUESTD_SERVICE_H
#define GUESTD_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "commands/command.h"

/* How long one systemctl call may take before it is killed (`timeout`). */
#define GD_SERVICE_TIMEOUT_MS 120000
/* The most systemctl output kept (service.list on a big guest). */
#define GD_SERVICE_MAX_OUTPUT (4u << 20)
#define GD_UNIT_NAME_MAX 256 /* systemd's UNIT_NAME_MAX, with the NUL */

/* Checks name against systemd's unit-name rules (unit_name_is_valid with
 * plain and instance names; templates without an instance are refused) and
 * writes the full name to out: a name without a unit-type suffix gets
 * ".service", as systemctl does. 0, or -EINVAL with err set. */
int gd_unit_name_normalize(const char *name, char *out, size_t outlen, char *err, size_t errlen);

/* Parses `systemctl list-units --no-legend --plain --full` text, appending
 * {"name","load","active","sub","description"} objects to services. Returns
 * how many were added, or -EINVAL for a line that is not a unit. */
int gd_service_parse_list(const char *text, cJSON *services);

typedef struct gd_unit_status_s {
    char name[GD_UNIT_NAME_MAX];
    char load[32];    /* LoadState: loaded, not-found, masked... */
    char active[32];  /* ActiveState */
    char sub[32];     /* SubState */
    char enabled[32]; /* UnitFileState: enabled, disabled, static... ("" unknown) */
    long main_pid;    /* 0: none */
    char description[256];
} gd_unit_status_t;

/* Parses `systemctl show --property=...` KEY=VALUE lines. 0 or -EINVAL when
 * LoadState or ActiveState is missing. */
int gd_service_parse_show(const char *text, gd_unit_status_t *out);

/* Test seam: where to look for a running systemd (default
 * "/run/systemd/system"), which systemctl to run (default "systemctl",
 * looked up in PATH) and its time limit (default GD_SERVICE_TIMEOUT_MS).
 * NULL or 0 keeps a value. Not for production use. */
void gd_service_set_paths(const char *systemd_dir, const char *systemctl, uint64_t timeout_ms);

extern const gd_command_t gd_commands_service[];

/* The agent is stopping: kills (SIGKILL, the whole group) every systemctl
 * still running for a service.* request, so the loop can end. Their replies
 * go out only if the dispatcher is still open. */
void gd_service_shutdown(const gd_cmd_env_t *env);

#endif

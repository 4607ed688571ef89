/* system.info: what the guest is (OS, kernel, CPU, memory, identity). */
#ifndef GUESTD_SYSTEM_H
#define GUESTD_SYSTEM_H

#include <cjson/cJSON.h>

#include "commands/command.h"

extern const gd_command_t gd_commands_system[];

/* The system.info result, read from proc_root (cpuinfo, meminfo, stat,
 * uptime, boot_id) and etc_dir (os-release, machine-id, timezone,
 * localtime); uname for the kernel. hostname and boot_id may be NULL or
 * empty (then read here). NULL when out of memory. */
cJSON *gd_system_info(const char *proc_root, const char *etc_dir, const char *hostname,
                      const char *boot_id);

/* Value of key in os-release text (quotes and backslash escapes removed)
 * into out; 0, or -ENOENT when the key is absent. */
int gd_os_release_value(const char *text, const char *key, char *out, size_t len);

#endif

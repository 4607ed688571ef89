/* process.list and process.kill: the guest's processes from /proc. */
#ifndef GUESTD_PROCESS_H
#define GUESTD_PROCESS_H

#include <cjson/cJSON.h>

#include "commands/command.h"

/* How long process.list samples CPU time to compute cpu_pct. */
#define GD_PROCESS_SAMPLE_MS 250

/* A signal given as a name ("TERM", "SIGTERM", "term", "RTMIN+2") or a
 * number (1..SIGRTMAX, as a JSON number or a numeric string). Returns the
 * signal number or -EINVAL. */
int gd_signal_parse(const cJSON *v);
/* "TERM" for SIGTERM, "RTMIN+2"...; NULL for an unknown number. */
const char *gd_signal_name(int signo, char *buf, size_t len);

extern const gd_command_t gd_commands_process[];

#endif

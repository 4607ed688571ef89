/* ping and info: the agent's identity and its command list. */
#ifndef GUESTD_INFO_H
#define GUESTD_INFO_H

#include <cjson/cJSON.h>

#include "commands/dispatch.h"

/* names_only: ["ping", ...] of the enabled commands (hello's "commands");
 * else [{"name","enabled","summary"}] of every command (info's). */
cJSON *gd_info_command_list(const gd_dispatch_t *d, int names_only);

#endif

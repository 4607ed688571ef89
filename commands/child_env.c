/* The fixed environment of the agent's children: see child_env.h. */
#include "commands/child_env.h"

#include <stddef.h>

static char *const base[] = {GD_CHILD_ENV_BASE, NULL};

char *const *gd_child_env_base(void)
{
    return base;
}

/* The registry: every collector, in sample order. */
#include "collectors/registry.h"

#include <string.h>

const gd_collector_t *const gd_collectors[] = {
    &gd_collector_uptime,      &gd_collector_cpu,
    &gd_collector_memory,      &gd_collector_load,
    &gd_collector_pressure,    &gd_collector_disks,
    &gd_collector_filesystems, &gd_collector_network,
    &gd_collector_processes,   NULL,
};

int gd_collector_index(const char *name)
{
    for (int i = 0; gd_collectors[i]; i++)
        if (strcmp(gd_collectors[i]->name, name) == 0) return i;
    return -1;
}

/* The memory: RAM and swap use, from /proc/meminfo. */
#ifndef GUESTD_COLLECTOR_MEMORY_H
#define GUESTD_COLLECTOR_MEMORY_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_memory;

#endif

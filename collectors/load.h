/* The load: load averages and runnable tasks, from /proc/loadavg. */
#ifndef GUESTD_COLLECTOR_LOAD_H
#define GUESTD_COLLECTOR_LOAD_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_load;

#endif

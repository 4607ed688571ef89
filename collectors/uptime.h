/* The uptime: seconds since boot, from /proc/uptime (the sample's top-level uptime_s). */
#ifndef GUESTD_COLLECTOR_UPTIME_H
#define GUESTD_COLLECTOR_UPTIME_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_uptime;

#endif

/* The pressure: PSI stall averages, from /proc/pressure/{cpu,memory,io}. */
#ifndef GUESTD_COLLECTOR_PRESSURE_H
#define GUESTD_COLLECTOR_PRESSURE_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_pressure;

#endif

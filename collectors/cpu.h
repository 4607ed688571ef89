/* The cpu: usage over the interval, overall and per CPU, from /proc/stat. */
#ifndef GUESTD_COLLECTOR_CPU_H
#define GUESTD_COLLECTOR_CPU_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_cpu;

#endif

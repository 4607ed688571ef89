/* The disks: I/O rates of whole disks, from /proc/diskstats and /sys/block. */
#ifndef GUESTD_COLLECTOR_DISKS_H
#define GUESTD_COLLECTOR_DISKS_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_disks;

#endif

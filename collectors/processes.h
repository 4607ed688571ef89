/* The processes: totals and the busiest processes, from the kernel's
 * per-process CPU clocks and /proc/<pid>/stat. */
#ifndef GUESTD_COLLECTOR_PROCESSES_H
#define GUESTD_COLLECTOR_PROCESSES_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_processes;

#endif

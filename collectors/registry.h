/* The registry: every collector, in the order their sections appear in a
 * metrics sample. Bit i of a collector mask is gd_collectors[i]. */
#ifndef GUESTD_REGISTRY_H
#define GUESTD_REGISTRY_H

#include "collectors/collector.h"
#include "collectors/cpu.h"
#include "collectors/disks.h"
#include "collectors/filesystems.h"
#include "collectors/load.h"
#include "collectors/memory.h"
#include "collectors/network.h"
#include "collectors/pressure.h"
#include "collectors/processes.h"
#include "collectors/uptime.h"

/* NULL-terminated. */
extern const gd_collector_t *const gd_collectors[];

/* Index in gd_collectors, or -1. */
int gd_collector_index(const char *name);

#endif

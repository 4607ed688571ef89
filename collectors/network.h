/* The network: interface traffic rates, from /proc/net/dev and /sys/class/net. */
#ifndef GUESTD_COLLECTOR_NETWORK_H
#define GUESTD_COLLECTOR_NETWORK_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_network;

#endif

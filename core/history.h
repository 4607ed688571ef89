/* The metrics history: an in-memory ring of the last N "metrics" events,
 * kept by reference straight off the bus (each event's JSON is shared, never
 * copied or parsed again), for metrics.history. */
#ifndef GUESTD_HISTORY_H
#define GUESTD_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/bus.h"

typedef struct gd_history_s gd_history_t;

/* Subscribes to bus and keeps the last capacity "metrics" events
 * (capacity 0 keeps none). 0 or -ENOMEM. */
int gd_history_new(gd_history_t **out, gd_bus_t *bus, size_t capacity);
/* Unsubscribes and drops every reference. NULL is fine. */
void gd_history_free(gd_history_t *h);
/* {"samples": [{"seq", "ts", "data"}...]}: the samples with seq > since_seq,
 * oldest first; at most limit of them (0 = all), the oldest ones, so a host
 * pages forward by passing the last seq it got as the next since_seq.
 * NULL when out of memory. */
cJSON *gd_history_query(gd_history_t *h, uint64_t since_seq, size_t limit);

#endif

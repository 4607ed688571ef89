/* Counters to rates: the one helper every collector uses. It keeps the
 * previous reading, divides by the elapsed time and handles wrap-around and
 * the first (priming) reading. */
#ifndef GUESTD_RATE_H
#define GUESTD_RATE_H

#include <stdint.h>

/* How much a monotonically increasing counter grew from prev to now.
 * A counter that went back wrapped when prev was in the upper half of the
 * 32-bit or 64-bit range (the kernel keeps both widths); otherwise it was
 * reset (an interface re-created, iowait's known backward steps) and the
 * interval counts as 0, so a reset never shows as a spike. */
uint64_t gd_counter_delta(uint64_t prev, uint64_t now);

typedef struct gd_rate_s {
    uint64_t prev;
    int primed;
} gd_rate_t;

/* Per-second rate of the counter since the previous call, over elapsed_s
 * seconds, then remembers now. The first call, or elapsed_s <= 0, only
 * primes and returns 0. */
double gd_rate_update(gd_rate_t *r, uint64_t now, double elapsed_s);

#endif

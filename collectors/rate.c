/* Counters to rates, with wrap-around and priming. */
#include "collectors/rate.h"

uint64_t gd_counter_delta(uint64_t prev, uint64_t now)
{
    if (now >= prev) return now - prev;
    if (prev >= UINT64_MAX / 2) return now - prev; /* 64-bit wrap: modular arithmetic is exact */
    if (prev <= UINT32_MAX && prev >= UINT32_MAX / 2 && now <= UINT32_MAX)
        return (uint64_t)UINT32_MAX - prev + now + 1; /* 32-bit wrap */
    return 0;                                         /* reset */
}

double gd_rate_update(gd_rate_t *r, uint64_t now, double elapsed_s)
{
    int primed = r->primed;
    uint64_t prev = r->prev;
    r->prev = now;
    r->primed = 1;
    if (!primed || elapsed_s <= 0) return 0.0;
    return (double)gd_counter_delta(prev, now) / elapsed_s;
}

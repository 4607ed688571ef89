/* The hub's Prometheus endpoint wired to the hub: the hub's hooks keep each
 * guest's exposition cache (g->prom) current, and /metrics renders the
 * guests in the hub's order with the hub's own counters. */
#ifndef GUESTD_HUB_PROM_HUB_H
#define GUESTD_HUB_PROM_HUB_H

#include <stddef.h>

#include <uv.h>

#include "hub/hub.h"

typedef struct gd_prom_hub_s gd_prom_hub_t;

/* Sets hub->hooks and serves listen ("HOST:PORT"; "none": nothing at all,
 * *out NULL); top_processes adds the guestd_top_process_* series. Call before or after
 * gd_hub_start: a guest's state already stored is picked up the first time it is seen. 0 or a
 * negative errno with err set. */
int gd_prom_start(gd_prom_hub_t **out, uv_loop_t *loop, gd_hub_t *hub, const char *listen,
                  int top_processes, char *err, size_t errlen);
/* Stops serving and frees every guest's cache; NULL is fine. Before the
 * hub's guests are freed (it clears the hooks). */
void gd_prom_stop(gd_prom_hub_t *p);

#endif

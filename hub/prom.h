/* The hub's Prometheus exposition (text format 0.0.4): each guest's latest
 * hello, sample and health report rendered once, when they arrive, into one
 * cached text fragment per metric family, so a scrape only concatenates
 * fragments family by family (keeping each family's samples together, as
 * the format requires), through one level-1 deflate when gzip is asked. */
#ifndef GUESTD_HUB_PROM_H
#define GUESTD_HUB_PROM_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/buf.h"

#define GD_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A guest that has not sent a sample for this many of its intervals loses
 * its series (guestd_up 0, nothing else). */
#define GD_PROM_STALE_INTERVALS 3
/* The interval assumed until hello's metrics_interval_ms or two samples
 * have shown the real one. */
#define GD_PROM_DEFAULT_INTERVAL_MS 30000

typedef struct gd_prom_s gd_prom_t;
typedef struct gd_prom_guest_s gd_prom_guest_t;

/* The hub's own figures, read at each scrape. */
typedef struct gd_prom_self_s {
    uint64_t guests, reconnects_total, parse_errors_total, samples_total, scrapes_total;
    double last_scrape_s; /* wall time of the previous scrape */
} gd_prom_self_t;

/* top_processes: export the sample's top processes (label churn: off by default). */
int gd_prom_new(gd_prom_t **out, int top_processes);
void gd_prom_free(gd_prom_t *p);

/* domain: the guest's name from the host (config, path rule, libvirt). */
int gd_prom_guest_new(gd_prom_t *p, gd_prom_guest_t **out, const char *domain);
void gd_prom_guest_free(gd_prom_guest_t *g);

/* Each renders that event's families into the guest's cache. The cJSON
 * objects are the events' "data"; nothing is kept pointing into them.
 * 0 or -ENOMEM (the guest's previous fragments of those families are gone). */
int gd_prom_guest_hello(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *hello);
/* ts_ms: the event's ts (guest clock); rx_ms: when the hub got it (hub
 * clock, the one passed to gd_prom_render); interval_ms: since the
 * previous sample's arrival, 0 when unknown (the previous estimate stays). */
int gd_prom_guest_sample(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *data, int64_t ts_ms,
                         int64_t rx_ms, int64_t interval_ms);
int gd_prom_guest_health(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *health);
/* The hub's connection to the guest came up or went down. */
void gd_prom_guest_connected(gd_prom_guest_t *g, int connected);
/* Connected, with a sample younger than GD_PROM_STALE_INTERVALS intervals. */
int gd_prom_guest_up(const gd_prom_guest_t *g, int64_t now_ms);

/* Appends the exposition of guests[0..n) and of self to out, as text or
 * (gzip) as one gzip stream. 0 or -ENOMEM. */
int gd_prom_render(gd_prom_t *p, gd_prom_guest_t *const *guests, size_t n,
                   const gd_prom_self_t *self, int64_t now_ms, int gzip, gd_buf_t *out);

#endif

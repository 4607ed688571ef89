/* The hub's Prometheus endpoint wired to the hub: hooks that render each
 * event into the guest's cache as it is stored, and the /metrics callback
 * that concatenates the caches. */
#include "hub/prom_hub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/log.h"
#include "hub/http.h"
#include "hub/prom.h"

struct gd_prom_hub_s {
    gd_hub_t *hub;
    gd_prom_t *prom;
    gd_http_t *http;
    gd_prom_guest_t **vec; /* the scrape's guests, reused */
    size_t vec_cap;
    uint64_t samples_total, scrapes_total;
    double last_scrape_s;
};

static void render_sample(gd_prom_hub_t *p, gd_guest_t *g)
{
    int64_t interval = g->prev_sample_rx_ms ? g->sample_rx_ms - g->prev_sample_rx_ms : 0;
    if (gd_prom_guest_sample(p->prom, g->prom, g->sample, g->sample_ts_ms, g->sample_rx_ms,
                             interval) < 0)
        gd_warn("%s: out of memory rendering its sample for /metrics", g->name);
}

/* The guest's cache, made (from what the hub already holds) when first needed. */
static gd_prom_guest_t *cache_of(gd_prom_hub_t *p, gd_guest_t *g)
{
    if (g->prom) return g->prom;
    gd_prom_guest_t *pg;
    if (gd_prom_guest_new(p->prom, &pg, g->name) < 0) return NULL;
    g->prom = pg;
    gd_prom_guest_connected(pg, g->state == GD_GUEST_UP);
    if (g->hello) gd_prom_guest_hello(p->prom, pg, g->hello);
    if (g->health) gd_prom_guest_health(p->prom, pg, g->health);
    if (g->sample) render_sample(p, g);
    return pg;
}

static void on_event(void *ctx, gd_guest_t *g, const char *event)
{
    gd_prom_hub_t *p = ctx;
    int fresh = g->prom == NULL;
    if (strcmp(event, "metrics") == 0) p->samples_total++;
    if (!cache_of(p, g) || fresh) return; /* a fresh cache already has it */
    if (strcmp(event, "metrics") == 0 && g->sample) {
        render_sample(p, g);
    } else if (strcmp(event, "hello") == 0 && g->hello) {
        gd_prom_guest_hello(p->prom, g->prom, g->hello);
    } else if (strcmp(event, "health") == 0 && g->health) {
        gd_prom_guest_health(p->prom, g->prom, g->health);
    }
}

static void on_state(void *ctx, gd_guest_t *g)
{
    gd_prom_guest_t *pg = cache_of(ctx, g);
    if (pg) gd_prom_guest_connected(pg, g->state == GD_GUEST_UP);
}

static void on_remove(void *ctx, gd_guest_t *g)
{
    (void)ctx;
    gd_prom_guest_free(g->prom);
    g->prom = NULL;
}

static int on_metrics(void *ctx, int gzip, gd_buf_t *out)
{
    gd_prom_hub_t *p = ctx;
    uint64_t t0 = uv_hrtime();
    if (p->vec_cap < p->hub->n_guests) {
        size_t cap = p->hub->n_guests * 2;
        gd_prom_guest_t **v = realloc(p->vec, cap * sizeof(*v));
        if (!v) return -ENOMEM;
        p->vec = v;
        p->vec_cap = cap;
    }
    size_t n = 0;
    for (gd_guest_t *g = p->hub->guests; g && n < p->vec_cap; g = g->next) {
        gd_prom_guest_t *pg = cache_of(p, g);
        if (pg) p->vec[n++] = pg;
    }
    gd_prom_self_t self = {
        .guests = p->hub->n_guests,
        .reconnects_total = p->hub->reconnects_total,
        .parse_errors_total = p->hub->parse_errors_total,
        .samples_total = p->samples_total,
        .scrapes_total = ++p->scrapes_total,
        .last_scrape_s = p->last_scrape_s,
    };
    int r = gd_prom_render(p->prom, p->vec, n, &self, gd_now_ms(), gzip, out);
    p->last_scrape_s = (double)(uv_hrtime() - t0) / 1e9;
    return r;
}

int gd_prom_start(gd_prom_hub_t **out, uv_loop_t *loop, gd_hub_t *hub, const char *listen,
                  int top_processes, char *err, size_t errlen)
{
    *out = NULL;
    if (strcmp(listen, "none") == 0) return 0;
    gd_prom_hub_t *p = calloc(1, sizeof(*p));
    if (!p) return -ENOMEM;
    p->hub = hub;
    int r = gd_prom_new(&p->prom, top_processes);
    if (r == 0) r = gd_http_start(&p->http, loop, listen, on_metrics, p, err, errlen);
    if (r < 0) {
        if (r == -ENOMEM) snprintf(err, errlen, "http: out of memory");
        gd_prom_free(p->prom);
        free(p);
        return r;
    }
    hub->hooks = (gd_hub_hooks_t){
        .ctx = p, .on_event = on_event, .on_state = on_state, .on_remove = on_remove};
    *out = p;
    return 0;
}

void gd_prom_stop(gd_prom_hub_t *p)
{
    if (!p) return;
    memset(&p->hub->hooks, 0, sizeof(p->hub->hooks));
    for (gd_guest_t *g = p->hub->guests; g; g = g->next) {
        gd_prom_guest_free(g->prom);
        g->prom = NULL;
    }
    gd_http_stop(p->http);
    gd_prom_free(p->prom);
    free(p->vec);
    free(p);
}

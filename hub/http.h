/* The hub's HTTP endpoint: libmicrohttpd with no thread of its own, driven
 * from the libuv loop (a poll handle on its epoll fd and a timer from its
 * timeout). GET /metrics (gzip when asked), GET /healthz; 404 and 405
 * otherwise. */
#ifndef GUESTD_HUB_HTTP_H
#define GUESTD_HUB_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "core/buf.h"

/* Fills out (empty, owned by the caller) with the exposition, gzipped when
 * gzip is set. 0 or a negative errno (answered 500). */
typedef int (*gd_http_metrics_fn)(void *ctx, int gzip, gd_buf_t *out);

typedef struct gd_http_s gd_http_t;

/* listen: "HOST:PORT" (IPv4) or "[HOST]:PORT" (IPv6); port 0 takes a free
 * one (gd_http_port says which). 0 or a negative errno with err set. */
int gd_http_start(gd_http_t **out, uv_loop_t *loop, const char *listen, gd_http_metrics_fn fn,
                  void *ctx, char *err, size_t errlen);
int gd_http_port(const gd_http_t *h);
/* Stops serving at once; the memory goes with the handles' last close. */
void gd_http_stop(gd_http_t *h);

/* Whether an Accept-Encoding value accepts gzip (a "gzip" token without q=0). */
int gd_http_accepts_gzip(const char *accept_encoding);

#endif

/* One guest's port as the hub holds it: a unix-socket connection to the
 * host end (QEMU's chardev, or guestd on unix-listen), reconnected with
 * backoff; its latest hello, sample and health; requests forwarded to it. */
#ifndef GUESTD_HUB_GUEST_H
#define GUESTD_HUB_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/config.h"
#include "hub/config.h"
#include "hub/idmap.h"
#include "transport/framer.h"
#include "transport/outq.h"

struct gd_hub_s;

typedef enum { GD_SRC_STATIC = 0, GD_SRC_GLOB = 1, GD_SRC_LIBVIRT = 2 } gd_guest_source_t;
typedef enum { GD_GUEST_CONNECTING = 0, GD_GUEST_UP = 1, GD_GUEST_DOWN = 2 } gd_guest_state_t;

typedef struct gd_guest_s {
    struct gd_guest_s *prev, *next;
    struct gd_hub_s *hub;
    char name[GD_HUB_NAME_MAX]; /* the domain label: from the host, never the guest */
    char path[GD_CFG_STR_MAX];
    gd_guest_source_t source;
    gd_guest_state_t state;

    /* The latest of each, the event's "data" (owned; replaced by the next). */
    cJSON *hello;
    cJSON *sample;
    int64_t sample_ts_ms;      /* the event's ts (the guest's clock) */
    int64_t sample_rx_ms;      /* the hub's clock when it came */
    int64_t prev_sample_rx_ms; /* the one before, 0 if none */
    cJSON *health;
    int64_t health_rx_ms;
    int64_t state_since_ms;

    uint64_t reconnects, parse_errors, lines_in, bytes_in, too_large, responses_unmatched;
    void *prom;                 /* the Prometheus side's own */
    struct gd_guestlog_s *glog; /* log.dir's log, or NULL */

    /* The connection. */
    uv_pipe_t pipe;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t retry;
    int pipe_open; /* pipe initialised and not yet closed */
    int writing;
    size_t write_len; /* bytes of the out-queue head in the write */
    int64_t backoff_ms;
    gd_framer_t framer;
    gd_outq_t outq;
    gd_idmap_t pending;
    int handles; /* open handles; freed when the last one closes */
    int removed;
} gd_guest_t;

const char *gd_guest_state_name(gd_guest_state_t s);
const char *gd_guest_source_name(gd_guest_source_t s);

gd_guest_t *gd_guest_new(struct gd_hub_s *hub, const char *name, const char *path,
                         gd_guest_source_t src);
void gd_guest_start(gd_guest_t *g);
/* Answers its pending requests with guest_removed, closes, frees later. */
void gd_guest_remove(gd_guest_t *g);
/* Drops the connection and connects again at once (a new path). */
void gd_guest_restart(gd_guest_t *g);
/* Queues a request line (ending in '\n') for the guest. 0, -EAGAIN when the
 * queue is past hub.guest_queue_bytes, -ENOTCONN when not up, -ENOMEM. */
int gd_guest_send(gd_guest_t *g, const char *line, size_t len);

#endif

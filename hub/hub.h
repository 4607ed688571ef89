/* guestd-hub's state: the guests it holds, the clients it serves, the hooks
 * the Prometheus side renders from. Everything runs on one libuv loop. */
#ifndef GUESTD_HUB_HUB_H
#define GUESTD_HUB_HUB_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/buf.h"
#include "core/config.h"
#include "hub/config.h"
#include "hub/guest.h"

typedef struct gd_hub_client_s gd_hub_client_t;

/* Called on the loop thread; any may be NULL. */
typedef struct gd_hub_hooks_s {
    void *ctx;
    /* a hello, metrics or health event was stored in g */
    void (*on_event)(void *ctx, gd_guest_t *g, const char *event);
    /* g->state changed */
    void (*on_state)(void *ctx, gd_guest_t *g);
    /* g is about to be removed (free g->prom here) */
    void (*on_remove)(void *ctx, gd_guest_t *g);
} gd_hub_hooks_t;

typedef struct gd_hub_s {
    uv_loop_t *loop;
    const gd_hub_config_t *cfg;
    gd_hub_hooks_t hooks;
    gd_guest_t *guests; /* doubly linked, in the order they were added */
    size_t n_guests;
    gd_hub_client_t *clients;
    size_t n_clients;
    uint64_t next_client; /* serial numbers, from 1 */
    uint64_t next_hub_id; /* forwarded requests' ids, from 1 */
    uv_pipe_t listener;
    int listening;
    /* One read buffer for every guest and client: a read callback uses it
     * whole before the next read starts, and the framers copy what they keep. */
    char *rbuf;
    size_t rbuf_len;
    int64_t started_ms;
    uint64_t reconnects_total, parse_errors_total, too_large_total;
    uint64_t forwarded_total, events_total, dropped_client_events;
    int closing;
    /* log.dir: the settings every guest's log shares, and the logs of
     * removed guests, freed after the loop (their last lines still go out). */
    gd_config_t *log_cfg;
    struct gd_guestlog_s *retired_logs;
} gd_hub_t;

int gd_hub_init(gd_hub_t *hub, uv_loop_t *loop, const gd_hub_config_t *cfg);
/* Listens on cfg->hub.socket (0660, group cfg->hub.socket_group) and adds the
 * static guests. 0 or a negative errno with err. */
int gd_hub_start(gd_hub_t *hub, char *err, size_t errlen);
/* Closes every guest, client and the listener; the loop then ends. */
void gd_hub_stop(gd_hub_t *hub);
/* After the loop ended. */
void gd_hub_free(gd_hub_t *hub);

gd_guest_t *gd_hub_find(gd_hub_t *hub, const char *name);
/* Adds a guest and starts connecting to it. A name already held by another
 * source is refused (-EEXIST): static wins over globs, globs over libvirt.
 * The same name and source with another path moves the guest there. */
int gd_hub_add_guest(gd_hub_t *hub, const char *name, const char *path, gd_guest_source_t src);
/* Removes a guest found by that source (not one another source holds). */
void gd_hub_remove_guest(gd_hub_t *hub, const char *name, gd_guest_source_t src);

/* The guest side's calls into the client side (hub/clients.c). */
void gd_hub_route_response(gd_hub_t *hub, gd_guest_t *g, gd_idmap_entry_t *e, cJSON *resp);
void gd_hub_answer_error(gd_hub_t *hub, uint64_t client, const char *orig_id, const char *guest,
                         const char *code, const char *message);
void gd_hub_fan_out(gd_hub_t *hub, gd_guest_t *g, const char *event, const char *line, size_t len);
void gd_hub_publish_state(gd_hub_t *hub, gd_guest_t *g);
void gd_hub_clients_close(gd_hub_t *hub);
void gd_hub_on_connection(uv_stream_t *server, int status);
/* Read-buffer helpers shared by guests and clients. */
void gd_hub_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

#endif

/* One guest's connection: connect, read lines, keep the latest hello,
 * sample and health, write forwarded requests, reconnect with backoff. A
 * guest's bad behaviour costs only its own buffers: lines are bounded by the
 * framer, requests by the out-queue and the pending map. */
#include "hub/guest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/log.h"
#include "hub/guestlog.h"
#include "hub/hub.h"

static void connect_now(gd_guest_t *g);
static void kick_write(gd_guest_t *g);

const char *gd_guest_state_name(gd_guest_state_t s)
{
    switch (s) {
    case GD_GUEST_CONNECTING:
        return "connecting";
    case GD_GUEST_UP:
        return "up";
    case GD_GUEST_DOWN:
        return "down";
    }
    return "?";
}

const char *gd_guest_source_name(gd_guest_source_t s)
{
    switch (s) {
    case GD_SRC_STATIC:
        return "static";
    case GD_SRC_GLOB:
        return "glob";
    case GD_SRC_LIBVIRT:
        return "libvirt";
    }
    return "?";
}

static void set_state(gd_guest_t *g, gd_guest_state_t s)
{
    if (g->state == s) return;
    g->state = s;
    g->state_since_ms = gd_now_ms();
    gd_info("guest %s: %s", g->name, gd_guest_state_name(s));
    if (g->hub->hooks.on_state) g->hub->hooks.on_state(g->hub->hooks.ctx, g);
    gd_hub_publish_state(g->hub, g);
}

static void free_guest(gd_guest_t *g)
{
    cJSON_Delete(g->hello);
    cJSON_Delete(g->sample);
    cJSON_Delete(g->health);
    gd_framer_free(&g->framer);
    gd_outq_clear(&g->outq);
    free(g);
}

static void on_handle_closed(uv_handle_t *h)
{
    gd_guest_t *g = h->data;
    if (--g->handles == 0 && g->removed) free_guest(g);
}

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

static void on_pipe_closed(uv_handle_t *h)
{
    gd_guest_t *g = h->data;
    /* The retry waits for the close: the pipe handle is reused. */
    if (!g->removed && !g->hub->closing) {
        uv_timer_start(&g->retry, on_retry, (uint64_t)g->backoff_ms, 0);
        g->backoff_ms *= 2;
        if (g->backoff_ms > g->hub->cfg->hub.reconnect_max_ms)
            g->backoff_ms = g->hub->cfg->hub.reconnect_max_ms;
    }
    on_handle_closed(h);
}

static void answer_lost(void *ctx, gd_idmap_entry_t *e)
{
    gd_guest_t *g = ctx;
    gd_hub_answer_error(g->hub, e->client, e->orig, g->name,
                        g->removed ? "guest_removed" : "guest_lost",
                        g->removed ? "the guest was removed before it answered"
                                   : "the guest's connection closed before it answered");
    free(e);
}

/* The connection is gone (or failed): requests in flight are answered with
 * an error, queued ones dropped; a retry follows the close. */
static void drop_connection(gd_guest_t *g, const char *why)
{
    if (!g->pipe_open) return;
    g->pipe_open = 0;
    uv_close((uv_handle_t *)&g->pipe, on_pipe_closed);
    gd_framer_reset(&g->framer);
    gd_outq_clear(&g->outq);
    if (g->state == GD_GUEST_UP) {
        g->reconnects++;
        g->hub->reconnects_total++;
    }
    gd_debug("guest %s: %s", g->name, why);
    if (!g->removed) set_state(g, GD_GUEST_DOWN);
    gd_idmap_drain(&g->pending, answer_lost, g);
}

static void store(cJSON **slot, cJSON *data)
{
    cJSON_Delete(*slot);
    *slot = data;
}

static void on_event(gd_guest_t *g, cJSON *msg, const char *name, const char *line, size_t len)
{
    cJSON *data = cJSON_GetObjectItemCaseSensitive(msg, "data");
    int kept = 1;

    if (cJSON_IsObject(data) && strcmp(name, "hello") == 0) {
        store(&g->hello, cJSON_DetachItemViaPointer(msg, data));
        g->backoff_ms = g->hub->cfg->hub.reconnect_min_ms; /* a real guest, not a flapping socket */
    } else if (cJSON_IsObject(data) && strcmp(name, "metrics") == 0) {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(msg, "ts");
        store(&g->sample, cJSON_DetachItemViaPointer(msg, data));
        g->sample_ts_ms = cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0;
        g->prev_sample_rx_ms = g->sample_rx_ms;
        g->sample_rx_ms = gd_now_ms();
    } else if (cJSON_IsObject(data) && strcmp(name, "health") == 0) {
        store(&g->health, cJSON_DetachItemViaPointer(msg, data));
        g->health_rx_ms = gd_now_ms();
    } else {
        kept = 0;
    }
    if (kept && g->glog != NULL && strcmp(name, "hello") != 0)
        gd_guestlog_write(g->glog, name, line, len);
    if (kept && g->hub->hooks.on_event) g->hub->hooks.on_event(g->hub->hooks.ctx, g, name);
    g->hub->events_total++;
    gd_hub_fan_out(g->hub, g, name, line, len);
}

static void on_line(void *ctx, char *line, size_t len)
{
    gd_guest_t *g = ctx;
    cJSON *msg = cJSON_ParseWithLength(line, len);

    g->lines_in++;
    if (!cJSON_IsObject(msg)) {
        g->parse_errors++;
        g->hub->parse_errors_total++;
        gd_debug("guest %s: a line that is not a JSON object (%zu bytes)", g->name, len);
        cJSON_Delete(msg);
        return;
    }
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(msg, "event");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    uint64_t hub_id;
    if (cJSON_IsString(ev)) {
        on_event(g, msg, ev->valuestring, line, len);
    } else if (cJSON_IsString(id) && gd_idmap_parse(id->valuestring, &hub_id) == 0) {
        gd_idmap_entry_t *e = gd_idmap_take(&g->pending, hub_id);
        if (e != NULL) {
            gd_hub_route_response(g->hub, g, e, msg);
            free(e);
        } else {
            g->responses_unmatched++;
        }
    } else {
        g->responses_unmatched++;
    }
    cJSON_Delete(msg);
}

static void on_too_large(void *ctx)
{
    gd_guest_t *g = ctx;
    g->too_large++;
    g->hub->too_large_total++;
    gd_warn("guest %s: a line longer than %lld bytes, dropped", g->name,
            (long long)g->hub->cfg->hub.guest_max_line_bytes);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gd_guest_t *g = s->data;

    if (nread < 0) {
        drop_connection(g, nread == UV_EOF ? "closed" : uv_strerror((int)nread));
        return;
    }
    g->bytes_in += (uint64_t)nread;
    if (nread > 0) gd_framer_feed(&g->framer, buf->base, (size_t)nread);
}

static void on_connect(uv_connect_t *req, int status)
{
    gd_guest_t *g = req->data;

    if (!g->pipe_open) return; /* removed while connecting */
    if (status < 0) {
        drop_connection(g, uv_strerror(status));
        return;
    }
    gd_framer_reset(&g->framer);
    int rc = uv_read_start((uv_stream_t *)&g->pipe, gd_hub_alloc, on_read);
    if (rc < 0) {
        drop_connection(g, uv_strerror(rc));
        return;
    }
    set_state(g, GD_GUEST_UP);
    kick_write(g);
}

static void connect_now(gd_guest_t *g)
{
    if (g->removed || g->pipe_open) return;
    int rc = uv_pipe_init(g->hub->loop, &g->pipe, 0);
    if (rc < 0) {
        gd_warn("guest %s: %s", g->name, uv_strerror(rc));
        return;
    }
    g->pipe.data = g;
    g->pipe_open = 1;
    g->handles++;
    g->connect_req.data = g;
    uv_pipe_connect(&g->connect_req, &g->pipe, g->path, on_connect);
}

gd_guest_t *gd_guest_new(struct gd_hub_s *hub, const char *name, const char *path,
                         gd_guest_source_t src)
{
    gd_guest_t *g = calloc(1, sizeof(*g));
    if (g == NULL) return NULL;
    g->hub = hub;
    snprintf(g->name, sizeof(g->name), "%s", name);
    snprintf(g->path, sizeof(g->path), "%s", path);
    g->source = src;
    g->state = GD_GUEST_CONNECTING;
    g->state_since_ms = gd_now_ms();
    g->backoff_ms = hub->cfg->hub.reconnect_min_ms;
    gd_framer_init(&g->framer, (size_t)hub->cfg->hub.guest_max_line_bytes, on_line, on_too_large,
                   g);
    gd_outq_init(&g->outq, (size_t)hub->cfg->hub.guest_queue_bytes);
    gd_idmap_init(&g->pending);
    uv_timer_init(hub->loop, &g->retry);
    g->retry.data = g;
    g->handles = 1;
    return g;
}

void gd_guest_start(gd_guest_t *g)
{
    connect_now(g);
}

void gd_guest_restart(gd_guest_t *g)
{
    g->backoff_ms = g->hub->cfg->hub.reconnect_min_ms;
    if (g->pipe_open)
        drop_connection(g, "moved");
    else {
        uv_timer_stop(&g->retry);
        connect_now(g);
    }
}

void gd_guest_remove(gd_guest_t *g)
{
    g->removed = 1;
    drop_connection(g, "removed");
    gd_idmap_drain(&g->pending, answer_lost, g);
    uv_timer_stop(&g->retry);
    uv_close((uv_handle_t *)&g->retry, on_handle_closed);
}

static void on_write(uv_write_t *req, int status)
{
    gd_guest_t *g = req->data;
    g->writing = 0;
    if (status < 0 || !g->pipe_open) return; /* the read side sees the close */
    /* uv_write writes all it was given or fails. */
    gd_outq_advance(&g->outq, g->write_len);
    kick_write(g);
}

static void kick_write(gd_guest_t *g)
{
    const char *data;
    if (g->writing || !g->pipe_open || g->state != GD_GUEST_UP) return;
    size_t len = gd_outq_peek(&g->outq, &data);
    if (len == 0) return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    g->write_req.data = g;
    g->write_len = len;
    int rc = uv_write(&g->write_req, (uv_stream_t *)&g->pipe, &b, 1, on_write);
    if (rc < 0) {
        drop_connection(g, uv_strerror(rc));
        return;
    }
    g->writing = 1;
}

int gd_guest_send(gd_guest_t *g, const char *line, size_t len)
{
    if (g->state != GD_GUEST_UP || !g->pipe_open) return -ENOTCONN;
    if (g->outq.bytes + len > g->outq.limit) return -EAGAIN;
    int rc = gd_outq_push_response(&g->outq, line, len);
    if (rc < 0) return rc;
    kick_write(g);
    return 0;
}

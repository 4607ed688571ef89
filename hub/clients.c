/* The hub's clients: requests naming a guest are forwarded with hub-unique
 * ids and the answers routed back with the client's own id; hub requests
 * ("op") answered from memory; events fanned out to the clients watching.
 * The envelope is docs/fleet.md's. Nothing here calls libvirt or waits on
 * a guest. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus.h"
#include "core/log.h"
#include "hub/hub.h"

#define GD_HUB_MAX_WATCHES 1024

struct gd_hub_client_s {
    gd_hub_client_t *prev, *next;
    gd_hub_t *hub;
    uint64_t serial;
    uv_pipe_t pipe;
    uv_write_t write_req;
    size_t write_len;
    int writing;
    int reading;
    int closing;
    gd_framer_t framer;
    gd_outq_t outq;
    int watch_all;
    char (*watches)[GD_HUB_NAME_MAX];
    size_t n_watches;
};

static void client_kick(gd_hub_client_t *c);

static gd_hub_client_t *find_client(gd_hub_t *hub, uint64_t serial)
{
    for (gd_hub_client_t *c = hub->clients; c != NULL; c = c->next)
        if (c->serial == serial) return c;
    return NULL;
}

static void on_client_closed(uv_handle_t *h)
{
    gd_hub_client_t *c = h->data;
    gd_framer_free(&c->framer);
    gd_outq_clear(&c->outq);
    free(c->watches);
    free(c);
}

/* A client that goes away mid-request costs nothing: its pending entries
 * are forgotten and the answers, when they come, dropped. */
static void client_close(gd_hub_client_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    gd_hub_t *hub = c->hub;
    for (gd_guest_t *g = hub->guests; g != NULL; g = g->next)
        gd_idmap_forget_client(&g->pending, c->serial);
    if (c->prev)
        c->prev->next = c->next;
    else
        hub->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    hub->n_clients--;
    gd_framer_reset(&c->framer);
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

void gd_hub_clients_close(gd_hub_t *hub)
{
    while (hub->clients != NULL)
        client_close(hub->clients);
}

/* Hands a malloc'd line (no '\n' yet, room for it not required) to c. */
static void client_push_owned(gd_hub_client_t *c, char *text)
{
    if (text == NULL || c->closing) {
        free(text);
        return;
    }
    size_t len = strlen(text);
    char *line = realloc(text, len + 2);
    if (line == NULL) {
        free(text);
        return;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    if (gd_outq_push_owned(&c->outq, line, line, len + 1) == 0) client_kick(c);
}

static void reply(gd_hub_client_t *c, cJSON *msg)
{
    client_push_owned(c, cJSON_PrintUnformatted(msg));
    cJSON_Delete(msg);
}

static cJSON *envelope(const char *orig_id, const char *guest, int ok)
{
    cJSON *msg = cJSON_CreateObject();
    cJSON_AddItemToObject(msg, "id", cJSON_CreateRaw(orig_id ? orig_id : "null"));
    if (guest) cJSON_AddStringToObject(msg, "guest", guest);
    cJSON_AddBoolToObject(msg, "ok", ok);
    return msg;
}

static void reply_error(gd_hub_client_t *c, const char *orig_id, const char *guest,
                        const char *code, const char *message)
{
    cJSON *msg = envelope(orig_id, guest, 0);
    cJSON *err = cJSON_AddObjectToObject(msg, "error");
    cJSON_AddStringToObject(err, "code", code);
    cJSON_AddStringToObject(err, "message", message);
    reply(c, msg);
}

void gd_hub_answer_error(gd_hub_t *hub, uint64_t client, const char *orig_id, const char *guest,
                         const char *code, const char *message)
{
    gd_hub_client_t *c = find_client(hub, client);
    if (c != NULL) reply_error(c, orig_id, guest, code, message);
}

void gd_hub_route_response(gd_hub_t *hub, gd_guest_t *g, gd_idmap_entry_t *e, cJSON *resp)
{
    gd_hub_client_t *c = find_client(hub, e->client);
    if (c == NULL) return; /* it left; the answer goes nowhere */
    cJSON_ReplaceItemInObjectCaseSensitive(resp, "id", cJSON_CreateRaw(e->orig));
    cJSON_DeleteItemFromObjectCaseSensitive(resp, "guest");
    cJSON_AddStringToObject(resp, "guest", g->name);
    client_push_owned(c, cJSON_PrintUnformatted(resp));
}

static int watches(const gd_hub_client_t *c, const char *name)
{
    if (c->watch_all) return 1;
    for (size_t i = 0; i < c->n_watches; i++)
        if (strcmp(c->watches[i], name) == 0) return 1;
    return 0;
}

/* {"guest":"NAME", + the guest's line after its '{': built once, shared by
 * every client that watches (a reference each). */
static gd_event_t *guest_line(const gd_guest_t *g, const char *event, const char *line, size_t len)
{
    gd_buf_t b;
    gd_buf_init(&b);
    while (len > 0 && *line != '{') {
        line++;
        len--;
    }
    if (len == 0) return NULL;
    gd_buf_puts(&b, "{\"guest\":");
    gd_buf_json_string(&b, g->name);
    if (len > 2 || line[1] != '}') gd_buf_puts(&b, ",");
    gd_buf_append(&b, line + 1, len - 1);
    if (gd_buf_puts(&b, "\n") != 0) {
        gd_buf_free(&b);
        return NULL;
    }
    gd_event_t *ev = gd_event_new_line(event, b.data, b.len);
    gd_buf_free(&b);
    return ev;
}

static void fan_out_line(gd_hub_t *hub, gd_guest_t *g, const char *event, const char *line,
                         size_t len)
{
    gd_event_t *ev = NULL;
    for (gd_hub_client_t *c = hub->clients; c != NULL; c = c->next) {
        if (!watches(c, g->name)) continue;
        if (ev == NULL && (ev = guest_line(g, event, line, len)) == NULL) return;
        uint64_t before = c->outq.dropped_events;
        if (gd_outq_push_event(&c->outq, ev) == 0) client_kick(c);
        hub->dropped_client_events += c->outq.dropped_events - before;
    }
    gd_event_unref(ev);
}

void gd_hub_fan_out(gd_hub_t *hub, gd_guest_t *g, const char *event, const char *line, size_t len)
{
    fan_out_line(hub, g, event, line, len);
}

void gd_hub_publish_state(gd_hub_t *hub, gd_guest_t *g)
{
    char line[160];
    int n = snprintf(line, sizeof(line),
                     "{\"event\":\"guest.state\",\"ts\":%lld,\"data\":"
                     "{\"state\":\"%s\"}}",
                     (long long)g->state_since_ms, gd_guest_state_name(g->state));
    fan_out_line(hub, g, "guest.state", line, (size_t)n);
}

/* ---- hub requests ------------------------------------------------------ */

static cJSON *guest_summary(const gd_guest_t *g, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *v;
    cJSON_AddStringToObject(o, "name", g->name);
    cJSON_AddStringToObject(o, "source", gd_guest_source_name(g->source));
    cJSON_AddStringToObject(o, "path", g->path);
    cJSON_AddStringToObject(o, "state", gd_guest_state_name(g->state));
    cJSON_AddNumberToObject(o, "state_since", (double)g->state_since_ms);
    v = cJSON_GetObjectItemCaseSensitive(g->hello, "version");
    cJSON_AddItemToObject(
        o, "version", cJSON_IsString(v) ? cJSON_CreateString(v->valuestring) : cJSON_CreateNull());
    v = cJSON_GetObjectItemCaseSensitive(g->hello, "hostname");
    cJSON_AddItemToObject(
        o, "hostname", cJSON_IsString(v) ? cJSON_CreateString(v->valuestring) : cJSON_CreateNull());
    if (g->sample_rx_ms > 0)
        cJSON_AddNumberToObject(o, "last_sample_age_ms", (double)(now - g->sample_rx_ms));
    else
        cJSON_AddNullToObject(o, "last_sample_age_ms");
    v = cJSON_GetObjectItemCaseSensitive(g->health, "status");
    cJSON_AddItemToObject(
        o, "health", cJSON_IsString(v) ? cJSON_CreateString(v->valuestring) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "reconnects", (double)g->reconnects);
    cJSON_AddNumberToObject(o, "parse_errors", (double)g->parse_errors);
    cJSON_AddNumberToObject(o, "too_large", (double)g->too_large);
    cJSON_AddNumberToObject(o, "pending", (double)g->pending.count);
    return o;
}

static void op_list(gd_hub_client_t *c, const char *orig)
{
    cJSON *msg = envelope(orig, NULL, 1);
    cJSON *result = cJSON_AddObjectToObject(msg, "result");
    cJSON *arr = cJSON_AddArrayToObject(result, "guests");
    int64_t now = gd_now_ms();
    for (gd_guest_t *g = c->hub->guests; g != NULL; g = g->next)
        cJSON_AddItemToArray(arr, guest_summary(g, now));
    reply(c, msg);
}

static void op_get(gd_hub_client_t *c, const char *orig, gd_guest_t *g)
{
    cJSON *msg = envelope(orig, g->name, 1);
    cJSON *result = guest_summary(g, gd_now_ms());
    cJSON_AddItemToObject(msg, "result", result);
    cJSON_AddItemToObject(result, "hello",
                          g->hello ? cJSON_Duplicate(g->hello, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(result, "sample",
                          g->sample ? cJSON_Duplicate(g->sample, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(result, "health",
                          g->health ? cJSON_Duplicate(g->health, 1) : cJSON_CreateNull());
    reply(c, msg);
}

static void op_watch(gd_hub_client_t *c, const char *orig, const char *name, int on)
{
    if (strcmp(name, "*") == 0) {
        c->watch_all = on;
        if (!on) c->n_watches = 0;
    } else {
        size_t i;
        for (i = 0; i < c->n_watches; i++)
            if (strcmp(c->watches[i], name) == 0) break;
        if (on && i == c->n_watches) {
            if (c->n_watches == GD_HUB_MAX_WATCHES) {
                reply_error(c, orig, name, "busy", "too many guests watched one by one; use *");
                return;
            }
            void *grown = realloc(c->watches, (c->n_watches + 1) * sizeof(*c->watches));
            if (grown == NULL) {
                reply_error(c, orig, name, "internal", "out of memory");
                return;
            }
            c->watches = grown;
            snprintf(c->watches[c->n_watches++], GD_HUB_NAME_MAX, "%s", name);
        } else if (!on && i < c->n_watches) {
            c->watches[i][0] = '\0';
            memmove(c->watches[i], c->watches[i + 1], (c->n_watches - i - 1) * sizeof(*c->watches));
            c->n_watches--;
        }
    }
    cJSON *msg = envelope(orig, name, 1);
    cJSON_AddObjectToObject(msg, "result");
    reply(c, msg);
}

static void forward(gd_hub_client_t *c, cJSON *req, const char *orig, gd_guest_t *g)
{
    gd_hub_t *hub = c->hub;
    char hub_id[32];

    if (g->state != GD_GUEST_UP) {
        reply_error(c, orig, g->name, "guest_down", "the guest is not connected");
        return;
    }
    if (g->pending.count >= (size_t)hub->cfg->hub.max_pending) {
        reply_error(c, orig, g->name, "busy", "too many requests waiting for this guest");
        return;
    }
    uint64_t n = hub->next_hub_id++;
    snprintf(hub_id, sizeof(hub_id), GD_IDMAP_PREFIX "%llu", (unsigned long long)n);
    cJSON_DeleteItemFromObjectCaseSensitive(req, "guest");
    cJSON_DeleteItemFromObjectCaseSensitive(req, "id");
    cJSON_AddStringToObject(req, "id", hub_id);
    char *text = cJSON_PrintUnformatted(req);
    size_t len = text ? strlen(text) : 0;
    char *line = text ? realloc(text, len + 2) : NULL;
    if (line == NULL) {
        free(text);
        reply_error(c, orig, g->name, "internal", "out of memory");
        return;
    }
    line[len++] = '\n';
    int rc = gd_guest_send(g, line, len);
    free(line);
    if (rc == -EAGAIN) {
        reply_error(c, orig, g->name, "busy", "the guest is not reading its requests");
        return;
    }
    if (rc < 0 || gd_idmap_add(&g->pending, n, c->serial, orig, strlen(orig)) < 0) {
        reply_error(c, orig, g->name, rc == -ENOTCONN ? "guest_down" : "internal",
                    rc == -ENOTCONN ? "the guest is not connected" : "out of memory");
        return;
    }
    hub->forwarded_total++;
}

static void on_request(void *ctx, char *line, size_t len)
{
    gd_hub_client_t *c = ctx;
    cJSON *req = cJSON_ParseWithLength(line, len);
    char *orig = NULL;

    if (!cJSON_IsObject(req)) {
        reply_error(c, NULL, NULL, "parse_error", "a request is one JSON object per line");
        goto out;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
    if (id != NULL && !cJSON_IsString(id) && !cJSON_IsNumber(id) && !cJSON_IsNull(id)) {
        reply_error(c, NULL, NULL, "invalid_request", "id is a string, a number or null");
        goto out;
    }
    orig = id ? cJSON_PrintUnformatted(id) : NULL;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
    const cJSON *guest = cJSON_GetObjectItemCaseSensitive(req, "guest");
    const char *name = cJSON_IsString(guest) ? guest->valuestring : NULL;
    if (guest != NULL && name == NULL) {
        reply_error(c, orig, NULL, "invalid_request", "guest is a string");
        goto out;
    }
    gd_guest_t *g = name ? gd_hub_find(c->hub, name) : NULL;
    if (op != NULL) {
        const char *o = cJSON_IsString(op) ? op->valuestring : "";
        if (strcmp(o, "list") == 0) {
            op_list(c, orig);
        } else if (strcmp(o, "watch") == 0 || strcmp(o, "unwatch") == 0) {
            if (name == NULL)
                reply_error(c, orig, NULL, "invalid_request", "watch names a guest, or *");
            else if (g == NULL && strcmp(name, "*") != 0 && o[0] == 'w')
                reply_error(c, orig, name, "unknown_guest", "no guest of that name");
            else
                op_watch(c, orig, name, o[0] == 'w');
        } else if (strcmp(o, "get") == 0) {
            if (g == NULL)
                reply_error(c, orig, name, "unknown_guest", "no guest of that name");
            else
                op_get(c, orig, g);
        } else {
            reply_error(c, orig, name, "invalid_request", "op is one of list, get, watch, unwatch");
        }
        goto out;
    }
    if (name == NULL) {
        reply_error(c, orig, NULL, "invalid_request",
                    "a request names its guest (\"guest\") or is a hub request (\"op\")");
    } else if (g == NULL) {
        reply_error(c, orig, name, "unknown_guest", "no guest of that name");
    } else {
        forward(c, req, orig ? orig : "null", g);
    }
out:
    cJSON_free(orig);
    cJSON_Delete(req);
}

static void on_request_too_large(void *ctx)
{
    gd_hub_client_t *c = ctx;
    reply_error(c, NULL, NULL, "too_large", "the request is longer than hub.client_max_line_bytes");
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gd_hub_client_t *c = s->data;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (nread > 0) gd_framer_feed(&c->framer, buf->base, (size_t)nread);
    /* Answers never dropped: a client that does not read them is not read
     * from until it does. */
    if (!c->closing && gd_outq_over_limit(&c->outq) && c->reading) {
        uv_read_stop(s);
        c->reading = 0;
    }
}

static void on_client_write(uv_write_t *req, int status)
{
    gd_hub_client_t *c = req->data;
    c->writing = 0;
    if (c->closing) return;
    if (status < 0) {
        client_close(c);
        return;
    }
    gd_outq_advance(&c->outq, c->write_len);
    if (!c->reading && !gd_outq_over_limit(&c->outq)) {
        if (uv_read_start((uv_stream_t *)&c->pipe, gd_hub_alloc, on_client_read) == 0)
            c->reading = 1;
    }
    client_kick(c);
}

static void client_kick(gd_hub_client_t *c)
{
    const char *data;
    if (c->writing || c->closing) return;
    size_t len = gd_outq_peek(&c->outq, &data);
    if (len == 0) return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    c->write_req.data = c;
    c->write_len = len;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->pipe, &b, 1, on_client_write) < 0) {
        client_close(c);
        return;
    }
    c->writing = 1;
}

static void free_refused(uv_handle_t *h)
{
    free(h->data);
}

void gd_hub_on_connection(uv_stream_t *server, int status)
{
    gd_hub_t *hub = server->data;
    if (status < 0) return;
    gd_hub_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL) return;
    uv_pipe_init(hub->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->hub = hub;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
        hub->n_clients >= (size_t)hub->cfg->hub.max_clients) {
        if (hub->n_clients >= (size_t)hub->cfg->hub.max_clients)
            gd_warn("a client refused: hub.max_clients (%lld) reached",
                    (long long)hub->cfg->hub.max_clients);
        uv_close((uv_handle_t *)&c->pipe, free_refused);
        return;
    }
    c->serial = hub->next_client++;
    gd_framer_init(&c->framer, (size_t)hub->cfg->hub.client_max_line_bytes, on_request,
                   on_request_too_large, c);
    gd_outq_init(&c->outq, (size_t)hub->cfg->hub.client_queue_bytes);
    c->next = hub->clients;
    if (hub->clients) hub->clients->prev = c;
    hub->clients = c;
    hub->n_clients++;
    if (uv_read_start((uv_stream_t *)&c->pipe, gd_hub_alloc, on_client_read) == 0)
        c->reading = 1;
    else
        client_close(c);
}

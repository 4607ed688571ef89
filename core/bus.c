/* The broadcast bus: reference-counted events serialised once, fanned out to
 * bounded per-subscriber rings and delivered from a uv_idle pass. */
#include "core/bus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Events alive anywhere in the process; events may be built off the loop
 * thread (a worker preparing a sample), so the count is atomic. */
static atomic_size_t live_events;

/* ---- events ---------------------------------------------------------- */

/* Writes s as the inside of a JSON string to dst (when non-NULL) and returns
 * the number of bytes that takes. */
static size_t json_escape(char *dst, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[6];
        size_t k = 0;
        switch (*p) {
        case '"':
        case '\\':
            esc[k++] = '\\';
            esc[k++] = (char)*p;
            break;
        case '\n':
            esc[k++] = '\\';
            esc[k++] = 'n';
            break;
        case '\r':
            esc[k++] = '\\';
            esc[k++] = 'r';
            break;
        case '\t':
            esc[k++] = '\\';
            esc[k++] = 't';
            break;
        default:
            if (*p < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*p >> 4];
                esc[5] = hex[*p & 15];
                k = 6;
            } else {
                esc[k++] = (char)*p;
            }
        }
        if (dst) memcpy(dst + n, esc, k);
        n += k;
    }
    return n;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define LIT(p, s) put((p), (s), sizeof(s) - 1)

gd_event_t *gd_event_new_raw(const char *name, uint64_t seq, int64_t ts_ms, const char *data_json,
                             size_t data_len)
{
    if (!data_json || data_len == 0) {
        data_json = "{}";
        data_len = 2;
    }
    char seq_txt[24], ts_txt[24];
    size_t seq_len = (size_t)snprintf(seq_txt, sizeof(seq_txt), "%" PRIu64, seq);
    size_t ts_len = (size_t)snprintf(ts_txt, sizeof(ts_txt), "%" PRId64, ts_ms);
    size_t name_len = json_escape(NULL, name);

    static const char k_event[] = "{\"event\":\"", k_seq[] = "\",\"seq\":", k_ts[] = ",\"ts\":",
                      k_data[] = ",\"data\":", k_end[] = "}\n";
    size_t len = (sizeof(k_event) - 1) + name_len + (sizeof(k_seq) - 1) + seq_len +
                 (sizeof(k_ts) - 1) + ts_len + (sizeof(k_data) - 1) + data_len +
                 (sizeof(k_end) - 1);

    /* The struct and its line share one allocation. */
    gd_event_t *ev = malloc(sizeof(*ev) + len + 1);
    if (!ev) return NULL;
    ev->refs = 1;
    ev->seq = seq;
    ev->ts_ms = ts_ms;
    /* The name field is a convenience copy and may be truncated; the line
     * always carries the full name. */
    snprintf(ev->name, sizeof(ev->name), "%s", name);
    ev->line = (char *)(ev + 1);
    ev->len = len;

    char *p = LIT(ev->line, k_event);
    json_escape(p, name);
    p += name_len;
    p = LIT(p, k_seq);
    p = put(p, seq_txt, seq_len);
    p = LIT(p, k_ts);
    p = put(p, ts_txt, ts_len);
    p = LIT(p, k_data);
    ev->data_off = (size_t)(p - ev->line);
    ev->data_len = data_len;
    p = put(p, data_json, data_len);
    p = LIT(p, k_end);
    *p = '\0';

    atomic_fetch_add_explicit(&live_events, 1, memory_order_relaxed);
    return ev;
}

gd_event_t *gd_event_new_line(const char *name, const char *line, size_t len)
{
    gd_event_t *ev = malloc(sizeof(*ev) + len + 1);
    if (!ev) return NULL;
    memset(ev, 0, sizeof(*ev));
    ev->refs = 1;
    snprintf(ev->name, sizeof(ev->name), "%s", name);
    ev->line = (char *)(ev + 1);
    ev->len = len;
    memcpy(ev->line, line, len);
    ev->line[len] = '\0';
    atomic_fetch_add_explicit(&live_events, 1, memory_order_relaxed);
    return ev;
}

gd_event_t *gd_event_new(const char *name, uint64_t seq, int64_t ts_ms, const cJSON *data)
{
    if (!data) return gd_event_new_raw(name, seq, ts_ms, NULL, 0);
    char *json = cJSON_PrintUnformatted(data);
    if (!json) return NULL;
    gd_event_t *ev = gd_event_new_raw(name, seq, ts_ms, json, strlen(json));
    cJSON_free(json);
    return ev;
}

gd_event_t *gd_event_ref(gd_event_t *ev)
{
    if (ev) ev->refs++;
    return ev;
}

void gd_event_unref(gd_event_t *ev)
{
    if (!ev || --ev->refs > 0) return;
    atomic_fetch_sub_explicit(&live_events, 1, memory_order_relaxed);
    free(ev);
}

size_t gd_event_live_count(void)
{
    return atomic_load_explicit(&live_events, memory_order_relaxed);
}

int64_t gd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- subscriber rings ------------------------------------------------ */

static void ring_push(gd_bus_sub_t *sub, gd_event_t *ev)
{
    if (sub->count == sub->capacity) {
        gd_event_unref(sub->ring[sub->head]);
        sub->head = (sub->head + 1) % sub->capacity;
        sub->count--;
        sub->lagged++;
    }
    sub->ring[(sub->head + sub->count) % sub->capacity] = gd_event_ref(ev);
    sub->count++;
}

static gd_event_t *ring_pop(gd_bus_sub_t *sub)
{
    gd_event_t *ev = sub->ring[sub->head];
    sub->ring[sub->head] = NULL;
    sub->head = (sub->head + 1) % sub->capacity;
    sub->count--;
    return ev;
}

/* Puts a refused event back at the head, taking over the caller's reference.
 * When the callback filled the ring meanwhile, the refused event is the
 * oldest one, so it is the one dropped. */
static void ring_unpop(gd_bus_sub_t *sub, gd_event_t *ev)
{
    if (sub->count == sub->capacity) {
        gd_event_unref(ev);
        sub->lagged++;
        return;
    }
    sub->head = (sub->head + sub->capacity - 1) % sub->capacity;
    sub->ring[sub->head] = ev;
    sub->count++;
}

static void ring_clear(gd_bus_sub_t *sub)
{
    while (sub->count > 0)
        gd_event_unref(ring_pop(sub));
    free(sub->ring);
    sub->ring = NULL;
    sub->head = 0;
}

/* ---- delivery -------------------------------------------------------- */

static int has_deliverable(const gd_bus_t *bus)
{
    for (const gd_bus_sub_t *sub = bus->subs; sub; sub = sub->next)
        if (!sub->paused && sub->count > 0) return 1;
    return 0;
}

/* Hands sub the events queued when its turn began; events published by the
 * callbacks wait for the next pass, so a callback that publishes cannot keep
 * the loop here. Returns without touching sub again once it is gone. */
static void deliver_to(gd_bus_t *bus, gd_bus_sub_t *sub)
{
    size_t budget = sub->count;
    bus->current = sub;
    bus->current_gone = 0;
    while (budget-- > 0 && sub->count > 0 && !sub->paused) {
        /* Off the ring while the callback runs: a publish from inside it may
         * drop the ring's oldest entry, which must not be this one. */
        gd_event_t *ev = ring_pop(sub);
        int refused = sub->deliver(sub, ev);
        if (bus->current_gone) {
            gd_event_unref(ev);
            break;
        }
        if (refused) {
            sub->paused = 1;
            ring_unpop(sub, ev);
            break;
        }
        sub->delivered++;
        gd_event_unref(ev);
    }
    bus->current = NULL;
}

static void on_idle(uv_idle_t *idle)
{
    gd_bus_t *bus = idle->data;
    bus->delivering = 1;
    /* The cursor lives in the bus so that unsubscribing the next subscriber
     * from a callback moves it on instead of leaving it dangling. */
    for (gd_bus_sub_t *sub = bus->subs; sub && !bus->closing; sub = bus->cursor) {
        bus->cursor = sub->next;
        if (!sub->paused && sub->count > 0) deliver_to(bus, sub);
    }
    bus->cursor = NULL;
    bus->delivering = 0;
    if (!bus->closing && !has_deliverable(bus)) uv_idle_stop(&bus->idle);
}

static void kick(gd_bus_t *bus)
{
    if (!bus->closing) uv_idle_start(&bus->idle, on_idle);
}

/* ---- the bus --------------------------------------------------------- */

int gd_bus_init(gd_bus_t *bus, uv_loop_t *loop)
{
    memset(bus, 0, sizeof(*bus));
    bus->loop = loop;
    bus->next_seq = 1;
    bus->now_ms = gd_now_ms;
    int rc = uv_idle_init(loop, &bus->idle);
    if (rc != 0) return rc;
    bus->idle.data = bus;
    return 0;
}

void gd_bus_close(gd_bus_t *bus, uv_close_cb cb)
{
    if (bus->closing) return;
    bus->closing = 1;
    gd_bus_sub_t *sub = bus->subs;
    while (sub) {
        gd_bus_sub_t *next = sub->next;
        ring_clear(sub);
        sub->subscribed = 0;
        sub->next = NULL;
        sub = next;
    }
    bus->subs = NULL;
    bus->cursor = NULL;
    if (bus->current) bus->current_gone = 1;
    uv_close((uv_handle_t *)&bus->idle, cb);
}

void gd_bus_publish_event(gd_bus_t *bus, gd_event_t *ev)
{
    if (bus->closing || !ev) return;
    bus->published++;
    int wake = 0;
    for (gd_bus_sub_t *sub = bus->subs; sub; sub = sub->next) {
        ring_push(sub, ev);
        wake |= !sub->paused;
    }
    if (wake) kick(bus);
}

uint64_t gd_bus_take_seq(gd_bus_t *bus)
{
    return bus->next_seq++;
}

static uint64_t publish_built(gd_bus_t *bus, gd_event_t *ev)
{
    if (!ev) return 0;
    uint64_t seq = ev->seq;
    bus->next_seq++;
    gd_bus_publish_event(bus, ev);
    gd_event_unref(ev);
    return seq;
}

uint64_t gd_bus_publish(gd_bus_t *bus, const char *name, const cJSON *data)
{
    if (bus->closing) return 0;
    return publish_built(bus, gd_event_new(name, bus->next_seq, bus->now_ms(), data));
}

uint64_t gd_bus_publish_raw(gd_bus_t *bus, const char *name, const char *data_json, size_t data_len)
{
    if (bus->closing) return 0;
    return publish_built(bus,
                         gd_event_new_raw(name, bus->next_seq, bus->now_ms(), data_json, data_len));
}

int gd_bus_subscribe(gd_bus_t *bus, gd_bus_sub_t *sub, const char *name, size_t capacity,
                     gd_bus_deliver_cb deliver, void *data)
{
    if (capacity < 1 || !deliver || bus->closing) return -EINVAL;
    gd_event_t **ring = calloc(capacity, sizeof(*ring));
    if (!ring) return -ENOMEM;
    memset(sub, 0, sizeof(*sub));
    sub->bus = bus;
    sub->deliver = deliver;
    sub->data = data;
    sub->name = name;
    sub->ring = ring;
    sub->capacity = capacity;
    sub->subscribed = 1;
    /* Appended, so delivery follows subscription order. */
    gd_bus_sub_t **link = &bus->subs;
    while (*link)
        link = &(*link)->next;
    *link = sub;
    return 0;
}

void gd_bus_unsubscribe(gd_bus_sub_t *sub)
{
    if (!sub->subscribed) return;
    gd_bus_t *bus = sub->bus;
    for (gd_bus_sub_t **link = &bus->subs; *link; link = &(*link)->next) {
        if (*link == sub) {
            *link = sub->next;
            break;
        }
    }
    if (bus->cursor == sub) bus->cursor = sub->next;
    if (bus->current == sub) bus->current_gone = 1;
    ring_clear(sub);
    sub->subscribed = 0;
    sub->next = NULL;
}

void gd_bus_sub_resume(gd_bus_sub_t *sub)
{
    if (!sub->subscribed || !sub->paused) return;
    sub->paused = 0;
    if (sub->count > 0) kick(sub->bus);
}

uint64_t gd_bus_total_lagged(const gd_bus_t *bus)
{
    uint64_t total = 0;
    for (const gd_bus_sub_t *sub = bus->subs; sub; sub = sub->next)
        total += sub->lagged;
    return total;
}

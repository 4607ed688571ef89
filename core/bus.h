/* The broadcast bus: one publisher hands an immutable, reference-counted
 * event (serialised to its JSON line once) to every subscriber, in
 * subscription order. Each subscriber has a bounded queue; when it is full the
 * oldest events are dropped and counted ("lagged"). The publisher never waits.
 *
 * Delivery is deferred to the loop (a uv_idle pass), so publishing from
 * anywhere, including from inside a delivery callback, is safe. */
#ifndef GUESTD_BUS_H
#define GUESTD_BUS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

typedef struct gd_event_s {
    unsigned refs;
    uint64_t seq;
    int64_t ts_ms;
    char name[32]; /* a copy, truncated if longer; line has it all */
    /* The whole line as sent to the host, ending in '\n' (then a NUL that
     * len does not count). */
    char *line;
    size_t len;
    /* Where the "data" value sits inside line, so history and health can
     * reuse the JSON without parsing it again (cJSON_CreateRaw). */
    size_t data_off, data_len;
} gd_event_t;

/* Builds {"event":NAME,"seq":SEQ,"ts":TS,"data":DATA}\n with one reference.
 * data may be NULL (serialised as {}). Returns NULL when out of memory. */
gd_event_t *gd_event_new(const char *name, uint64_t seq, int64_t ts_ms, const cJSON *data);
/* The same from data already serialised as one JSON value on one line
 * (data_len bytes, copied as is; NULL or 0 bytes means {}). */
gd_event_t *gd_event_new_raw(const char *name, uint64_t seq, int64_t ts_ms, const char *data_json,
                             size_t data_len);
/* An event whose whole line (ending in '\n', len bytes) was built by the
 * caller, copied as is; seq, ts_ms and data_off/data_len are 0 (the hub
 * passes a guest's events on with its name added). */
gd_event_t *gd_event_new_line(const char *name, const char *line, size_t len);
/* References are counted without atomics: share an event on one thread (the
 * loop's). Both accept NULL. */
gd_event_t *gd_event_ref(gd_event_t *ev);
void gd_event_unref(gd_event_t *ev);
/* Events not yet freed, process-wide (tests assert it returns to 0). */
size_t gd_event_live_count(void);

typedef struct gd_bus_s gd_bus_t;
typedef struct gd_bus_sub_s gd_bus_sub_t;

/* Called once per queued event, in order. Return 0 when the event was taken
 * (the bus drops its queue reference; take your own with gd_event_ref to keep
 * it), or 1 to refuse it for now: the event stays at the head of the queue
 * and delivery to this subscriber pauses until gd_bus_sub_resume(). */
typedef int (*gd_bus_deliver_cb)(gd_bus_sub_t *sub, gd_event_t *ev);

struct gd_bus_sub_s {
    gd_bus_t *bus;
    gd_bus_deliver_cb deliver;
    void *data; /* the subscriber's own */
    const char *name;
    /* Ring of queued events. */
    gd_event_t **ring;
    size_t capacity, head, count;
    uint64_t lagged;    /* events dropped because the queue was full */
    uint64_t delivered; /* events taken */
    int paused;
    int subscribed;
    gd_bus_sub_t *next;
};

struct gd_bus_s {
    uv_loop_t *loop;
    uv_idle_t idle; /* runs deliveries while any queue is non-empty */
    gd_bus_sub_t *subs;
    uint64_t next_seq; /* the seq the next publish gets; starts at 1 */
    uint64_t published;
    int delivering;
    int closing;
    /* Delivery state that unsubscribe adjusts, so a callback may unsubscribe
     * itself or any other subscriber: the next subscriber of the pass, and
     * the one being delivered to (set gone when it unsubscribes). */
    gd_bus_sub_t *cursor;
    gd_bus_sub_t *current;
    int current_gone;
    /* Clock for event timestamps; tests inject their own. */
    int64_t (*now_ms)(void);
};

int gd_bus_init(gd_bus_t *bus, uv_loop_t *loop);
/* Drops every queued event, detaches every subscriber and closes the idle
 * handle; cb (may be NULL) gets &bus->idle. Safe from a delivery callback. */
void gd_bus_close(gd_bus_t *bus, uv_close_cb cb);

/* Wall-clock milliseconds since the epoch (the default now_ms). */
int64_t gd_now_ms(void);

/* Assigns the next seq and the current time, serialises once, queues the
 * event for every subscriber. Returns the seq, or 0 when out of memory or
 * after gd_bus_close (no seq is used up then). */
uint64_t gd_bus_publish(gd_bus_t *bus, const char *name, const cJSON *data);
uint64_t gd_bus_publish_raw(gd_bus_t *bus, const char *name, const char *data_json,
                            size_t data_len);
/* Reserves the next seq for an event built outside the bus (gd_event_new),
 * such as hello sent straight to one host, so seqs stay unique. */
uint64_t gd_bus_take_seq(gd_bus_t *bus);
/* Queues an already-built event (its seq is the caller's); takes no
 * ownership of the caller's reference. */
void gd_bus_publish_event(gd_bus_t *bus, gd_event_t *ev);

/* sub is caller-owned memory that must stay valid until unsubscribe (or
 * gd_bus_close). capacity >= 1. The sub sees only events published after this
 * call. Returns 0, -EINVAL (capacity 0, no callback, bus closing) or -ENOMEM. */
int gd_bus_subscribe(gd_bus_t *bus, gd_bus_sub_t *sub, const char *name, size_t capacity,
                     gd_bus_deliver_cb deliver, void *data);
/* Drops the sub's queued events; sub may be freed right after. Safe from
 * inside any delivery callback, including the sub's own. */
void gd_bus_unsubscribe(gd_bus_sub_t *sub);
/* Clears the pause set by a deliver callback returning 1. */
void gd_bus_sub_resume(gd_bus_sub_t *sub);
/* Sum of every subscriber's lag count (for health). */
uint64_t gd_bus_total_lagged(const gd_bus_t *bus);

#endif

/* The channel's out-queue: lines waiting to be written to the host.
 * Responses are never dropped. Events count against a byte bound: when
 * queued bytes pass it, the oldest events not yet started are dropped and
 * counted. A line already partly written is always finished first, so the
 * host never sees a torn line. */
#ifndef GUESTD_OUTQ_H
#define GUESTD_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"

typedef struct gd_outq_item_s {
    struct gd_outq_item_s *next;
    gd_event_t *event; /* a referenced event, or NULL for a response */
    const char *data;  /* the line's bytes (the event's line or owned copy) */
    char *heap;        /* a line handed over by gd_outq_push_owned, or NULL */
    size_t len;
    char owned[]; /* a response's bytes live here */
} gd_outq_item_t;

typedef struct gd_outq_s {
    gd_outq_item_t *head, *tail;
    size_t head_off;         /* bytes of head already written */
    size_t bytes;            /* unwritten bytes queued */
    size_t event_bytes;      /* of which in events */
    size_t limit;            /* channel.out_queue_bytes */
    uint64_t dropped_events; /* events dropped by the bound, ever (not reset by clear) */
    uint64_t queued_lines;   /* lines in the queue now, the head included */
    /* Frees a large handed-over line (gd_outq_push_owned) instead of free():
     * giving back a gigabyte takes the kernel a while, which the channel
     * spends in the thread pool, not on the loop. NULL: free(). */
    void (*free_large)(void *ctx, char *heap);
    void *free_ctx;
} gd_outq_t;

/* Lines handed over that are at least this long go to free_large. */
#define GD_OUTQ_LARGE (4u << 20)

void gd_outq_init(gd_outq_t *q, size_t limit);
/* Copies the line (which must end in '\n'). Never dropped, but it may push
 * queued bytes past the bound, in which case the oldest events not yet
 * started are dropped, as for an event. 0 or -ENOMEM. */
int gd_outq_push_response(gd_outq_t *q, const char *line, size_t len);
/* The same, taking ownership of heap (malloc'd), which holds the line; on
 * -ENOMEM it is freed. */
int gd_outq_push_owned(gd_outq_t *q, char *heap, const char *line, size_t len);
/* Takes a reference on ev. Drops oldest events past the bound (which may be
 * ev itself, when responses alone fill the bound). 0 or -ENOMEM. */
int gd_outq_push_event(gd_outq_t *q, gd_event_t *ev);
/* The unwritten bytes of the head line; returns 0 when empty. */
size_t gd_outq_peek(const gd_outq_t *q, const char **data);
/* Marks n bytes of the head as written (n <= what peek returned). */
void gd_outq_advance(gd_outq_t *q, size_t n);
/* Empties the queue (host gone), partly written head included; keeps the
 * limit and dropped_events. Returns how many lines were discarded. */
size_t gd_outq_clear(gd_outq_t *q);
static inline int gd_outq_empty(const gd_outq_t *q)
{
    return q->head == NULL;
}
/* Above the bound with responses alone: the channel stops reading requests
 * until the host drains its replies (responses are never dropped). */
static inline int gd_outq_over_limit(const gd_outq_t *q)
{
    return q->bytes > q->limit;
}

#endif

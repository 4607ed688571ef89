/* The channel's out-queue: responses kept, events dropped oldest first. */
#include "transport/outq.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void gd_outq_init(gd_outq_t *q, size_t limit)
{
    q->head = q->tail = NULL;
    q->head_off = 0;
    q->bytes = 0;
    q->event_bytes = 0;
    q->limit = limit;
    q->dropped_events = 0;
    q->queued_lines = 0;
    q->free_large = NULL;
    q->free_ctx = NULL;
}

static void outq_item_free(gd_outq_t *q, gd_outq_item_t *it)
{
    if (it->event) gd_event_unref(it->event);
    if (it->heap && it->len >= GD_OUTQ_LARGE && q->free_large)
        q->free_large(q->free_ctx, it->heap);
    else
        free(it->heap);
    free(it);
}

/* Drops the oldest events until the bound holds or none can go. The head is
 * spared only when partly written: dropping it would tear its line. */
static void outq_enforce_limit(gd_outq_t *q)
{
    if (q->bytes <= q->limit) return;
    gd_outq_item_t *prev = NULL;
    gd_outq_item_t *it = q->head;
    size_t droppable = q->event_bytes;
    if (it && q->head_off > 0) {
        if (it->event) droppable -= it->len - q->head_off;
        prev = it;
        it = it->next;
    }
    /* droppable == 0 ends the walk early when only responses are left, so
     * a queue full of responses costs nothing per push. */
    while (q->bytes > q->limit && droppable > 0 && it) {
        gd_outq_item_t *next = it->next;
        if (!it->event) {
            prev = it;
            it = next;
            continue;
        }
        if (prev)
            prev->next = next;
        else
            q->head = next;
        if (q->tail == it) q->tail = prev;
        q->bytes -= it->len;
        q->event_bytes -= it->len;
        droppable -= it->len;
        q->queued_lines--;
        q->dropped_events++;
        outq_item_free(q, it);
        it = next;
    }
}

static void outq_append(gd_outq_t *q, gd_outq_item_t *it)
{
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->bytes += it->len;
    if (it->event) q->event_bytes += it->len;
    q->queued_lines++;
    outq_enforce_limit(q);
}

int gd_outq_push_response(gd_outq_t *q, const char *line, size_t len)
{
    assert(len > 0 && line[len - 1] == '\n');
    gd_outq_item_t *it = malloc(sizeof(*it) + len);
    if (!it) return -ENOMEM;
    it->event = NULL;
    it->heap = NULL;
    memcpy(it->owned, line, len);
    it->data = it->owned;
    it->len = len;
    outq_append(q, it);
    return 0;
}

int gd_outq_push_owned(gd_outq_t *q, char *heap, const char *line, size_t len)
{
    assert(len > 0 && line[len - 1] == '\n');
    gd_outq_item_t *it = malloc(sizeof(*it));
    if (!it) {
        free(heap);
        return -ENOMEM;
    }
    it->event = NULL;
    it->heap = heap;
    it->data = line;
    it->len = len;
    outq_append(q, it);
    return 0;
}

int gd_outq_push_event(gd_outq_t *q, gd_event_t *ev)
{
    gd_outq_item_t *it = malloc(sizeof(*it));
    if (!it) return -ENOMEM;
    it->event = gd_event_ref(ev);
    it->heap = NULL;
    it->data = ev->line;
    it->len = ev->len;
    outq_append(q, it);
    return 0;
}

size_t gd_outq_peek(const gd_outq_t *q, const char **data)
{
    if (!q->head) {
        *data = NULL;
        return 0;
    }
    *data = q->head->data + q->head_off;
    return q->head->len - q->head_off;
}

void gd_outq_advance(gd_outq_t *q, size_t n)
{
    gd_outq_item_t *it = q->head;
    if (!it || n == 0) return;
    size_t left = it->len - q->head_off;
    assert(n <= left);
    if (n > left) n = left;
    q->head_off += n;
    q->bytes -= n;
    if (it->event) q->event_bytes -= n;
    if (q->head_off < it->len) return;
    q->head = it->next;
    if (!q->head) q->tail = NULL;
    q->head_off = 0;
    q->queued_lines--;
    outq_item_free(q, it);
}

size_t gd_outq_clear(gd_outq_t *q)
{
    size_t n = 0;
    gd_outq_item_t *it = q->head;
    while (it) {
        gd_outq_item_t *next = it->next;
        outq_item_free(q, it);
        n++;
        it = next;
    }
    q->head = q->tail = NULL;
    q->head_off = 0;
    q->bytes = 0;
    q->event_bytes = 0;
    q->queued_lines = 0;
    return n;
}

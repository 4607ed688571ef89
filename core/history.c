/* The metrics history: a ring of references to the last N "metrics"
 * events, answered from without re-parsing. */
#include "core/history.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The bus queue only bridges one delivery pass (the ring is the memory);
 * it is large enough that a burst of other events (exec output) between
 * two passes never counts this subscriber as lagging. */
#define HISTORY_SUB_QUEUE 256

struct gd_history_s {
    gd_bus_sub_t sub;
    gd_event_t **ring;
    size_t capacity, head, count; /* head: the oldest */
};

static int on_event(gd_bus_sub_t *sub, gd_event_t *ev)
{
    gd_history_t *h = sub->data;
    if (strcmp(ev->name, "metrics") != 0 || h->capacity == 0) return 0;
    if (h->count == h->capacity) {
        gd_event_unref(h->ring[h->head]);
        h->head = (h->head + 1) % h->capacity;
        h->count--;
    }
    h->ring[(h->head + h->count) % h->capacity] = gd_event_ref(ev);
    h->count++;
    return 0;
}

int gd_history_new(gd_history_t **out, gd_bus_t *bus, size_t capacity)
{
    gd_history_t *h = calloc(1, sizeof(*h));
    if (!h) return -ENOMEM;
    h->capacity = capacity;
    if (capacity) {
        h->ring = calloc(capacity, sizeof(*h->ring));
        if (!h->ring) {
            free(h);
            return -ENOMEM;
        }
        int r = gd_bus_subscribe(bus, &h->sub, "history", HISTORY_SUB_QUEUE, on_event, h);
        if (r < 0) {
            free(h->ring);
            free(h);
            return r;
        }
    }
    *out = h;
    return 0;
}

void gd_history_free(gd_history_t *h)
{
    if (!h) return;
    if (h->capacity) gd_bus_unsubscribe(&h->sub);
    for (size_t i = 0; i < h->count; i++)
        gd_event_unref(h->ring[(h->head + i) % h->capacity]);
    free(h->ring);
    free(h);
}

/* The event's data as a raw item: one copy of its bytes, no parse. */
static cJSON *raw_data(const gd_event_t *ev)
{
    cJSON *item = cJSON_CreateRaw("");
    char *copy = cJSON_malloc(ev->data_len + 1);
    if (!item || !copy) {
        cJSON_Delete(item);
        if (copy) cJSON_free(copy);
        return NULL;
    }
    memcpy(copy, ev->line + ev->data_off, ev->data_len);
    copy[ev->data_len] = '\0';
    cJSON_free(item->valuestring);
    item->valuestring = copy;
    return item;
}

cJSON *gd_history_query(gd_history_t *h, uint64_t since_seq, size_t limit)
{
    cJSON *result = cJSON_CreateObject();
    cJSON *samples = cJSON_AddArrayToObject(result, "samples");
    if (!samples) {
        cJSON_Delete(result);
        return NULL;
    }
    /* seq grows along the ring: skip the ones a host already has. */
    size_t i = 0;
    while (i < h->count && h->ring[(h->head + i) % h->capacity]->seq <= since_seq)
        i++;
    for (size_t taken = 0; i < h->count && (limit == 0 || taken < limit); i++, taken++) {
        const gd_event_t *ev = h->ring[(h->head + i) % h->capacity];
        cJSON *entry = cJSON_CreateObject();
        cJSON *data = raw_data(ev);
        if (!entry || !data) {
            cJSON_Delete(entry);
            cJSON_Delete(data);
            cJSON_Delete(result);
            return NULL;
        }
        cJSON_AddNumberToObject(entry, "seq", (double)ev->seq);
        cJSON_AddNumberToObject(entry, "ts", (double)ev->ts_ms);
        cJSON_AddItemToObject(entry, "data", data);
        cJSON_AddItemToArray(samples, entry);
    }
    return result;
}

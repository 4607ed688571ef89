/* The replies the agent owes its hosts (see owed.h). */
#include "core/owed.h"

#include <errno.h>
#include <string.h>

void gd_owed_init(gd_owed_t *o, size_t limit, size_t (*queued)(void *ctx),
                  void (*on_room)(void *ctx), void *ctx)
{
    memset(o, 0, sizeof(*o));
    o->limit = limit;
    o->queued = queued;
    o->on_room = on_room;
    o->ctx = ctx;
}

static size_t queued_now(const gd_owed_t *o)
{
    return o->queued ? o->queued(o->ctx) : 0;
}

static int fits(const gd_owed_t *o, size_t bytes, size_t queued)
{
    if (o->reserved == 0 && queued == 0) return 1;
    return o->reserved + queued <= o->limit && bytes <= o->limit - o->reserved - queued;
}

int gd_owed_reserve(gd_owed_t *o, gd_owed_waiter_t *w, size_t bytes)
{
    if (!o->head && (o->closed || fits(o, bytes, queued_now(o)))) {
        o->reserved += bytes;
        return 0;
    }
    w->next = NULL;
    w->bytes = bytes;
    if (o->tail)
        o->tail->next = w;
    else
        o->head = w;
    o->tail = w;
    o->waits++;
    return 1;
}

static void kick(gd_owed_t *o)
{
    if (!o->closed && o->on_room) o->on_room(o->ctx);
}

void gd_owed_release(gd_owed_t *o, size_t bytes)
{
    o->reserved = bytes < o->reserved ? o->reserved - bytes : 0;
    kick(o);
}

void gd_owed_poke(gd_owed_t *o)
{
    if (o->head) kick(o);
}

void gd_owed_run(gd_owed_t *o)
{
    while (o->head && fits(o, o->head->bytes, queued_now(o))) {
        gd_owed_waiter_t *w = o->head;
        o->head = w->next;
        if (!o->head) o->tail = NULL;
        o->reserved += w->bytes;
        w->cb(w, 0);
    }
}

void gd_owed_close(gd_owed_t *o)
{
    o->closed = 1;
    while (o->head) {
        gd_owed_waiter_t *w = o->head;
        o->head = w->next;
        if (!o->head) o->tail = NULL;
        w->cb(w, -ECANCELED);
    }
}

/* The replies a channel owes its host: a large reply (file.read,
 * guest-file-read) reserves its size here before its work starts, so the
 * memory the agent holds for a host is bounded by what it admitted, not by
 * what it read. Together with the out-queue's bytes, the reservations are
 * held under the queue's bound (channel.out_queue_bytes): a reservation that
 * does not fit waits until the host has read enough (or, when larger than
 * the bound, until nothing else is owed), and while one waits the channel
 * reads no more requests. It owns no handle: its owner (the channel) runs
 * the waiters from its own deferred callback. */
#ifndef GUESTD_OWED_H
#define GUESTD_OWED_H

#include <stddef.h>
#include <stdint.h>

typedef struct gd_owed_waiter_s gd_owed_waiter_t;
/* status 0: the bytes are now reserved; -ECANCELED: the agent is stopping
 * and nothing was reserved. Runs on the loop, never inside gd_owed_reserve. */
typedef void (*gd_owed_cb)(gd_owed_waiter_t *w, int status);

struct gd_owed_waiter_s {
    gd_owed_waiter_t *next;
    size_t bytes;
    gd_owed_cb cb;
};

typedef struct gd_owed_s {
    size_t reserved; /* bytes reserved for replies being built */
    size_t limit;    /* channel.out_queue_bytes */
    /* Bytes waiting in the out-queue now. */
    size_t (*queued)(void *ctx);
    /* Room was made: the owner schedules gd_owed_run (never runs it from
     * inside this call: it comes from a reply being sent). */
    void (*on_room)(void *ctx);
    void *ctx;
    gd_owed_waiter_t *head, *tail; /* reservations waiting, first come first served */
    int closed;
    uint64_t waits; /* reservations that had to wait, ever */
} gd_owed_t;

void gd_owed_init(gd_owed_t *o, size_t limit, size_t (*queued)(void *ctx),
                  void (*on_room)(void *ctx), void *ctx);
/* Reserves bytes now (0), or queues w to be called once they fit (1). They
 * fit when reservations plus queued bytes stay within the limit, or when
 * nothing at all is owed (a reply larger than the bound goes alone). */
int gd_owed_reserve(gd_owed_t *o, gd_owed_waiter_t *w, size_t bytes);
/* Gives back a reservation (its reply is queued now, or will never be). */
void gd_owed_release(gd_owed_t *o, size_t bytes);
/* Room may have been made (the out-queues drained): run what fits. Cheap
 * when nothing waits. */
void gd_owed_poke(gd_owed_t *o);
/* Whether requests may be read: nothing waits and reservations plus
 * queued bytes are within the limit. */
static inline int gd_owed_admitting(const gd_owed_t *o, size_t queued)
{
    return !o->head && o->reserved + queued <= o->limit;
}
/* Grants the waiting reservations that fit now, in order (the owner's
 * deferred callback). */
void gd_owed_run(gd_owed_t *o);
/* Cancels every waiter (-ECANCELED); later reservations are granted at once. */
void gd_owed_close(gd_owed_t *o);

#endif

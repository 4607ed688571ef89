/* The channel: the agent's one link to the host. It owns the endpoint (a
 * virtio-serial port, a unix or vsock socket, stdio), the framer, the writer
 * and the out-queue, and tells its owner when a host attaches or detaches and
 * when a line arrives. It knows nothing of commands or metrics. */
#ifndef GUESTD_CHANNEL_H
#define GUESTD_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/bus.h"
#include "core/owed.h"

typedef enum {
    GD_EP_VIRTIO_SERIAL,
    GD_EP_UNIX_LISTEN,
    GD_EP_UNIX_CONNECT,
    GD_EP_VSOCK_LISTEN,
    GD_EP_STDIO,
} gd_endpoint_kind_t;

typedef struct gd_channel_cbs_s {
    void (*on_attach)(void *ctx, uint64_t gen);
    void (*on_detach)(void *ctx, uint64_t gen);
    void (*on_line)(void *ctx, uint64_t gen, char *line, size_t len);
    void (*on_too_large)(void *ctx, uint64_t gen);
    /* qemu-ga's framing (commands/qga/qga.h): when set, the raw bytes read go
     * here instead of to the line framer, and on_line is not called. It
     * returns the bytes it took: fewer than len when it stopped because
     * the channel is no longer admitting (gd_channel_admitting); the rest
     * is fed again, with len 0 when nothing is left, once room frees. */
    size_t (*on_data)(void *ctx, uint64_t gen, char *data, size_t len);
} gd_channel_cbs_t;

typedef struct gd_channel_s gd_channel_t;

/* What health and the tests read of a channel (gd_channel_stats). */
typedef struct gd_channel_stats_s {
    int attached;            /* a host is there: lines flow */
    int port_missing;        /* virtio-serial: the port's device is not there */
    const char *path;        /* device or socket path ("" for stdio, vsock) */
    int out_over_limit;      /* the host is not reading: the out-queue passed its bound */
    size_t out_bytes;        /* bytes waiting in the out-queue */
    uint64_t dropped_events; /* events the out-queue dropped, ever */
    int64_t attached_since_ms, last_rx_ms; /* wall clock; valid while attached */
    uint64_t lines_in, lines_out;
    uint64_t bytes_in, bytes_out, attaches;
    uint64_t replies_dropped; /* replies whose host had gone */
} gd_channel_stats_t;

/* Parses SPEC ("virtio-serial:PATH", "unix-listen:PATH", "unix-connect:PATH",
 * "vsock-listen:PORT", "stdio"). 0 or -EINVAL with err set. */
int gd_channel_parse_spec(const char *spec, gd_endpoint_kind_t *kind, char *path, size_t pathlen,
                          unsigned *port, char *err, size_t errlen);

/* A channel for SPEC on loop, not yet started; freed by gd_channel_free.
 * 0, or a negative errno with err set (and *out NULL). */
int gd_channel_new(gd_channel_t **out, uv_loop_t *loop, const char *spec, size_t max_message_bytes,
                   size_t out_queue_bytes, uint64_t poll_ms, uint64_t poll_max_ms,
                   const gd_channel_cbs_t *cbs, void *ctx, char *err, size_t errlen);
/* Opens, listens or connects; waits for a missing port without failing.
 * Returns 0, or a negative errno for what cannot get better by waiting
 * (a listen path that cannot be bound). */
int gd_channel_start(gd_channel_t *ch, char *err, size_t errlen);
/* Runtime change of the poll intervals. */
void gd_channel_set_poll(gd_channel_t *ch, uint64_t poll_ms, uint64_t poll_max_ms);

/* Whether a request may be dispatched now (called between requests by the
 * framers' users): the host is there and the replies owed are within the
 * bound. */
int gd_channel_admitting(const gd_channel_t *ch);
/* Room may have freed (a reservation was released): feed what is held and
 * read again, from the loop, not from the caller's stack. */
void gd_channel_resume(gd_channel_t *ch);

/* A reply to connection gen; dropped (and counted) when that host is gone. */
void gd_channel_send_reply(gd_channel_t *ch, uint64_t gen, const char *line, size_t len);
/* The same, taking ownership of heap (malloc'd; freed once written or
 * dropped), which holds line: a large reply is queued without a copy. */
void gd_channel_send_reply_owned(gd_channel_t *ch, uint64_t gen, char *heap, const char *line,
                                 size_t len);
/* An event for the attached host; ignored while no host is attached. */
void gd_channel_send_event(gd_channel_t *ch, gd_event_t *ev);
/* Runs cb once everything queued now has been written (at once when no host
 * is attached or nothing is queued). 0 or -ENOMEM. */
int gd_channel_after_flush(gd_channel_t *ch, void (*cb)(void *arg), void *arg);

/* The live connection's number: it increases at every attach, and replies
 * carry it. */
uint64_t gd_channel_gen(const gd_channel_t *ch);
/* The reservations for replies being built to this channel (core/owed.h). */
gd_owed_t *gd_channel_owed(gd_channel_t *ch);
/* A line read by the channel's owner from on_data's bytes (qemu-ga's
 * framing), counted with the lines the channel framed itself. */
void gd_channel_count_line_in(gd_channel_t *ch);
/* The channel's state and counters now. st->path points into ch. */
void gd_channel_stats(const gd_channel_t *ch, gd_channel_stats_t *st);

/* Writes what it can without waiting, then closes every handle; cb runs when
 * the last one is closed. */
void gd_channel_close(gd_channel_t *ch, void (*cb)(gd_channel_t *ch));
/* Frees ch (NULL: nothing); after the loop has ended. */
void gd_channel_free(gd_channel_t *ch);

#endif

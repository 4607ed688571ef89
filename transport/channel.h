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
#include "transport/framer.h"
#include "transport/outq.h"

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
    /* qemu-ga's framing (commands/qga.h): when set, the raw bytes read go
     * here instead of to the line framer, and on_line is not called. It
     * returns the bytes it took: fewer than len when it stopped because
     * the channel is no longer admitting (gd_channel_admitting); the rest
     * is fed again, with len 0 when nothing is left, once room frees. */
    size_t (*on_data)(void *ctx, uint64_t gen, char *data, size_t len);
} gd_channel_cbs_t;

typedef struct gd_flush_waiter_s {
    struct gd_flush_waiter_s *next;
    void (*cb)(void *arg);
    void *arg;
} gd_flush_waiter_t;

typedef struct gd_channel_s {
    uv_loop_t *loop;
    gd_endpoint_kind_t kind;
    char path[256];      /* device or socket path */
    unsigned vsock_port; /* vsock-listen */
    const gd_channel_cbs_t *cbs;
    void *ctx;

    int fd;         /* the host connection (or the port), -1 when none */
    int out_fd;     /* where writes go: fd, or stdout for stdio */
    int listen_fd;  /* unix-listen / vsock-listen */
    int reserve_fd; /* listeners: spent to accept at EMFILE (gd_ep_reserve_open) */
    int attached;   /* a host is there: lines flow */
    uint64_t gen;   /* increases at every attach; replies carry it */

    void *conn;            /* the live connection's poll handle (fd) */
    uv_poll_t out_poll;    /* stdio's stdout when it differs from fd */
    uv_poll_t listen_poll; /* listen_fd: a host knocks */
    /* The channel poll: only while missing/detached; for a listener, only
     * while accepting is paused (out of fds): it watches the listener again. */
    uv_timer_t poll_timer;
    uv_signal_t sigio; /* virtio-serial: the host (dis)connected */
    uv_fs_event_t dev_watch;
    int conn_poll_active, out_poll_active, listen_poll_active, dev_watch_active;
    unsigned conn_events; /* UV_READABLE | UV_WRITABLE currently watched */
    uint64_t poll_delay_ms, poll_min_ms, poll_max_ms;
    uint64_t dev_rdev; /* the port's device number, to notice a re-plug */
    int logged_busy, logged_missing;
    int listen_paused;       /* listen_poll stopped until the poll timer */
    int logged_accept;       /* accept's failure logged (once per burst) */
    int logged_refused;      /* a second host's refusal logged (once per host) */
    uint64_t accept_refused; /* connections closed unserved during that burst */

    gd_framer_t framer;
    gd_outq_t outq;
    int batching; /* inside a read: flush once after the chunk */
    gd_flush_waiter_t *flush_waiters;
    /* Admission: while the replies owed (the out-queue plus owed's
     * reservations) are over the bound, no request is dispatched and the
     * connection is not read; the unread rest of rbuf waits in
     * rbuf[rpos, rlen) and is fed once room frees. */
    gd_owed_t owed; /* reservations for replies being built */
    int held;       /* stopped for room: resume_idle feeds the rest */
    size_t rpos, rlen;
    uv_idle_t resume_idle;
    uint64_t holds; /* times the channel stopped for room, ever */
    char rbuf[65536];

    /* Figures for health and tests. */
    uint64_t bytes_in, bytes_out, lines_in, lines_out, attaches;
    uint64_t replies_dropped; /* replies whose host had gone */
    int64_t attached_since_ms, last_rx_ms;

    int closing;
    int pending_closes;
    void (*close_cb)(struct gd_channel_s *ch);
} gd_channel_t;

/* Parses SPEC ("virtio-serial:PATH", "unix-listen:PATH", "unix-connect:PATH",
 * "vsock-listen:PORT", "stdio"). 0 or -EINVAL with err set. */
int gd_channel_parse_spec(const char *spec, gd_endpoint_kind_t *kind, char *path, size_t pathlen,
                          unsigned *port, char *err, size_t errlen);

int gd_channel_init(gd_channel_t *ch, uv_loop_t *loop, const char *spec, size_t max_message_bytes,
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

/* Writes what it can without waiting, then closes every handle; cb runs when
 * the last one is closed. */
void gd_channel_close(gd_channel_t *ch, void (*cb)(gd_channel_t *ch));
void gd_channel_free(gd_channel_t *ch);

#endif

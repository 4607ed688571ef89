/* The channel: endpoint life cycle (wait, open, attach, detach, reopen), the
 * read path into the framer and the write path out of the out-queue. */
#include "transport/channel.h"

#include <errno.h>
/* mallopt/malloc_trim are glibc's; musl's allocator (the static build)
 * returns freed memory to the kernel by itself and has neither. */
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "transport/endpoint.h"
#include "transport/framer.h"
#include "transport/outq.h"

/* A virtio port takes at most 32 KiB per write; sockets are held to the same
 * so one writer path serves every endpoint. */
#define GD_WRITE_CHUNK 32768
/* Reads per readable event before yielding to the rest of the loop. */
#define GD_READS_PER_EVENT 16
/* Queued lines gathered into one write: a burst of small replies costs one
 * system call per GD_WRITE_CHUNK bytes, not one per line. */
#define GD_WRITE_IOV 256

typedef struct gd_flush_waiter_s {
    struct gd_flush_waiter_s *next;
    void (*cb)(void *arg);
    void *arg;
} gd_flush_waiter_t;

struct gd_channel_s {
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
};

typedef struct conn_poll_s {
    uv_poll_t handle;
    gd_channel_t *ch;
} conn_poll_t;

static void check_endpoint(gd_channel_t *ch);
static int is_listener(const gd_channel_t *ch);
static void flush(gd_channel_t *ch);
static void update_poll(gd_channel_t *ch);

int gd_channel_parse_spec(const char *spec, gd_endpoint_kind_t *kind, char *path, size_t pathlen,
                          unsigned *port, char *err, size_t errlen)
{
    static const struct {
        const char *prefix;
        gd_endpoint_kind_t kind;
    } kinds[] = {
        {"virtio-serial:", GD_EP_VIRTIO_SERIAL},
        {"unix-listen:", GD_EP_UNIX_LISTEN},
        {"unix-connect:", GD_EP_UNIX_CONNECT},
        {"vsock-listen:", GD_EP_VSOCK_LISTEN},
    };
    path[0] = '\0';
    *port = 0;
    if (strcmp(spec, "stdio") == 0) {
        *kind = GD_EP_STDIO;
        return 0;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(spec, kinds[i].prefix, n) != 0) continue;
        const char *arg = spec + n;
        *kind = kinds[i].kind;
        if (*arg == '\0') {
            snprintf(err, errlen, "channel '%s': missing %s", spec,
                     *kind == GD_EP_VSOCK_LISTEN ? "port" : "path");
            return -EINVAL;
        }
        if (*kind == GD_EP_VSOCK_LISTEN) {
            char *end;
            errno = 0;
            unsigned long p = strtoul(arg, &end, 10);
            if (errno || *end || p == 0 || p > 0xffffffffUL) {
                snprintf(err, errlen, "channel '%s': '%s' is not a vsock port", spec, arg);
                return -EINVAL;
            }
            *port = (unsigned)p;
            return 0;
        }
        if (strlen(arg) >= pathlen) {
            snprintf(err, errlen, "channel '%s': path too long", spec);
            return -EINVAL;
        }
        strcpy(path, arg);
        return 0;
    }
    snprintf(err, errlen,
             "channel '%s': expected virtio-serial:PATH, unix-listen:PATH, unix-connect:PATH, "
             "vsock-listen:PORT or stdio",
             spec);
    return -EINVAL;
}

/* Every handle closed goes through here, so close() knows when it is done. */
static void on_handle_closed(uv_handle_t *h)
{
    gd_channel_t *ch = h->data;
    if (h->type == UV_POLL && h != (uv_handle_t *)&ch->listen_poll &&
        h != (uv_handle_t *)&ch->out_poll)
        free(h); /* a conn_poll_t: handle is its first member */
    if (--ch->pending_closes == 0 && ch->closing && ch->close_cb) ch->close_cb(ch);
}

static void close_handle(gd_channel_t *ch, uv_handle_t *h)
{
    ch->pending_closes++;
    h->data = ch;
    uv_close(h, on_handle_closed);
}

static conn_poll_t *conn_poll_of(gd_channel_t *ch);

/* ---- the poll timer: runs only while the endpoint is missing or no host
 * is attached, backing off from poll_ms to poll_max_ms ---- */

static void on_poll_timer(uv_timer_t *t)
{
    check_endpoint(t->data);
}

static void schedule_poll(gd_channel_t *ch)
{
    if (ch->closing) return;
    uv_timer_start(&ch->poll_timer, on_poll_timer, ch->poll_delay_ms, 0);
    ch->poll_delay_ms *= 2;
    if (ch->poll_delay_ms > ch->poll_max_ms) ch->poll_delay_ms = ch->poll_max_ms;
}

static void reset_backoff(gd_channel_t *ch)
{
    ch->poll_delay_ms = ch->poll_min_ms;
}

void gd_channel_set_poll(gd_channel_t *ch, uint64_t poll_ms, uint64_t poll_max_ms)
{
    ch->poll_min_ms = poll_ms;
    ch->poll_max_ms = poll_max_ms < poll_ms ? poll_ms : poll_max_ms;
    reset_backoff(ch);
    if (uv_is_active((uv_handle_t *)&ch->poll_timer)) schedule_poll(ch);
}

/* ---- attach and detach ---- */

static void run_flush_waiters(gd_channel_t *ch)
{
    while (ch->flush_waiters) {
        gd_flush_waiter_t *w = ch->flush_waiters;
        ch->flush_waiters = w->next;
        w->cb(w->arg);
        free(w);
    }
}

static void on_conn_poll(uv_poll_t *h, int status, int events);

static void attach(gd_channel_t *ch)
{
    conn_poll_t *cp = calloc(1, sizeof(*cp));
    if (!cp || uv_poll_init(ch->loop, &cp->handle, ch->fd) != 0) {
        free(cp);
        gd_error("channel: cannot watch the connection; retrying");
        schedule_poll(ch);
        return;
    }
    cp->ch = ch;
    cp->handle.data = cp;
    if (ch->kind != GD_EP_STDIO) ch->out_fd = ch->fd; /* the endpoint may have opened just now */
    uv_timer_stop(&ch->poll_timer);
    if (ch->kind == GD_EP_VIRTIO_SERIAL)
        gd_ep_set_async(ch->fd, 0); /* attached: reads are event-driven */
    ch->attached = 1;
    ch->held = 0;
    ch->rpos = ch->rlen = 0;
    ch->gen++;
    ch->attaches++;
    ch->conn_events = 0;
    ch->attached_since_ms = ch->last_rx_ms = gd_now_ms();
    ch->logged_busy = ch->logged_missing = ch->logged_refused = 0;
    gd_framer_reset(&ch->framer);
    ch->conn_poll_active = 1;
    ch->conn = cp;
    gd_info("channel: host attached");
    update_poll(ch);
    if (ch->cbs->on_attach) ch->cbs->on_attach(ch->ctx, ch->gen);
    flush(ch);
}

static conn_poll_t *conn_poll_of(gd_channel_t *ch)
{
    return ch->conn_poll_active ? ch->conn : NULL;
}

static void stop_conn_poll(gd_channel_t *ch)
{
    conn_poll_t *cp = conn_poll_of(ch);
    if (!cp) return;
    ch->conn_poll_active = 0;
    uv_poll_stop(&cp->handle);
    close_handle(ch, (uv_handle_t *)&cp->handle);
    if (ch->out_poll_active) {
        uv_poll_stop(&ch->out_poll);
        ch->out_poll_active = 0;
    }
}

/* The host went away (or the port did: lost_endpoint). */
static void detach(gd_channel_t *ch, int lost_endpoint, const char *why)
{
    int was_attached = ch->attached;
    stop_conn_poll(ch);
    ch->attached = 0;
    gd_framer_reset(&ch->framer);
    ch->held = 0;
    ch->rpos = ch->rlen = 0;
    size_t dropped = gd_outq_clear(&ch->outq);
    gd_owed_poke(&ch->owed); /* the queue is empty: a waiting reservation fits */
    if (was_attached)
        gd_info("channel: host detached (%s)%s", why, dropped ? "; unsent lines discarded" : "");
    int drop_fd = lost_endpoint || ch->kind != GD_EP_VIRTIO_SERIAL;
    if (drop_fd && ch->fd >= 0 && ch->kind != GD_EP_STDIO) {
        close(ch->fd);
        ch->fd = -1;
    }
    run_flush_waiters(ch);
    if (was_attached && ch->cbs->on_detach) ch->cbs->on_detach(ch->ctx, ch->gen);
#ifdef __GLIBC__
    /* The session's memory (its requests, replies and buffers, freed by
     * now) goes back to the kernel rather than stay the agent's high-water
     * mark until the next host. */
    if (was_attached) malloc_trim(0); /* musl's mallocng unmaps free groups itself */
#endif
    if (ch->closing) return;
    reset_backoff(ch);
    switch (ch->kind) {
    case GD_EP_VIRTIO_SERIAL:
        if (ch->fd >= 0) gd_ep_set_async(ch->fd, 1);
        check_endpoint(ch); /* the host may already be back */
        break;
    case GD_EP_UNIX_CONNECT:
        schedule_poll(ch);
        break;
    case GD_EP_UNIX_LISTEN:
    case GD_EP_VSOCK_LISTEN:
        check_endpoint(ch); /* the host's fd is free: a paused listener goes on */
        break;
    default:
        break; /* stdio stays detached */
    }
}

/* ---- virtio-serial: the port comes and goes, the host comes and goes ---- */

static void on_dev_event(uv_fs_event_t *h, const char *filename, int events, int status);

/* Watches the port's directory (or /dev until that exists) so a hot-plugged
 * port is noticed at once rather than at the next poll. */
static void watch_dev_dir(gd_channel_t *ch)
{
    char dir[sizeof(ch->path)];
    snprintf(dir, sizeof(dir), "%s", ch->path);
    char *d = dirname(dir);
    struct stat st;
    const char *target = stat(d, &st) == 0 ? d : "/dev";
    char current[sizeof(ch->path)];
    size_t n = sizeof(current);
    if (ch->dev_watch_active) {
        if (uv_fs_event_getpath(&ch->dev_watch, current, &n) == 0 && strcmp(current, target) == 0)
            return;
        uv_fs_event_stop(&ch->dev_watch);
        ch->dev_watch_active = 0;
    }
    if (uv_fs_event_start(&ch->dev_watch, on_dev_event, target, 0) == 0) ch->dev_watch_active = 1;
}

static void on_dev_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    gd_channel_t *ch = h->data;
    if (!ch->attached && !ch->closing) check_endpoint(ch);
}

static void on_sigio(uv_signal_t *h, int signum)
{
    gd_channel_t *ch = h->data;
    if (!ch->attached && !ch->closing) check_endpoint(ch);
}

/* Whether the open fd is still the port at path (unplug and re-plug make a
 * new device behind the same name). */
static int port_still_there(gd_channel_t *ch)
{
    struct stat st;
    return stat(ch->path, &st) == 0 && (uint64_t)st.st_rdev == ch->dev_rdev;
}

static void check_virtio(gd_channel_t *ch)
{
    watch_dev_dir(ch);
    if (ch->fd >= 0 && !port_still_there(ch)) {
        gd_info("channel: port %s went away", ch->path);
        close(ch->fd);
        ch->fd = -1;
        reset_backoff(ch);
    }
    if (ch->fd < 0) {
        int r = gd_ep_virtio_open(ch->path, &ch->fd);
        if (r == -EBUSY) {
            if (!ch->logged_busy)
                gd_warn("channel: %s is held by another process; retrying", ch->path);
            ch->logged_busy = 1;
        } else if (r < 0) {
            if (!ch->logged_missing)
                gd_info("channel: waiting for %s (%s)", ch->path, strerror(-r));
            ch->logged_missing = 1;
        }
        if (r < 0) {
            ch->fd = -1;
            schedule_poll(ch);
            return;
        }
        struct stat st;
        fstat(ch->fd, &st);
        ch->dev_rdev = (uint64_t)st.st_rdev;
        ch->logged_busy = ch->logged_missing = 0;
        reset_backoff(ch);
        /* SIGIO from now on; checked again below so a host that connected
         * before O_ASYNC took effect is not missed. */
        gd_ep_set_async(ch->fd, 1);
        gd_info("channel: opened %s", ch->path);
    }
    int connected = gd_ep_virtio_host_connected(ch->fd);
    if (connected > 0) {
        attach(ch);
    } else if (connected < 0) {
        close(ch->fd);
        ch->fd = -1;
        schedule_poll(ch);
    } else {
        schedule_poll(ch);
    }
}

/* ---- unix-connect: reconnect with backoff ---- */

static void check_connect(gd_channel_t *ch)
{
    int r = gd_ep_unix_connect(ch->path, &ch->fd);
    if (r < 0) {
        ch->fd = -1;
        if (!ch->logged_missing)
            gd_info("channel: cannot connect to %s (%s); retrying", ch->path, strerror(-r));
        ch->logged_missing = 1;
        schedule_poll(ch);
        return;
    }
    attach(ch);
}

static void resume_listen(gd_channel_t *ch);

static void check_endpoint(gd_channel_t *ch)
{
    if (ch->closing) return;
    if (is_listener(ch)) {
        resume_listen(ch);
        return;
    }
    if (ch->attached) return;
    if (ch->kind == GD_EP_VIRTIO_SERIAL) {
        check_virtio(ch);
    } else if (ch->kind == GD_EP_UNIX_CONNECT) {
        check_connect(ch);
    }
}

/* ---- listeners: one host at a time, like a QEMU chardev ----
 *
 * At the open-file limit (EMFILE, ENFILE) a pending connection keeps the
 * listener readable: left there, every loop turn would call accept again.
 * The reserve fd makes room for one accept; the connection becomes the
 * host when there is none (it may then free the fds the agent holds for
 * it), else it is closed at once. Without a reserve, or on any other
 * failure, the listener is not watched until the poll timer (channel.poll_ms,
 * doubling to channel.poll_max_ms). Each burst is logged once. */

static int is_listener(const gd_channel_t *ch)
{
    return ch->kind == GD_EP_UNIX_LISTEN || ch->kind == GD_EP_VSOCK_LISTEN;
}

static void refill_reserve(gd_channel_t *ch)
{
    if (is_listener(ch) && ch->reserve_fd < 0 && !ch->closing)
        gd_ep_reserve_open(&ch->reserve_fd); /* fails harmlessly at the limit */
}

static void on_listen(uv_poll_t *h, int status, int events);

static void pause_listen(gd_channel_t *ch, int err)
{
    if (!ch->logged_accept)
        gd_warn("channel: cannot accept a host connection (%s); retrying in %llu ms",
                strerror(-err), (unsigned long long)ch->poll_delay_ms);
    ch->logged_accept = 1;
    uv_poll_stop(&ch->listen_poll);
    ch->listen_paused = 1;
    schedule_poll(ch);
}

/* The poll timer, or a freed fd (detach): watch the listener again. */
static void resume_listen(gd_channel_t *ch)
{
    refill_reserve(ch);
    if (!ch->listen_paused || ch->closing) return;
    uv_timer_stop(&ch->poll_timer);
    ch->listen_paused = 0;
    uv_poll_start(&ch->listen_poll, UV_READABLE, on_listen);
}

/* A connection accepted: the host, or refused when there is one already. */
static void take_connection(gd_channel_t *ch, int fd, int at_limit)
{
    if (ch->attached || ch->closing) {
        if (at_limit) {
            ch->accept_refused++;
        } else if (!ch->logged_refused) {
            gd_warn("channel: refused a second host connection (one host at a time)");
            ch->logged_refused = 1;
        }
        close(fd);
        return;
    }
    ch->fd = fd;
    attach(ch);
}

/* The end of a burst at the limit: accept works again. */
static void accept_recovered(gd_channel_t *ch)
{
    if (!ch->logged_accept) return;
    gd_info("channel: accepting host connections again (%llu closed unserved meanwhile)",
            (unsigned long long)ch->accept_refused);
    ch->logged_accept = 0;
    ch->accept_refused = 0;
    reset_backoff(ch);
}

static void on_listen(uv_poll_t *h, int status, int events)
{
    gd_channel_t *ch = h->data;
    for (;;) {
        int fd, at_limit = 0;
        int r = gd_ep_accept(ch->listen_fd, &fd);
        if ((r == -EMFILE || r == -ENFILE) && ch->reserve_fd >= 0) {
            if (!ch->logged_accept)
                gd_warn("channel: out of file descriptors (%s): a host connection is taken "
                        "with the reserve fd",
                        strerror(-r));
            ch->logged_accept = 1;
            close(ch->reserve_fd);
            ch->reserve_fd = -1;
            r = gd_ep_accept(ch->listen_fd, &fd);
            at_limit = 1;
        }
        if (r == -EAGAIN || r == -EWOULDBLOCK) break; /* none pending */
        if (r == -ECONNABORTED) continue;             /* that one is gone: the next */
        if (r < 0) {
            pause_listen(ch, r);
            break;
        }
        if (!at_limit) accept_recovered(ch);
        take_connection(ch, fd, at_limit);
        refill_reserve(ch);
        if (ch->closing) break;
    }
    refill_reserve(ch);
}

/* ---- the read path ---- */

static void on_framed_line(void *ctx, char *line, size_t len)
{
    gd_channel_t *ch = ctx;
    ch->lines_in++;
    if (ch->cbs->on_line) ch->cbs->on_line(ch->ctx, ch->gen, line, len);
    /* No next request while the replies owed are over the bound. */
    if (!gd_channel_admitting(ch)) gd_framer_pause(&ch->framer);
}

static void on_framed_too_large(void *ctx)
{
    gd_channel_t *ch = ctx;
    if (ch->cbs->on_too_large) ch->cbs->on_too_large(ch->ctx, ch->gen);
}

int gd_channel_admitting(const gd_channel_t *ch)
{
    if (!ch->attached || ch->closing) return 0;
    return gd_owed_admitting(&ch->owed, ch->outq.bytes);
}

/* Feeds the held bytes rbuf[rpos, rlen) until they are all taken or the
 * replies owed pass the bound (the framer then stops after a request, and
 * the rest stays held). */
static void feed_held(gd_channel_t *ch)
{
    uint64_t gen = ch->gen;
    if (!gd_channel_admitting(ch)) {
        ch->held = 1;
        return;
    }
    ch->held = 0;
    size_t len = ch->rlen - ch->rpos;
    char *data = ch->rbuf + ch->rpos;
    size_t fed;
    ch->batching = 1;
    if (ch->cbs->on_data) { /* qemu-ga's framing, above the channel */
        fed = ch->cbs->on_data(ch->ctx, gen, data, len);
    } else {
        gd_framer_feed(&ch->framer, data, len);
        fed = ch->framer.fed;
    }
    ch->batching = 0;
    /* A handler may have ended this connection. */
    if (!ch->attached || ch->gen != gen) return;
    ch->rpos += fed < len ? fed : len;
    if (ch->rpos >= ch->rlen) ch->rpos = ch->rlen = 0;
    if (ch->rpos < ch->rlen || !gd_channel_admitting(ch)) {
        ch->held = 1;
        ch->holds++;
    }
}

static void read_available(gd_channel_t *ch)
{
    uint64_t gen = ch->gen;
    for (int i = 0; i < GD_READS_PER_EVENT; i++) {
        if (ch->held || ch->rpos < ch->rlen) return;
        ssize_t n = read(ch->fd, ch->rbuf, sizeof(ch->rbuf));
        if (n > 0) {
            ch->bytes_in += (uint64_t)n;
            ch->last_rx_ms = gd_now_ms();
            ch->rpos = 0;
            ch->rlen = (size_t)n;
            feed_held(ch);
            if (!ch->attached || ch->gen != gen) return;
            /* This chunk's replies go out before the next chunk is read, so
             * the queue holds one chunk's worth, not GD_READS_PER_EVENT. */
            flush(ch);
            if (!ch->attached || ch->gen != gen || ch->held) return;
            /* A short read took all there was: the (level-triggered) poll
             * reports the next bytes, and reading on would cost an EAGAIN. */
            if ((size_t)n < sizeof(ch->rbuf)) return;
            continue;
        }
        if (n == 0) {
            detach(ch, 0, "end of stream");
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        char why[128];
        snprintf(why, sizeof(why), "read: %s", strerror(errno));
        detach(ch, 1, why);
        return;
    }
}

/* Room freed: the held requests are fed from here, on the loop's own
 * stack, never from inside a reply being sent. */
static void on_resume(uv_idle_t *h)
{
    gd_channel_t *ch = h->data;
    uv_idle_stop(h);
    gd_owed_run(&ch->owed); /* requests waiting for room first, in order */
    if (!ch->attached || ch->closing) return;
    uint64_t gen = ch->gen;
    if (ch->held) {
        feed_held(ch);
        if (!ch->attached || ch->gen != gen) return;
    }
    flush(ch);
}

void gd_channel_resume(gd_channel_t *ch)
{
    if (!ch->closing && !uv_is_active((uv_handle_t *)&ch->resume_idle))
        uv_idle_start(&ch->resume_idle, on_resume);
}

/* ---- large replies are given back to the kernel in the thread pool ---- */

typedef struct heap_free_s {
    uv_work_t work;
    char *heap;
} heap_free_t;

static void heap_free_work(uv_work_t *w)
{
    heap_free_t *f = w->data;
    free(f->heap);
}

static void heap_free_done(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

static void free_large(void *ctx, char *heap)
{
    gd_channel_t *ch = ctx;
    heap_free_t *f = malloc(sizeof(*f));
    if (f) {
        f->heap = heap;
        f->work.data = f;
        if (uv_queue_work(ch->loop, &f->work, heap_free_work, heap_free_done) == 0) return;
        free(f);
    }
    free(heap);
}

static size_t owed_queued(void *ctx)
{
    const gd_channel_t *ch = ctx;
    return ch->outq.bytes;
}

static void owed_room(void *ctx)
{
    gd_channel_resume(ctx);
}

static void on_conn_poll(uv_poll_t *h, int status, int events)
{
    conn_poll_t *cp = h->data;
    gd_channel_t *ch = cp->ch;
    if (!ch->attached || conn_poll_of(ch) != cp) return;
    if (status < 0) {
        detach(ch, 1, uv_strerror(status));
        return;
    }
    uint64_t gen = ch->gen;
    if (events & UV_READABLE) read_available(ch);
    if (ch->attached && ch->gen == gen) flush(ch);
}

static void on_out_poll(uv_poll_t *h, int status, int events)
{
    gd_channel_t *ch = h->data;
    if (status < 0) {
        detach(ch, 1, uv_strerror(status));
        return;
    }
    flush(ch);
}

/* ---- the write path ---- */

static void update_poll(gd_channel_t *ch)
{
    conn_poll_t *cp = conn_poll_of(ch);
    if (!cp) return;
    int pending = !gd_outq_empty(&ch->outq);
    unsigned want = 0;
    /* Responses are never dropped, so a host that sends but does not read
     * is slowed down instead: stop reading until its replies drain. */
    if (!ch->held && ch->rpos == ch->rlen && gd_channel_admitting(ch)) want |= UV_READABLE;
    if (pending && ch->out_fd == ch->fd) want |= UV_WRITABLE;
    if (want != ch->conn_events) {
        ch->conn_events = want;
        if (want)
            uv_poll_start(&cp->handle, (int)want, on_conn_poll);
        else
            uv_poll_stop(&cp->handle);
    }
    if (ch->out_fd != ch->fd) {
        if (pending && !ch->out_poll_active) {
            uv_poll_start(&ch->out_poll, UV_WRITABLE, on_out_poll);
            ch->out_poll_active = 1;
        } else if (!pending && ch->out_poll_active) {
            uv_poll_stop(&ch->out_poll);
            ch->out_poll_active = 0;
        }
    }
}

static void flush(gd_channel_t *ch)
{
    if (!ch->attached || ch->out_fd < 0) return;
    struct iovec iov[GD_WRITE_IOV];
    for (;;) {
        /* Gathers queued lines, the head's unwritten rest first, up to
         * GD_WRITE_CHUNK bytes (a virtio port's limit per write). */
        int cnt = 0;
        size_t total = 0;
        size_t off = ch->outq.head_off;
        for (const gd_outq_item_t *it = ch->outq.head;
             it && cnt < GD_WRITE_IOV && total < GD_WRITE_CHUNK; it = it->next, off = 0) {
            size_t len = it->len - off;
            if (len > GD_WRITE_CHUNK - total) len = GD_WRITE_CHUNK - total;
            iov[cnt].iov_base = (char *)it->data + off;
            iov[cnt].iov_len = len;
            cnt++;
            total += len;
        }
        if (cnt == 0) break;
        ssize_t n = cnt == 1 ? write(ch->out_fd, iov[0].iov_base, iov[0].iov_len)
                             : writev(ch->out_fd, iov, cnt);
        if (n > 0) {
            ch->bytes_out += (uint64_t)n;
            for (size_t left = (size_t)n; left > 0;) {
                const char *data;
                size_t len = gd_outq_peek(&ch->outq, &data);
                size_t done = len < left ? len : left;
                gd_outq_advance(&ch->outq, done);
                left -= done;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        char why[128];
        snprintf(why, sizeof(why), "write: %s", n < 0 ? strerror(errno) : "no progress");
        detach(ch, ch->kind != GD_EP_VIRTIO_SERIAL, why);
        return;
    }
    update_poll(ch);
    if (gd_outq_empty(&ch->outq)) run_flush_waiters(ch);
    gd_owed_poke(&ch->owed); /* a waiting reservation may fit now */
    if (ch->held && gd_channel_admitting(ch)) gd_channel_resume(ch);
}

void gd_channel_send_reply(gd_channel_t *ch, uint64_t gen, const char *line, size_t len)
{
    if (!ch->attached || gen != ch->gen || ch->closing) {
        ch->replies_dropped++;
        return;
    }
    if (gd_outq_push_response(&ch->outq, line, len) != 0) {
        gd_error("channel: out of memory queueing a reply");
        return;
    }
    ch->lines_out++;
    if (!ch->batching) flush(ch);
}

void gd_channel_send_reply_owned(gd_channel_t *ch, uint64_t gen, char *heap, const char *line,
                                 size_t len)
{
    if (!ch->attached || gen != ch->gen || ch->closing) {
        ch->replies_dropped++;
        free(heap);
        return;
    }
    if (gd_outq_push_owned(&ch->outq, heap, line, len) != 0) {
        gd_error("channel: out of memory queueing a reply");
        return;
    }
    ch->lines_out++;
    if (!ch->batching) flush(ch);
}

void gd_channel_send_event(gd_channel_t *ch, gd_event_t *ev)
{
    if (!ch->attached || ch->closing) return;
    if (gd_outq_push_event(&ch->outq, ev) != 0) return;
    ch->lines_out++;
    if (!ch->batching) flush(ch);
}

int gd_channel_after_flush(gd_channel_t *ch, void (*cb)(void *arg), void *arg)
{
    if (!ch->attached || gd_outq_empty(&ch->outq)) {
        cb(arg);
        return 0;
    }
    gd_flush_waiter_t *w = malloc(sizeof(*w));
    if (!w) return -ENOMEM;
    w->cb = cb;
    w->arg = arg;
    w->next = ch->flush_waiters;
    ch->flush_waiters = w;
    return 0;
}

/* ---- life cycle ---- */

int gd_channel_new(gd_channel_t **out, uv_loop_t *loop, const char *spec, size_t max_message_bytes,
                   size_t out_queue_bytes, uint64_t poll_ms, uint64_t poll_max_ms,
                   const gd_channel_cbs_t *cbs, void *ctx, char *err, size_t errlen)
{
    *out = NULL;
    gd_channel_t *ch = calloc(1, sizeof(*ch));
    if (!ch) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = gd_channel_parse_spec(spec, &ch->kind, ch->path, sizeof(ch->path), &ch->vsock_port, err,
                                  errlen);
    if (r < 0) {
        free(ch);
        return r;
    }
    ch->loop = loop;
    ch->cbs = cbs;
    ch->ctx = ctx;
    ch->fd = ch->out_fd = ch->listen_fd = ch->reserve_fd = -1;
    gd_channel_set_poll(ch, poll_ms, poll_max_ms);
    gd_framer_init(&ch->framer, max_message_bytes, on_framed_line, on_framed_too_large, ch);
    gd_outq_init(&ch->outq, out_queue_bytes);
    ch->outq.free_large = free_large;
    ch->outq.free_ctx = ch;
    gd_owed_init(&ch->owed, out_queue_bytes, owed_queued, owed_room, ch);
    uv_timer_init(loop, &ch->poll_timer);
    ch->poll_timer.data = ch;
    uv_signal_init(loop, &ch->sigio);
    ch->sigio.data = ch;
    uv_fs_event_init(loop, &ch->dev_watch);
    ch->dev_watch.data = ch;
    uv_idle_init(loop, &ch->resume_idle);
    ch->resume_idle.data = ch;
    *out = ch;
    return 0;
}

int gd_channel_start(gd_channel_t *ch, char *err, size_t errlen)
{
    int r = 0;
    switch (ch->kind) {
    case GD_EP_VIRTIO_SERIAL:
        uv_signal_start(&ch->sigio, on_sigio, SIGIO);
        check_endpoint(ch);
        return 0;
    case GD_EP_UNIX_CONNECT:
        check_endpoint(ch);
        return 0;
    case GD_EP_UNIX_LISTEN:
    case GD_EP_VSOCK_LISTEN:
        r = ch->kind == GD_EP_UNIX_LISTEN ? gd_ep_unix_listen(ch->path, &ch->listen_fd)
                                          : gd_ep_vsock_listen(ch->vsock_port, &ch->listen_fd);
        if (r < 0) {
            if (ch->kind == GD_EP_UNIX_LISTEN)
                snprintf(err, errlen, "cannot listen on %s: %s", ch->path, strerror(-r));
            else
                snprintf(err, errlen, "cannot listen on vsock port %u: %s", ch->vsock_port,
                         strerror(-r));
            return r;
        }
        if (gd_ep_reserve_open(&ch->reserve_fd) < 0)
            gd_warn("channel: no reserve fd (/dev/null); at the open-file limit, accepting "
                    "pauses instead");
        uv_poll_init(ch->loop, &ch->listen_poll, ch->listen_fd);
        ch->listen_poll.data = ch;
        uv_poll_start(&ch->listen_poll, UV_READABLE, on_listen);
        ch->listen_poll_active = 1;
        return 0;
    case GD_EP_STDIO:
        ch->fd = STDIN_FILENO;
        ch->out_fd = STDOUT_FILENO;
        gd_ep_set_nonblock(STDIN_FILENO);
        gd_ep_set_nonblock(STDOUT_FILENO);
        if (uv_poll_init(ch->loop, &ch->out_poll, STDOUT_FILENO) != 0) {
            snprintf(err, errlen, "stdout cannot be watched (a regular file?)");
            return -EINVAL;
        }
        ch->out_poll.data = ch;
        ch->listen_poll_active = 2; /* out_poll initialised: close it too */
        attach(ch);
        return 0;
    }
    return 0;
}

void gd_channel_close(gd_channel_t *ch, void (*cb)(gd_channel_t *ch))
{
    if (ch->closing) return;
    flush(ch); /* what the host can take now; never wait for it */
    ch->closing = 1;
    ch->close_cb = cb;
    gd_owed_close(&ch->owed); /* requests waiting for room are answered now */
    ch->pending_closes++;     /* held until every close below is issued */
    detach(ch, 1, "agent stopping");
    if (ch->fd >= 0 && ch->kind != GD_EP_STDIO) close(ch->fd);
    ch->fd = -1;
    close_handle(ch, (uv_handle_t *)&ch->poll_timer);
    close_handle(ch, (uv_handle_t *)&ch->sigio);
    close_handle(ch, (uv_handle_t *)&ch->dev_watch);
    close_handle(ch, (uv_handle_t *)&ch->resume_idle);
    if (ch->listen_poll_active == 2) {
        close_handle(ch, (uv_handle_t *)&ch->out_poll);
    } else if (ch->listen_poll_active) {
        close_handle(ch, (uv_handle_t *)&ch->listen_poll);
        close(ch->listen_fd);
        ch->listen_fd = -1;
        if (ch->reserve_fd >= 0) close(ch->reserve_fd);
        ch->reserve_fd = -1;
        if (ch->kind == GD_EP_UNIX_LISTEN) unlink(ch->path);
    }
    if (--ch->pending_closes == 0 && cb) cb(ch);
}

void gd_channel_free(gd_channel_t *ch)
{
    if (!ch) return;
    gd_framer_free(&ch->framer);
    ch->outq.free_large = NULL; /* the loop has ended: no more pool work */
    gd_outq_clear(&ch->outq);
    run_flush_waiters(ch);
    free(ch);
}

uint64_t gd_channel_gen(const gd_channel_t *ch)
{
    return ch->gen;
}

gd_owed_t *gd_channel_owed(gd_channel_t *ch)
{
    return &ch->owed;
}

void gd_channel_count_line_in(gd_channel_t *ch)
{
    ch->lines_in++;
}

void gd_channel_stats(const gd_channel_t *ch, gd_channel_stats_t *st)
{
    *st = (gd_channel_stats_t){
        .attached = ch->attached,
        .port_missing = ch->kind == GD_EP_VIRTIO_SERIAL && ch->fd < 0,
        .path = ch->path,
        .out_over_limit = gd_outq_over_limit(&ch->outq),
        .out_bytes = ch->outq.bytes,
        .dropped_events = ch->outq.dropped_events,
        .attached_since_ms = ch->attached_since_ms,
        .last_rx_ms = ch->last_rx_ms,
        .lines_in = ch->lines_in,
        .lines_out = ch->lines_out,
        .bytes_in = ch->bytes_in,
        .bytes_out = ch->bytes_out,
        .attaches = ch->attaches,
        .replies_dropped = ch->replies_dropped,
    };
}

/* One channel's framing when it may carry qemu-ga's protocol: the bytes of a
 * connection go to guestd's line framer or to qemu-ga's JSON-value framer.
 *
 * A channel pinned to one dialect uses that framer from the first byte. In
 * "auto", each connection starts undecided and its first message decides:
 * a first object with an "execute" member (or a 0xFF resync byte first) makes
 * it a qemu-ga connection; anything else (a guestd request, a blank line,
 * junk, a newline inside the first object) makes it a guestd one. The bytes
 * read while undecided are then replayed into the chosen framer, so guestd's
 * framing of a guestd connection is exactly what it is without this layer.
 * The choice lasts until the connection ends (gd_qga_link_reset). */
#ifndef GUESTD_QGA_LINK_H
#define GUESTD_QGA_LINK_H

#include <stddef.h>

#include "core/buf.h"
#include "transport/framer.h"
#include "transport/qga_framer.h"

/* Same order as the channel.dialect configuration key's choices. */
typedef enum {
    GD_DIALECT_AUTO = 0,
    GD_DIALECT_GUESTD = 1,
    GD_DIALECT_QGA = 2,
} gd_dialect_t;

typedef enum {
    GD_LINK_UNDECIDED,
    GD_LINK_GUESTD,
    GD_LINK_QGA,
} gd_link_mode_t;

typedef struct gd_qga_link_cbs_s {
    void (*guestd_line)(void *ctx, char *line, size_t len); /* a guestd line */
    void (*guestd_too_large)(void *ctx);                    /* a guestd line over the limit */
    void (*qga_message)(void *ctx, char *text, size_t len); /* one complete JSON value */
    void (*qga_error)(void *ctx, gd_qga_frame_error_t what);
} gd_qga_link_cbs_t;

typedef struct gd_qga_link_s {
    gd_dialect_t dialect;
    gd_link_mode_t mode;    /* of the current connection */
    gd_framer_t lines;      /* guestd */
    gd_qga_framer_t values; /* qemu-ga */
    gd_buf_t pending;       /* bytes read while undecided, or left by a pause */
    size_t scanned;         /* of pending */
    size_t max_message;
    int started, depth, in_string, escape; /* the first value, while undecided */
    size_t obj_start;
    const gd_qga_link_cbs_t *cbs;
    void *ctx;
    unsigned resets;
    size_t fed; /* bytes of data the last feed took (fewer when paused) */
} gd_qga_link_t;

void gd_qga_link_init(gd_qga_link_t *l, gd_dialect_t dialect, size_t max_message,
                      const gd_qga_link_cbs_t *cbs, void *ctx);
/* A new connection: forgets partial input and, in auto, the choice. */
void gd_qga_link_reset(gd_qga_link_t *l);
/* Bytes from the connection (data is writable: the guestd framer ends lines
 * in place). Callbacks run synchronously; one may reset the link, which
 * ends the feed. 0 or -ENOMEM. */
int gd_qga_link_feed(gd_qga_link_t *l, char *data, size_t len);
void gd_qga_link_free(gd_qga_link_t *l);
/* Called from a message callback: the feed stops after this message. l->fed
 * then says how much of data was taken; bytes the link had to keep itself
 * (read while undecided) stay in it and go first at the next feed, which
 * may be empty (len 0). */
void gd_qga_link_pause(gd_qga_link_t *l);

/* Whether text (one complete JSON value) is a qemu-ga request: an object
 * with an "execute" or "exec-oob" member. */
int gd_qga_is_request(const char *text, size_t len);

#endif

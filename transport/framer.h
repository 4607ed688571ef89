/* NDJSON framer: turns bytes, split and merged arbitrarily, into lines.
 * A line longer than max_line is dropped whole: too_large is reported once
 * and the framer resynchronises at the next '\n'. Memory never grows past
 * max_line, whatever the input. A trailing '\r' is removed (CRLF accepted);
 * empty lines are skipped.
 *
 * The limit counts every byte before the '\n', a trailing '\r' included: with
 * max_line 1024, "<1024 bytes>\n" is accepted, "<1024 bytes>\r\n" is not.
 * too_large is reported as soon as a line passes the limit (before its '\n'
 * has arrived), so the host hears early; the rest of that line is skipped. */
#ifndef GUESTD_FRAMER_H
#define GUESTD_FRAMER_H

#include <stddef.h>

#include "core/buf.h"

/* line is not NUL-terminated inside the stream, but line[len] is readable and
 * set to '\0' for the callback's convenience. It may contain NUL bytes (len
 * is the truth). The pointer is valid only during the callback: it points
 * into the framer's buffer or into the data being fed. */
typedef void (*gd_framer_line_cb)(void *ctx, char *line, size_t len);
typedef void (*gd_framer_too_large_cb)(void *ctx);

typedef struct gd_framer_s {
    gd_buf_t buf;    /* the partial line carried between feeds */
    size_t max_line; /* bytes, excluding the '\n' (a trailing '\r' counts) */
    int discarding;  /* inside an oversized line, skipping to '\n' */
    gd_framer_line_cb on_line;
    gd_framer_too_large_cb on_too_large;
    void *ctx;
    unsigned resets; /* bumped by reset/free, so a feed notices it from a callback */
    int paused;      /* gd_framer_pause() was called from a callback */
    size_t fed;      /* bytes of data the last feed took (less than len when paused) */
} gd_framer_t;

/* Either callback may be NULL. Allocates nothing until a partial line must be
 * kept; the buffer's capacity never exceeds max_line + 1. */
void gd_framer_init(gd_framer_t *f, size_t max_line, gd_framer_line_cb on_line,
                    gd_framer_too_large_cb on_too_large, void *ctx);
/* Returns 0, or -ENOMEM (the partial line is then dropped, and the rest of it
 * skipped up to its '\n'). Callbacks run synchronously, in stream order.
 *
 * data must be writable (the channel's read buffer): a line that lies whole
 * inside data is passed to on_line in place, without a copy, and its '\n'
 * (and a stripped '\r') is overwritten with '\0'. Only those bytes change.
 * Each byte of data is scanned once; only a line's tail left without its '\n'
 * at the end of data is copied, to be completed by a later feed.
 *
 * A callback may call gd_framer_reset() or gd_framer_free(): the feed then
 * stops, and the rest of data is discarded. */
int gd_framer_feed(gd_framer_t *f, char *data, size_t len);
/* Called from on_line: the feed stops after this line and sets f->fed to
 * the bytes taken, the line's '\n' included; the caller keeps the rest and
 * feeds it again later (the channel, while its replies are over the bound).
 * The next feed clears the pause. */
static inline void gd_framer_pause(gd_framer_t *f)
{
    f->paused = 1;
}
/* Forgets any partial line (the host went away). Keeps the buffer. */
void gd_framer_reset(gd_framer_t *f);
void gd_framer_free(gd_framer_t *f);

#endif

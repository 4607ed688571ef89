/* qemu-ga's framing: the stream is a sequence of JSON values, not lines. A
 * value is a message as soon as it is complete, whether or not a newline
 * follows; whitespace between values is skipped. A 0xFF byte (never part of
 * UTF-8 text) drops whatever partial value came before it: hosts send one
 * before guest-sync(-delimited) to flush a previous client's leftovers.
 *
 * Values are split by bracket counting (strings and escapes understood);
 * whether a value is valid JSON is the parser's business, later. A value
 * longer than max_message, or nested deeper than GD_QGA_FRAME_MAX_DEPTH, is
 * reported once, as soon as it passes the limit, and skipped to its end;
 * memory never grows past max_message. */
#ifndef GUESTD_QGA_FRAMER_H
#define GUESTD_QGA_FRAMER_H

#include <stddef.h>

#include "core/buf.h"

typedef enum {
    GD_QGA_FRAME_TOO_LARGE, /* a value passed max_message; its rest is skipped */
    GD_QGA_FRAME_CUT,       /* a partial value was dropped by a 0xFF */
    GD_QGA_FRAME_TOO_DEEP,  /* a value nested past GD_QGA_FRAME_MAX_DEPTH; its rest is skipped */
} gd_qga_frame_error_t;

/* Brackets a value may nest: cJSON's own limit (CJSON_NESTING_LIMIT), which
 * would refuse a deeper one anyway, less clearly. */
#define GD_QGA_FRAME_MAX_DEPTH 1000

/* text[len] is '\0'; text is valid only during the callback. */
typedef void (*gd_qga_message_cb)(void *ctx, char *text, size_t len);
typedef void (*gd_qga_frame_error_cb)(void *ctx, gd_qga_frame_error_t what);

typedef struct gd_qga_framer_s {
    gd_buf_t buf;
    size_t max_message;
    int kind;       /* what is being read: nothing, a container, a string, a bare word */
    size_t depth;   /* brackets open; counted on while skipping: a size_t
                       cannot wrap, however long the stream */
    int in_string;  /* inside "..." (in a container) */
    int escape;     /* after a backslash in a string */
    int discarding; /* the value passed the limit: skipping to its end */
    gd_qga_message_cb on_message;
    gd_qga_frame_error_cb on_error;
    void *ctx;
    unsigned resets; /* bumped by reset, so a feed notices it from a callback */
    int paused;      /* gd_qga_framer_pause() was called from a callback */
    size_t fed;      /* bytes of data the last feed took (less than len when paused) */
} gd_qga_framer_t;

void gd_qga_framer_init(gd_qga_framer_t *f, size_t max_message, gd_qga_message_cb on_message,
                        gd_qga_frame_error_cb on_error, void *ctx);
/* Callbacks run synchronously, in stream order; one may call
 * gd_qga_framer_reset(), which ends the feed. 0 or -ENOMEM (the partial
 * value is then dropped and skipped like an oversized one). */
int gd_qga_framer_feed(gd_qga_framer_t *f, const char *data, size_t len);
/* Called from on_message: the feed stops after this value and sets f->fed
 * to the bytes taken; the caller feeds the rest again later. */
static inline void gd_qga_framer_pause(gd_qga_framer_t *f)
{
    f->paused = 1;
}
/* Forgets any partial value (a new connection). Keeps the buffer. */
void gd_qga_framer_reset(gd_qga_framer_t *f);
void gd_qga_framer_free(gd_qga_framer_t *f);

#endif

/* NDJSON framer: bytes in, complete lines out, oversized lines dropped whole. */
#include "transport/framer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void gd_framer_init(gd_framer_t *f, size_t max_line, gd_framer_line_cb on_line,
                    gd_framer_too_large_cb on_too_large, void *ctx)
{
    gd_buf_init(&f->buf);
    f->max_line = max_line;
    f->discarding = 0;
    f->on_line = on_line;
    f->on_too_large = on_too_large;
    f->ctx = ctx;
    f->resets = 0;
    f->paused = 0;
    f->fed = 0;
}

void gd_framer_reset(gd_framer_t *f)
{
    gd_buf_reset(&f->buf);
    f->discarding = 0;
    f->resets++;
}

void gd_framer_free(gd_framer_t *f)
{
    gd_buf_free(&f->buf);
    f->discarding = 0;
    f->resets++;
}

/* Like gd_buf_reserve, but the capacity stops at max_line + 1 (the partial
 * line can never be longer than max_line, plus the NUL), so a 1 MiB limit
 * costs 1 MiB, not the 2 MiB that plain doubling would reach. */
static int framer_reserve(gd_framer_t *f, size_t extra)
{
    gd_buf_t *b = &f->buf;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t ceiling = f->max_line < SIZE_MAX ? f->max_line + 1 : SIZE_MAX;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap <= SIZE_MAX / 2 ? cap * 2 : need;
    if (cap > ceiling) cap = ceiling > need ? ceiling : need;
    char *p = realloc(b->data, cap);
    if (!p) return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Hands one complete line (line[len] is the '\0' written over its '\n') to
 * the callback, minus one trailing '\r'; empty lines are skipped. */
static void framer_deliver(gd_framer_t *f, char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
    if (len > 0 && f->on_line) f->on_line(f->ctx, line, len);
}

static void framer_too_large(gd_framer_t *f)
{
    if (f->on_too_large) f->on_too_large(f->ctx);
}

int gd_framer_feed(gd_framer_t *f, char *data, size_t len)
{
    char *p = data;
    char *end = data + len;
    unsigned resets = f->resets;
    int err = 0;

    f->paused = 0;
    f->fed = len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl ? nl : end) - p);

        if (f->discarding) {
            f->discarding = nl == NULL; /* the oversized line ends here, or not yet */
        } else if (seg > f->max_line - f->buf.len) {
            /* Past the limit: report now, skip the rest up to '\n'. */
            gd_buf_reset(&f->buf);
            f->discarding = nl == NULL;
            framer_too_large(f);
        } else if (f->buf.len == 0 && nl) {
            /* The common case: a whole line inside data, passed in place. */
            *nl = '\0';
            framer_deliver(f, p, seg);
        } else if (framer_reserve(f, seg) != 0) {
            gd_buf_reset(&f->buf);
            f->discarding = nl == NULL;
            err = -ENOMEM;
        } else {
            gd_buf_append(&f->buf, p, seg); /* cannot fail: reserved */
            if (!nl) break;
            framer_deliver(f, f->buf.data, f->buf.len);
            gd_buf_reset(&f->buf);
        }
        if (f->resets != resets) return err; /* a callback reset or freed the framer */
        if (!nl) break;
        p = nl + 1;
        if (f->paused) {
            f->fed = (size_t)(p - data);
            break;
        }
    }
    return err;
}

/* qemu-ga's framing: complete JSON values out of a byte stream, 0xFF resync. */
#include "transport/qga_framer.h"

#include <errno.h>
#include <stdlib.h>

enum { KIND_NONE, KIND_CONTAINER, KIND_STRING, KIND_WORD };

void gd_qga_framer_init(gd_qga_framer_t *f, size_t max_message, gd_qga_message_cb on_message,
                        gd_qga_frame_error_cb on_error, void *ctx)
{
    gd_buf_init(&f->buf);
    f->max_message = max_message;
    f->on_message = on_message;
    f->on_error = on_error;
    f->ctx = ctx;
    f->resets = 0;
    f->kind = KIND_NONE;
    f->depth = 0;
    f->in_string = f->escape = f->discarding = 0;
}

static void value_done(gd_qga_framer_t *f)
{
    gd_buf_reset(&f->buf);
    f->kind = KIND_NONE;
    f->depth = 0;
    f->in_string = f->escape = f->discarding = 0;
}

void gd_qga_framer_reset(gd_qga_framer_t *f)
{
    value_done(f);
    f->resets++;
}

void gd_qga_framer_free(gd_qga_framer_t *f)
{
    gd_buf_free(&f->buf);
    value_done(f);
    f->resets++;
}

static void report(gd_qga_framer_t *f, gd_qga_frame_error_t what)
{
    if (f->on_error) f->on_error(f->ctx, what);
}

/* Doubles the buffer, but never past max_message + 1 (the value and its
 * NUL): memory stays within the limit whatever comes. */
static int grow(gd_qga_framer_t *f)
{
    size_t cap = f->buf.cap ? f->buf.cap * 2 : 64;
    if (cap > f->max_message + 1) cap = f->max_message + 1;
    if (cap < f->buf.len + 2) return -ENOMEM;
    char *p = realloc(f->buf.data, cap);
    if (!p) return -ENOMEM;
    f->buf.data = p;
    f->buf.cap = cap;
    return 0;
}

/* Keeps one byte of the value being read; past the limit the value is
 * dropped (reported once) and only its structure is followed. 0, or 1 when
 * a callback reset the framer. */
static int keep(gd_qga_framer_t *f, char c, int *err)
{
    if (f->discarding) return 0;
    unsigned resets = f->resets;
    if (f->buf.len + 1 > f->max_message) {
        gd_buf_reset(&f->buf);
        f->discarding = 1;
        report(f, GD_QGA_FRAME_TOO_LARGE);
        return f->resets != resets;
    }
    if (f->buf.len + 2 > f->buf.cap && grow(f) != 0) {
        gd_buf_reset(&f->buf);
        f->discarding = 1;
        *err = -ENOMEM;
        return 0;
    }
    f->buf.data[f->buf.len++] = c;
    f->buf.data[f->buf.len] = '\0';
    return 0;
}

/* The value is complete: hand it over (unless it was too large). 0, or 1
 * when the callback reset the framer. */
static int deliver(gd_qga_framer_t *f)
{
    unsigned resets = f->resets;
    if (!f->discarding && f->on_message) f->on_message(f->ctx, f->buf.data, f->buf.len);
    if (f->resets != resets) return 1;
    value_done(f);
    return 0;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int gd_qga_framer_feed(gd_qga_framer_t *f, const char *data, size_t len)
{
    int err = 0;
    f->paused = 0;
    f->fed = len;
    for (size_t i = 0; i < len; i++) {
        if (f->paused) { /* the value before byte i was the last one for now */
            f->fed = i;
            return err;
        }
        unsigned char c = (unsigned char)data[i];
        if (c == 0xFF) {
            int partial = f->kind != KIND_NONE;
            unsigned resets = f->resets;
            value_done(f);
            if (partial) report(f, GD_QGA_FRAME_CUT);
            if (f->resets != resets) return err;
            continue;
        }
        switch (f->kind) {
        case KIND_NONE:
            if (is_ws(c)) continue;
            if (c == '{' || c == '[') {
                f->kind = KIND_CONTAINER;
                f->depth = 1;
            } else {
                f->kind = c == '"' ? KIND_STRING : KIND_WORD;
            }
            if (keep(f, (char)c, &err)) return err;
            break;
        case KIND_WORD:
            /* A bare word (number, keyword, junk) ends where a delimiter
             * starts; the delimiter then begins the next value. */
            if (is_ws(c) || c == '{' || c == '[' || c == '"') {
                if (deliver(f)) return err;
                if (!is_ws(c)) i--;
                continue;
            }
            if (keep(f, (char)c, &err)) return err;
            break;
        case KIND_STRING:
            if (keep(f, (char)c, &err)) return err;
            if (f->escape)
                f->escape = 0;
            else if (c == '\\')
                f->escape = 1;
            else if (c == '"' && deliver(f))
                return err;
            break;
        case KIND_CONTAINER:
            if (keep(f, (char)c, &err)) return err;
            if (f->in_string) {
                if (f->escape)
                    f->escape = 0;
                else if (c == '\\')
                    f->escape = 1;
                else if (c == '"')
                    f->in_string = 0;
            } else if (c == '"') {
                f->in_string = 1;
            } else if (c == '{' || c == '[') {
                if (++f->depth > GD_QGA_FRAME_MAX_DEPTH && !f->discarding) {
                    unsigned resets = f->resets;
                    gd_buf_reset(&f->buf);
                    f->discarding = 1;
                    report(f, GD_QGA_FRAME_TOO_DEEP);
                    if (f->resets != resets) return err;
                }
            } else if ((c == '}' || c == ']') && --f->depth == 0 && deliver(f)) {
                return err;
            }
            break;
        }
    }
    return err;
}

/* A channel's framing when qemu-ga's protocol may be on it: which framer a
 * connection's bytes go to, decided per connection in auto. */
#include "transport/qga_link.h"

#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

static void on_line(void *ctx, char *line, size_t len)
{
    gd_qga_link_t *l = ctx;
    if (l->cbs->guestd_line) l->cbs->guestd_line(l->ctx, line, len);
}

static void on_too_large(void *ctx)
{
    gd_qga_link_t *l = ctx;
    if (l->cbs->guestd_too_large) l->cbs->guestd_too_large(l->ctx);
}

static void on_value(void *ctx, char *text, size_t len)
{
    gd_qga_link_t *l = ctx;
    if (l->cbs->qga_message) l->cbs->qga_message(l->ctx, text, len);
}

static void on_value_error(void *ctx, gd_qga_frame_error_t what)
{
    gd_qga_link_t *l = ctx;
    if (l->cbs->qga_error) l->cbs->qga_error(l->ctx, what);
}

static void start_connection(gd_qga_link_t *l)
{
    gd_buf_reset(&l->pending);
    l->scanned = 0;
    l->started = l->depth = l->in_string = l->escape = 0;
    l->obj_start = 0;
    l->mode = l->dialect == GD_DIALECT_GUESTD ? GD_LINK_GUESTD
              : l->dialect == GD_DIALECT_QGA  ? GD_LINK_QGA
                                              : GD_LINK_UNDECIDED;
}

void gd_qga_link_init(gd_qga_link_t *l, gd_dialect_t dialect, size_t max_message,
                      const gd_qga_link_cbs_t *cbs, void *ctx)
{
    memset(l, 0, sizeof(*l));
    l->dialect = dialect;
    l->max_message = max_message;
    l->cbs = cbs;
    l->ctx = ctx;
    gd_framer_init(&l->lines, max_message, on_line, on_too_large, l);
    gd_qga_framer_init(&l->values, max_message, on_value, on_value_error, l);
    gd_buf_init(&l->pending);
    start_connection(l);
}

void gd_qga_link_reset(gd_qga_link_t *l)
{
    gd_framer_reset(&l->lines);
    gd_qga_framer_reset(&l->values);
    start_connection(l);
    l->resets++;
}

void gd_qga_link_free(gd_qga_link_t *l)
{
    gd_framer_free(&l->lines);
    gd_qga_framer_free(&l->values);
    gd_buf_free(&l->pending);
    l->resets++;
}

int gd_qga_is_request(const char *text, size_t len)
{
    cJSON *v = cJSON_ParseWithLength(text, len);
    int yes = cJSON_IsObject(v) && (cJSON_GetObjectItemCaseSensitive(v, "execute") ||
                                    cJSON_GetObjectItemCaseSensitive(v, "exec-oob"));
    cJSON_Delete(v);
    return yes;
}

/* Scans what arrived while undecided; returns the mode once the first
 * message settles it, GD_LINK_UNDECIDED while it cannot tell yet. */
static gd_link_mode_t decide(gd_qga_link_t *l)
{
    const unsigned char *p = (const unsigned char *)l->pending.data;
    for (; l->scanned < l->pending.len; l->scanned++) {
        unsigned char c = p[l->scanned];
        if (c == 0xFF) return GD_LINK_QGA; /* only qemu-ga hosts resync */
        if (!l->started) {
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
            if (c != '{') return GD_LINK_GUESTD;
            l->started = 1;
            l->depth = 1;
            l->obj_start = l->scanned;
            continue;
        }
        if (c == '\n') return GD_LINK_GUESTD; /* a line ended inside the object */
        if (l->in_string) {
            if (l->escape)
                l->escape = 0;
            else if (c == '\\')
                l->escape = 1;
            else if (c == '"')
                l->in_string = 0;
        } else if (c == '"') {
            l->in_string = 1;
        } else if (c == '{' || c == '[') {
            l->depth++;
        } else if ((c == '}' || c == ']') && --l->depth == 0) {
            size_t n = l->scanned + 1 - l->obj_start;
            return gd_qga_is_request(l->pending.data + l->obj_start, n) ? GD_LINK_QGA
                                                                        : GD_LINK_GUESTD;
        }
    }
    if (l->pending.len > l->max_message) return GD_LINK_GUESTD; /* too large either way */
    return GD_LINK_UNDECIDED;
}

void gd_qga_link_pause(gd_qga_link_t *l)
{
    gd_framer_pause(&l->lines);
    gd_qga_framer_pause(&l->values);
}

/* Feeds the chosen framer; *fed: how much it took. */
static int feed_mode(gd_qga_link_t *l, char *data, size_t len, size_t *fed)
{
    if (l->mode == GD_LINK_GUESTD) {
        int r = gd_framer_feed(&l->lines, data, len);
        *fed = l->lines.fed;
        return r;
    }
    int r = gd_qga_framer_feed(&l->values, data, len);
    *fed = l->values.fed;
    return r;
}

/* Feeds the bytes the link keeps (read while undecided, or left by a
 * pause). 0 when all were taken; 1 when paused again (the rest is kept);
 * 2 when a callback reset the link. The buffer is detached first: a
 * callback may reset the link. */
static int feed_kept(gd_qga_link_t *l, int *err)
{
    if (l->pending.len == 0) return 0;
    gd_buf_t kept = l->pending;
    gd_buf_init(&l->pending);
    unsigned resets = l->resets;
    size_t fed;
    *err = feed_mode(l, kept.data, kept.len, &fed);
    if (l->resets != resets) {
        gd_buf_free(&kept);
        return 2;
    }
    if (fed < kept.len) {
        memmove(kept.data, kept.data + fed, kept.len - fed);
        kept.len -= fed;
        gd_buf_free(&l->pending);
        l->pending = kept;
        return 1;
    }
    gd_buf_free(&kept);
    return 0;
}

int gd_qga_link_feed(gd_qga_link_t *l, char *data, size_t len)
{
    int err = 0;
    l->fed = len;
    if (l->mode != GD_LINK_UNDECIDED) {
        int k = feed_kept(l, &err);
        if (k == 1) l->fed = 0;
        if (k != 0) return err;
        size_t fed;
        unsigned resets = l->resets;
        err = feed_mode(l, data, len, &fed);
        if (l->resets == resets) l->fed = fed;
        return err;
    }

    if (gd_buf_append(&l->pending, data, len) != 0) {
        /* Cannot keep it to decide: guestd's framing, which needs no memory
         * beyond its own limit, takes the connection. */
        l->mode = GD_LINK_GUESTD;
        gd_buf_reset(&l->pending);
        return -ENOMEM;
    }
    gd_link_mode_t mode = decide(l);
    if (mode == GD_LINK_UNDECIDED) return 0;
    l->mode = mode;
    /* Replay everything since the connection began into the chosen framer;
     * what a pause leaves stays kept for the next feed. */
    feed_kept(l, &err);
    return err;
}

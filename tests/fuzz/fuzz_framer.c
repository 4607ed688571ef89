/* Fuzzes transport/framer.c: an arbitrary byte stream cut into arbitrary
 * chunks, compared event by event (lines and too_large) with a byte-at-a-time
 * model of protocol.md's framing rules, and the memory bound checked after
 * every feed.
 *
 * Input: u16 limit selector, u8 split mode/seed, then the stream. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "transport/framer.h"

typedef struct event_s {
    int too_large;
    char *line;
    size_t len;
} event_t;

typedef struct log_s {
    event_t *ev;
    size_t n, cap;
} log_t;

static void log_add(log_t *l, int too_large, const char *line, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ev = realloc(l->ev, l->cap * sizeof(*l->ev));
        if (!l->ev) abort();
    }
    event_t *e = &l->ev[l->n++];
    e->too_large = too_large;
    e->line = too_large ? NULL : fuzz_strndup((const uint8_t *)line, len);
    e->len = len;
}

static void log_free(log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ev[i].line);
    free(l->ev);
}

/* Lines starting with these make the callback reset or free the framer. */
#define RESET_MARK '!'
#define FREE_MARK '#'

typedef struct real_s {
    gd_framer_t f;
    log_t log;
    int resets_enabled;
} real_t;

static void on_line(void *ctx, char *line, size_t len)
{
    real_t *r = ctx;
    FUZZ_CHECK(len > 0, "an empty line was delivered");
    FUZZ_CHECK(line[len] == '\0', "line[len] is not NUL");
    FUZZ_CHECK(memchr(line, '\n', len) == NULL, "a delivered line holds a newline");
    FUZZ_CHECK(len <= r->f.max_line, "a line of %zu bytes passed a limit of %zu", len,
               r->f.max_line);
    log_add(&r->log, 0, line, len);
    if (r->resets_enabled && line[0] == RESET_MARK) gd_framer_reset(&r->f);
    if (r->resets_enabled && line[0] == FREE_MARK) gd_framer_free(&r->f);
}

static void on_too_large(void *ctx)
{
    real_t *r = ctx;
    log_add(&r->log, 1, NULL, 0);
}

/* The model: protocol.md's rules, one byte at a time. */
typedef struct model_s {
    size_t max_line;
    char *cur;
    size_t len;
    int over; /* inside a line that passed the limit */
    log_t log;
    int resets_enabled;
} model_t;

/* Feeds one chunk; returns after a reset (the rest of the chunk is dropped). */
static void model_feed(model_t *m, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            size_t len = m->len;
            int was_over = m->over;
            m->len = 0;
            m->over = 0;
            if (was_over) continue;
            if (len > 0 && m->cur[len - 1] == '\r') len--;
            if (len == 0) continue;
            log_add(&m->log, 0, m->cur, len);
            if (m->resets_enabled && (m->cur[0] == RESET_MARK || m->cur[0] == FREE_MARK)) return;
        } else if (!m->over) {
            if (m->len == m->max_line) {
                m->over = 1;
                m->len = 0;
                log_add(&m->log, 1, NULL, 0);
            } else {
                m->cur[m->len++] = (char)p[i];
            }
        }
    }
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint16_t sel = fuzz_u16(&in);
    uint8_t mode = fuzz_u8(&in);
    size_t max_line;
    if (sel == 0xffff)
        max_line = SIZE_MAX;
    else if (sel & 0x8000)
        max_line = 1024 + (sel & 0x7fff);
    else
        max_line = sel % 300;

    real_t r;
    memset(&r, 0, sizeof(r));
    r.resets_enabled = mode & 0x80;
    gd_framer_init(&r.f, max_line, on_line, on_too_large, &r);

    model_t m;
    memset(&m, 0, sizeof(m));
    m.max_line = max_line;
    m.resets_enabled = r.resets_enabled;
    m.cur = malloc(in.n + 1);
    if (!m.cur) abort();

    uint32_t seed = 0x9e3779b9u ^ mode ^ (uint32_t)in.n << 8;
    size_t off = 0;
    while (off < in.n) {
        size_t chunk;
        switch (mode & 3) {
        case 0:
            chunk = in.n - off;
            break; /* all at once */
        case 1:
            chunk = 1;
            break; /* a byte at a time */
        case 2:
            chunk = 1 + xorshift(&seed) % 8;
            break;
        default:
            chunk = 1 + xorshift(&seed) % 300;
            break;
        }
        if (chunk > in.n - off) chunk = in.n - off;
        /* The channel's read buffer: writable, exactly this chunk. */
        char *buf = malloc(chunk);
        if (!buf) abort();
        memcpy(buf, in.p + off, chunk);
        int rc = gd_framer_feed(&r.f, buf, chunk);
        FUZZ_CHECK(rc == 0, "feed returned %d", rc);
        /* Only '\n' and a '\r' before it may have been overwritten. */
        for (size_t i = 0; i < chunk; i++)
            FUZZ_CHECK(buf[i] == (char)in.p[off + i] ||
                           (buf[i] == '\0' && (in.p[off + i] == '\n' || in.p[off + i] == '\r')),
                       "the feed changed byte %zu of its data", i);
        free(buf);
        model_feed(&m, in.p + off, chunk);
        if (max_line != SIZE_MAX)
            FUZZ_CHECK(r.f.buf.cap <= max_line + 1, "buffer capacity %zu past limit %zu + 1",
                       r.f.buf.cap, max_line);
        FUZZ_CHECK(r.log.n == m.log.n, "after a chunk: %zu events, the model has %zu", r.log.n,
                   m.log.n);
        off += chunk;
    }

    for (size_t i = 0; i < m.log.n; i++) {
        const event_t *a = &r.log.ev[i], *b = &m.log.ev[i];
        FUZZ_CHECK(a->too_large == b->too_large, "event %zu: too_large %d, model %d", i,
                   a->too_large, b->too_large);
        FUZZ_CHECK(a->len == b->len && (a->len == 0 || memcmp(a->line, b->line, a->len) == 0),
                   "event %zu: line differs from the model", i);
    }

    gd_framer_free(&r.f);
    log_free(&r.log);
    log_free(&m.log);
    free(m.cur);
    return 0;
}

/* Fuzzes the framing of a channel that may carry qemu-ga's protocol
 * (transport/qga_link.c, transport/qga_framer.c), fed arbitrary bytes in
 * arbitrary chunks under each channel.dialect, and every complete qemu-ga
 * value through the dialect's parser (gd_qga_json_parse) as the agent does.
 *
 * Checked: nothing longer than the limit is delivered, text[len] is NUL;
 * and qga_link.h's promise that a connection that turns out to speak
 * guestd's protocol is framed exactly as without this layer: the lines and
 * too_large reports equal those of a plain gd_framer fed the same stream.
 *
 * Input: dialect/limit byte, split byte, then the stream. */
// fuzz-needs: transport/qga_link.c transport/qga_framer.c commands/qga/json.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "commands/qga/json.h"
#include "fuzz_common.h"
#include "transport/framer.h"
#include "transport/qga_link.h"

typedef struct rec_s {
    char *text; /* NULL: too_large */
    size_t len;
} rec_t;

typedef struct seq_s {
    rec_t *r;
    size_t n, cap;
} seq_t;

static void seq_add(seq_t *s, const char *text, size_t len)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->r = realloc(s->r, s->cap * sizeof(*s->r));
        if (!s->r) abort();
    }
    s->r[s->n].text = text ? fuzz_strndup((const uint8_t *)text, len) : NULL;
    s->r[s->n].len = len;
    s->n++;
}

static void seq_free(seq_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].text);
    free(s->r);
}

typedef struct ctx_s {
    size_t max;
    seq_t guestd; /* what the link framed as guestd lines */
    seq_t plain;  /* what a plain framer made of the same stream */
    size_t messages, errors;
} ctx_t;

static void on_guestd_line(void *c, char *line, size_t len)
{
    ctx_t *x = c;
    FUZZ_CHECK(len > 0 && len <= x->max, "a guestd line of %zu bytes (limit %zu)", len, x->max);
    FUZZ_CHECK(line[len] == '\0', "line[len] is not NUL");
    seq_add(&x->guestd, line, len);
}

static void on_guestd_too_large(void *c)
{
    seq_add(&((ctx_t *)c)->guestd, NULL, 0);
}

static void on_qga_message(void *c, char *text, size_t len)
{
    ctx_t *x = c;
    FUZZ_CHECK(len > 0 && len <= x->max, "a value of %zu bytes (limit %zu)", len, x->max);
    FUZZ_CHECK(text[len] == '\0', "text[len] is not NUL");
    x->messages++;
    char err[256];
    cJSON *v = gd_qga_json_parse(text, len, err, sizeof(err));
    if (v) {
        gd_buf_t out;
        gd_buf_init(&out);
        FUZZ_CHECK(gd_qga_json_print(&out, v) == 0, "print failed");
        gd_buf_free(&out);
        cJSON_Delete(v);
    } else {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "err not terminated");
    }
    (void)gd_qga_is_request(text, len);
}

static void on_qga_error(void *c, gd_qga_frame_error_t what)
{
    ((ctx_t *)c)->errors++;
}

static void on_plain_line(void *c, char *line, size_t len)
{
    seq_add(&((ctx_t *)c)->plain, line, len);
}

static void on_plain_too_large(void *c)
{
    seq_add(&((ctx_t *)c)->plain, NULL, 0);
}

static const gd_qga_link_cbs_t cbs = {
    .guestd_line = on_guestd_line,
    .guestd_too_large = on_guestd_too_large,
    .qga_message = on_qga_message,
    .qga_error = on_qga_error,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint8_t sel = fuzz_u8(&in);
    uint8_t split = fuzz_u8(&in);
    static const size_t limits[4] = {16, 64, 300, 1 << 20};
    ctx_t x;
    memset(&x, 0, sizeof(x));
    x.max = limits[(sel >> 2) & 3];
    gd_dialect_t dialect = (gd_dialect_t)(sel % 3);

    gd_qga_link_t link;
    gd_qga_link_init(&link, dialect, x.max, &cbs, &x);
    gd_framer_t plain;
    gd_framer_init(&plain, x.max, on_plain_line, on_plain_too_large, &x);

    uint32_t seed = 0x2545f491u ^ split;
    size_t off = 0;
    while (off < in.n) {
        size_t chunk = in.n - off;
        if (split & 1) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            chunk = 1 + seed % ((split >> 1) + 1);
            if (chunk > in.n - off) chunk = in.n - off;
        }
        char *a = malloc(chunk), *b = malloc(chunk);
        if (!a || !b) abort();
        memcpy(a, in.p + off, chunk);
        memcpy(b, in.p + off, chunk);
        FUZZ_CHECK(gd_qga_link_feed(&link, a, chunk) == 0, "link feed failed");
        FUZZ_CHECK(gd_framer_feed(&plain, b, chunk) == 0, "framer feed failed");
        free(a);
        free(b);
        off += chunk;
    }

    if (link.mode == GD_LINK_GUESTD) {
        FUZZ_CHECK(x.guestd.n == x.plain.n, "guestd connection: %zu events, plain framer %zu",
                   x.guestd.n, x.plain.n);
        for (size_t i = 0; i < x.plain.n; i++) {
            const rec_t *g = &x.guestd.r[i], *p = &x.plain.r[i];
            FUZZ_CHECK((g->text == NULL) == (p->text == NULL) && g->len == p->len &&
                           (!g->text || memcmp(g->text, p->text, g->len) == 0),
                       "guestd connection: event %zu differs from the plain framer's", i);
        }
    } else if (link.mode == GD_LINK_QGA) {
        FUZZ_CHECK(x.guestd.n == 0 || dialect == GD_DIALECT_AUTO,
                   "guestd lines on a qemu-ga connection");
    }
    gd_qga_link_free(&link);
    gd_framer_free(&plain);
    seq_free(&x.guestd);
    seq_free(&x.plain);
    return 0;
}

/* What an exec's child writes: its pipes read into one fixed buffer each,
 * capped at max_output_bytes (the rest read and dropped, so memory does not
 * grow with the output), kept for the response or streamed as exec.output
 * events, and turned into JSON text (UTF-8 repaired) or base64. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/log.h"
#include "core/utf8.h"
#include "commands/exec_internal.h"

/* ---- output as JSON text ------------------------------------------------ */

/* Writes n bytes of child output as a JSON string literal, quotes included,
 * to dst (or only measures it when dst is NULL); returns its length. Valid
 * UTF-8 is kept, NUL included (as \u0000: a cJSON string cannot hold it, so
 * the literal goes into the result raw); each invalid byte becomes U+FFFD. */
static size_t json_text_put(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0, run = 0; /* run: start of bytes copied as they are */
#define PUT(src, len)                                                                              \
    do {                                                                                           \
        if (dst) memcpy(dst + o, (src), (len));                                                    \
        o += (len);                                                                                \
    } while (0)
    PUT("\"", 1);
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t len = gd_utf8_seq_len(p + i, n - i);
            if (len) {
                i += len;
                continue;
            }
        }
        char esc[6] = {'\\', 0};
        size_t k = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                k = 6;
            } else {
                memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD for an invalid byte */
                k = 3;
            }
        }
        PUT(s + run, i - run);
        PUT(esc, k);
        i++;
        run = i;
    }
    PUT(s + run, n - run);
    PUT("\"", 1);
#undef PUT
    return o;
}

static int json_text(gd_buf_t *out, const char *s, size_t n)
{
    size_t len = json_text_put(NULL, s, n);
    if (gd_buf_reserve(out, len) != 0) return -ENOMEM;
    json_text_put(out->data + out->len, s, n);
    out->len += len;
    out->data[out->len] = '\0';
    return 0;
}

/* How many of the n bytes end on a UTF-8 sequence boundary: a lead byte in
 * the last three whose sequence runs past the end is held back. */
static size_t utf8_complete_prefix(const unsigned char *p, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = p[n - back];
        if (c < 0x80) return n;
        if (c >= 0xC0) {
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            return need > back ? n - back : n;
        }
    }
    return n;
}

/* ---- the response's fields ---------------------------------------------- */

/* Adds key with a value built straight in cJSON's allocator: the output can
 * be megabytes (1 MiB of NULs is 6 MiB of JSON), so it is built once,
 * not built and copied. raw: text is a JSON literal, else a plain string. */
static int add_built(cJSON *obj, const char *key, char *text, int raw)
{
    cJSON *item = raw ? cJSON_CreateRaw("") : cJSON_CreateString("");
    if (!item) {
        cJSON_free(text);
        return -ENOMEM;
    }
    cJSON_free(item->valuestring);
    item->valuestring = text;
    cJSON_AddItemToObject(obj, key, item);
    return 0;
}

int gd_exec_add_output(gd_exec_t *e, cJSON *result)
{
    for (int i = 0; i < 2; i++) {
        gd_exec_stream_t *st = &e->out[i];
        /* Streamed output went out as events: the response carries none. */
        const char *data = st->kept && !e->stream ? st->kept : "";
        size_t n = st->kept && !e->stream ? st->used : 0;
        size_t len = e->base64 ? gd_base64_encoded_len(n) : json_text_put(NULL, data, n);
        char *text = cJSON_malloc(len + 1);
        if (!text) return -ENOMEM;
        if (e->base64)
            gd_base64_encode_to(text, data, n);
        else
            json_text_put(text, data, n);
        text[len] = '\0';
        free(st->kept); /* the text is now the only copy that must live on */
        st->kept = NULL;
        char key[32];
        snprintf(key, sizeof(key), e->base64 ? "%s_b64" : "%s", st->name);
        if (add_built(result, key, text, !e->base64) != 0) return -ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_truncated", e->out[i].name);
        cJSON_AddBoolToObject(result, key, e->out[i].truncated);
    }
    return 0;
}

/* ---- the response's fields, printed in the thread pool ------------------ */

void gd_exec_output_take(gd_exec_t *e, gd_exec_output_t *o)
{
    o->base64 = e->base64;
    for (int i = 0; i < 2; i++) {
        gd_exec_stream_t *st = &e->out[i];
        o->kept[i] = st->kept;
        o->n[i] = st->kept ? st->used : 0;
        o->truncated[i] = st->truncated;
        st->kept = NULL;
    }
}

size_t gd_exec_output_bound(const gd_exec_output_t *o)
{
    size_t n = 128; /* the member names, quotes and booleans */
    for (int i = 0; i < 2; i++)
        n += o->base64 ? gd_base64_encoded_len(o->n[i]) : 6 * o->n[i] + 2;
    return n;
}

size_t gd_exec_output_print(const gd_exec_output_t *o, char *dst)
{
    static const char *const names[2] = {"stdout", "stderr"};
    size_t len = 0;
    for (int i = 0; i < 2; i++) {
        len += (size_t)sprintf(dst + len, o->base64 ? "%s\"%s_b64\":\"" : "%s\"%s\":", i ? "," : "",
                               names[i]);
        const char *data = o->kept[i] ? o->kept[i] : "";
        if (o->base64) {
            len += gd_base64_encode_to(dst + len, data, o->n[i]);
            dst[len++] = '"';
        } else {
            len += json_text_put(dst + len, data, o->n[i]);
        }
    }
    for (int i = 0; i < 2; i++)
        len += (size_t)sprintf(dst + len, ",\"%s_truncated\":%s", names[i],
                               o->truncated[i] ? "true" : "false");
    return len;
}

void gd_exec_output_free(gd_exec_output_t *o)
{
    for (int i = 0; i < 2; i++) {
        free(o->kept[i]);
        o->kept[i] = NULL;
    }
}

/* ---- streaming ------------------------------------------------------------ */

static void publish_chunk(gd_exec_stream_t *st, const char *data, size_t n)
{
    gd_exec_t *e = st->exec;
    gd_buf_t *b = &e->ev;
    gd_buf_reset(b);
    int rc = gd_buf_printf(b, "{\"request_id\":%s,\"stream\":\"%s\",\"data\":",
                           e->id_json ? e->id_json : "null", st->name);
    if (rc == 0)
        rc = e->base64 ? (gd_buf_puts(b, "\"") || gd_base64_encode(b, data, n) ||
                          gd_buf_puts(b, "\",\"encoding\":\"base64\"}"))
                       : (json_text(b, data, n) || gd_buf_puts(b, "}"));
    if (rc != 0) {
        gd_warn("exec: out of memory for an exec.output event");
        return;
    }
    gd_bus_publish_raw(e->req->env->bus, "exec.output", b->data, b->len);
}

/* Streams n bytes as exec.output events of bounded size. Text is cut on
 * UTF-8 sequence boundaries; at EOF a held-back partial sequence goes out
 * (as U+FFFD). */
static void stream_out(gd_exec_stream_t *st, const char *data, size_t n, int eof)
{
    if (st->exec->aborting) return;
    if (st->exec->base64) {
        for (size_t off = 0; off < n; off += GD_EXEC_CHUNK_B64)
            publish_chunk(st, data + off,
                          n - off < GD_EXEC_CHUNK_B64 ? n - off : GD_EXEC_CHUNK_B64);
        return;
    }
    char piece[GD_EXEC_CHUNK_TEXT];
    while (n > 0 || (eof && st->carry_len > 0)) {
        size_t have = st->carry_len;
        memcpy(piece, st->carry, have);
        size_t take = n < sizeof(piece) - have ? n : sizeof(piece) - have;
        memcpy(piece + have, data, take);
        have += take;
        data += take;
        n -= take;
        size_t cut = (eof && n == 0) ? have : utf8_complete_prefix((unsigned char *)piece, have);
        st->carry_len = have - cut;
        memcpy(st->carry, piece + cut, st->carry_len);
        if (cut) publish_chunk(st, piece, cut);
    }
}

/* ---- reading ------------------------------------------------------------- */

/* Keeps (or streams) what fits under the cap; the rest is dropped. */
static void stream_take(gd_exec_stream_t *st, const char *data, size_t n)
{
    gd_exec_t *e = st->exec;
    size_t room = e->max_output - st->used;
    size_t take = n < room ? n : room;
    if (take < n) st->truncated = 1;
    if (take == 0) return;
    if (e->stream) {
        st->used += take;
        stream_out(st, data, take, 0);
        return;
    }
    if (st->used + take > st->kept_cap) {
        size_t cap = st->kept_cap ? st->kept_cap * 2 : 4096;
        if (cap < st->used + take) cap = st->used + take;
        if (cap > e->max_output) cap = e->max_output;
        char *p = realloc(st->kept, cap);
        if (!p) {
            st->truncated = 1; /* keep what we have rather than fail the exec */
            return;
        }
        st->kept = p;
        st->kept_cap = cap;
    }
    memcpy(st->kept + st->used, data, take);
    st->used += take;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gd_exec_stream_t *st = h->data;
    *buf = uv_buf_init(st->rbuf, sizeof(st->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gd_exec_stream_t *st = s->data;
    if (nread > 0)
        stream_take(st, buf->base, (size_t)nread);
    else if (nread < 0) /* UV_EOF, or an error that ends the stream all the same */
        gd_exec_stream_close(st);
}

static void on_stream_closed(uv_handle_t *h)
{
    gd_exec_stream_t *st = h->data;
    gd_exec_handle_closed(st->exec);
}

void gd_exec_stream_init(gd_exec_t *e, int which)
{
    gd_exec_stream_t *st = &e->out[which];
    st->exec = e;
    st->name = which == 0 ? "stdout" : "stderr";
    uv_pipe_init(e->loop, &st->pipe, 0);
    st->pipe.data = st;
}

int gd_exec_stream_start(gd_exec_stream_t *st)
{
    return uv_read_start((uv_stream_t *)&st->pipe, on_alloc, on_read);
}

void gd_exec_stream_close(gd_exec_stream_t *st)
{
    if (st->closing) return;
    st->closing = 1;
    uv_read_stop((uv_stream_t *)&st->pipe);
    if (st->exec->stream) stream_out(st, NULL, 0, 1);
    uv_close((uv_handle_t *)&st->pipe, on_stream_closed);
}

void gd_exec_stream_free(gd_exec_stream_t *st)
{
    free(st->kept);
    st->kept = NULL;
}

/* What an exec's child writes (read by the child runner, capped at
 * max_output_bytes): kept for the response or streamed as exec.output
 * events, and turned into JSON text (UTF-8 repaired) or base64. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/log.h"
#include "core/json/escape.h"
#include "commands/exec_internal.h"

static const char *const stream_names[2] = {"stdout", "stderr"}; /* as in events and keys */

/* ---- output as JSON text ------------------------------------------------ */

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
        gd_child_stream_t *st = &e->child.out[i];
        /* Streamed output went out as events: the response carries none. */
        const char *data = st->kept.data && !e->stream ? st->kept.data : "";
        size_t n = st->kept.data && !e->stream ? st->kept.len : 0;
        size_t len = e->base64 ? gd_base64_encoded_len(n) : gd_json_escape_to(NULL, data, n, 0);
        char *text = cJSON_malloc(len + 1);
        if (!text) return -ENOMEM;
        if (e->base64)
            gd_base64_encode_to(text, data, n);
        else
            gd_json_escape_to(text, data, n, 0);
        text[len] = '\0';
        gd_buf_free(&st->kept); /* the text is now the only copy that must live on */
        char key[32];
        snprintf(key, sizeof(key), e->base64 ? "%s_b64" : "%s", stream_names[i]);
        if (add_built(result, key, text, !e->base64) != 0) return -ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof(key), "%s_truncated", stream_names[i]);
        cJSON_AddBoolToObject(result, key, e->child.out[i].truncated);
    }
    return 0;
}

/* ---- the response's fields, printed in the thread pool ------------------ */

void gd_exec_output_take(gd_exec_t *e, gd_exec_output_t *o)
{
    o->base64 = e->base64;
    for (int i = 0; i < 2; i++) {
        gd_child_stream_t *st = &e->child.out[i];
        o->kept[i] = st->kept.data; /* malloc'd: gd_exec_output_free frees it */
        o->n[i] = st->kept.len;
        o->truncated[i] = st->truncated;
        gd_buf_init(&st->kept);
    }
}

size_t gd_exec_output_bound(const gd_exec_output_t *o)
{
    size_t n = 128; /* the member names, quotes and booleans */
    for (int i = 0; i < 2; i++)
        n += o->base64 ? gd_base64_encoded_len(o->n[i]) : GD_JSON_ESCAPED_MAX(o->n[i]);
    return n;
}

size_t gd_exec_output_print(const gd_exec_output_t *o, char *dst)
{
    const char *const *names = stream_names;
    size_t len = 0;
    for (int i = 0; i < 2; i++) {
        len += (size_t)sprintf(dst + len, o->base64 ? "%s\"%s_b64\":\"" : "%s\"%s\":", i ? "," : "",
                               names[i]);
        const char *data = o->kept[i] ? o->kept[i] : "";
        if (o->base64) {
            len += gd_base64_encode_to(dst + len, data, o->n[i]);
            dst[len++] = '"';
        } else {
            len += gd_json_escape_to(dst + len, data, o->n[i], 0);
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

static void publish_chunk(gd_exec_t *e, int which, const char *data, size_t n)
{
    gd_buf_t *b = &e->ev;
    gd_buf_reset(b);
    int rc = gd_buf_printf(b, "{\"request_id\":%s,\"stream\":\"%s\",\"data\":",
                           e->id_json ? e->id_json : "null", stream_names[which]);
    if (rc == 0)
        rc = e->base64 ? (gd_buf_puts(b, "\"") || gd_base64_encode(b, data, n) ||
                          gd_buf_puts(b, "\",\"encoding\":\"base64\"}"))
                       : (gd_json_escape(b, data, n, 0) || gd_buf_puts(b, "}"));
    if (rc != 0) {
        gd_warn("exec: out of memory for an exec.output event");
        return;
    }
    gd_bus_publish_raw(e->req->env->bus, "exec.output", b->data, b->len);
}

/* Streams n bytes as exec.output events of bounded size. Text is cut on
 * UTF-8 sequence boundaries; at EOF a held-back partial sequence goes out
 * (as U+FFFD). */
void gd_exec_stream_output(gd_child_t *c, int which, const char *data, size_t n)
{
    gd_exec_t *e = c->data;
    int eof = data == NULL;
    if (e->aborting) return;
    if (e->base64) {
        for (size_t off = 0; off < n; off += GD_EXEC_CHUNK_B64)
            publish_chunk(e, which, data + off,
                          n - off < GD_EXEC_CHUNK_B64 ? n - off : GD_EXEC_CHUNK_B64);
        return;
    }
    unsigned char *carry = e->carry[which];
    size_t *carry_len = &e->carry_len[which];
    char piece[GD_EXEC_CHUNK_TEXT];
    while (n > 0 || (eof && *carry_len > 0)) {
        size_t have = *carry_len;
        memcpy(piece, carry, have);
        size_t take = n < sizeof(piece) - have ? n : sizeof(piece) - have;
        if (take) memcpy(piece + have, data, take);
        have += take;
        data += take;
        n -= take;
        size_t cut = (eof && n == 0) ? have : utf8_complete_prefix((unsigned char *)piece, have);
        *carry_len = have - cut;
        memcpy(carry, piece + cut, *carry_len);
        if (cut) publish_chunk(e, which, piece, cut);
    }
}

/* qemu-ga's JSON: exact 64-bit integers in, QEMU's printing out. */
#include "commands/qga/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json/escape.h"
#include "core/json/keys.h"
#include "core/utf8.h"

/* ---- parsing ---- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The number literals of text, in document order: start and length. */
typedef struct numtok_s {
    const char *text;
    size_t len;
    size_t pos;
} numtok_t;

/* Finds the next number literal at or after t->pos (outside strings). */
static int next_number(numtok_t *t, const char **start, size_t *n)
{
    const char *s = t->text;
    size_t i = t->pos;
    while (i < t->len) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < t->len && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            i++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < t->len && strchr("0123456789+-.eE", s[j]))
                j++;
            *start = s + i;
            *n = j - i;
            t->pos = j;
            return 1;
        }
        i++;
    }
    t->pos = i;
    return 0;
}

/* Gives every number literal its text, walking the tree in document order
 * alongside the literals (cJSON keeps members and elements in order). */
static int attach_literals(cJSON *item, numtok_t *t)
{
    if (cJSON_IsNumber(item)) {
        const char *s;
        size_t n;
        if (!next_number(t, &s, &n)) return -EINVAL;
        /* Every literal keeps its text: an integer's is exact, and a
         * fraction's says it is not an integer (1.0 is not). */
        char *copy = cJSON_malloc(n + 1); /* cJSON_Delete frees it */
        if (!copy) return -ENOMEM;
        memcpy(copy, s, n);
        copy[n] = '\0';
        item->valuestring = copy;
        return 0;
    }
    for (cJSON *c = item->child; c; c = c->next) {
        int r = attach_literals(c, t);
        if (r != 0) return r;
    }
    return 0;
}

static int has_duplicate_key(const cJSON *item)
{
    int oom;
    if (gd_json_duplicate_key(item, &oom) || oom) return 1;
    for (const cJSON *c = item->child; c; c = c->next)
        if (has_duplicate_key(c)) return 1;
    return 0;
}

/* Length of the token at s for an error message: up to white space, at
 * most max bytes, and never past the avail bytes of the text (which need not
 * end in a NUL). A cut at max backs off to a character boundary. */
static size_t token_len(const char *s, size_t avail, size_t max)
{
    size_t n = 0;
    while (n < avail && n < max && !is_ws(s[n]))
        n++;
    if (n == max)
        while (n > 0 && n < avail && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    return n;
}

cJSON *gd_qga_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "JSON parse error, stray '\\u0000'");
        return NULL;
    }
    if (!gd_utf8_valid(text, len)) {
        snprintf(err, errlen, "JSON parse error, invalid UTF-8 sequence");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root && end)
        while (end < text + len && is_ws(*end))
            end++;
    if (!root || end != text + len) {
        cJSON_Delete(root);
        const char *at = end && end < text + len ? end : text;
        size_t n = token_len(at, (size_t)(text + len - at), 32);
        snprintf(err, errlen, "JSON parse error, invalid or unexpected token '%.*s'", (int)n, at);
        return NULL;
    }
    /* cJSON would cut "a\u0000b" to "a": refused, as older qemu-ga did. */
    if (gd_json_escaped_nul_depth(text, len)) {
        cJSON_Delete(root);
        snprintf(err, errlen, "JSON parse error, \\u0000 is not supported");
        return NULL;
    }
    if (has_duplicate_key(root)) {
        cJSON_Delete(root);
        snprintf(err, errlen, "JSON parse error, duplicate key");
        return NULL;
    }
    numtok_t t = {text, len, 0};
    if (attach_literals(root, &t) == -ENOMEM) {
        cJSON_Delete(root);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    return root;
}

/* ---- exact integers ---- */

static cJSON *exact_number(double d, const char *text)
{
    cJSON *v = cJSON_CreateNumber(d);
    if (!v) return NULL;
    size_t n = strlen(text) + 1;
    v->valuestring = cJSON_malloc(n); /* cJSON_Delete frees it */
    if (v->valuestring) memcpy(v->valuestring, text, n);
    if (!v->valuestring) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

cJSON *gd_qga_json_int(int64_t v)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, v);
    return exact_number((double)v, text);
}

cJSON *gd_qga_json_uint(uint64_t v)
{
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    return exact_number((double)v, text);
}

void gd_qga_json_add_int(cJSON *obj, const char *name, int64_t v)
{
    cJSON *n = gd_qga_json_int(v);
    if (n && !cJSON_AddItemToObject(obj, name, n)) cJSON_Delete(n);
}

void gd_qga_json_add_uint(cJSON *obj, const char *name, uint64_t v)
{
    cJSON *n = gd_qga_json_uint(v);
    if (n && !cJSON_AddItemToObject(obj, name, n)) cJSON_Delete(n);
}

int gd_qga_json_get_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v)) return -EINVAL;
    if (v->valuestring) {
        const char *s = v->valuestring;
        if (strcspn(s, ".eE") != strlen(s)) return -EINVAL;
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno || *end || end == s) return -EINVAL;
        *out = x;
        return 0;
    }
    double d = v->valuedouble;
    if (!isfinite(d) || floor(d) != d || fabs(d) > 9007199254740992.0) return -EINVAL;
    *out = (int64_t)d;
    return 0;
}

/* ---- printing, as QEMU's qobject_to_json() ---- */

/* Non-ASCII as \uXXXX in capitals, as QEMU prints strings (the policy for
 * invalid UTF-8 is core/json/escape.h's). */
static int print_string(gd_buf_t *out, const char *s)
{
    return gd_json_escape(out, s, strlen(s), GD_JSON_ESC_ASCII);
}

static int print_number(gd_buf_t *out, const cJSON *v)
{
    if (v->valuestring) return gd_buf_puts(out, v->valuestring);
    double d = v->valuedouble;
    if (!isfinite(d)) return gd_buf_puts(out, "null");
    if (floor(d) == d && fabs(d) < 9007199254740992.0)
        return gd_buf_printf(out, "%" PRId64, (int64_t)d);
    /* The shortest of 15 to 17 digits that reads back as the same double. */
    char text[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(text, sizeof(text), "%.*g", prec, d);
        if (strtod(text, NULL) == d) break;
    }
    return gd_buf_puts(out, text);
}

int gd_qga_json_print(gd_buf_t *out, const cJSON *v)
{
    int r = 0;
    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        int obj = cJSON_IsObject(v);
        r = gd_buf_append(out, obj ? "{" : "[", 1);
        for (const cJSON *c = v->child; r == 0 && c; c = c->next) {
            if (c != v->child) r = gd_buf_append(out, ", ", 2);
            if (r == 0 && obj) {
                r = print_string(out, c->string);
                if (r == 0) r = gd_buf_append(out, ": ", 2);
            }
            if (r == 0) r = gd_qga_json_print(out, c);
        }
        return r == 0 ? gd_buf_append(out, obj ? "}" : "]", 1) : r;
    }
    if (cJSON_IsString(v)) return print_string(out, v->valuestring);
    if (cJSON_IsNumber(v)) return print_number(out, v);
    if (cJSON_IsTrue(v)) return gd_buf_puts(out, "true");
    if (cJSON_IsFalse(v)) return gd_buf_puts(out, "false");
    return gd_buf_puts(out, "null");
}

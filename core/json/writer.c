/* A small JSON writer into a reused buffer, with hand-made number
 * formatting. */
#include "core/json/writer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/json/escape.h"

void gd_jw_init(gd_jw_t *w, gd_buf_t *out)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
}

static void put(gd_jw_t *w, const char *s, size_t n)
{
    if (w->err) return;
    if (gd_buf_append(w->out, s, n) != 0) w->err = -ENOMEM;
}

/* Writes the comma that separates this value from the previous one. */
static void before_value(gd_jw_t *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->count[w->depth]) put(w, ",", 1);
    if (w->count[w->depth] < 255) w->count[w->depth]++;
}

static void open_(gd_jw_t *w, char c)
{
    before_value(w);
    put(w, &c, 1);
    if (w->depth + 1 >= GD_JW_MAX_DEPTH) {
        w->err = -EINVAL;
        return;
    }
    w->count[++w->depth] = 0;
}

static void close_(gd_jw_t *w, char c)
{
    if (w->depth == 0) {
        w->err = -EINVAL;
        return;
    }
    w->depth--;
    put(w, &c, 1);
}

void gd_jw_obj_begin(gd_jw_t *w)
{
    open_(w, '{');
}

void gd_jw_obj_end(gd_jw_t *w)
{
    close_(w, '}');
}

void gd_jw_arr_begin(gd_jw_t *w)
{
    open_(w, '[');
}

void gd_jw_arr_end(gd_jw_t *w)
{
    close_(w, ']');
}

void gd_jw_key(gd_jw_t *w, const char *key)
{
    before_value(w);
    put(w, "\"", 1);
    put(w, key, strlen(key));
    put(w, "\":", 2);
    w->after_key = 1;
}

/* Decimal digits of v into the end of tmp; returns where they start. */
static char *format_u64(char *end, uint64_t v)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void gd_jw_u64(gd_jw_t *w, uint64_t v)
{
    char tmp[24];
    before_value(w);
    char *p = format_u64(tmp + sizeof(tmp), v);
    put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

void gd_jw_i64(gd_jw_t *w, int64_t v)
{
    char tmp[24];
    before_value(w);
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = format_u64(tmp + sizeof(tmp), mag);
    if (v < 0) *--p = '-';
    put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

void gd_jw_num(gd_jw_t *w, double v)
{
    char tmp[48];
    before_value(w);
    if (!isfinite(v)) v = 0.0;
    if (fabs(v) >= 1e15) { /* beyond exact cents in an int64: rare, use printf */
        int n = snprintf(tmp, sizeof(tmp), "%.1f", v);
        put(w, tmp, (size_t)n);
        return;
    }
    int64_t scaled = llround(v * 100.0);
    uint64_t mag = scaled < 0 ? (uint64_t)(-scaled) : (uint64_t)scaled;
    unsigned frac = (unsigned)(mag % 100);
    char *end = tmp + sizeof(tmp);
    char *p = end;
    if (frac % 10 == 0) {
        *--p = (char)('0' + frac / 10);
    } else {
        *--p = (char)('0' + frac % 10);
        *--p = (char)('0' + frac / 10);
    }
    *--p = '.';
    p = format_u64(p, mag / 100);
    if (scaled < 0) *--p = '-';
    put(w, p, (size_t)(end - p));
}

void gd_jw_decimal(gd_jw_t *w, uint64_t v, int digits)
{
    char tmp[48];
    char *end = tmp + sizeof(tmp);
    char *p = end;
    before_value(w);
    if (digits < 1) digits = 1;
    if (digits > 9) digits = 9;
    for (int i = 0; i < digits; i++) {
        *--p = (char)('0' + v % 10);
        v /= 10;
    }
    *--p = '.';
    p = format_u64(p, v);
    put(w, p, (size_t)(end - p));
}

void gd_jw_bool(gd_jw_t *w, int v)
{
    before_value(w);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void gd_jw_null(gd_jw_t *w)
{
    before_value(w);
    put(w, "null", 4);
}

void gd_jw_str(gd_jw_t *w, const char *s)
{
    before_value(w);
    if (!w->err && gd_json_escape(w->out, s, strlen(s), 0) != 0) w->err = -ENOMEM;
}

int gd_jw_error(const gd_jw_t *w)
{
    if (w->err) return w->err;
    return w->depth == 0 ? 0 : -EINVAL;
}

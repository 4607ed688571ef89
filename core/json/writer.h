/* A small JSON writer into a reused gd_buf_t: the metrics sample is written
 * straight from the collectors' plain structs, with no cJSON tree and no
 * allocation once the buffer has grown to a sample's size. Numbers are
 * formatted by hand (printf is the slowest part of a sample otherwise).
 * Errors are sticky: check gd_jw_error() once at the end. */
#ifndef GUESTD_JSONW_H
#define GUESTD_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define GD_JW_MAX_DEPTH 16

typedef struct gd_jw_s {
    gd_buf_t *out;
    int depth;
    unsigned char count[GD_JW_MAX_DEPTH]; /* values written at each level (saturating) */
    int after_key;
    int err;
} gd_jw_t;

/* Starts writing at the end of out (nothing is reset). */
void gd_jw_init(gd_jw_t *w, gd_buf_t *out);
void gd_jw_obj_begin(gd_jw_t *w);
void gd_jw_obj_end(gd_jw_t *w);
void gd_jw_arr_begin(gd_jw_t *w);
void gd_jw_arr_end(gd_jw_t *w);
/* An object key; key is a literal name (written unescaped). */
void gd_jw_key(gd_jw_t *w, const char *key);
void gd_jw_u64(gd_jw_t *w, uint64_t v);
void gd_jw_i64(gd_jw_t *w, int64_t v);
/* A number with at most two decimals and at least one ("12.5", "0.0", "3.14"),
 * so a host always sees a float; NaN and infinities are written as 0.0. */
void gd_jw_num(gd_jw_t *w, double v);
/* v counted in units of 10^-digits (digits 1 to 9), written exactly with
 * that many decimals: 123456 with 6 is "0.123456". For cumulative counters
 * kept in ticks, milliseconds or microseconds, which must not be rounded. */
void gd_jw_decimal(gd_jw_t *w, uint64_t v, int digits);
void gd_jw_bool(gd_jw_t *w, int v);
void gd_jw_null(gd_jw_t *w);
/* A string value, escaped by gd_json_escape() (invalid UTF-8 becomes
 * U+FFFD). */
void gd_jw_str(gd_jw_t *w, const char *s);
/* 0, or -ENOMEM / -EINVAL (unbalanced) from any earlier call. */
int gd_jw_error(const gd_jw_t *w);

#endif

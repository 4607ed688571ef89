/* JSON as qemu-ga speaks it: integers are 64-bit and exact (a guest-sync id
 * or a time in nanoseconds is past 2^53, where cJSON's double would round
 * it), and replies are printed the way QEMU prints them ({"return": 5},
 * ", " and ": " separators, every non-ASCII character as \uXXXX).
 *
 * An exact integer is a cJSON number whose valuestring holds its decimal
 * text; cJSON_Delete and cJSON_Duplicate free and copy it like any string. */
#ifndef GUESTD_QGA_JSON_H
#define GUESTD_QGA_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/buf.h"

/* Parses the whole of text[0..len) (whitespace around the value allowed).
 * Every number literal keeps its text. NULL on error, with qemu-ga's kind
 * of message in err ("JSON parse error, duplicate key"). */
cJSON *gd_qga_json_parse(const char *text, size_t len, char *err, size_t errlen);

/* Appends v in QEMU's compact form. 0 or -ENOMEM. */
int gd_qga_json_print(gd_buf_t *out, const cJSON *v);

/* Exact integers. NULL when out of memory. */
cJSON *gd_qga_json_int(int64_t v);
cJSON *gd_qga_json_uint(uint64_t v);
/* Adds name: v to obj (nothing when out of memory). */
void gd_qga_json_add_int(cJSON *obj, const char *name, int64_t v);
void gd_qga_json_add_uint(cJSON *obj, const char *name, uint64_t v);

/* The value of an integer: an integer literal (or an exact integer made
 * above, or a whole cJSON number below 2^53) that fits int64. 0, or -EINVAL
 * for anything else (1.0, 1e3, 2^63, a string). */
int gd_qga_json_get_int(const cJSON *v, int64_t *out);

#endif

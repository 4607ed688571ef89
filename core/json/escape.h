/* guestd's one JSON string escaper: any bytes in, a JSON string literal out.
 *
 * Policy (docs/protocol.md, "Strings and invalid UTF-8"): the input is n
 * bytes, not a C string, so a NUL inside it is a character like any other.
 * '"' and '\' are escaped, the C0 controls that JSON has a short form for
 * as \b \f \n \r \t, the other C0 controls (NUL included) as \u00XX. Valid
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF)
 * is kept; each byte that does not begin a valid sequence (a stray
 * continuation byte, a lead byte whose sequence is cut short, 0xC0, 0xC1,
 * 0xF5..0xFF) becomes U+FFFD on its own, so the output is valid UTF-8 and
 * valid JSON whatever the input, and valid input round-trips exactly.
 *
 * GD_JSON_ESC_ASCII prints as QEMU's qobject_to_json() does, for the
 * qemu-ga dialect: the output is ASCII, DEL and every code point past it
 * as \uXXXX (a surrogate pair past U+FFFF), hex digits in capitals; an
 * invalid byte becomes \uFFFD. Without it hex digits are small letters and
 * DEL, U+2028 and U+2029 stay as they are, as cJSON prints them. */
#ifndef GUESTD_JSON_ESCAPE_H
#define GUESTD_JSON_ESCAPE_H

#include <stddef.h>

#include "core/buf.h"

enum {
    GD_JSON_ESC_ASCII = 1, /* qemu-ga's form: ASCII only, \uXXXX in capitals */
};

/* The most a literal of n input bytes can take, quotes included: an input
 * byte never takes more than six output bytes (\u0001, or \uFFFD). */
#define GD_JSON_ESCAPED_MAX(n) (6 * (size_t)(n) + 2)

/* Writes s[0..n) as a JSON string literal, quotes included and no NUL after
 * it, to dst, or only measures it when dst is NULL; returns its length. */
size_t gd_json_escape_to(char *dst, const char *s, size_t n, unsigned flags);

/* Appends s[0..n) to out as a JSON string literal, quotes included.
 * 0, or -ENOMEM (out is then as it was). */
int gd_json_escape(gd_buf_t *out, const char *s, size_t n, unsigned flags);

#endif

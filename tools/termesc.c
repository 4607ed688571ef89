/* Text from the guest made safe to print (termesc.h). */
#include "tools/termesc.h"

#include <string.h>

#include "core/utf8.h"

/* The escape for the character at s (seq bytes, 0 for an invalid byte)
 * into e, or 0 when it is printed as it is. */
static size_t escape_of(gd_esc_style_t style, const unsigned char *s, size_t seq, char *e)
{
    static const char hex[] = "0123456789abcdef";
    unsigned cp;
    if (seq == 0) {
        if (style == GD_ESC_JSON) {
            memcpy(e, "\\ufffd", 6);
            return 6;
        }
        cp = s[0];
    } else if (seq == 1 && (s[0] < 0x20 || s[0] == 0x7f)) {
        cp = s[0];
    } else if (seq == 2 && s[0] == 0xc2 && s[1] < 0xa0) {
        cp = s[1]; /* a C1 control: terminals may act on it as on ESC [ */
    } else {
        return 0;
    }
    if (style == GD_ESC_JSON) {
        memcpy(e, "\\u00", 4);
        e[4] = hex[cp >> 4];
        e[5] = hex[cp & 15];
        return 6;
    }
    if (seq == 2) { /* a C1 control, as its code point */
        memcpy(e, "\\u00", 4);
        e[4] = hex[cp >> 4];
        e[5] = hex[cp & 15];
        return 6;
    }
    e[0] = '\\';
    e[1] = 'x';
    e[2] = hex[cp >> 4];
    e[3] = hex[cp & 15];
    return 4;
}

size_t gd_esc(gd_esc_style_t style, const char *s, size_t len, char *buf, size_t buflen)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t at = 0;
    if (!buflen) return 0;
    for (size_t i = 0; i < len;) {
        size_t seq = gd_utf8_seq_len(u + i, len - i);
        char e[8];
        size_t el = escape_of(style, u + i, seq, e);
        const char *piece = el ? e : s + i;
        size_t plen = el ? el : seq;
        if (at + plen >= buflen) break;
        memcpy(buf + at, piece, plen);
        at += plen;
        i += seq ? seq : 1;
    }
    buf[at] = '\0';
    return at;
}

void gd_esc_write(FILE *out, gd_esc_style_t style, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t plain = 0; /* start of the run copied as it is */
    size_t i = 0;
    while (i < len) {
        size_t seq = gd_utf8_seq_len(u + i, len - i);
        char e[8];
        size_t el = escape_of(style, u + i, seq, e);
        if (el) {
            fwrite(s + plain, 1, i - plain, out);
            fwrite(e, 1, el, out);
            i += seq ? seq : 1;
            plain = i;
        } else {
            i += seq;
        }
    }
    fwrite(s + plain, 1, len - plain, out);
}

void gd_esc_puts(FILE *out, gd_esc_style_t style, const char *s)
{
    if (s) gd_esc_write(out, style, s, strlen(s));
}

size_t gd_snprintf_len(int r, size_t len)
{
    if (r < 0 || !len) return 0;
    return (size_t)r < len ? (size_t)r : len - 1;
}

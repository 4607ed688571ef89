/* guestd's one JSON string escaper (the policy is in escape.h). */
#include "core/json/escape.h"

#include <errno.h>
#include <string.h>

#include "core/utf8.h"

/* The code point of the valid sequence of len bytes at p. */
static unsigned decode(const unsigned char *p, size_t len)
{
    switch (len) {
    case 1:
        return p[0];
    case 2:
        return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3:
        return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default:
        return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
               (p[3] & 0x3Fu);
    }
}

/* \uXXXX for one UTF-16 unit into e; returns 6. */
static size_t u_escape(char *e, unsigned unit, const char *hex)
{
    e[0] = '\\';
    e[1] = 'u';
    e[2] = hex[(unit >> 12) & 15];
    e[3] = hex[(unit >> 8) & 15];
    e[4] = hex[(unit >> 4) & 15];
    e[5] = hex[unit & 15];
    return 6;
}

/* The escape for an ASCII byte that is not copied as it is: JSON's short
 * forms where it has one, as both cJSON and QEMU print them. */
static size_t ascii_escape(char *e, unsigned char c, const char *hex)
{
    char letter;
    switch (c) {
    case '"':
    case '\\':
        letter = (char)c;
        break;
    case '\b':
        letter = 'b';
        break;
    case '\f':
        letter = 'f';
        break;
    case '\n':
        letter = 'n';
        break;
    case '\r':
        letter = 'r';
        break;
    case '\t':
        letter = 't';
        break;
    default:
        return u_escape(e, c, hex);
    }
    e[0] = '\\';
    e[1] = letter;
    return 2;
}

size_t gd_json_escape_to(char *dst, const char *s, size_t n, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s;
    const int ascii = (flags & GD_JSON_ESC_ASCII) != 0;
    const char *hex = ascii ? "0123456789ABCDEF" : "0123456789abcdef";
    /* Bytes from 0x20 below top, but for '"' and '\', are copied as they are. */
    const unsigned top = ascii ? 0x7F : 0x80;
    size_t o = 0, i = 0;
#define PUT(src, len)                                                                              \
    do {                                                                                           \
        if (dst) memcpy(dst + o, (src), (len));                                                    \
        o += (len);                                                                                \
    } while (0)
    PUT("\"", 1);
    while (i < n) {
        /* The longest stretch copied as it is: plain ASCII, and in UTF-8
         * output valid sequences too (a run of text in any script). */
        size_t run = i;
        for (;;) {
            while (i < n && p[i] >= 0x20 && p[i] < top && p[i] != '"' && p[i] != '\\')
                i++;
            if (ascii || i == n || p[i] < 0x80) break;
            size_t len = gd_utf8_seq_len(p + i, n - i);
            if (len == 0) break;
            i += len;
        }
        PUT(p + run, i - run);
        if (i == n) break;

        char e[12];
        size_t k;
        if (p[i] < 0x80) {
            k = ascii_escape(e, p[i], hex);
            i++;
        } else {
            size_t len = gd_utf8_seq_len(p + i, n - i);
            unsigned cp = len ? decode(p + i, len) : 0xFFFD;
            i += len ? len : 1;
            if (!ascii) {
                memcpy(e, "\xEF\xBF\xBD", 3); /* only an invalid byte gets here */
                k = 3;
            } else if (cp > 0xFFFF) {
                cp -= 0x10000;
                k = u_escape(e, 0xD800 | (cp >> 10), hex);
                k += u_escape(e + k, 0xDC00 | (cp & 0x3FF), hex);
            } else {
                k = u_escape(e, cp, hex);
            }
        }
        PUT(e, k);
    }
    PUT("\"", 1);
#undef PUT
    return o;
}

int gd_json_escape(gd_buf_t *out, const char *s, size_t n, unsigned flags)
{
    size_t len = gd_json_escape_to(NULL, s, n, flags);
    if (gd_buf_reserve(out, len) != 0) return -ENOMEM;
    gd_json_escape_to(out->data + out->len, s, n, flags);
    out->len += len;
    out->data[out->len] = '\0';
    return 0;
}

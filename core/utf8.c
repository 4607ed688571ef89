/* UTF-8 checks and repair (RFC 3629). */
#include "core/utf8.h"

size_t gd_utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

int gd_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t len = gd_utf8_seq_len(p + i, n - i);
        if (len == 0) return 0;
        i += len;
    }
    return 1;
}

int gd_utf8_sanitize(gd_buf_t *out, const char *s, size_t n)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* run: start of the pending valid stretch */
    while (i < n) {
        size_t len = p[i] < 0x80 ? 1 : gd_utf8_seq_len(p + i, n - i);
        if (len) {
            i += len;
            continue;
        }
        if (gd_buf_append(out, s + run, i - run) != 0 || gd_buf_append(out, replacement, 3) != 0)
            return -1;
        i++;
        run = i;
    }
    return gd_buf_append(out, s + run, n - run);
}

/* Base64 encoding and strict decoding (RFC 4648 section 4). */
#include "core/base64.h"

#include <errno.h>
#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t gd_base64_encode_to(char *dst, const void *src, size_t n)
{
    const unsigned char *s = src;
    char *p = dst;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = alphabet[(v >> 6) & 63];
        *p++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        *p++ = alphabet[v >> 18];
        *p++ = alphabet[(v >> 12) & 63];
        *p++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    *p = '\0';
    return (size_t)(p - dst);
}

int gd_base64_encode(gd_buf_t *out, const void *src, size_t n)
{
    size_t len = gd_base64_encoded_len(n);
    if (gd_buf_reserve(out, len) != 0) return -ENOMEM;
    out->len += gd_base64_encode_to(out->data + out->len, src, n);
    return 0;
}

/* The value of one base64 character, or -1. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int gd_base64_decode_to(void *dst, const char *src, size_t n, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = dst;
    /* Padding, when present, completes the last quantum. */
    if (n % 4 == 0 && n > 0 && s[n - 1] == '=') n -= (s[n - 2] == '=') ? 2 : 1;
    size_t tail = n % 4; /* characters of a last, partial quantum */
    if (tail == 1) return -EINVAL;
    size_t full = n - tail, o = 0;
    for (size_t i = 0; i < full; i += 4) {
        int a = sextet(s[i]), b = sextet(s[i + 1]), c = sextet(s[i + 2]), e = sextet(s[i + 3]);
        if ((a | b | c | e) < 0) return -EINVAL;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)e;
        d[o++] = (unsigned char)(v >> 16);
        d[o++] = (unsigned char)(v >> 8);
        d[o++] = (unsigned char)v;
    }
    if (tail) {
        int a = sextet(s[full]), b = sextet(s[full + 1]);
        int c = tail == 3 ? sextet(s[full + 2]) : 0;
        if ((a | b | c) < 0) return -EINVAL;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        /* Bits past the last whole byte must be zero (canonical form). */
        if (tail == 2 ? (v & 0xFFFF) : (v & 0xFF)) return -EINVAL;
        d[o++] = (unsigned char)(v >> 16);
        if (tail == 3) d[o++] = (unsigned char)(v >> 8);
    }
    *outlen = o;
    return 0;
}

int gd_base64_decode(gd_buf_t *out, const char *src, size_t n)
{
    if (gd_buf_reserve(out, gd_base64_decoded_max(n)) != 0) return -ENOMEM;
    size_t len;
    int rc = gd_base64_decode_to(out->data + out->len, src, n, &len);
    if (rc != 0) {
        out->data[out->len] = '\0';
        return rc;
    }
    out->len += len;
    out->data[out->len] = '\0';
    return 0;
}

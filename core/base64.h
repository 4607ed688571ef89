/* Base64 (RFC 4648, standard alphabet, with padding): exec output and file
 * contents travel as base64 when they are not text. */
#ifndef GUESTD_BASE64_H
#define GUESTD_BASE64_H

#include <stddef.h>

#include "core/buf.h"

/* Characters that n bytes encode to (padding included, no NUL). */
static inline size_t gd_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}
/* Most bytes that n characters of base64 decode to. */
static inline size_t gd_base64_decoded_max(size_t n)
{
    return (n + 3) / 4 * 3;
}

/* Writes the encoding of src to dst, which has room for
 * gd_base64_encoded_len(n) + 1 bytes, and NUL-terminates it. Returns the
 * length written (without the NUL). */
size_t gd_base64_encode_to(char *dst, const void *src, size_t n);
/* Appends the encoding of src to out. 0 or -ENOMEM. */
int gd_base64_encode(gd_buf_t *out, const void *src, size_t n);

/* Decodes n characters of src into dst, which has room for
 * gd_base64_decoded_max(n) bytes, and sets *outlen. The input must be
 * canonical: the standard alphabet only (no whitespace, no URL-safe '-' '_'),
 * padding either complete or absent, unused bits zero. 0 or -EINVAL. */
int gd_base64_decode_to(void *dst, const char *src, size_t n, size_t *outlen);
/* Appends the decoding of src to out. 0, -EINVAL (bad input, out unchanged)
 * or -ENOMEM. */
int gd_base64_decode(gd_buf_t *out, const char *src, size_t n);

#endif

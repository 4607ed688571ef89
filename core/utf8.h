/* UTF-8 checks: requests must be valid UTF-8, and child output is made valid
 * by replacing each invalid byte sequence with U+FFFD. */
#ifndef GUESTD_UTF8_H
#define GUESTD_UTF8_H

#include <stddef.h>

#include "core/buf.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid or
 * truncated (overlongs, surrogates and code points past U+10FFFF are
 * invalid). n is how many bytes are available. */
size_t gd_utf8_seq_len(const unsigned char *s, size_t n);
/* Whether all n bytes are valid UTF-8. */
int gd_utf8_valid(const char *s, size_t n);
/* Appends s to out with every invalid sequence replaced by U+FFFD. */
int gd_utf8_sanitize(gd_buf_t *out, const char *s, size_t n);

#endif

/* Helpers shared by the fuzz harnesses: a reader over the fuzzer's bytes
 * (a FuzzedDataProvider for C) and a failure that names the invariant. */
#ifndef GUESTD_FUZZ_COMMON_H
#define GUESTD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken invariant is a crash the fuzzer saves, like any other. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct fuzz_in_s {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

/* One byte from the front, 0 when none is left. */
static inline uint8_t fuzz_u8(fuzz_in_t *in)
{
    if (in->n == 0) return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in_t *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* The bytes up to the next occurrence of sep (seplen > 0 bytes, NULs
 * allowed), or all that is left; the separator is consumed. */
static inline fuzz_in_t fuzz_until(fuzz_in_t *in, const char *sep, size_t seplen)
{
    fuzz_in_t part = *in;
    const uint8_t *hit = in->n >= seplen ? memmem(in->p, in->n, sep, seplen) : NULL;
    if (!hit) {
        in->p += in->n;
        in->n = 0;
        return part;
    }
    part.n = (size_t)(hit - in->p);
    in->n -= part.n + seplen;
    in->p = hit + seplen;
    return part;
}

/* A NUL-terminated heap copy (ASan sees a read past its end). */
static inline char *fuzz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

#endif

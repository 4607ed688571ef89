/* A growable byte buffer that keeps its capacity when reset. */
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gd_buf_init(gd_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void gd_buf_free(gd_buf_t *b)
{
    free(b->data);
    gd_buf_init(b);
}

int gd_buf_reserve(gd_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -ENOMEM;
    if (!b->data) p[0] = '\0'; /* NUL-terminated from the first allocation on */
    b->data = p;
    b->cap = cap;
    return 0;
}

int gd_buf_append(gd_buf_t *b, const void *data, size_t len)
{
    if (gd_buf_reserve(b, len) != 0) return -ENOMEM;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int gd_buf_puts(gd_buf_t *b, const char *s)
{
    return gd_buf_append(b, s, strlen(s));
}

int gd_buf_printf(gd_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    if ((size_t)n < sizeof(small)) return gd_buf_append(b, small, (size_t)n);
    if (gd_buf_reserve(b, (size_t)n) != 0) return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void gd_buf_consume(gd_buf_t *b, size_t n)
{
    if (n >= b->len) {
        gd_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

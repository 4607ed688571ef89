/* A growable byte buffer that keeps its capacity when reset (Redis' habit:
 * reuse buffers, reset the length). */
#ifndef GUESTD_BUF_H
#define GUESTD_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct gd_buf_s {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} gd_buf_t;

void gd_buf_init(gd_buf_t *b);
void gd_buf_free(gd_buf_t *b);
static inline void gd_buf_reset(gd_buf_t *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}
/* Makes room for extra more bytes (plus the NUL). 0 or -ENOMEM. */
int gd_buf_reserve(gd_buf_t *b, size_t extra);
int gd_buf_append(gd_buf_t *b, const void *data, size_t len);
int gd_buf_puts(gd_buf_t *b, const char *s);
int gd_buf_printf(gd_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void gd_buf_consume(gd_buf_t *b, size_t n);

#endif

/* The procfs/sysfs reader: files are opened once under a root (so tests read
 * fixture trees) and re-read with one pread into a buffer that only grows;
 * lines and fields are split in place. Nothing here allocates once a
 * buffer has reached the size of its file. */
#ifndef GUESTD_PROCFS_H
#define GUESTD_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define GD_PROCFS_PATH_MAX 512

/* One file kept open between cycles, with its own read buffer. */
typedef struct gd_procfile_s {
    int fd;
    gd_buf_t buf; /* the last read, NUL-terminated */
} gd_procfile_t;

/* Writes root + "/" + rel into out (rel may start with '/'). 0, or
 * -ENAMETOOLONG when it does not fit. */
int gd_procfs_path(char *out, size_t len, const char *root, const char *rel);

/* Opens root/rel read-only and gives the buffer an initial capacity.
 * 0 or a negative errno (-ENOENT for a missing source). */
int gd_procfile_open(gd_procfile_t *f, const char *root, const char *rel);
/* Re-reads the whole file from offset 0 into f->buf. Returns the length
 * read or a negative errno. */
ssize_t gd_procfile_read(gd_procfile_t *f);
/* Closes the file and frees its buffer; safe on a closed or zeroed file. */
void gd_procfile_close(gd_procfile_t *f);

/* One pread of fd from offset 0 into buf (reset first), growing buf and
 * reading again while the file fills it. The result is NUL-terminated.
 * Returns the length or a negative errno. */
ssize_t gd_procfs_pread(int fd, gd_buf_t *buf);

/* Returns the next line at *cursor, NUL-terminated in place, and moves
 * *cursor past it; NULL when no text is left. */
char *gd_procfs_line(char **cursor);

/* Splits s in place on spaces and tabs into at most max fields; returns
 * how many were stored. Callers check the count before indexing. */
int gd_procfs_split(char *s, char **fields, int max);

/* Hot-path scanning without splitting: skips n fields (and the spaces
 * after each) at *p. 0, or -EINVAL when the text ends first. */
int gd_procfs_skip(const char **p, int n);
/* Parses the unsigned decimal field at *p and moves past it and the spaces
 * after it. 0, or -EINVAL when the field is not a number. */
int gd_procfs_next_u64(const char **p, uint64_t *out);

/* Strict unsigned decimal: digits only, no sign, no overflow. 0 or -EINVAL. */
int gd_procfs_u64(const char *s, uint64_t *out);
/* Unsigned decimal with an optional fraction ("0.18", "1419.54").
 * 0 or -EINVAL. */
int gd_procfs_decimal(const char *s, double *out);

#endif

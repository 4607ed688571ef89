/* The procfs/sysfs reader: open once, pread into a grow-only buffer, split
 * in place. */
#include "collectors/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define GD_PROCFS_INITIAL_CAP 4096

int gd_procfs_path(char *out, size_t len, const char *root, const char *rel)
{
    while (*rel == '/')
        rel++;
    size_t rlen = strlen(root);
    while (rlen > 1 && root[rlen - 1] == '/')
        rlen--;
    size_t tlen = strlen(rel);
    if (rlen + 1 + tlen + 1 > len) return -ENAMETOOLONG;
    memcpy(out, root, rlen);
    size_t n = rlen;
    if (tlen) {
        if (n == 0 || out[n - 1] != '/') out[n++] = '/';
        memcpy(out + n, rel, tlen);
        n += tlen;
    }
    out[n] = '\0';
    return 0;
}

int gd_procfile_open(gd_procfile_t *f, const char *root, const char *rel)
{
    char path[GD_PROCFS_PATH_MAX];
    gd_buf_init(&f->buf);
    f->fd = -1;
    int r = gd_procfs_path(path, sizeof(path), root, rel);
    if (r < 0) return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    if (gd_buf_reserve(&f->buf, GD_PROCFS_INITIAL_CAP - 1) != 0) {
        close(fd);
        return -ENOMEM;
    }
    f->fd = fd;
    return 0;
}

ssize_t gd_procfile_read(gd_procfile_t *f)
{
    if (f->fd < 0) return -EBADF;
    return gd_procfs_pread(f->fd, &f->buf);
}

void gd_procfile_close(gd_procfile_t *f)
{
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    gd_buf_free(&f->buf);
}

ssize_t gd_procfs_pread(int fd, gd_buf_t *buf)
{
    gd_buf_reset(buf);
    if (buf->cap < 2 && gd_buf_reserve(buf, 255) != 0) return -ENOMEM;
    for (;;) {
        size_t room = buf->cap - 1; /* keep one byte for the NUL */
        ssize_t n = pread(fd, buf->data, room, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            buf->data[0] = '\0';
            return -errno;
        }
        if ((size_t)n < room) {
            buf->len = (size_t)n;
            buf->data[n] = '\0';
            return n;
        }
        /* The file filled the buffer: it may be longer. Grow and read it
         * again from the start (a procfs file is generated per read). */
        buf->len = 0;
        if (gd_buf_reserve(buf, buf->cap) != 0) return -ENOMEM;
    }
}

char *gd_procfs_line(char **cursor)
{
    char *s = *cursor;
    if (!s || !*s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = s + strlen(s);
    }
    return s;
}

int gd_procfs_split(char *s, char **fields, int max)
{
    int n = 0;
    while (n < max) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '\n') break;
        fields[n++] = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\n')
            s++;
        if (!*s) break;
        *s++ = '\0';
    }
    return n;
}

int gd_procfs_skip(const char **p, int n)
{
    const char *s = *p;
    for (int i = 0; i < n; i++) {
        if (*s == '\0' || *s == '\n') return -EINVAL;
        while (*s && *s != ' ' && *s != '\n')
            s++;
        while (*s == ' ')
            s++;
    }
    *p = s;
    return 0;
}

int gd_procfs_next_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9') return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -EINVAL;
        v = v * 10 + d;
    }
    if (*s != ' ' && *s != '\n' && *s != '\0') return -EINVAL;
    while (*s == ' ')
        s++;
    *out = v;
    *p = s;
    return 0;
}

int gd_procfs_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || *s < '0' || *s > '9') return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return -EINVAL;
        v = v * 10 + d;
    }
    if (*s) return -EINVAL;
    *out = v;
    return 0;
}

int gd_procfs_decimal(const char *s, double *out)
{
    uint64_t whole = 0, frac = 0, scale = 1;
    if (!s || *s < '0' || *s > '9') return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (whole > UINT64_MAX / 10 - 10) return -EINVAL;
        whole = whole * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.') {
        s++;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (scale < UINT64_C(1000000000000)) { /* 12 digits are plenty */
                frac = frac * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
        }
    }
    if (*s) return -EINVAL;
    *out = (double)whole + (double)frac / (double)scale;
    return 0;
}

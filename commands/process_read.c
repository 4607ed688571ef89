/* A reader of /proc/<pid>/{stat,status,cmdline}: one snapshot of every
 * process under a procfs root, for process.list. Runs in the thread pool. */
#include "commands/process_read.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gd_proc_list_init(gd_proc_list_t *l)
{
    memset(l, 0, sizeof(*l));
}

static void list_clear(gd_proc_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].cmdline);
    l->count = 0;
}

void gd_proc_list_free(gd_proc_list_t *l)
{
    list_clear(l);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Reads a whole (small, pseudo) file into b, reset first. 0 or -errno. */
static int read_file(const char *path, gd_buf_t *b, size_t limit)
{
    gd_buf_reset(b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    while (b->len < limit) {
        if (gd_buf_reserve(b, 4096) != 0) {
            rc = -ENOMEM;
            break;
        }
        size_t room = b->cap - b->len - 1;
        if (room > limit - b->len) room = limit - b->len;
        ssize_t n = read(fd, b->data + b->len, room);
        if (n < 0) {
            if (errno == EINTR) continue;
            /* A process that exits while its files are open reads ESRCH. */
            rc = errno == ESRCH ? -ENOENT : -errno;
            break;
        }
        if (n == 0) break;
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
    close(fd);
    return rc;
}

int gd_proc_parse_stat(const char *text, gd_proc_info_t *out)
{
    const char *open_paren = strchr(text, '(');
    const char *close_paren = strrchr(text, ')');
    if (!open_paren || !close_paren || close_paren < open_paren) return -EINVAL;
    char *end;
    long pid = strtol(text, &end, 10);
    if (end == text || pid <= 0) return -EINVAL;
    size_t name_len = (size_t)(close_paren - open_paren - 1);
    if (name_len >= sizeof(out->name)) name_len = sizeof(out->name) - 1;
    memcpy(out->name, open_paren + 1, name_len);
    out->name[name_len] = '\0';

    /* Fields 3.. after the comm, numbered as in proc(5). */
    const char *p = close_paren + 1;
    char state = 0;
    unsigned long long f[25] = {0};
    int field = 3;
    while (*p && field <= 24) {
        while (*p == ' ')
            p++;
        if (!*p) break;
        if (field == 3) {
            state = *p;
            while (*p && *p != ' ')
                p++;
        } else {
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno) return -EINVAL;
            f[field] = v < 0 ? 0 : (unsigned long long)v;
            p = end;
        }
        field++;
    }
    if (field <= 24 || !state) return -EINVAL; /* too few fields: not a stat line */
    out->pid = (int)pid;
    out->state = state;
    out->ppid = (int)f[4];
    out->cpu_ticks = f[14] + f[15];
    out->start_ticks = f[22];
    long page = sysconf(_SC_PAGESIZE);
    out->rss_bytes = (uint64_t)f[24] * (uint64_t)(page > 0 ? page : 4096);
    return 0;
}

/* The real uid from status's "Uid:\treal\teffective\tsaved\tfs" line. */
static int parse_status_uid(const char *text, uid_t *uid)
{
    const char *line = strstr(text, "\nUid:");
    if (!line) return -EINVAL;
    char *end;
    errno = 0;
    unsigned long v = strtoul(line + 5, &end, 10);
    if (end == line + 5 || errno) return -EINVAL;
    *uid = (uid_t)v;
    return 0;
}

int gd_proc_read_one(const char *proc_root, int pid, gd_proc_info_t *out, gd_buf_t *scratch)
{
    char path[512];
    memset(out, 0, sizeof(*out));

    snprintf(path, sizeof(path), "%s/%d/stat", proc_root, pid);
    int rc = read_file(path, scratch, 4096);
    if (rc != 0) return rc;
    if (scratch->len == 0) return -ENOENT; /* the process exited between open and read */
    if (gd_proc_parse_stat(scratch->data, out) != 0) return -EINVAL;

    snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
    rc = read_file(path, scratch, 16384);
    if (rc != 0) return rc;
    if (parse_status_uid(scratch->data, &out->uid) != 0) return -EINVAL;

    snprintf(path, sizeof(path), "%s/%d/cmdline", proc_root, pid);
    rc = read_file(path, scratch, GD_PROC_CMDLINE_MAX);
    if (rc != 0) return rc;
    size_t n = scratch->len;
    while (n > 0 && scratch->data[n - 1] == '\0')
        n--; /* the terminating NUL of the last argument */
    out->cmdline = malloc(n + 1);
    if (!out->cmdline) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        out->cmdline[i] = scratch->data[i] == '\0' ? ' ' : scratch->data[i];
    out->cmdline[n] = '\0';
    return 0;
}

/* The btime line of <proc_root>/stat; 0 when it cannot be read. */
static int64_t read_btime(const char *proc_root, gd_buf_t *scratch)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/stat", proc_root);
    if (read_file(path, scratch, 1 << 20) != 0 || scratch->len == 0) return 0;
    const char *line = strstr(scratch->data, "\nbtime ");
    return line ? strtoll(line + 7, NULL, 10) : 0;
}

static int is_pid_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

int gd_proc_read_all(const char *proc_root, gd_proc_list_t *l)
{
    list_clear(l);
    gd_buf_t scratch;
    gd_buf_init(&scratch);
    l->btime_s = read_btime(proc_root, &scratch);

    DIR *dir = opendir(proc_root);
    if (!dir) {
        int rc = -errno;
        gd_buf_free(&scratch);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (!is_pid_name(de->d_name)) continue;
        if (l->count == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 256;
            gd_proc_info_t *items = realloc(l->items, cap * sizeof(*items));
            if (!items) {
                rc = -ENOMEM;
                break;
            }
            l->items = items;
            l->cap = cap;
        }
        gd_proc_info_t *info = &l->items[l->count];
        int r = gd_proc_read_one(proc_root, atoi(de->d_name), info, &scratch);
        if (r == 0) {
            l->count++;
        } else {
            free(info->cmdline);
            if (r == -ENOMEM) {
                rc = r;
                break;
            }
            /* Gone, or unreadable: skip it, as ps does. */
        }
    }
    closedir(dir);
    gd_buf_free(&scratch);
    return rc;
}

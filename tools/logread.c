/* Reading metrics logs: files in time order, lines parsed once, bad lines
 * counted. */
#include "tools/logread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/timefmt.h"

#define READ_CHUNK (4u << 20)

/* NAME.N -> stem length and N; a name without a numeric suffix is N = 0. */
static size_t stem_of(const char *path, long *index)
{
    size_t len = strlen(path);
    size_t i = len;
    while (i > 0 && path[i - 1] >= '0' && path[i - 1] <= '9')
        i--;
    if (i < len && i > 1 && path[i - 1] == '.' && len - i < 9) {
        *index = strtol(path + i, NULL, 10);
        return i - 1;
    }
    *index = 0;
    return len;
}

void gd_logread_order(char **paths, int n)
{
    /* Insertion sort: a handful of files. Key: the first position of the
     * stem on the command line, then the rotation index, descending. */
    int *group = calloc((size_t)n, sizeof(int));
    long *index = calloc((size_t)n, sizeof(long));
    if (!group || !index) {
        free(group);
        free(index);
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t si = stem_of(paths[i], &index[i]);
        group[i] = i;
        for (int j = 0; j < i; j++) {
            long dummy;
            size_t sj = stem_of(paths[j], &dummy);
            if (si == sj && strncmp(paths[i], paths[j], si) == 0) {
                group[i] = group[j];
                break;
            }
        }
    }
    for (int i = 1; i < n; i++) {
        char *p = paths[i];
        int g = group[i];
        long x = index[i];
        int j = i - 1;
        while (j >= 0 && (group[j] > g || (group[j] == g && index[j] < x))) {
            paths[j + 1] = paths[j];
            group[j + 1] = group[j];
            index[j + 1] = index[j];
            j--;
        }
        paths[j + 1] = p;
        group[j + 1] = g;
        index[j + 1] = x;
    }
    free(group);
    free(index);
}

typedef struct reader_s {
    const gd_logread_opts_t *opts;
    gd_logread_cb cb;
    void *ctx;
    gd_logread_stats_t *stats;
    gd_lj_doc_t doc;
    const char *file;
} reader_t;

static int wanted_event(const gd_logread_opts_t *o, const char *name)
{
    if (!o->events) return 1;
    for (int i = 0; i < o->n_events; i++)
        if (strcmp(o->events[i], name) == 0) return 1;
    return 0;
}

/* A "seq" as the agent writes it, a count from 0; 0 (none) for a number no
 * uint64 holds, which the cast must not see. */
static uint64_t seq_of(double v)
{
    return v >= 0 && v < 18446744073709551616.0 ? (uint64_t)v : 0;
}

/* One line: 0 to go on, the callback's non-zero to stop. */
static int one_line(reader_t *r, const char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    if (!len) return 0;
    r->stats->lines++;
    gd_logrec_t rec;
    if (gd_lj_parse(&r->doc, line, len) != 0) goto bad;
    const gd_lj_node_t *root = gd_lj_root(&r->doc);
    const gd_lj_node_t *ev = gd_lj_get(&r->doc, root, "event");
    const gd_lj_node_t *ts = gd_lj_get(&r->doc, root, "ts");
    const gd_lj_node_t *seq = gd_lj_get(&r->doc, root, "seq");
    const gd_lj_node_t *data = gd_lj_get(&r->doc, root, "data");
    if (!ev || ev->type != GD_LJ_STRING || !ts || ts->type != GD_LJ_NUMBER || !data ||
        data->type != GD_LJ_OBJECT)
        goto bad;
    /* A ts that is not a time (1e27) makes the line bad: it would overflow
     * the cast, and the time arithmetic of every command after it. */
    if (gd_time_ms_from_double(ts->num, &rec.ts_ms) != 0) goto bad;
    gd_lj_string(ev, 0, rec.event, sizeof(rec.event));
    rec.seq = seq && seq->type == GD_LJ_NUMBER ? seq_of(seq->num) : 0;
    const gd_logread_opts_t *o = r->opts;
    if ((o->has_since && rec.ts_ms < o->since_ms) || (o->has_until && rec.ts_ms >= o->until_ms) ||
        !wanted_event(o, rec.event))
        return 0;
    rec.file = r->file;
    rec.line = line;
    rec.len = len;
    rec.doc = &r->doc;
    rec.data = data;
    r->stats->matched++;
    if (!r->stats->first_ts) r->stats->first_ts = rec.ts_ms;
    r->stats->last_ts = rec.ts_ms;
    return r->cb(r->ctx, &rec);
bad:
    r->stats->bad++;
    return 0;
}

static int read_file(reader_t *r, const char *path, char **buf, size_t *cap, char *err,
                     size_t errlen)
{
    int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    r->file = path;
    size_t have = 0; /* bytes of an unfinished line kept at the start of buf */
    int rc = 0;
    for (;;) {
        if (*cap - have < READ_CHUNK) {
            size_t ncap = have + READ_CHUNK;
            char *nb = realloc(*buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            *buf = nb;
            *cap = ncap;
        }
        ssize_t n = read(fd, *buf + have, *cap - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0) {
            if (have) rc = one_line(r, *buf, have); /* a last line without '\n' */
            break;
        }
        r->stats->bytes += (uint64_t)n;
        char *p = *buf, *end = *buf + have + n;
        char *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
            rc = one_line(r, p, (size_t)(nl - p));
            if (rc) break;
            p = nl + 1;
        }
        if (rc) break;
        have = (size_t)(end - p);
        memmove(*buf, p, have);
    }
    close(fd);
    return rc;
}

int gd_logread_run(char *const *paths, int n, const gd_logread_opts_t *opts, gd_logread_cb cb,
                   void *ctx, gd_logread_stats_t *stats, char *err, size_t errlen)
{
    reader_t r = {.opts = opts, .cb = cb, .ctx = ctx, .stats = stats};
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    memset(stats, 0, sizeof(*stats));
    gd_lj_init(&r.doc);
    for (int i = 0; i < n && rc == 0; i++)
        rc = read_file(&r, paths[i], &buf, &cap, err, errlen);
    free(buf);
    gd_lj_free(&r.doc);
    return rc;
}

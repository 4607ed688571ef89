/* Reading metrics logs: a set of files (a log and its rotated siblings) in
 * time order, line by line, each line parsed once; bad lines are skipped and
 * counted; --since/--until and event-name filters applied here. */
#ifndef GUESTD_LOGREAD_H
#define GUESTD_LOGREAD_H

#include <stddef.h>
#include <stdint.h>

#include "tools/ljson.h"

typedef struct gd_logrec_s {
    const char *file;
    const char *line; /* without its '\n' */
    size_t len;
    char event[32];
    uint64_t seq;
    int64_t ts_ms;
    const gd_lj_doc_t *doc;
    const gd_lj_node_t *data; /* the event's "data" object */
} gd_logrec_t;

typedef struct gd_logread_opts_s {
    int has_since, has_until;
    int64_t since_ms, until_ms; /* since <= ts < until */
    const char *const *events;  /* event names to keep; NULL: all */
    int n_events;
} gd_logread_opts_t;

typedef struct gd_logread_stats_s {
    uint64_t lines;   /* non-empty lines read */
    uint64_t bad;     /* skipped: not an event line */
    uint64_t matched; /* handed to the callback */
    uint64_t bytes;
    int64_t first_ts, last_ts; /* of the matched lines; 0 when none */
} gd_logread_stats_t;

/* Returns 0 to go on, non-zero to stop (returned by gd_logread_run). */
typedef int (*gd_logread_cb)(void *ctx, const gd_logrec_t *rec);

/* Sorts paths into time order: a rotated file (NAME.N) before NAME.(N-1)
 * before NAME; names with different stems keep their command-line order. */
void gd_logread_order(char **paths, int n);
/* Reads every file in the order given. 0, the callback's non-zero, or -1
 * with err set when a file cannot be read. */
int gd_logread_run(char *const *paths, int n, const gd_logread_opts_t *opts, gd_logread_cb cb,
                   void *ctx, gd_logread_stats_t *stats, char *err, size_t errlen);

#endif

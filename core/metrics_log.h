/* The metrics log: a bus subscriber that appends every `metrics` and
 * `health` event line, byte for byte as sent to the host, to an NDJSON file
 * (metrics.log_path), with size-based rotation (path.1 newest ... path.N).
 *
 * Guarantees: each line goes out in one write() on an O_APPEND descriptor and
 * a write that fails half way is cut back, so no torn line survives; a partial
 * last line left by a crash is cut off when the file is opened. All file work
 * runs in libuv's thread pool, one job at a time; lines wait in a bounded
 * queue meanwhile, and when the disk is slower than the events the oldest
 * waiting lines are dropped and counted. A file that cannot be written (disk
 * full, read-only, missing directory) loses lines, counted, and is tried again
 * with every new line, so logging resumes by itself. */
#ifndef GUESTD_METRICS_LOG_H
#define GUESTD_METRICS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "core/bus.h"
#include "core/config.h"

typedef struct gd_metrics_log_s gd_metrics_log_t;

/* Lines waiting for the disk before the oldest is dropped. */
#define GD_METRICS_LOG_QUEUE 128
/* Lines handed to one thread-pool job. */
#define GD_METRICS_LOG_BATCH 32

/* What tests inject; zeroed fields take the defaults. */
typedef struct gd_metrics_log_opts_s {
    size_t queue_lines; /* GD_METRICS_LOG_QUEUE */
    /* write(2) stand-in, called on a pool thread (slow or failing disks). */
    ssize_t (*write_fn)(int fd, const void *buf, size_t len);
} gd_metrics_log_opts_t;

/* Figures for health, tests and the log lines the agent writes. */
typedef struct gd_metrics_log_stats_s {
    const char *path;
    int error;           /* errno of the latest failure, 0 once a line went out */
    char error_what[16]; /* "open", "write", "rotate" */
    uint64_t lines_written;
    uint64_t bytes_written;
    uint64_t lines_lost;    /* the file could not take them */
    uint64_t lines_dropped; /* the queue was full (disk too slow) */
    uint64_t rotations;
    uint64_t fsyncs;
    uint64_t cut_bytes; /* partial last lines cut when opening */
    int64_t free_bytes; /* on the log's filesystem after the last job; -1 unknown */
    size_t queued;      /* lines waiting now */
    int busy;           /* a job is running in the pool */
    int paused;         /* filesystems are frozen: lines wait in the queue */
} gd_metrics_log_stats_t;

/* Subscribes to bus (NULL: none; lines come by gd_metrics_log_push). With metrics.log_path "none"
 * there is no log: returns 0 and sets *out to NULL. Nothing touches the disk until
 * gd_metrics_log_start. cfg is read again for the runtime key metrics.log_fsync (it must outlive
 * the log); the path, size and keep count are copied. 0 or -ENOMEM/-EINVAL
 * with err set. */
int gd_metrics_log_new(gd_metrics_log_t **out, uv_loop_t *loop, gd_bus_t *bus,
                       const gd_config_t *cfg, const gd_metrics_log_opts_t *opts, char *err,
                       size_t errlen);
/* Queues one event line (a reference is taken) as the bus would: for a log
 * made with bus NULL, fed by its owner (guestd-hub, one log per guest).
 * Events other than metrics and health are ignored. */
void gd_metrics_log_push(gd_metrics_log_t *log, gd_event_t *ev);
/* Opens the file in the pool (cutting a partial last line), so an unwritable
 * path is known at start rather than at the first metrics event. */
void gd_metrics_log_start(gd_metrics_log_t *log);
/* Unsubscribes; lines already queued are still written (and, with
 * metrics.log_fsync other than never, synced), after which the pool holds
 * nothing of the log and the loop may end. Safe to call twice. */
void gd_metrics_log_stop(gd_metrics_log_t *log);
/* While filesystems are frozen no job starts (its write would hold a pool
 * thread until the thaw): lines wait in the queue, the oldest dropped and
 * counted in lines_dropped once it is full, and go out on resume. A job
 * already running finishes. log may be NULL. */
void gd_metrics_log_pause(gd_metrics_log_t *log, int paused);
/* Frees; call after the loop has ended (no job may be in flight). */
void gd_metrics_log_free(gd_metrics_log_t *log);

void gd_metrics_log_stats(const gd_metrics_log_t *log, gd_metrics_log_stats_t *out);

/* Cuts a partial last line (bytes after the last '\n') off the regular file
 * open on fd, whose size is *size; updates *size. Returns the bytes cut (0
 * when the file ends in '\n' or is empty) or a negative errno. */
int64_t gd_metrics_log_cut_partial(int fd, off_t *size);

#endif

/* The metrics log: a bounded queue of event lines on the loop thread, drained
 * into an O_APPEND file by one thread-pool job at a time. */
#include "core/metrics_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/log.h"

typedef struct job_s {
    uv_work_t req;
    gd_event_t *lines[GD_METRICS_LOG_BATCH];
    size_t n;
    int close; /* sync (per log_fsync) and close the file after the lines */
    int fsync_mode;
    /* Results, written by the pool thread, read in after_work. */
    uint64_t written, bytes, lost, rotations, fsyncs, cut;
    int err; /* the last failure's errno */
    const char *what;
    int64_t free_bytes;
} job_t;

struct gd_metrics_log_s {
    uv_loop_t *loop;
    gd_bus_sub_t sub;
    const gd_config_t *cfg;
    char path[GD_CFG_STR_MAX];
    char dir[GD_CFG_STR_MAX];
    int64_t max_bytes;
    int keep;
    ssize_t (*write_fn)(int fd, const void *buf, size_t len);

    /* Lines waiting (loop thread only). */
    gd_event_t **ring;
    size_t capacity, head, count;

    /* The file: used by the job in flight, or by the loop thread when none is. */
    int fd;
    int regular; /* rotation and repair only make sense for a regular file */
    off_t size;

    job_t job;
    int busy, started, stopping, paused;
    int failing; /* a failure was logged; the recovery will be too */
    gd_metrics_log_stats_t stats;
};

/* ---- file work, on a pool thread ---- */

static void set_error(job_t *j, const char *what, int err)
{
    j->err = err;
    j->what = what;
}

static int mkdir_parents(const char *dir)
{
    char buf[GD_CFG_STR_MAX];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -errno;
    return 0;
}

int64_t gd_metrics_log_cut_partial(int fd, off_t *size)
{
    char buf[4096];
    off_t end = *size, keep = 0;
    if (end == 0) return 0;
    while (end > 0) {
        size_t chunk = end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf);
        ssize_t n = pread(fd, buf, chunk, end - (off_t)chunk);
        if (n < 0) return -errno;
        if ((size_t)n != chunk) return -EIO; /* the file shrank under us */
        if (end == *size && buf[chunk - 1] == '\n') return 0;
        char *nl = memrchr(buf, '\n', chunk);
        if (nl) {
            keep = end - (off_t)chunk + (nl - buf) + 1;
            break;
        }
        end -= (off_t)chunk;
    }
    if (ftruncate(fd, keep) != 0) return -errno;
    int64_t cut = (int64_t)(*size - keep);
    *size = keep;
    return cut;
}

static int open_file(gd_metrics_log_t *log, job_t *j)
{
    int r = mkdir_parents(log->dir);
    if (r < 0) {
        set_error(j, "open", -r);
        return r;
    }
    int fd = open(log->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) {
        set_error(j, "open", errno);
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_error(j, "open", errno);
        close(fd);
        return -1;
    }
    log->regular = S_ISREG(st.st_mode);
    log->size = log->regular ? st.st_size : 0;
    if (log->regular) {
        int64_t cut = gd_metrics_log_cut_partial(fd, &log->size);
        if (cut < 0) {
            set_error(j, "open", (int)-cut);
            close(fd);
            return (int)cut;
        }
        j->cut += (uint64_t)cut;
    }
    log->fd = fd;
    return 0;
}

static void sync_fd(job_t *j, int fd)
{
    if (fsync(fd) == 0) j->fsyncs++;
}

static void close_file(gd_metrics_log_t *log)
{
    if (log->fd >= 0) close(log->fd);
    log->fd = -1;
}

/* path.(keep-1) -> path.keep ... path -> path.1; the oldest falls off the end
 * (rename replaces it). With keep 0 the file is simply started again. */
static int rotate(gd_metrics_log_t *log, job_t *j)
{
    char from[GD_CFG_STR_MAX + 16], to[GD_CFG_STR_MAX + 16];
    if (j->fsync_mode >= GD_FSYNC_ROTATE) sync_fd(j, log->fd);
    close_file(log);
    if (log->keep == 0) {
        if (unlink(log->path) != 0 && errno != ENOENT) goto fail;
    } else {
        for (int i = log->keep - 1; i >= 1; i--) {
            snprintf(from, sizeof(from), "%s.%d", log->path, i);
            snprintf(to, sizeof(to), "%s.%d", log->path, i + 1);
            if (rename(from, to) != 0 && errno != ENOENT) goto fail;
        }
        snprintf(to, sizeof(to), "%s.1", log->path);
        if (rename(log->path, to) != 0) goto fail;
    }
    if (j->fsync_mode >= GD_FSYNC_ROTATE) {
        int dfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            sync_fd(j, dfd);
            close(dfd);
        }
    }
    j->rotations++;
    return open_file(log, j);
fail:
    set_error(j, "rotate", errno);
    return -1;
}

static void write_line(gd_metrics_log_t *log, job_t *j, const gd_event_t *ev)
{
    if (log->fd < 0 && open_file(log, j) < 0) {
        j->lost++;
        return;
    }
    if (log->regular && log->size > 0 && log->size + (off_t)ev->len > log->max_bytes &&
        rotate(log, j) < 0) {
        j->lost++;
        return;
    }
    ssize_t n;
    do
        n = log->write_fn(log->fd, ev->line, ev->len);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)ev->len) {
        log->size += n;
        j->written++;
        j->bytes += (uint64_t)n;
        if (j->fsync_mode == GD_FSYNC_ALWAYS && fdatasync(log->fd) == 0) j->fsyncs++;
        return;
    }
    /* A short write is a full disk; cut back what went out so the next line
     * does not continue a torn one. The file is closed either way: opening it
     * again repairs it should the cut itself have failed. */
    set_error(j, "write", n < 0 ? errno : ENOSPC);
    if (n > 0 && log->regular && ftruncate(log->fd, log->size) != 0) {
        /* reopened and repaired at the next line */
    }
    close_file(log);
    j->lost++;
}

static void run_job(uv_work_t *req)
{
    job_t *j = req->data;
    gd_metrics_log_t *log = (gd_metrics_log_t *)((char *)j - offsetof(gd_metrics_log_t, job));
    if (log->fd < 0 && j->n == 0 && !j->close) open_file(log, j);
    for (size_t i = 0; i < j->n; i++)
        write_line(log, j, j->lines[i]);
    if (j->close && log->fd >= 0) {
        if (j->fsync_mode != GD_FSYNC_NEVER) sync_fd(j, log->fd);
        close_file(log);
    }
    struct statvfs vfs;
    j->free_bytes =
        statvfs(log->dir, &vfs) == 0 ? (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize : -1;
}

/* ---- the queue, on the loop thread ---- */

static void submit(gd_metrics_log_t *log);

static void job_done(uv_work_t *req, int status)
{
    job_t *j = req->data;
    gd_metrics_log_t *log = (gd_metrics_log_t *)((char *)j - offsetof(gd_metrics_log_t, job));
    gd_metrics_log_stats_t *s = &log->stats;
    for (size_t i = 0; i < j->n; i++)
        gd_event_unref(j->lines[i]);
    log->busy = 0;
    s->lines_written += j->written;
    s->bytes_written += j->bytes;
    s->lines_lost += j->lost;
    s->rotations += j->rotations;
    s->fsyncs += j->fsyncs;
    s->cut_bytes += j->cut;
    s->free_bytes = j->free_bytes;
    if (j->cut)
        gd_warn("metrics log: cut %" PRIu64 " bytes of a partial last line from %s", j->cut,
                log->path);
    if (j->err) {
        if (!log->failing)
            gd_warn("metrics log: cannot %s %s: %s (lines are lost until it works again)", j->what,
                    log->path, strerror(j->err));
        log->failing = 1;
        s->error = j->err;
        snprintf(s->error_what, sizeof(s->error_what), "%s", j->what);
    } else if (j->written || (j->n == 0 && !j->close)) {
        if (log->failing)
            gd_info("metrics log: writing to %s again (%" PRIu64 " lines lost)", log->path,
                    s->lines_lost);
        log->failing = 0;
        s->error = 0;
        s->error_what[0] = '\0';
    }
    if (j->close) return;
    submit(log);
}

/* Starts the next job when none runs: queued lines, or the final close. */
static void submit(gd_metrics_log_t *log)
{
    if (log->busy || !log->started || log->paused) return;
    job_t *j = &log->job;
    memset(j, 0, sizeof(*j));
    j->req.data = j;
    j->fsync_mode = (int)log->cfg->metrics.log_fsync;
    while (log->count > 0 && j->n < GD_METRICS_LOG_BATCH) {
        j->lines[j->n++] = log->ring[log->head];
        log->ring[log->head] = NULL;
        log->head = (log->head + 1) % log->capacity;
        log->count--;
    }
    if (j->n == 0) {
        if (!log->stopping || log->fd < 0) return;
        j->close = 1;
    }
    if (uv_queue_work(log->loop, &j->req, run_job, job_done) != 0) {
        for (size_t i = 0; i < j->n; i++)
            gd_event_unref(j->lines[i]);
        log->stats.lines_lost += j->n;
        return;
    }
    log->busy = 1;
}

static int on_event(gd_bus_sub_t *sub, gd_event_t *ev)
{
    gd_metrics_log_push(sub->data, ev);
    return 0;
}

void gd_metrics_log_push(gd_metrics_log_t *log, gd_event_t *ev)
{
    if (log->stopping) return;
    if (strcmp(ev->name, "metrics") != 0 && strcmp(ev->name, "health") != 0) return;
    if (log->count == log->capacity) {
        gd_event_unref(log->ring[log->head]);
        log->head = (log->head + 1) % log->capacity;
        log->count--;
        log->stats.lines_dropped++;
    }
    log->ring[(log->head + log->count) % log->capacity] = gd_event_ref(ev);
    log->count++;
    submit(log);
}

static ssize_t default_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}

int gd_metrics_log_new(gd_metrics_log_t **out, uv_loop_t *loop, gd_bus_t *bus,
                       const gd_config_t *cfg, const gd_metrics_log_opts_t *opts, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (strcmp(cfg->metrics.log_path, "none") == 0) return 0;
    if (cfg->metrics.log_path[0] != '/') {
        snprintf(err, errlen, "metrics.log_path: '%s' is not an absolute path",
                 cfg->metrics.log_path);
        return -EINVAL;
    }
    gd_metrics_log_t *log = calloc(1, sizeof(*log));
    if (!log) goto oom;
    log->loop = loop;
    log->cfg = cfg;
    log->fd = -1;
    snprintf(log->path, sizeof(log->path), "%s", cfg->metrics.log_path);
    snprintf(log->dir, sizeof(log->dir), "%s", cfg->metrics.log_path);
    char *slash = strrchr(log->dir, '/');
    if (slash == log->dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    log->max_bytes = cfg->metrics.log_max_bytes;
    log->keep = (int)cfg->metrics.log_keep;
    log->write_fn = opts && opts->write_fn ? opts->write_fn : default_write;
    log->capacity = opts && opts->queue_lines ? opts->queue_lines : GD_METRICS_LOG_QUEUE;
    log->ring = calloc(log->capacity, sizeof(*log->ring));
    if (!log->ring) goto oom;
    log->stats.path = log->path;
    log->stats.free_bytes = -1;
    /* Big enough that a burst of other events (exec output) between two
     * delivery passes never counts this subscriber as lagging. */
    int r = bus ? gd_bus_subscribe(bus, &log->sub, "metrics_log", 256, on_event, log) : 0;
    if (r < 0) {
        free(log->ring);
        free(log);
        snprintf(err, errlen, "metrics log: %s", strerror(-r));
        return r;
    }
    *out = log;
    return 0;
oom:
    if (log) free(log->ring);
    free(log);
    snprintf(err, errlen, "metrics log: out of memory");
    return -ENOMEM;
}

void gd_metrics_log_start(gd_metrics_log_t *log)
{
    if (!log || log->started) return;
    log->started = 1;
    if (log->count > 0) {
        submit(log);
        return;
    }
    job_t *j = &log->job;
    memset(j, 0, sizeof(*j));
    j->req.data = j;
    j->fsync_mode = (int)log->cfg->metrics.log_fsync;
    if (uv_queue_work(log->loop, &j->req, run_job, job_done) == 0) log->busy = 1;
}

void gd_metrics_log_stop(gd_metrics_log_t *log)
{
    if (!log || log->stopping) return;
    log->stopping = 1;
    if (log->sub.subscribed) gd_bus_unsubscribe(&log->sub);
    submit(log);
}

void gd_metrics_log_pause(gd_metrics_log_t *log, int paused)
{
    if (!log || log->paused == !!paused) return;
    log->paused = !!paused;
    if (!paused) {
        gd_debug("metrics log: writing again after the freeze (%zu line(s) queued)", log->count);
        submit(log);
    }
}

void gd_metrics_log_free(gd_metrics_log_t *log)
{
    if (!log) return;
    if (log->sub.subscribed) gd_bus_unsubscribe(&log->sub);
    while (log->count > 0) {
        gd_event_unref(log->ring[log->head]);
        log->head = (log->head + 1) % log->capacity;
        log->count--;
    }
    close_file(log);
    free(log->ring);
    free(log);
}

void gd_metrics_log_stats(const gd_metrics_log_t *log, gd_metrics_log_stats_t *out)
{
    *out = log->stats;
    out->queued = log->count;
    out->busy = log->busy;
    out->paused = log->paused;
}

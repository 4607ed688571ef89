/* log.dir: one core/metrics_log per guest, fed the guest's own lines. */
#include "hub/guestlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"
#include "core/bus.h"

void gd_guestlog_config(gd_config_t *cfg, int64_t max_bytes, int64_t keep)
{
    gd_config_defaults(cfg); /* the agent's fsync rule: at rotation */
    cfg->metrics.log_max_bytes = max_bytes;
    cfg->metrics.log_keep = keep;
}

int gd_guestlog_open(gd_guestlog_t **out, uv_loop_t *loop, gd_config_t *cfg, const char *dir,
                     const char *name, char *err, size_t errlen)
{
    char sub[GD_CFG_STR_MAX];
    int n = snprintf(sub, sizeof(sub), "%s/%s", dir, name);
    if (n < 0 || (size_t)n + sizeof("/metrics.ndjson") > sizeof(sub)) {
        snprintf(err, errlen, "log.dir: %s/%s: path too long", dir, name);
        return -ENAMETOOLONG;
    }
    /* The name is the host's (never the guest's) and holds no '/'. */
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "log.dir: %s: %s", dir, strerror(errno));
        return -errno;
    }
    if (mkdir(sub, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "log.dir: %s: %s", sub, strerror(errno));
        return -errno;
    }
    gd_guestlog_t *gl = calloc(1, sizeof(*gl));
    if (gl == NULL) return -ENOMEM;
    /* Fits: checked against the length above. */
    memcpy(cfg->metrics.log_path, sub, (size_t)n);
    memcpy(cfg->metrics.log_path + n, "/metrics.ndjson", sizeof("/metrics.ndjson"));
    int rc = gd_metrics_log_new(&gl->log, loop, NULL, cfg, NULL, err, errlen);
    if (rc < 0 || gl->log == NULL) {
        free(gl);
        return rc < 0 ? rc : -EINVAL;
    }
    gd_metrics_log_start(gl->log);
    *out = gl;
    return 0;
}

void gd_guestlog_write(gd_guestlog_t *gl, const char *event, const char *line, size_t len)
{
    gd_buf_t b;
    gd_buf_init(&b);
    if (gd_buf_append(&b, line, len) == 0 && gd_buf_puts(&b, "\n") == 0) {
        gd_event_t *ev = gd_event_new_line(event, b.data, b.len);
        if (ev != NULL) gd_metrics_log_push(gl->log, ev);
        gd_event_unref(ev);
    }
    gd_buf_free(&b);
}

void gd_guestlog_close(gd_guestlog_t *gl, gd_guestlog_t **retired)
{
    gd_metrics_log_stop(gl->log);
    gl->next = *retired;
    *retired = gl;
}

void gd_guestlog_free_retired(gd_guestlog_t **retired)
{
    while (*retired != NULL) {
        gd_guestlog_t *gl = *retired;
        *retired = gl->next;
        gd_metrics_log_free(gl->log);
        free(gl);
    }
}

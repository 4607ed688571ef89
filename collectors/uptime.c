/* The uptime collector: seconds since boot, from /proc/uptime (the sample's
 * top-level uptime_s). */
#include "collectors/uptime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "collectors/procfs.h"

typedef struct uptime_state_s {
    gd_procfile_t file;
    double uptime_s;
} uptime_state_t;

static int uptime_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    uptime_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int r = gd_procfile_open(&s->file, env->proc_root, "uptime");
    if (r < 0) {
        snprintf(err, errlen, "%s/uptime", env->proc_root);
        free(s);
        return r;
    }
    *state = s;
    return 0;
}

static int uptime_collect(void *state, const gd_collect_ctx_t *ctx)
{
    uptime_state_t *s = state;
    char *f[2];
    ssize_t n = gd_procfile_read(&s->file);
    if (n < 0) return (int)n;
    /* "1419.54 2665.38": uptime, then idle time summed over CPUs. */
    if (gd_procfs_split(s->file.buf.data, f, 2) < 1) return -EINVAL;
    return gd_procfs_decimal(f[0], &s->uptime_s);
}

static void uptime_write(void *state, gd_jw_t *w)
{
    uptime_state_t *s = state;
    gd_jw_key(w, "uptime_s");
    gd_jw_num(w, s->uptime_s);
}

static void uptime_fini(void *state)
{
    uptime_state_t *s = state;
    gd_procfile_close(&s->file);
    free(s);
}

const gd_collector_t gd_collector_uptime = {
    .name = "uptime",
    .init = uptime_init,
    .collect = uptime_collect,
    .write = uptime_write,
    .fini = uptime_fini,
};

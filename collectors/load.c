/* The load collector: load averages and runnable tasks, from /proc/loadavg. */
#include "collectors/load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/procfs.h"

typedef struct load_state_s {
    gd_procfile_t file;
    double load1, load5, load15;
    uint64_t procs_running, procs_total;
} load_state_t;

static int load_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    load_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int r = gd_procfile_open(&s->file, env->proc_root, "loadavg");
    if (r < 0) {
        snprintf(err, errlen, "%s/loadavg", env->proc_root);
        free(s);
        return r;
    }
    *state = s;
    return 0;
}

static int load_collect(void *state, const gd_collect_ctx_t *ctx)
{
    load_state_t *s = state;
    char *f[5];
    ssize_t n = gd_procfile_read(&s->file);
    if (n < 0) return (int)n;
    /* "0.18 0.21 0.09 1/92 7491": three averages, running/total tasks,
     * the last pid. */
    if (gd_procfs_split(s->file.buf.data, f, 5) < 4) return -EINVAL;
    char *slash = strchr(f[3], '/');
    if (!slash) return -EINVAL;
    *slash = '\0';
    if (gd_procfs_decimal(f[0], &s->load1) < 0 || gd_procfs_decimal(f[1], &s->load5) < 0 ||
        gd_procfs_decimal(f[2], &s->load15) < 0 || gd_procfs_u64(f[3], &s->procs_running) < 0 ||
        gd_procfs_u64(slash + 1, &s->procs_total) < 0)
        return -EINVAL;
    return 0;
}

static void load_write(void *state, gd_jw_t *w)
{
    load_state_t *s = state;
    gd_jw_key(w, "load");
    gd_jw_obj_begin(w);
    gd_jw_key(w, "load1");
    gd_jw_num(w, s->load1);
    gd_jw_key(w, "load5");
    gd_jw_num(w, s->load5);
    gd_jw_key(w, "load15");
    gd_jw_num(w, s->load15);
    gd_jw_key(w, "procs_running");
    gd_jw_u64(w, s->procs_running);
    gd_jw_key(w, "procs_total");
    gd_jw_u64(w, s->procs_total);
    gd_jw_obj_end(w);
}

static void load_fini(void *state)
{
    load_state_t *s = state;
    gd_procfile_close(&s->file);
    free(s);
}

const gd_collector_t gd_collector_load = {
    .name = "load",
    .init = load_init,
    .collect = load_collect,
    .write = load_write,
    .fini = load_fini,
};

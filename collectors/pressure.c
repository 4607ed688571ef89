/* The pressure collector: PSI stall averages over the last 10 s and the
 * cumulative stall time, from
 * /proc/pressure/{cpu,memory,io} (Linux 4.20+, when not booted psi=0). */
#include "collectors/pressure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/procfs.h"

enum { PSI_CPU, PSI_MEMORY, PSI_IO, PSI_COUNT };
static const char *const psi_files[PSI_COUNT] = {"pressure/cpu", "pressure/memory", "pressure/io"};

typedef struct pressure_state_s {
    gd_procfile_t files[PSI_COUNT];
    double some_avg10[PSI_COUNT];
    double full_avg10[PSI_COUNT];
    uint64_t some_total_us[PSI_COUNT]; /* "total=", microseconds stalled since boot */
    uint64_t full_total_us[PSI_COUNT];
} pressure_state_t;

static void pressure_fini(void *state);

static int pressure_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    pressure_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    for (int i = 0; i < PSI_COUNT; i++)
        s->files[i].fd = -1;
    for (int i = 0; i < PSI_COUNT; i++) {
        int r = gd_procfile_open(&s->files[i], env->proc_root, psi_files[i]);
        if (r < 0) {
            snprintf(err, errlen, "%s/%s", env->proc_root, psi_files[i]);
            pressure_fini(s);
            return r;
        }
    }
    *state = s;
    return 0;
}

/* "some avg10=0.13 avg60=1.85 avg300=1.87 total=13280456", then "full ...". */
static int parse_psi(char *text, double *some, double *full, uint64_t *some_us, uint64_t *full_us)
{
    char *cursor = text, *line, *f[5];
    int seen = 0;
    *full = 0.0; /* /proc/pressure/cpu has no "full" line before Linux 5.13 */
    *full_us = 0;
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        int nf = gd_procfs_split(line, f, 5);
        if (nf < 2 || strncmp(f[1], "avg10=", 6) != 0) return -EINVAL;
        double v;
        if (gd_procfs_decimal(f[1] + 6, &v) < 0) return -EINVAL;
        uint64_t us = 0;
        if (nf == 5 && strncmp(f[4], "total=", 6) == 0 && gd_procfs_u64(f[4] + 6, &us) < 0)
            return -EINVAL;
        if (strcmp(f[0], "some") == 0) {
            *some = v;
            *some_us = us;
            seen = 1;
        } else if (strcmp(f[0], "full") == 0) {
            *full = v;
            *full_us = us;
        }
    }
    return seen ? 0 : -EINVAL;
}

static int pressure_collect(void *state, const gd_collect_ctx_t *ctx)
{
    pressure_state_t *s = state;
    for (int i = 0; i < PSI_COUNT; i++) {
        ssize_t n = gd_procfile_read(&s->files[i]);
        if (n < 0) return (int)n;
        int r = parse_psi(s->files[i].buf.data, &s->some_avg10[i], &s->full_avg10[i],
                          &s->some_total_us[i], &s->full_total_us[i]);
        if (r < 0) return r;
    }
    return 0;
}

static void pressure_write(void *state, gd_jw_t *w)
{
    pressure_state_t *s = state;
    gd_jw_key(w, "pressure");
    gd_jw_obj_begin(w);
    gd_jw_key(w, "cpu_some_avg10");
    gd_jw_num(w, s->some_avg10[PSI_CPU]);
    gd_jw_key(w, "memory_some_avg10");
    gd_jw_num(w, s->some_avg10[PSI_MEMORY]);
    gd_jw_key(w, "memory_full_avg10");
    gd_jw_num(w, s->full_avg10[PSI_MEMORY]);
    gd_jw_key(w, "io_some_avg10");
    gd_jw_num(w, s->some_avg10[PSI_IO]);
    gd_jw_key(w, "io_full_avg10");
    gd_jw_num(w, s->full_avg10[PSI_IO]);
    gd_jw_key(w, "cpu_some_total_s");
    gd_jw_decimal(w, s->some_total_us[PSI_CPU], 6);
    gd_jw_key(w, "memory_some_total_s");
    gd_jw_decimal(w, s->some_total_us[PSI_MEMORY], 6);
    gd_jw_key(w, "memory_full_total_s");
    gd_jw_decimal(w, s->full_total_us[PSI_MEMORY], 6);
    gd_jw_key(w, "io_some_total_s");
    gd_jw_decimal(w, s->some_total_us[PSI_IO], 6);
    gd_jw_key(w, "io_full_total_s");
    gd_jw_decimal(w, s->full_total_us[PSI_IO], 6);
    gd_jw_obj_end(w);
}

static void pressure_fini(void *state)
{
    pressure_state_t *s = state;
    for (int i = 0; i < PSI_COUNT; i++)
        gd_procfile_close(&s->files[i]);
    free(s);
}

const gd_collector_t gd_collector_pressure = {
    .name = "pressure",
    .init = pressure_init,
    .collect = pressure_collect,
    .write = pressure_write,
    .fini = pressure_fini,
};

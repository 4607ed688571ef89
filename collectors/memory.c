/* The memory collector: RAM and swap use, from /proc/meminfo. */
#include "collectors/memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/procfs.h"

/* The meminfo lines read, in kB. */
enum {
    MI_TOTAL,
    MI_FREE,
    MI_AVAILABLE,
    MI_BUFFERS,
    MI_CACHED,
    MI_SRECLAIMABLE,
    MI_SWAP_TOTAL,
    MI_SWAP_FREE,
    MI_COUNT
};

static const struct {
    const char *name;
    size_t len;
} meminfo_keys[MI_COUNT] = {
    [MI_TOTAL] = {"MemTotal:", 9},          [MI_FREE] = {"MemFree:", 8},
    [MI_AVAILABLE] = {"MemAvailable:", 13}, [MI_BUFFERS] = {"Buffers:", 8},
    [MI_CACHED] = {"Cached:", 7},           [MI_SRECLAIMABLE] = {"SReclaimable:", 13},
    [MI_SWAP_TOTAL] = {"SwapTotal:", 10},   [MI_SWAP_FREE] = {"SwapFree:", 9},
};

typedef struct memory_state_s {
    gd_procfile_t file;
    uint64_t total, available, used, cached, swap_total, swap_used;
    double used_pct;
} memory_state_t;

static int memory_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    memory_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int r = gd_procfile_open(&s->file, env->proc_root, "meminfo");
    if (r < 0) {
        snprintf(err, errlen, "%s/meminfo", env->proc_root);
        free(s);
        return r;
    }
    *state = s;
    return 0;
}

static int memory_collect(void *state, const gd_collect_ctx_t *ctx)
{
    memory_state_t *s = state;
    uint64_t kb[MI_COUNT] = {0};
    unsigned found = 0;
    ssize_t n = gd_procfile_read(&s->file);
    if (n < 0) return (int)n;
    char *cursor = s->file.buf.data, *line, *f[3];
    const unsigned all = (1u << MI_COUNT) - 1;
    while (found != all && (line = gd_procfs_line(&cursor)) != NULL) {
        /* "MemTotal:       24683620 kB" */
        int k;
        for (k = 0; k < MI_COUNT; k++)
            if (line[0] == meminfo_keys[k].name[0] &&
                strncmp(line, meminfo_keys[k].name, meminfo_keys[k].len) == 0)
                break;
        if (k == MI_COUNT) continue;
        if (gd_procfs_split(line, f, 3) < 2 || gd_procfs_u64(f[1], &kb[k]) < 0) return -EINVAL;
        found |= 1u << k;
    }
    if (!(found & (1u << MI_TOTAL)) || kb[MI_TOTAL] == 0) return -EINVAL;
    if (!(found & (1u << MI_AVAILABLE))) /* before Linux 3.14 */
        kb[MI_AVAILABLE] = kb[MI_FREE] + kb[MI_BUFFERS] + kb[MI_CACHED];
    if (kb[MI_AVAILABLE] > kb[MI_TOTAL]) kb[MI_AVAILABLE] = kb[MI_TOTAL];
    s->total = kb[MI_TOTAL] * 1024;
    s->available = kb[MI_AVAILABLE] * 1024;
    s->used = s->total - s->available;
    s->used_pct = 100.0 * (double)s->used / (double)s->total;
    /* free(1)'s buff/cache. */
    s->cached = (kb[MI_BUFFERS] + kb[MI_CACHED] + kb[MI_SRECLAIMABLE]) * 1024;
    s->swap_total = kb[MI_SWAP_TOTAL] * 1024;
    s->swap_used =
        kb[MI_SWAP_FREE] <= kb[MI_SWAP_TOTAL] ? (kb[MI_SWAP_TOTAL] - kb[MI_SWAP_FREE]) * 1024 : 0;
    return 0;
}

static void memory_write(void *state, gd_jw_t *w)
{
    memory_state_t *s = state;
    gd_jw_key(w, "memory");
    gd_jw_obj_begin(w);
    gd_jw_key(w, "total_bytes");
    gd_jw_u64(w, s->total);
    gd_jw_key(w, "available_bytes");
    gd_jw_u64(w, s->available);
    gd_jw_key(w, "used_bytes");
    gd_jw_u64(w, s->used);
    gd_jw_key(w, "used_pct");
    gd_jw_num(w, s->used_pct);
    gd_jw_key(w, "cached_bytes");
    gd_jw_u64(w, s->cached);
    gd_jw_key(w, "swap_total_bytes");
    gd_jw_u64(w, s->swap_total);
    gd_jw_key(w, "swap_used_bytes");
    gd_jw_u64(w, s->swap_used);
    gd_jw_obj_end(w);
}

static void memory_fini(void *state)
{
    memory_state_t *s = state;
    gd_procfile_close(&s->file);
    free(s);
}

const gd_collector_t gd_collector_memory = {
    .name = "memory",
    .init = memory_init,
    .collect = memory_collect,
    .write = memory_write,
    .fini = memory_fini,
};

/* The cpu collector: usage over the interval, and the cumulative seconds
 * per mode, overall and per CPU, from the "cpu" lines of /proc/stat (one
 * line per online CPU). */
#include "collectors/cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectors/procfs.h"
#include "collectors/rate.h"

/* Columns of a cpu line, in clock ticks; guest time is already in user. */
enum { T_USER, T_NICE, T_SYSTEM, T_IDLE, T_IOWAIT, T_IRQ, T_SOFTIRQ, T_STEAL, T_COUNT };

/* The sample's names of the columns, members of "seconds". */
static const char *const mode_names[T_COUNT] = {"user",   "nice", "system",  "idle",
                                                "iowait", "irq",  "softirq", "steal"};

typedef struct cpu_times_s {
    uint64_t t[T_COUNT];
} cpu_times_t;

typedef struct cpu_usage_s {
    double usage, user, system, iowait, steal;
} cpu_usage_t;

typedef struct cpu_slot_s {
    cpu_times_t prev;
    int primed;
    int online; /* seen in the latest read */
    cpu_usage_t usage;
} cpu_slot_t;

typedef struct cpu_state_s {
    gd_procfile_t file;
    cpu_slot_t all;
    cpu_slot_t *cpus; /* indexed by CPU number; grows on hot-plug only */
    size_t ncpus;
    unsigned online;
    uint64_t hz; /* clock ticks per second (USER_HZ) */
} cpu_state_t;

static int grow_cpus(cpu_state_t *s, size_t want)
{
    if (want <= s->ncpus) return 0;
    size_t n = s->ncpus ? s->ncpus : 8;
    while (n < want)
        n *= 2;
    cpu_slot_t *p = realloc(s->cpus, n * sizeof(*p));
    if (!p) return -ENOMEM;
    memset(p + s->ncpus, 0, (n - s->ncpus) * sizeof(*p));
    s->cpus = p;
    s->ncpus = n;
    return 0;
}

static int cpu_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    cpu_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int r = gd_procfile_open(&s->file, env->proc_root, "stat");
    if (r < 0) {
        snprintf(err, errlen, "%s/stat", env->proc_root);
        free(s);
        return r;
    }
    long hz = sysconf(_SC_CLK_TCK);
    s->hz = hz > 0 ? (uint64_t)hz : 100;
    *state = s;
    return 0;
}

/* Percentages of the ticks that passed since the previous read. */
static void update_slot(cpu_slot_t *slot, const cpu_times_t *now)
{
    if (slot->primed) {
        uint64_t d[T_COUNT], total = 0;
        for (int i = 0; i < T_COUNT; i++) {
            d[i] = gd_counter_delta(slot->prev.t[i], now->t[i]);
            total += d[i];
        }
        if (total > 0) {
            double k = 100.0 / (double)total;
            slot->usage.user = k * (double)(d[T_USER] + d[T_NICE]);
            slot->usage.system = k * (double)(d[T_SYSTEM] + d[T_IRQ] + d[T_SOFTIRQ]);
            slot->usage.steal = k * (double)d[T_STEAL];
            slot->usage.iowait = k * (double)d[T_IOWAIT];
            slot->usage.usage = slot->usage.user + slot->usage.system + slot->usage.steal;
        }
        /* No tick passed: keep the previous percentages. */
    }
    slot->prev = *now;
    slot->primed = 1;
}

static int cpu_collect(void *state, const gd_collect_ctx_t *ctx)
{
    cpu_state_t *s = state;
    ssize_t n = gd_procfile_read(&s->file);
    if (n < 0) return (int)n;
    for (size_t i = 0; i < s->ncpus; i++)
        s->cpus[i].online = 0;
    s->online = 0;
    int have_all = 0;
    char *cursor = s->file.buf.data, *line, *f[T_COUNT + 1];
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        if (strncmp(line, "cpu", 3) != 0) break; /* the cpu lines come first */
        /* "cpu0 1693 0 1762 123197 13 0 53 0 0 0": 4 columns before 2.5.41,
         * steal since 2.6.11. Missing columns count as 0. */
        int nf = gd_procfs_split(line, f, T_COUNT + 1);
        if (nf < 5) return -EINVAL;
        cpu_times_t now = {{0}};
        for (int i = 0; i < T_COUNT && i + 1 < nf; i++)
            if (gd_procfs_u64(f[i + 1], &now.t[i]) < 0) return -EINVAL;
        if (f[0][3] == '\0') {
            update_slot(&s->all, &now);
            have_all = 1;
            continue;
        }
        uint64_t id;
        if (gd_procfs_u64(f[0] + 3, &id) < 0 || id > 65535) return -EINVAL;
        if (grow_cpus(s, (size_t)id + 1) < 0) return -ENOMEM;
        update_slot(&s->cpus[id], &now);
        s->cpus[id].online = 1;
        s->online++;
    }
    if (!have_all || s->online == 0) return -EINVAL;
    /* A CPU that went offline starts afresh when it comes back. */
    for (size_t i = 0; i < s->ncpus; i++)
        if (!s->cpus[i].online) {
            s->cpus[i].primed = 0;
            memset(&s->cpus[i].usage, 0, sizeof(s->cpus[i].usage));
        }
    return 0;
}

/* The cumulative times of the latest read, in seconds with two decimals
 * (exact at the usual USER_HZ of 100). */
static void write_seconds(const cpu_state_t *s, const cpu_times_t *t, gd_jw_t *w)
{
    gd_jw_key(w, "seconds");
    gd_jw_obj_begin(w);
    for (int i = 0; i < T_COUNT; i++) {
        gd_jw_key(w, mode_names[i]);
        uint64_t ticks = t->t[i];
        /* ticks * 100 / hz without overflow for any real uptime */
        gd_jw_decimal(w, ticks / s->hz * 100 + ticks % s->hz * 100 / s->hz, 2);
    }
    gd_jw_obj_end(w);
}

static void cpu_write(void *state, gd_jw_t *w)
{
    cpu_state_t *s = state;
    gd_jw_key(w, "cpu");
    gd_jw_obj_begin(w);
    gd_jw_key(w, "count");
    gd_jw_u64(w, s->online);
    gd_jw_key(w, "usage_pct");
    gd_jw_num(w, s->all.usage.usage);
    gd_jw_key(w, "user_pct");
    gd_jw_num(w, s->all.usage.user);
    gd_jw_key(w, "system_pct");
    gd_jw_num(w, s->all.usage.system);
    gd_jw_key(w, "iowait_pct");
    gd_jw_num(w, s->all.usage.iowait);
    gd_jw_key(w, "steal_pct");
    gd_jw_num(w, s->all.usage.steal);
    write_seconds(s, &s->all.prev, w);
    gd_jw_key(w, "per_cpu");
    gd_jw_arr_begin(w);
    for (size_t i = 0; i < s->ncpus; i++) {
        if (!s->cpus[i].online) continue;
        gd_jw_obj_begin(w);
        gd_jw_key(w, "cpu");
        gd_jw_u64(w, i);
        gd_jw_key(w, "usage_pct");
        gd_jw_num(w, s->cpus[i].usage.usage);
        write_seconds(s, &s->cpus[i].prev, w);
        gd_jw_obj_end(w);
    }
    gd_jw_arr_end(w);
    gd_jw_obj_end(w);
}

static void cpu_fini(void *state)
{
    cpu_state_t *s = state;
    gd_procfile_close(&s->file);
    free(s->cpus);
    free(s);
}

const gd_collector_t gd_collector_cpu = {
    .name = "cpu",
    .flags = GD_COLLECTOR_RATES,
    .init = cpu_init,
    .collect = cpu_collect,
    .write = cpu_write,
    .fini = cpu_fini,
};

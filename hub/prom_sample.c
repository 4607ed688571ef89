/* A guest's metrics sample rendered into its per-family fragments, with
 * node_exporter's names under the guestd_ prefix: base units, ratios, and
 * the sample's cumulative counters as _total counters. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hub/prom_internal.h"

static const cJSON *member(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* The number at key, or 0 when it is missing (*ok cleared). */
static double number(const cJSON *o, const char *key, int *ok)
{
    const cJSON *v = member(o, key);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    *ok = 0;
    return 0;
}

static const char *text(const cJSON *o, const char *key)
{
    const cJSON *v = member(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Which member of a section (or of a disk's or interface's entry) feeds
 * which family. */
typedef struct field_map_s {
    gd_prom_family_t fam;
    const char *key;
} field_map_t;

/* One line of fam for g, when the sample has key in o. */
static void simple(gd_prom_guest_t *g, gd_prom_family_t fam, const cJSON *o, const char *key)
{
    const cJSON *v = member(o, key);
    if (cJSON_IsNumber(v)) gd_prom_line(&g->frag[fam].text, fam, g, v->valuedouble);
}

static const field_map_t load_fields[] = {
    {F_LOAD1, "load1"},         {F_LOAD5, "load5"},
    {F_LOAD15, "load15"},       {F_PROCS_RUNNING, "procs_running"},
    {F_THREADS, "procs_total"},
};

static const field_map_t pressure_fields[] = {
    {F_PSI_CPU_WAITING, "cpu_some_total_s"},    {F_PSI_MEM_WAITING, "memory_some_total_s"},
    {F_PSI_MEM_STALLED, "memory_full_total_s"}, {F_PSI_IO_WAITING, "io_some_total_s"},
    {F_PSI_IO_STALLED, "io_full_total_s"},
};

static void render_fields(gd_prom_guest_t *g, const cJSON *o, const field_map_t *map, size_t n)
{
    for (size_t i = 0; i < n; i++)
        simple(g, map[i].fam, o, map[i].key);
}

static const char *const cpu_modes[] = {"user",   "nice", "system",  "idle",
                                        "iowait", "irq",  "softirq", "steal"};

static void cpu_seconds(gd_prom_guest_t *g, const char *cpu, const cJSON *seconds)
{
    gd_buf_t *b = &g->frag[F_CPU_SECONDS].text;
    for (size_t i = 0; i < sizeof(cpu_modes) / sizeof(cpu_modes[0]); i++) {
        const cJSON *v = member(seconds, cpu_modes[i]);
        if (!cJSON_IsNumber(v)) continue;
        gd_prom_begin(b, F_CPU_SECONDS, g);
        gd_prom_label(b, "cpu", cpu);
        gd_prom_label(b, "mode", cpu_modes[i]);
        gd_prom_end(b, v->valuedouble);
    }
}

static void render_cpu(gd_prom_guest_t *g, const cJSON *cpu)
{
    /* node_exporter has one series per CPU; the overall line only when
     * the guest sent no per-CPU seconds. */
    const cJSON *c;
    int any = 0;
    cJSON_ArrayForEach(c, member(cpu, "per_cpu"))
    {
        const cJSON *id = member(c, "cpu"), *seconds = member(c, "seconds");
        if (!cJSON_IsNumber(id) || !cJSON_IsObject(seconds)) continue;
        char name[24];
        snprintf(name, sizeof(name), "%.0f", id->valuedouble);
        cpu_seconds(g, name, seconds);
        any = 1;
    }
    if (!any && cJSON_IsObject(member(cpu, "seconds")))
        cpu_seconds(g, "all", member(cpu, "seconds"));
}

static void render_memory(gd_prom_guest_t *g, const cJSON *m)
{
    simple(g, F_MEM_TOTAL, m, "total_bytes");
    simple(g, F_MEM_AVAILABLE, m, "available_bytes");
    simple(g, F_SWAP_TOTAL, m, "swap_total_bytes");
    int ok = 1;
    double total = number(m, "swap_total_bytes", &ok), used = number(m, "swap_used_bytes", &ok);
    if (ok) gd_prom_line(&g->frag[F_SWAP_FREE].text, F_SWAP_FREE, g, total - used);
}

/* A line of fam labelled device="name" from key of entry e. */
static void device_line(gd_prom_guest_t *g, gd_prom_family_t fam, const cJSON *e, const char *key)
{
    const cJSON *v = member(e, key);
    if (!cJSON_IsNumber(v) && !cJSON_IsBool(v)) return;
    gd_buf_t *b = &g->frag[fam].text;
    gd_prom_begin(b, fam, g);
    gd_prom_label(b, "device", text(e, "name"));
    gd_prom_end(b, cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : v->valuedouble);
}

static const field_map_t disk_fields[] = {
    {F_DISK_READS, "reads"},           {F_DISK_WRITES, "writes"},
    {F_DISK_READ_BYTES, "read_bytes"}, {F_DISK_WRITTEN_BYTES, "write_bytes"},
    {F_DISK_IO_TIME, "io_time_s"},
};

static const field_map_t net_fields[] = {
    {F_NET_UP, "up"},
    {F_NET_RX_BYTES, "rx_bytes"},
    {F_NET_TX_BYTES, "tx_bytes"},
    {F_NET_RX_PACKETS, "rx_packets"},
    {F_NET_TX_PACKETS, "tx_packets"},
    {F_NET_RX_ERRS, "rx_errors"},
    {F_NET_TX_ERRS, "tx_errors"},
    {F_NET_RX_DROP, "rx_dropped"},
    {F_NET_TX_DROP, "tx_dropped"},
};

static void render_devices(gd_prom_guest_t *g, const cJSON *list, const field_map_t *map, size_t n)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        for (size_t i = 0; i < n; i++)
            device_line(g, map[i].fam, e, map[i].key);
    }
}

static void fs_line(gd_prom_guest_t *g, gd_prom_family_t fam, const cJSON *fs, double v)
{
    gd_buf_t *b = &g->frag[fam].text;
    gd_prom_begin(b, fam, g);
    gd_prom_label(b, "device", text(fs, "device"));
    gd_prom_label(b, "fstype", text(fs, "type"));
    gd_prom_label(b, "mountpoint", text(fs, "mount"));
    gd_prom_end(b, v);
}

static void render_filesystems(gd_prom_guest_t *g, const cJSON *list)
{
    const cJSON *fs;
    cJSON_ArrayForEach(fs, list)
    {
        /* As node_exporter: a mount that did not answer has its error flag
         * alone, not zeros that would read as an empty disk. */
        int ok = strcmp(text(fs, "status"), "ok") == 0;
        fs_line(g, F_FS_ERROR, fs, ok ? 0 : 1);
        if (!ok) continue;
        int have = 1;
        double total = number(fs, "total_bytes", &have), used = number(fs, "used_bytes", &have),
               avail = number(fs, "avail_bytes", &have);
        if (have) {
            fs_line(g, F_FS_SIZE, fs, total);
            fs_line(g, F_FS_FREE, fs, total - used);
            fs_line(g, F_FS_AVAIL, fs, avail);
        }
        int inodes = 1;
        double files = number(fs, "inodes_total", &inodes),
               files_free = number(fs, "inodes_free", &inodes);
        if (inodes) {
            fs_line(g, F_FS_FILES, fs, files);
            fs_line(g, F_FS_FILES_FREE, fs, files_free);
        }
    }
}

static void render_top(gd_prom_guest_t *g, const cJSON *procs)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, member(procs, "top"))
    {
        char pid[24];
        snprintf(pid, sizeof(pid), "%.0f",
                 cJSON_IsNumber(member(t, "pid")) ? member(t, "pid")->valuedouble : 0.0);
        int ok = 1;
        double cpu = number(t, "cpu_pct", &ok) / 100.0, rss = number(t, "rss_bytes", &ok);
        if (!ok) continue;
        gd_buf_t *b = &g->frag[F_TOP_CPU].text;
        gd_prom_begin(b, F_TOP_CPU, g);
        gd_prom_label(b, "pid", pid);
        gd_prom_label(b, "name", text(t, "name"));
        gd_prom_end(b, cpu);
        b = &g->frag[F_TOP_RSS].text;
        gd_prom_begin(b, F_TOP_RSS, g);
        gd_prom_label(b, "pid", pid);
        gd_prom_label(b, "name", text(t, "name"));
        gd_prom_end(b, rss);
    }
}

/* The families a sample fills, cleared before each one. */
static const gd_prom_family_t sample_families[] = {
    F_LAST_SAMPLE,        F_BOOT_TIME,      F_CPU_SECONDS,     F_MEM_TOTAL,       F_MEM_AVAILABLE,
    F_SWAP_TOTAL,         F_SWAP_FREE,      F_LOAD1,           F_LOAD5,           F_LOAD15,
    F_PROCS_RUNNING,      F_THREADS,        F_PSI_CPU_WAITING, F_PSI_MEM_WAITING, F_PSI_MEM_STALLED,
    F_PSI_IO_WAITING,     F_PSI_IO_STALLED, F_DISK_READS,      F_DISK_WRITES,     F_DISK_READ_BYTES,
    F_DISK_WRITTEN_BYTES, F_DISK_IO_TIME,   F_FS_SIZE,         F_FS_FREE,         F_FS_AVAIL,
    F_FS_FILES,           F_FS_FILES_FREE,  F_FS_ERROR,        F_NET_UP,          F_NET_RX_BYTES,
    F_NET_TX_BYTES,       F_NET_RX_PACKETS, F_NET_TX_PACKETS,  F_NET_RX_ERRS,     F_NET_TX_ERRS,
    F_NET_RX_DROP,        F_NET_TX_DROP,    F_TOP_CPU,         F_TOP_RSS,
};

int gd_prom_render_sample(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *data, int64_t ts_ms)
{
    const size_t nfam = sizeof(sample_families) / sizeof(sample_families[0]);
    for (size_t i = 0; i < nfam; i++)
        gd_buf_reset(&g->frag[sample_families[i]].text);
    double ts = (double)ts_ms / 1000.0;
    gd_prom_line(&g->frag[F_LAST_SAMPLE].text, F_LAST_SAMPLE, g, ts);
    const cJSON *up = member(data, "uptime_s");
    if (cJSON_IsNumber(up))
        gd_prom_line(&g->frag[F_BOOT_TIME].text, F_BOOT_TIME, g,
                     (double)(int64_t)(ts - up->valuedouble));
    render_cpu(g, member(data, "cpu"));
    render_memory(g, member(data, "memory"));
    render_fields(g, member(data, "load"), load_fields,
                  sizeof(load_fields) / sizeof(load_fields[0]));
    render_fields(g, member(data, "pressure"), pressure_fields,
                  sizeof(pressure_fields) / sizeof(pressure_fields[0]));
    render_devices(g, member(data, "disks"), disk_fields,
                   sizeof(disk_fields) / sizeof(disk_fields[0]));
    render_filesystems(g, member(data, "filesystems"));
    render_devices(g, member(data, "network"), net_fields,
                   sizeof(net_fields) / sizeof(net_fields[0]));
    if (p->top_processes) render_top(g, member(data, "processes"));
    /* A fragment that could not grow was emptied (gd_prom_end): the family
     * is missing for this guest until the next sample, never torn. */
    return 0;
}

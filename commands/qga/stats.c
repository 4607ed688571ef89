/* qemu-ga's counters: guest-get-vcpus, guest-get-cpustats,
 * guest-get-diskstats and guest-get-load, read from the same procfs and
 * sysfs roots as guestd's collectors (agent.proc_root, agent.sys_root), as
 * raw counters where the collectors keep rates. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectors/procfs.h"
#include "commands/qga/internal.h"

/* ---- guest-get-cpustats: /proc/stat's cpuN lines, in milliseconds ---- */

cJSON *gd_qga_cpustats(const char *proc_root, long clk_tck)
{
    static const char *const names[] = {"user", "nice",    "system", "idle",  "iowait",
                                        "irq",  "softirq", "steal",  "guest", "guestnice"};
    gd_buf_t buf;
    gd_buf_init(&buf);
    if (gd_qga_read_file(proc_root, "stat", &buf) < 0) {
        gd_buf_free(&buf);
        return NULL;
    }
    if (clk_tck <= 0) clk_tck = 100;
    cJSON *list = cJSON_CreateArray();
    char *cursor = buf.data, *line;
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        char *f[12];
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') continue;
        int n = gd_procfs_split(line, f, 12);
        uint64_t cpu;
        if (n < 5 || gd_procfs_u64(f[0] + 3, &cpu) != 0) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "type", "linux");
        gd_qga_json_add_int(e, "cpu", (int64_t)cpu);
        for (int i = 1; i < n && i <= 10; i++) {
            uint64_t v;
            if (gd_procfs_u64(f[i], &v) != 0) break;
            gd_qga_json_add_uint(e, names[i - 1], v * 1000 / (uint64_t)clk_tck);
        }
        cJSON_AddItemToArray(list, e);
    }
    gd_buf_free(&buf);
    return list;
}

/* ---- guest-get-diskstats: /proc/diskstats, every line ---- */

cJSON *gd_qga_diskstats(const char *proc_root)
{
    gd_buf_t buf;
    gd_buf_init(&buf);
    if (gd_qga_read_file(proc_root, "diskstats", &buf) < 0) {
        gd_buf_free(&buf);
        return NULL;
    }
    /* Field order of /proc/diskstats after major, minor and name
     * (Documentation/admin-guide/iostats.rst). */
    static const char *const full[] = {
        "read-ios",     "read-merges",   "read-sectors",   "read-ticks",      "write-ios",
        "write-merges", "write-sectors", "write-ticks",    "ios-pgr",         "total-ticks",
        "weight-ticks", "discard-ios",   "discard-merges", "discard-sectors", "discard-ticks",
        "flush-ios",    "flush-ticks",
    };
    /* Partitions on kernels before 2.6.25 have four counters only. */
    static const char *const short_form[] = {"read-ios", "read-sectors", "write-ios",
                                             "write-sectors"};
    cJSON *list = cJSON_CreateArray();
    char *cursor = buf.data, *line;
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        char *f[24];
        int n = gd_procfs_split(line, f, 24);
        uint64_t major, minor;
        if (n < 7 || gd_procfs_u64(f[0], &major) != 0 || gd_procfs_u64(f[1], &minor) != 0) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", f[2]);
        gd_qga_json_add_uint(e, "major", major);
        gd_qga_json_add_uint(e, "minor", minor);
        cJSON *st = cJSON_AddObjectToObject(e, "stats");
        int counters = n - 3;
        const char *const *names = counters < 11 ? short_form : full;
        int known = counters < 11 ? 4 : counters >= 17 ? 17 : counters >= 15 ? 15 : 11;
        for (int i = 0; i < known && i < counters; i++) {
            uint64_t v;
            if (gd_procfs_u64(f[3 + i], &v) == 0) gd_qga_json_add_uint(st, names[i], v);
        }
        cJSON_AddItemToArray(list, e);
    }
    gd_buf_free(&buf);
    return list;
}

/* ---- guest-get-vcpus: /sys/devices/system/cpu/cpuN; a CPU without an
 * "online" file (cpu0 on x86) cannot go offline ---- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

cJSON *gd_qga_vcpus(const char *sys_root)
{
    char dir[GD_PROCFS_PATH_MAX];
    if (gd_procfs_path(dir, sizeof(dir), sys_root, "devices/system/cpu") < 0) return NULL;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t id;
        if (strncmp(de->d_name, "cpu", 3) != 0 || gd_procfs_u64(de->d_name + 3, &id) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int *p = realloc(ids, cap * sizeof(*ids));
            if (!p) break;
            ids = p;
        }
        ids[n++] = (int)id;
    }
    closedir(d);
    qsort(ids, n, sizeof(*ids), cmp_int);
    cJSON *list = cJSON_CreateArray();
    gd_buf_t buf;
    gd_buf_init(&buf);
    for (size_t i = 0; i < n; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "devices/system/cpu/cpu%d/online", ids[i]);
        int online = 1, can_offline = 0;
        if (gd_qga_read_file(sys_root, rel, &buf) == 0) {
            can_offline = 1;
            online = buf.data[0] != '0';
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddBoolToObject(e, "online", online);
        cJSON_AddBoolToObject(e, "can-offline", can_offline);
        gd_qga_json_add_int(e, "logical-id", ids[i]);
        cJSON_AddItemToArray(list, e);
    }
    gd_buf_free(&buf);
    free(ids);
    return list;
}

/* ---- guest-get-load: /proc/loadavg ---- */

cJSON *gd_qga_load(const char *proc_root)
{
    gd_buf_t buf;
    gd_buf_init(&buf);
    double l[3];
    char *f[3];
    int ok = gd_qga_read_file(proc_root, "loadavg", &buf) == 0 &&
             gd_procfs_split(buf.data, f, 3) == 3 && gd_procfs_decimal(f[0], &l[0]) == 0 &&
             gd_procfs_decimal(f[1], &l[1]) == 0 && gd_procfs_decimal(f[2], &l[2]) == 0;
    gd_buf_free(&buf);
    if (!ok) return NULL;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "load1m", l[0]);
    cJSON_AddNumberToObject(r, "load5m", l[1]);
    cJSON_AddNumberToObject(r, "load15m", l[2]);
    return r;
}

/* ---- the commands ---- */

static void reply_or_fail(gd_qga_req_t *req, cJSON *r, const char *what)
{
    if (r)
        gd_qga_reply(req, r);
    else
        gd_qga_reply_error(req, "GenericError", "cannot read %s", what);
}

static void cmd_cpustats(gd_qga_req_t *req, const cJSON *args)
{
    reply_or_fail(req,
                  gd_qga_cpustats(req->qga->env->config->agent.proc_root, sysconf(_SC_CLK_TCK)),
                  "/proc/stat");
}

static void cmd_diskstats(gd_qga_req_t *req, const cJSON *args)
{
    reply_or_fail(req, gd_qga_diskstats(req->qga->env->config->agent.proc_root), "/proc/diskstats");
}

static void cmd_vcpus(gd_qga_req_t *req, const cJSON *args)
{
    reply_or_fail(req, gd_qga_vcpus(req->qga->env->config->agent.sys_root),
                  "/sys/devices/system/cpu");
}

static void cmd_load(gd_qga_req_t *req, const cJSON *args)
{
    reply_or_fail(req, gd_qga_load(req->qga->env->config->agent.proc_root), "/proc/loadavg");
}

const gd_qga_cmd_t gd_qga_cmds_stats[] = {
    {"guest-get-vcpus", cmd_vcpus, 0, "metrics.get", NULL},
    {"guest-get-cpustats", cmd_cpustats, 0, "metrics.get", NULL},
    {"guest-get-diskstats", cmd_diskstats, 0, "metrics.get", NULL},
    {"guest-get-load", cmd_load, 0, "metrics.get", NULL},
    {NULL, NULL, 0, NULL, NULL},
};

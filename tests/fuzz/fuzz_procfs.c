/* Fuzzes every /proc and /sys parser with arbitrary file contents: each
 * metrics collector through the production path (gd_metrics_new_ex with
 * metrics.collectors naming it, agent.proc_root at a scratch tree holding
 * the fuzzed file, an injected clock and statvfs), process.list's reader
 * (gd_proc_read_all over /proc/<pid>/{stat,status,cmdline}), system.info
 * (gd_system_info over cpuinfo, meminfo, stat, uptime, boot_id, os-release,
 * machine-id, timezone), and the procfs helpers themselves.
 *
 * Checked: every sample is one JSON object of valid UTF-8 that cJSON reads
 * back (gd_jw_str must escape and sanitise whatever the file held); the
 * reader's strings are bounded and terminated.
 *
 * Input: a target byte, an options byte, then the file contents: snapshot A
 * and, after "\f\f", snapshot B (the second read, for rates; A again when
 * absent). process.list's reader splits its contents in three the same way
 * (stat, status, cmdline). The scratch tree lives under /dev/shm. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/config.h"
#include "core/log.h"
#include "core/utf8.h"
#include "collectors/metrics.h"
#include "collectors/procfs.h"
#include "commands/process_read.h"
#include "commands/system.h"
#include "fuzz_common.h"

#define SEP "\f\f"

enum {
    T_UPTIME,
    T_CPU,
    T_MEMORY,
    T_LOAD,
    T_PRESSURE,
    T_DISKS,
    T_FILESYSTEMS,
    T_NETWORK,
    T_PROCESSES,
    T_PROC_READ,
    T_SYSTEM_INFO,
    T_PARSE_STAT,
    T_OS_RELEASE,
    T_HELPERS,
    T_COUNT,
};

/* Collector name and the file(s) under proc/ it reads, per target. */
static const struct {
    const char *collector;
    const char *files[3];
} targets[] = {
    [T_UPTIME] = {"uptime", {"uptime"}},
    [T_CPU] = {"cpu", {"stat"}},
    [T_MEMORY] = {"memory", {"meminfo"}},
    [T_LOAD] = {"load", {"loadavg"}},
    [T_PRESSURE] = {"pressure", {"pressure/cpu", "pressure/memory", "pressure/io"}},
    [T_DISKS] = {"disks", {"diskstats"}},
    [T_FILESYSTEMS] = {"filesystems", {"self/mountinfo"}},
    [T_NETWORK] = {"network", {"net/dev"}},
    [T_PROCESSES] = {"processes", {"1/stat", "42/stat"}},
};

/* system.info's sources: which file of which root the fuzzed text replaces. */
static const struct {
    int etc; /* under etc/, else under proc/ */
    const char *rel;
} sysinfo_files[] = {
    {0, "cpuinfo"},
    {0, "meminfo"},
    {0, "stat"},
    {0, "uptime"},
    {0, "sys/kernel/random/boot_id"},
    {1, "os-release"},
    {1, "machine-id"},
    {1, "timezone"},
};
#define N_SYSINFO (sizeof(sysinfo_files) / sizeof(sysinfo_files[0]))

static char base[256];
static uv_loop_t loop;
static int ready;

static void path_of(char *out, size_t len, int target, const char *kind, const char *rel)
{
    snprintf(out, len, "%s/t%d/%s%s%s", base, target, kind, rel[0] ? "/" : "", rel);
}

/* mkdir -p of path's directory part. */
static void make_parents(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) abort();
        *p = '/';
    }
}

/* Replaces the file's contents in place (same inode: fds kept open by a
 * collector read the new text, as with /proc). */
static void put_file(const char *path, const uint8_t *data, size_t len)
{
    make_parents(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) abort();
    if (len && write(fd, data, len) != (ssize_t)len) abort();
    close(fd);
}

static void put_text(int target, const char *kind, const char *rel, const char *text)
{
    char path[512];
    path_of(path, sizeof(path), target, kind, rel);
    put_file(path, (const uint8_t *)text, strlen(text));
}

static void make_dir(int target, const char *kind, const char *rel)
{
    char path[512];
    path_of(path, sizeof(path), target, kind, rel);
    make_parents(path);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) abort();
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void cleanup(void)
{
    if (base[0]) nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    gd_log_set_level(GD_LOG_ERROR);
    snprintf(base, sizeof(base), "/dev/shm/guestd-fuzz-procfs-XXXXXX");
    if (!mkdtemp(base)) {
        snprintf(base, sizeof(base), "/tmp/guestd-fuzz-procfs-XXXXXX");
        if (!mkdtemp(base)) abort();
    }
    atexit(cleanup);
    if (uv_loop_init(&loop) != 0) abort();
    for (int t = 0; t < T_COUNT; t++) {
        make_dir(t, "proc", "");
        /* sysfs beside it: a disk and an interface that exist. */
        make_dir(t, "sys", "block/vda");
        make_dir(t, "sys", "block/sda");
        put_text(t, "sys", "class/net/eth0/operstate", "up\n");
        put_text(t, "sys", "class/net/eth1/operstate", "unknown\n");
        put_text(t, "sys", "class/net/eth1/flags", "0x1003\n");
        make_dir(t, "etc", "");
    }
    /* process.list's tree: a stat for btime, one process. */
    put_text(T_PROC_READ, "proc", "stat", "cpu  1 2 3 4 5 6 7 8 9 10\nbtime 1700000000\n");
    /* The processes collector reads loadavg's last pid. */
    put_text(T_PROCESSES, "proc", "loadavg", "0.00 0.00 0.00 1/2 42\n");
    ready = 1;
}

/* The injected clock: one second per cycle unless the options say less. */
static uint64_t fake_now;
static uint64_t now_ns(void *ctx)
{
    return fake_now;
}

/* statvfs, answering from the path (the paths come from the fuzzed
 * mountinfo; the real one is not called on them). */
static int fake_statvfs(const char *path, struct statvfs *out)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = path; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    memset(out, 0, sizeof(*out));
    if ((h & 7) == 0) {
        errno = (h >> 3) & 1 ? EACCES : EIO;
        return -1;
    }
    out->f_bsize = 4096;
    out->f_frsize = (h >> 8) & 1 ? 0 : (1ull << ((h >> 9) & 31));
    out->f_blocks = h >> 20;
    out->f_bfree = (h >> 12) & 1 ? out->f_blocks + 1 : out->f_blocks / 3;
    out->f_bavail = out->f_bfree / 2;
    out->f_files = (h >> 13) & 1 ? 0 : (h >> 30);
    out->f_ffree = (h >> 14) & 1 ? out->f_files + 5 : out->f_files / 2;
    return 0;
}

/* A sample, or any JSON text we produce: valid UTF-8, one JSON value. */
static void check_json_text(const char *what, const char *text, size_t len)
{
    FUZZ_CHECK(gd_utf8_valid(text, len), "%s is not valid UTF-8: %s", what, text);
    FUZZ_CHECK(memchr(text, '\n', len) == NULL, "%s holds a raw newline: %s", what, text);
    cJSON *v = cJSON_ParseWithLength(text, len);
    FUZZ_CHECK(cJSON_IsObject(v), "%s is not a JSON object: %s", what, text);
    cJSON_Delete(v);
}

static void write_parts(int target, fuzz_in_t snap)
{
    char path[512];
    for (int i = 0; i < 3 && targets[target].files[i]; i++) {
        path_of(path, sizeof(path), target, "proc", targets[target].files[i]);
        put_file(path, snap.p, snap.n);
    }
}

static void fuzz_collector(int target, uint8_t opts, fuzz_in_t a, fuzz_in_t b)
{
    char err[256], set[600];
    gd_config_t cfg;
    gd_config_defaults(&cfg);
    snprintf(set, sizeof(set), "agent.proc_root=%s/t%d/proc", base, target);
    if (gd_config_set_dotted(&cfg, set, err, sizeof(err))) abort();
    snprintf(set, sizeof(set), "agent.sys_root=%s/t%d/sys", base, target);
    if (gd_config_set_dotted(&cfg, set, err, sizeof(err))) abort();
    snprintf(set, sizeof(set), "metrics.collectors=%s", targets[target].collector);
    if (gd_config_set_dotted(&cfg, set, err, sizeof(err))) abort();
    cfg.metrics.top_processes = opts & 7;

    /* Two processes for the processes collector: their stat texts swap
     * between the cycles. */
    if (target == T_PROCESSES) {
        char p1[512], p2[512];
        path_of(p1, sizeof(p1), target, "proc", "1/stat");
        path_of(p2, sizeof(p2), target, "proc", "42/stat");
        put_file(p1, a.p, a.n);
        put_file(p2, b.p, b.n);
    } else {
        write_parts(target, a);
    }

    gd_metrics_opts_t mo = {
        .now_ns = now_ns,
        .statvfs_fn = fake_statvfs,
        .fs_timeout_ms = 1000,
        .proc_fd_budget = (opts & 8) ? 1 : 0,
    };
    /* Cycle lengths: a normal second, or one shorter than the minimum
     * window, or a long gap. */
    static const uint64_t steps[4] = {1000000000ull, 10000000ull, 3600000000000ull, 50000000ull};
    fake_now = 1000000000ull;
    gd_metrics_t *m = NULL;
    int r = gd_metrics_new_ex(&m, &loop, &cfg, &mo, err, sizeof(err));
    FUZZ_CHECK(r == 0, "gd_metrics_new_ex: %s", err);
    uv_run(&loop, UV_RUN_DEFAULT);

    if (target == T_PROCESSES) {
        char p1[512], p2[512];
        path_of(p1, sizeof(p1), target, "proc", "1/stat");
        path_of(p2, sizeof(p2), target, "proc", "42/stat");
        put_file(p1, b.p, b.n);
        put_file(p2, a.p, a.n);
    } else {
        write_parts(target, b);
    }

    gd_buf_t out;
    gd_buf_init(&out);
    for (int cycle = 0; cycle < 2; cycle++) {
        fake_now += steps[(opts >> (4 + 2 * cycle)) & 3];
        r = gd_metrics_collect(m, GD_METRICS_ALL, &out);
        FUZZ_CHECK(r == 0, "gd_metrics_collect: %d", r);
        check_json_text("a metrics sample", out.data, out.len);
        uv_run(&loop, UV_RUN_DEFAULT); /* statvfs answers */
    }
    gd_buf_free(&out);
    gd_metrics_free(m);
    uv_run(&loop, UV_RUN_DEFAULT);
}

/* process.list's reader over one process whose files are the input. */
static void fuzz_proc_read(fuzz_in_t in)
{
    char path[512];
    static const char *const rel[3] = {"4242/stat", "4242/status", "4242/cmdline"};
    for (int i = 0; i < 3; i++) {
        fuzz_in_t part = fuzz_until(&in, SEP, 2);
        path_of(path, sizeof(path), T_PROC_READ, "proc", rel[i]);
        put_file(path, part.p, part.n);
    }
    char root[512];
    path_of(root, sizeof(root), T_PROC_READ, "proc", "");
    gd_proc_list_t l;
    gd_proc_list_init(&l);
    int r = gd_proc_read_all(root, &l);
    FUZZ_CHECK(r == 0, "gd_proc_read_all: %d", r);
    FUZZ_CHECK(l.count <= 1, "%zu processes from one directory", l.count);
    for (size_t i = 0; i < l.count; i++) {
        const gd_proc_info_t *p = &l.items[i];
        FUZZ_CHECK(memchr(p->name, '\0', sizeof(p->name)) != NULL, "name is not terminated");
        FUZZ_CHECK(p->cmdline != NULL, "no cmdline");
        FUZZ_CHECK(strlen(p->cmdline) <= GD_PROC_CMDLINE_MAX, "cmdline of %zu bytes",
                   strlen(p->cmdline));
    }
    gd_proc_list_free(&l);
}

static void fuzz_system_info(uint8_t opts, fuzz_in_t in)
{
    char path[512];
    size_t which = opts % N_SYSINFO;
    path_of(path, sizeof(path), T_SYSTEM_INFO, sysinfo_files[which].etc ? "etc" : "proc",
            sysinfo_files[which].rel);
    put_file(path, in.p, in.n);
    char proc[512], etc[512];
    path_of(proc, sizeof(proc), T_SYSTEM_INFO, "proc", "");
    path_of(etc, sizeof(etc), T_SYSTEM_INFO, "etc", "");
    cJSON *info = gd_system_info(proc, etc, (opts & 0x80) ? "guest" : "", NULL);
    FUZZ_CHECK(info != NULL, "gd_system_info returned NULL");
    char *text = cJSON_PrintUnformatted(info);
    FUZZ_CHECK(text != NULL, "system.info does not print");
    cJSON *back = cJSON_Parse(text);
    FUZZ_CHECK(cJSON_IsObject(back), "system.info does not read back: %s", text);
#ifndef FUZZ_LAX_UTF8
    FUZZ_CHECK(gd_utf8_valid(text, strlen(text)), "system.info is not valid UTF-8: %s", text);
#endif
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(info);
    unlink(path);
}

static void fuzz_parse_stat(fuzz_in_t in)
{
    char *text = fuzz_strndup(in.p, in.n);
    gd_proc_info_t info;
    memset(&info, 0, sizeof(info));
    if (gd_proc_parse_stat(text, &info) == 0) {
        FUZZ_CHECK(memchr(info.name, '\0', sizeof(info.name)) != NULL, "name not terminated");
        FUZZ_CHECK(info.state != 0, "no state");
    }
    free(text);
}

static void fuzz_os_release(uint8_t opts, fuzz_in_t in)
{
    static const char *const keys[] = {"ID", "NAME", "VERSION", "VERSION_ID", "PRETTY_NAME", ""};
    char *text = fuzz_strndup(in.p, in.n);
    size_t len = 1 + (opts & 31); /* an exact buffer: ASan sees one byte too many */
    char *out = malloc(len);
    if (!out) abort();
    if (gd_os_release_value(text, keys[(opts >> 5) % 6], out, len) == 0)
        FUZZ_CHECK(strnlen(out, len) < len, "value not terminated within %zu bytes", len);
    free(out);
    free(text);
}

/* The helpers every parser above is built on. */
static void fuzz_helpers(fuzz_in_t in)
{
    char *text = fuzz_strndup(in.p, in.n);
    char *cursor = text, *line, *f[8];
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        const char *p = line;
        uint64_t v;
        double d;
        (void)gd_procfs_skip(&p, 1);
        (void)gd_procfs_next_u64(&p, &v);
        int n = gd_procfs_split(line, f, 8);
        FUZZ_CHECK(n >= 0 && n <= 8, "split returned %d", n);
        for (int i = 0; i < n; i++) {
            FUZZ_CHECK(f[i] >= text && f[i] <= text + in.n, "a field outside the text");
            if (gd_procfs_u64(f[i], &v) == 0)
                FUZZ_CHECK(f[i][0] >= '0' && f[i][0] <= '9', "'%s' read as a number", f[i]);
            if (gd_procfs_decimal(f[i], &d) == 0) FUZZ_CHECK(d >= 0, "'%s' read as %f", f[i], d);
        }
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) setup();
    fuzz_in_t in = {data, size};
    int target = fuzz_u8(&in) % T_COUNT;
    uint8_t opts = fuzz_u8(&in);
    if (target <= T_PROCESSES) {
        fuzz_in_t a = fuzz_until(&in, SEP, 2);
        fuzz_in_t b = in.n ? fuzz_until(&in, SEP, 2) : a;
        fuzz_collector(target, opts, a, b);
        return 0;
    }
    switch (target) {
    case T_PROC_READ:
        fuzz_proc_read(in);
        break;
    case T_SYSTEM_INFO:
        fuzz_system_info(opts, in);
        break;
    case T_PARSE_STAT:
        fuzz_parse_stat(in);
        break;
    case T_OS_RELEASE:
        fuzz_os_release(opts, in);
        break;
    default:
        fuzz_helpers(in);
        break;
    }
    return 0;
}

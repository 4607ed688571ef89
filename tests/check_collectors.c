/* Check suite for the collectors against fixture trees taken from a real
 * 2-CPU Debian guest (tests/fixtures/proc-snap1, proc-snap2: two snapshots
 * 4.57 s apart while a shell loop burned CPU, a 20 MiB direct write ran and
 * a package was downloaded; sys-snap: /sys/block and /sys/class/net).
 * Every expected value below was worked out by hand from those files. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "collectors/metrics.h"

#define SNAP_INTERVAL_NS 4570000000ull /* uptime 1438.82 -> 1443.39 */

static char root[128], proc_dir[160], sys_dir[160];
static const char *fixtures;
static uint64_t fake_now;
static size_t fd_budget; /* stat files kept open; 0: the collector's default */
static uv_loop_t loop;

static uint64_t fake_clock(void *ctx)
{
    return fake_now;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* A private copy of snapshot 1, so a test can change files in place. */
static void tree_setup(void)
{
    fixtures = getenv("GUESTD_FIXTURES");
    ck_assert_ptr_nonnull(fixtures);
    snprintf(root, sizeof(root), "/tmp/gd-coll-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(proc_dir, sizeof(proc_dir), "%s/proc", root);
    snprintf(sys_dir, sizeof(sys_dir), "%s/sys", root);
    sh("cp -r %s/proc-snap1 %s && cp -r %s/sys-snap %s", fixtures, proc_dir, fixtures, sys_dir);
    fake_now = 1000000000000ull;
    fd_budget = 0;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    gd_log_set_level(GD_LOG_ERROR);
}

static void tree_teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    sh("rm -rf %s", root);
}

/* cp writes over existing files (same inodes), as the kernel's files change
 * under the collectors' open fds. */
static void install_snapshot2(void)
{
    sh("cp -r %s/proc-snap2/. %s/", fixtures, proc_dir);
    fake_now += SNAP_INTERVAL_NS;
}

static void write_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    FILE *f = fopen(path, "w"); /* truncates in place */
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Fake statvfs: "/" is a 1000-block fs, "/slow" answers when released,
 * "/denied" fails. */
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cond = PTHREAD_COND_INITIALIZER;
static int slow_released;

static int fake_statvfs(const char *path, struct statvfs *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(path, "/denied") == 0) {
        errno = EACCES;
        return -1;
    }
    if (strcmp(path, "/slow") == 0) {
        pthread_mutex_lock(&slow_lock);
        while (!slow_released)
            pthread_cond_wait(&slow_cond, &slow_lock);
        pthread_mutex_unlock(&slow_lock);
    }
    out->f_frsize = 4096;
    out->f_bsize = 4096;
    out->f_blocks = 1000;
    out->f_bfree = 400;
    out->f_bavail = 300;
    out->f_files = 100;
    out->f_ffree = 25;
    return 0;
}

static gd_metrics_t *make(const char *collectors, int top)
{
    gd_config_t cfg;
    gd_config_defaults(&cfg);
    snprintf(cfg.agent.proc_root, sizeof(cfg.agent.proc_root), "%s", proc_dir);
    snprintf(cfg.agent.sys_root, sizeof(cfg.agent.sys_root), "%s", sys_dir);
    snprintf(cfg.metrics.collectors, sizeof(cfg.metrics.collectors), "%s", collectors);
    cfg.metrics.top_processes = top;
    gd_metrics_opts_t opts = {.now_ns = fake_clock,
                              .statvfs_fn = fake_statvfs,
                              .fs_timeout_ms = 2000,
                              .proc_fd_budget = fd_budget};
    gd_metrics_t *m = NULL;
    char err[256] = "";
    ck_assert_msg(gd_metrics_new_ex(&m, &loop, &cfg, &opts, err, sizeof(err)) == 0, "%s", err);
    return m;
}

static cJSON *sample(gd_metrics_t *m, uint32_t mask)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_metrics_collect(m, mask, &b), 0);
    cJSON *j = cJSON_Parse(b.data);
    ck_assert_msg(j != NULL, "not JSON: %s", b.data);
    gd_buf_free(&b);
    return j;
}

/* Dotted path into a sample: "cpu.per_cpu.1.usage_pct". */
static const cJSON *at(const cJSON *j, const char *path)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", path);
    for (char *save, *tok = strtok_r(copy, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        if (!j) break;
        if (cJSON_IsArray(j))
            j = cJSON_GetArrayItem(j, atoi(tok));
        else
            j = cJSON_GetObjectItemCaseSensitive(j, tok);
    }
    ck_assert_msg(j != NULL, "no %s", path);
    return j;
}

static double num(const cJSON *j, const char *path)
{
    const cJSON *v = at(j, path);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", path);
    return v->valuedouble;
}

static const char *str(const cJSON *j, const char *path)
{
    const cJSON *v = at(j, path);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", path);
    return v->valuestring;
}

#define ASSERT_NUM(j, path, want) ck_assert_double_eq_tol(num(j, path), want, 1e-9)

/* ---- one collector at a time, two snapshots --------------------------------- */

START_TEST(test_cpu_percentages)
{
    gd_metrics_t *m = make("cpu", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    /* delta user 736, system 184, idle 6 of 926 ticks. */
    ASSERT_NUM(j, "cpu.count", 2);
    ASSERT_NUM(j, "cpu.usage_pct", 99.35);
    ASSERT_NUM(j, "cpu.user_pct", 79.48);
    ASSERT_NUM(j, "cpu.system_pct", 19.87);
    ASSERT_NUM(j, "cpu.iowait_pct", 0.0);
    ASSERT_NUM(j, "cpu.steal_pct", 0.0);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "cpu.per_cpu")), 2);
    ASSERT_NUM(j, "cpu.per_cpu.0.cpu", 0);
    ASSERT_NUM(j, "cpu.per_cpu.0.usage_pct", 100.0);
    ASSERT_NUM(j, "cpu.per_cpu.1.cpu", 1);
    ASSERT_NUM(j, "cpu.per_cpu.1.usage_pct", 98.71);
    /* The cumulative seconds: the snapshot's ticks / USER_HZ (100). */
    ASSERT_NUM(j, "cpu.seconds.user", 118.91);
    ASSERT_NUM(j, "cpu.seconds.nice", 0.0);
    ASSERT_NUM(j, "cpu.seconds.system", 90.54);
    ASSERT_NUM(j, "cpu.seconds.idle", 2665.52);
    ASSERT_NUM(j, "cpu.seconds.iowait", 6.52);
    ASSERT_NUM(j, "cpu.seconds.irq", 0.0);
    ASSERT_NUM(j, "cpu.seconds.softirq", 2.71);
    ASSERT_NUM(j, "cpu.seconds.steal", 0.0);
    ASSERT_NUM(j, "cpu.per_cpu.1.seconds.user", 65.57);
    ASSERT_NUM(j, "cpu.per_cpu.1.seconds.idle", 1318.13);
    ASSERT_NUM(j, "cpu.per_cpu.0.seconds.system", 39.66);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_memory_bytes)
{
    gd_metrics_t *m = make("memory", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "memory.total_bytes", 24683620.0 * 1024);
    ASSERT_NUM(j, "memory.available_bytes", 23946904.0 * 1024);
    ASSERT_NUM(j, "memory.used_bytes", (24683620.0 - 23946904.0) * 1024);
    ASSERT_NUM(j, "memory.used_pct", 2.98);
    ASSERT_NUM(j, "memory.cached_bytes", (135256.0 + 570388.0 + 137748.0) * 1024);
    ASSERT_NUM(j, "memory.swap_total_bytes", 0);
    ASSERT_NUM(j, "memory.swap_used_bytes", 0);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_load_and_uptime)
{
    gd_metrics_t *m = make("load,uptime", 5);
    cJSON *j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "uptime_s", 1438.82);
    ASSERT_NUM(j, "load.load1", 2.02);
    ASSERT_NUM(j, "load.procs_total", 121);
    cJSON_Delete(j);
    install_snapshot2();
    j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "uptime_s", 1443.39);
    ASSERT_NUM(j, "load.load1", 2.18);
    ASSERT_NUM(j, "load.load5", 0.72);
    ASSERT_NUM(j, "load.load15", 0.29);
    ASSERT_NUM(j, "load.procs_running", 2);
    ASSERT_NUM(j, "load.procs_total", 109);
    /* uptime is the first key of a sample, as protocol.md shows it. */
    ck_assert_str_eq(j->child->string, "uptime_s");
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_pressure_avg10)
{
    gd_metrics_t *m = make("pressure", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "pressure.cpu_some_avg10", 67.73);
    ASSERT_NUM(j, "pressure.memory_some_avg10", 0.0);
    ASSERT_NUM(j, "pressure.memory_full_avg10", 0.0);
    ASSERT_NUM(j, "pressure.io_some_avg10", 2.47);
    ASSERT_NUM(j, "pressure.io_full_avg10", 0.29);
    /* total= in microseconds, written as seconds. */
    ASSERT_NUM(j, "pressure.cpu_some_total_s", 37.159058);
    ASSERT_NUM(j, "pressure.memory_some_total_s", 0.0);
    ASSERT_NUM(j, "pressure.memory_full_total_s", 0.0);
    ASSERT_NUM(j, "pressure.io_some_total_s", 6.810573);
    ASSERT_NUM(j, "pressure.io_full_total_s", 5.504026);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_disks_rates_of_whole_disks)
{
    gd_metrics_t *m = make("disks", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    /* loop0-7 and zram0 are left out: vda alone. */
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "disks")), 1);
    ck_assert_str_eq(str(j, "disks.0.name"), "vda");
    ASSERT_NUM(j, "disks.0.reads_per_s", 0.66);          /* 3 reads */
    ASSERT_NUM(j, "disks.0.writes_per_s", 7.88);         /* 36 writes */
    ASSERT_NUM(j, "disks.0.read_bytes_per_s", 27784.68); /* 248 sectors */
    ASSERT_NUM(j, "disks.0.write_bytes_per_s", 5107003.94);
    ASSERT_NUM(j, "disks.0.util_pct", 0.53); /* 24 ms busy */
    ASSERT_NUM(j, "disks.0.reads", 128583);
    ASSERT_NUM(j, "disks.0.writes", 15142);
    ASSERT_NUM(j, "disks.0.read_bytes", 4379426.0 * 512);
    ASSERT_NUM(j, "disks.0.write_bytes", 1997848.0 * 512);
    ASSERT_NUM(j, "disks.0.io_time_s", 13.908);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_disks_leave_out_partitions)
{
    /* A partition line after its disk; /sys/block has no vda1. */
    sh("printf ' 254       1 vda1 9 0 9 0 9 0 9 0 0 9 9\\n' >> %s/diskstats", proc_dir);
    gd_metrics_t *m = make("disks", 5);
    cJSON *j = sample(m, GD_METRICS_ALL);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "disks")), 1);
    ck_assert_str_eq(str(j, "disks.0.name"), "vda");
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_network_rates_without_lo)
{
    gd_metrics_t *m = make("network", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "network")), 3);
    ck_assert_str_eq(str(j, "network.0.name"), "ifb0");
    ck_assert(cJSON_IsFalse(at(j, "network.0.up")));
    ck_assert_str_eq(str(j, "network.2.name"), "eth0");
    ck_assert(cJSON_IsTrue(at(j, "network.2.up")));
    ASSERT_NUM(j, "network.2.rx_bytes_per_s", 11829.98); /* 54063 bytes */
    ASSERT_NUM(j, "network.2.tx_bytes_per_s", 239.61);   /* 1095 bytes */
    ASSERT_NUM(j, "network.2.rx_packets_per_s", 2.63);
    ASSERT_NUM(j, "network.2.tx_packets_per_s", 3.06);
    ASSERT_NUM(j, "network.2.rx_errors", 0);
    ASSERT_NUM(j, "network.2.tx_dropped", 0);
    ASSERT_NUM(j, "network.2.rx_bytes", 104481842);
    ASSERT_NUM(j, "network.2.tx_bytes", 159613);
    ASSERT_NUM(j, "network.2.rx_packets", 3087);
    ASSERT_NUM(j, "network.2.tx_packets", 2272);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_network_up_from_flags_when_unknown)
{
    /* lo-style "unknown" operstate: up when IFF_UP is set. */
    write_file("sys/class/net/ifb0/operstate", "unknown\n");
    write_file("sys/class/net/ifb0/flags", "0x1003\n");
    write_file("sys/class/net/ifb1/operstate", "unknown\n");
    gd_metrics_t *m = make("network", 5);
    cJSON *j = sample(m, GD_METRICS_ALL);
    ck_assert(cJSON_IsTrue(at(j, "network.0.up")));
    ck_assert(cJSON_IsFalse(at(j, "network.1.up"))); /* flags 0x82 */
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_processes_top_by_cpu)
{
    gd_metrics_t *m = make("processes", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    double k = 100.0 / (double)tck / 4.57;
    ASSERT_NUM(j, "processes.total", 3);
    /* loadavg's runnable tasks, "2/109" (the stat files have one R). */
    ASSERT_NUM(j, "processes.running", 2);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "processes.top")), 3);
    /* sh: utime+stime 26 -> 252 ticks; process_api 559 -> 562; bash 57 -> 59. */
    ASSERT_NUM(j, "processes.top.0.pid", 11788);
    ck_assert_str_eq(str(j, "processes.top.0.name"), "sh");
    ck_assert_double_eq_tol(num(j, "processes.top.0.cpu_pct"), 226 * k, 0.005);
    ASSERT_NUM(j, "processes.top.0.rss_bytes", 386.0 * page);
    ASSERT_NUM(j, "processes.top.1.pid", 1);
    ck_assert_str_eq(str(j, "processes.top.1.name"), "process_api");
    ck_assert_double_eq_tol(num(j, "processes.top.1.cpu_pct"), 3 * k, 0.005);
    ASSERT_NUM(j, "processes.top.1.rss_bytes", 4331.0 * page);
    ASSERT_NUM(j, "processes.top.2.pid", 1170);
    ck_assert_double_eq_tol(num(j, "processes.top.2.cpu_pct"), 2 * k, 0.005);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

/* How many of this process's fds are open on per-process stat files
 * under dir. */
static int stat_fds_under(const char *dir)
{
    char link[64], target[512];
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0) continue;
        target[len] = '\0';
        size_t dlen = strlen(dir);
        const char *rest = target + dlen;
        n += strncmp(target, dir, dlen) == 0 && rest[0] == '/' && rest[1] >= '1' &&
             rest[1] <= '9' && strstr(rest, "/stat");
    }
    return n;
}

START_TEST(test_processes_past_the_fd_budget)
{
    /* One stat file kept open; the other two processes are opened and
     * closed each cycle, with the same figures. */
    fd_budget = 1;
    gd_metrics_t *m = make("processes", 5);
    ck_assert_int_eq(stat_fds_under(proc_dir), 1);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    double k = 100.0 / (double)sysconf(_SC_CLK_TCK) / 4.57;
    ASSERT_NUM(j, "processes.total", 3);
    ASSERT_NUM(j, "processes.top.0.pid", 11788);
    ck_assert_double_eq_tol(num(j, "processes.top.0.cpu_pct"), 226 * k, 0.005);
    ck_assert_double_eq_tol(num(j, "processes.top.1.cpu_pct"), 3 * k, 0.005);
    ck_assert_double_eq_tol(num(j, "processes.top.2.cpu_pct"), 2 * k, 0.005);
    cJSON_Delete(j);
    ck_assert_int_eq(stat_fds_under(proc_dir), 1);
    gd_metrics_free(m);
    ck_assert_int_eq(stat_fds_under(proc_dir), 0);
}
END_TEST

static char *section(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    ck_assert_msg(v != NULL, "no section %s", name);
    return cJSON_PrintUnformatted(v);
}

static void assert_same_section(const cJSON *a, const cJSON *b, const char *name)
{
    char *x = section(a, name), *y = section(b, name);
    ck_assert_str_eq(x, y);
    free(x);
    free(y);
}

/* metrics.get between two periodic samples leaves the periodic rate window
 * alone: the second periodic sample is the same as without the request
 * (rates over the whole interval, not since the request), and the request
 * gives the rate collectors' latest periodic sections with fresh gauges. */
START_TEST(test_request_does_not_move_the_periodic_window)
{
    const char *which = "cpu,disks,network,memory";
    gd_metrics_t *ref = make(which, 5), *m = make(which, 5);
    fake_now += 1000000000ull;
    cJSON *p1_ref = sample(ref, GD_METRICS_ALL), *p1 = sample(m, GD_METRICS_ALL);
    install_snapshot2();
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_metrics_collect_now(m, GD_METRICS_ALL, &b), 0);
    cJSON *got = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(got);
    gd_buf_free(&b);
    assert_same_section(got, p1, "network");
    assert_same_section(got, p1, "disks");
    assert_same_section(got, p1, "cpu");
    char *mem_now = section(got, "memory"), *mem_p1 = section(p1, "memory");
    ck_assert_str_ne(mem_now, mem_p1); /* a gauge: read now, from snapshot 2 */
    free(mem_now);
    free(mem_p1);
    fake_now += 1000000000ull;
    cJSON *p2_ref = sample(ref, GD_METRICS_ALL), *p2 = sample(m, GD_METRICS_ALL);
    assert_same_section(p2, p2_ref, "network");
    assert_same_section(p2, p2_ref, "disks");
    assert_same_section(p2, p2_ref, "cpu");
    cJSON_Delete(p1_ref);
    cJSON_Delete(p1);
    cJSON_Delete(got);
    cJSON_Delete(p2_ref);
    cJSON_Delete(p2);
    gd_metrics_free(ref);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_processes_top_n_and_runtime_change)
{
    gd_metrics_t *m = make("processes", 1);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "processes.top")), 1);
    ASSERT_NUM(j, "processes.top.0.pid", 11788);
    cJSON_Delete(j);
    gd_config_t cfg;
    gd_config_defaults(&cfg);
    cfg.metrics.top_processes = 0;
    gd_metrics_apply_config(m, &cfg);
    fake_now += 1000000000ull;
    j = sample(m, GD_METRICS_ALL);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "processes.top")), 0);
    ASSERT_NUM(j, "processes.total", 3);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_processes_ended_and_new)
{
    gd_metrics_t *m = make("processes", 5);
    install_snapshot2();
    /* bash (1170) ended; a process 12000 started during the interval
     * (starttime after every process seen before) with 40 ticks. */
    sh("rm -r %s/1170", proc_dir);
    sh("mkdir %s/12000", proc_dir);
    write_file("proc/12000/stat",
               "12000 (new one) S 1 12000 12000 0 -1 4194560 100 0 0 0 30 10 0 0 20 0 1 0 "
               "144000 1000 50 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
    cJSON *j = sample(m, GD_METRICS_ALL);
    double k = 100.0 / (double)sysconf(_SC_CLK_TCK) / 4.57;
    ASSERT_NUM(j, "processes.total", 3);
    ASSERT_NUM(j, "processes.top.0.pid", 11788);
    ASSERT_NUM(j, "processes.top.1.pid", 12000);
    ck_assert_str_eq(str(j, "processes.top.1.name"), "new one");
    ck_assert_double_eq_tol(num(j, "processes.top.1.cpu_pct"), 40 * k, 0.005);
    ASSERT_NUM(j, "processes.top.2.pid", 1);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_processes_listing_only_when_a_pid_was_allocated)
{
    gd_metrics_t *m = make("processes", 5);
    /* loadavg's last pid unchanged: /proc is not listed again, the known
     * processes are re-read through their open files. */
    sh("mkdir %s/12000", proc_dir);
    write_file("proc/12000/stat",
               "12000 (late) S 1 12000 12000 0 -1 4194560 100 0 0 0 30 10 0 0 20 0 1 0 "
               "144000 1000 50 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
    write_file("proc/1170/stat", ""); /* unreadable now: dropped */
    fake_now += 1000000000ull;
    cJSON *j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "processes.total", 2);
    cJSON_Delete(j);
    /* A pid was allocated: the listing finds the new process. */
    write_file("proc/loadavg", "2.02 0.67 0.27 5/121 12000\n");
    fake_now += 1000000000ull;
    j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "processes.total", 3);
    ASSERT_NUM(j, "processes.top.0.pid", 12000);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

/* ---- processes on the agent's own /proc: CPU time from the kernel -------- */

/* A tree whose "self" names this process is taken for the agent's own /proc:
 * the CPU time of each process comes from its kernel CPU clock, and the stat
 * files (here written by the test, with 0 ticks) give names, RSS and start
 * times. The processes are real children, so their clocks are real. */
static pid_t children[2];

static void spawn_child(int i, int busy)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves nothing behind */
        if (getppid() != parent) _exit(0);
        time_t end = time(NULL) + 60;
        while (busy && time(NULL) < end)
            ;
        if (!busy) pause();
        _exit(0);
    }
    children[i] = pid;
}

static void own_tree_setup(void)
{
    tree_setup();
    spawn_child(0, 1);
    spawn_child(1, 0);
    sh("rm -r %s/1 %s/1170 %s/11788 %s/self && ln -s %d %s/self", proc_dir, proc_dir, proc_dir,
       proc_dir, (int)getpid(), proc_dir);
    sh("mkdir %s/%d %s/%d", proc_dir, (int)children[0], proc_dir, (int)children[1]);
}

static void own_tree_teardown(void)
{
    for (int i = 0; i < 2; i++) {
        kill(children[i], SIGKILL);
        waitpid(children[i], NULL, 0);
    }
    tree_teardown();
}

static void write_stat(pid_t pid, const char *name, uint64_t start, uint64_t rss_pages)
{
    char rel[64], text[512];
    snprintf(rel, sizeof(rel), "proc/%d/stat", (int)pid);
    snprintf(text, sizeof(text),
             "%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 %llu 1000 %llu "
             "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
             (int)pid, name, (int)pid, (int)pid, (unsigned long long)start,
             (unsigned long long)rss_pages);
    write_file(rel, text);
}

static void write_last_pid(pid_t pid)
{
    char text[64];
    snprintf(text, sizeof(text), "0.00 0.00 0.00 1/50 %d\n", (int)pid);
    write_file("proc/loadavg", text);
}

static uint64_t cpu_ns_of(pid_t pid)
{
    clockid_t id;
    struct timespec ts;
    ck_assert_int_eq(clock_getcpuclockid(pid, &id), 0);
    ck_assert_int_eq(clock_gettime(id, &ts), 0);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

START_TEST(test_processes_cpu_from_the_kernel_clock)
{
    pid_t busy = children[0], idle = children[1];
    long page = sysconf(_SC_PAGESIZE);
    write_stat(busy, "busy", 5000, 50);
    write_stat(idle, "idle", 5001, 10); /* less RSS: busy wins a tie at 0 */
    write_last_pid(busy - 1);
    uint64_t c0 = cpu_ns_of(busy);
    gd_metrics_t *m = make("processes", 1);
    uint64_t c0b = cpu_ns_of(busy);
    sleep_ms(300);
    fake_now += 1000000000ull; /* the interval is 1 s: cpu_pct = ns / 1e7 */
    uint64_t c1 = cpu_ns_of(busy);
    cJSON *j = sample(m, GD_METRICS_ALL);
    uint64_t c1b = cpu_ns_of(busy);
    ck_assert_msg(c1 > c0b, "the busy child did not run");
    /* Its stat file says 0 ticks: the figure is its clock's, read between
     * c0 and c0b at start and between c1 and c1b now. */
    ASSERT_NUM(j, "processes.total", 2);
    ASSERT_NUM(j, "processes.running", 1);
    ASSERT_NUM(j, "processes.top.0.pid", busy);
    double pct = num(j, "processes.top.0.cpu_pct");
    ck_assert_msg(pct >= (double)(c1 - c0b) / 1e7 - 0.01 && pct <= (double)(c1b - c0) / 1e7 + 0.01,
                  "cpu_pct %.2f, clock says %.2f..%.2f", pct, (double)(c1 - c0b) / 1e7,
                  (double)(c1b - c0) / 1e7);
    ck_assert_str_eq(str(j, "processes.top.0.name"), "busy");
    ASSERT_NUM(j, "processes.top.0.rss_bytes", 50.0 * page);
    cJSON_Delete(j);

    /* What is reported is read again each cycle. */
    write_stat(busy, "renamed", 5000, 70);
    fake_now += 1000000000ull;
    j = sample(m, GD_METRICS_ALL);
    ck_assert_str_eq(str(j, "processes.top.0.name"), "renamed");
    ASSERT_NUM(j, "processes.top.0.rss_bytes", 70.0 * page);
    cJSON_Delete(j);

    /* Its pid was allocated again (loadavg's last pid went past it) and the
     * stat file shows a later start: another process, which started during
     * the interval, so all its CPU time counts. */
    write_stat(busy, "reused", 900000, 70);
    write_last_pid(busy);
    fake_now += 1000000000ull;
    uint64_t c2 = cpu_ns_of(busy);
    j = sample(m, GD_METRICS_ALL);
    ck_assert_str_eq(str(j, "processes.top.0.name"), "reused");
    ck_assert_msg(num(j, "processes.top.0.cpu_pct") >= (double)c2 / 1e7 - 0.01,
                  "cpu_pct %.2f, all its time %.2f", num(j, "processes.top.0.cpu_pct"),
                  (double)c2 / 1e7);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_processes_stat_read_again_only_for_a_reallocated_pid)
{
    pid_t a = children[0], b = children[1];
    write_stat(a, "a", 5000, 50);
    write_stat(b, "b", 5001, 50);
    write_last_pid(a - 1);
    gd_metrics_t *m = make("processes", 0);
    /* No pid allocated: the known processes are read through their clocks,
     * not their stat files (this one could not be parsed now). */
    char rel[64];
    snprintf(rel, sizeof(rel), "proc/%d/stat", (int)a);
    write_file(rel, "");
    fake_now += 1000000000ull;
    cJSON *j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "processes.total", 2);
    cJSON_Delete(j);
    /* Its pid was allocated since: its stat file is read, and fails. */
    write_last_pid(a);
    fake_now += 1000000000ull;
    j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "processes.total", 1);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_filesystems_real_mounts_only)
{
    gd_metrics_t *m = make("filesystems", 5);
    uv_run(&loop, UV_RUN_DEFAULT); /* the statvfs requests queued when priming */
    cJSON *j = sample(m, GD_METRICS_ALL);
    /* proc, sysfs, devtmpfs, tmpfs, devpts, cgroup, cgroup2 are left out. */
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "filesystems")), 1);
    ck_assert_str_eq(str(j, "filesystems.0.mount"), "/");
    ck_assert_str_eq(str(j, "filesystems.0.device"), "/dev/vda");
    ck_assert_str_eq(str(j, "filesystems.0.type"), "ext4");
    ASSERT_NUM(j, "filesystems.0.total_bytes", 1000.0 * 4096);
    ASSERT_NUM(j, "filesystems.0.used_bytes", 600.0 * 4096);
    ASSERT_NUM(j, "filesystems.0.avail_bytes", 300.0 * 4096);
    ASSERT_NUM(j, "filesystems.0.used_pct", 66.67); /* used / (used + avail), as df */
    ASSERT_NUM(j, "filesystems.0.inodes_used_pct", 75.0);
    ASSERT_NUM(j, "filesystems.0.inodes_total", 100);
    ASSERT_NUM(j, "filesystems.0.inodes_free", 25);
    ck_assert_str_eq(str(j, "filesystems.0.status"), "ok");
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_filesystems_hung_mount_does_not_stall)
{
    slow_released = 0;
    write_file("proc/self/mountinfo",
               "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
               "40 26 0:50 / /slow rw,relatime shared:5 master:1 - nfs4 srv:/export rw\n"
               "41 26 0:51 / /mnt/my\\040disk rw - xfs /dev/vdb1 rw\n"
               "42 26 0:52 / /denied rw - ext4 /dev/vdc rw\n");
    gd_metrics_t *m = make("filesystems", 5);
    /* Let everything but /slow answer (each sample asks again; the
     * answered ones stay "ok" while their next request is out). */
    cJSON *j = NULL;
    for (int i = 0; i < 2500; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        cJSON_Delete(j);
        j = sample(m, GD_METRICS_ALL);
        if (strcmp(str(j, "filesystems.0.status"), "pending") != 0 &&
            strcmp(str(j, "filesystems.2.status"), "pending") != 0 &&
            strcmp(str(j, "filesystems.3.status"), "pending") != 0)
            break;
        usleep(2000);
    }
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "filesystems")), 4);
    ck_assert_str_eq(str(j, "filesystems.0.status"), "ok");
    ck_assert_str_eq(str(j, "filesystems.1.mount"), "/slow");
    ck_assert_str_eq(str(j, "filesystems.1.type"), "nfs4");
    ck_assert_str_eq(str(j, "filesystems.1.status"), "pending");
    ck_assert_str_eq(str(j, "filesystems.2.mount"), "/mnt/my disk");
    ck_assert_str_eq(str(j, "filesystems.3.status"), "error");
    ck_assert_str_eq(str(j, "filesystems.3.error"), "EACCES");
    cJSON_Delete(j);
    for (int i = 0; i < 100; i++) { /* the requests that last sample queued */
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    /* Past the bound the mount is reported, and the sample did not wait. */
    fake_now += 2500000000ull;
    uint64_t t0 = uv_hrtime();
    j = sample(m, GD_METRICS_ALL);
    ck_assert_uint_lt(uv_hrtime() - t0, 100000000ull);
    ck_assert_str_eq(str(j, "filesystems.1.status"), "timeout");
    ck_assert_str_eq(str(j, "filesystems.0.status"), "ok");
    cJSON_Delete(j);
    /* It answers at last. */
    pthread_mutex_lock(&slow_lock);
    slow_released = 1;
    pthread_cond_broadcast(&slow_cond);
    pthread_mutex_unlock(&slow_lock);
    uv_run(&loop, UV_RUN_DEFAULT);
    j = sample(m, GD_METRICS_ALL);
    ck_assert_str_eq(str(j, "filesystems.1.status"), "ok");
    ASSERT_NUM(j, "filesystems.1.total_bytes", 1000.0 * 4096);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_filesystems_free_with_request_out)
{
    slow_released = 0;
    write_file("proc/self/mountinfo", "40 26 0:50 / /slow rw - nfs4 srv:/export rw\n");
    gd_metrics_t *m = make("filesystems", 5);
    usleep(20000); /* the worker is now inside the slow statvfs */
    gd_metrics_free(m);
    pthread_mutex_lock(&slow_lock);
    slow_released = 1;
    pthread_cond_broadcast(&slow_cond);
    pthread_mutex_unlock(&slow_lock);
    /* The orphaned request completes and frees itself (ASan/valgrind
     * would see a leak or a use after free); teardown closes the loop. */
}
END_TEST

/* ---- the whole sample --------------------------------------------------------- */

START_TEST(test_all_sections_in_protocol_order)
{
    gd_metrics_t *m = make("all", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    static const char *const order[] = {"uptime_s",  "cpu",   "memory",      "load",
                                        "pressure",  "disks", "filesystems", "network",
                                        "processes", NULL};
    const cJSON *c = j->child;
    for (int i = 0; order[i]; i++, c = c->next) {
        ck_assert_ptr_nonnull(c);
        ck_assert_str_eq(c->string, order[i]);
    }
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(gd_metrics_total_errors(m), 0);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_mask_selects_sections)
{
    gd_metrics_t *m = make("all", 5);
    uint32_t mask;
    char err[256];
    cJSON *names = cJSON_Parse("[\"memory\", \"uptime\"]");
    ck_assert_int_eq(gd_metrics_mask_from_json(names, &mask, err, sizeof(err)), 0);
    cJSON *j = sample(m, mask);
    ck_assert_int_eq(cJSON_GetArraySize(j), 2);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "memory"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "uptime_s"));
    cJSON_Delete(j);
    cJSON_Delete(names);
    j = sample(m, 0);
    ck_assert_int_eq(cJSON_GetArraySize(j), 0);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_names_are_checked)
{
    uint32_t mask = 0;
    char err[256] = "";
    ck_assert_int_eq(gd_metrics_mask_from_list("cpu, memory,,load", &mask, err, sizeof(err)), 0);
    ck_assert_uint_eq(mask, (1u << 1) | (1u << 2) | (1u << 3));
    ck_assert_int_eq(gd_metrics_mask_from_list("all", &mask, err, sizeof(err)), 0);
    ck_assert_uint_eq(mask, GD_METRICS_ALL);
    ck_assert_int_eq(gd_metrics_mask_from_list("cpu,bogus", &mask, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'bogus'"));
    cJSON *names = cJSON_Parse("[\"cpu\", \"disk\"]");
    ck_assert_int_eq(gd_metrics_mask_from_json(names, &mask, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'disk'"));
    cJSON_Delete(names);
    names = cJSON_Parse("[\"cpu\", 3]");
    ck_assert_int_eq(gd_metrics_mask_from_json(names, &mask, err, sizeof(err)), -EINVAL);
    cJSON_Delete(names);

    gd_config_t cfg;
    gd_config_defaults(&cfg);
    snprintf(cfg.metrics.collectors, sizeof(cfg.metrics.collectors), "cpu,nope");
    gd_metrics_t *m = NULL;
    ck_assert_int_eq(gd_metrics_new(&m, &loop, &cfg, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err, "metrics.collectors"));
    ck_assert_ptr_nonnull(strstr(err, "'nope'"));
}
END_TEST

START_TEST(test_short_window_repeats_previous_rates)
{
    gd_metrics_t *m = make("cpu,memory", 5);
    install_snapshot2();
    cJSON *j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "cpu.usage_pct", 99.35);
    cJSON_Delete(j);
    /* 10 ms later, with the counters back at snapshot 1: too short a window
     * to divide by, so cpu repeats its values; memory (no rates) is read. */
    sh("cp -r %s/proc-snap1/. %s/", fixtures, proc_dir);
    fake_now += 10000000ull;
    j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "cpu.usage_pct", 99.35);
    ASSERT_NUM(j, "memory.available_bytes", 24092896.0 * 1024); /* snapshot 1's */
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

/* ---- failures ------------------------------------------------------------------ */

START_TEST(test_missing_source_disables_once)
{
    sh("rm -r %s/pressure", proc_dir);
    gd_metrics_t *m = make("all", 5);
    cJSON *j = sample(m, GD_METRICS_ALL);
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "pressure"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "cpu"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "processes"));
    cJSON_Delete(j);
    cJSON *st = gd_metrics_stats_json(m);
    ck_assert(cJSON_IsFalse(at(st, "pressure.enabled")));
    ck_assert(cJSON_IsTrue(at(st, "pressure.ok")));
    ck_assert_ptr_nonnull(strstr(str(st, "pressure.detail"), "pressure/cpu"));
    ASSERT_NUM(st, "pressure.errors", 0);
    ck_assert(cJSON_IsTrue(at(st, "cpu.ok")));
    ck_assert_ptr_null(cJSON_GetObjectItem(at(st, "cpu"), "enabled"));
    cJSON_Delete(st);
    ck_assert_uint_eq(gd_metrics_enabled_mask(m) & (1u << 4), 0);
    ck_assert_uint_eq(gd_metrics_total_errors(m), 0);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_failing_collector_is_counted_others_continue)
{
    gd_metrics_t *m = make("all", 5);
    write_file("proc/loadavg", "garbage\n");
    fake_now += 1000000000ull;
    cJSON *j = sample(m, GD_METRICS_ALL);
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "load"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "memory"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(j, "cpu"));
    cJSON_Delete(j);
    fake_now += 1000000000ull;
    cJSON_Delete(sample(m, GD_METRICS_ALL));
    cJSON *st = gd_metrics_stats_json(m);
    ck_assert(cJSON_IsFalse(at(st, "load.ok")));
    ASSERT_NUM(st, "load.errors", 2);
    ck_assert(cJSON_IsTrue(at(st, "memory.ok")));
    ck_assert(cJSON_IsNumber(at(st, "memory.last_us")));
    cJSON_Delete(st);
    ck_assert_uint_eq(gd_metrics_total_errors(m), 2);
    /* It recovers when its source does. */
    write_file("proc/loadavg", "0.50 0.40 0.30 1/99 1234\n");
    fake_now += 1000000000ull;
    j = sample(m, GD_METRICS_ALL);
    ASSERT_NUM(j, "load.load1", 0.5);
    cJSON_Delete(j);
    st = gd_metrics_stats_json(m);
    ck_assert(cJSON_IsTrue(at(st, "load.ok")));
    ASSERT_NUM(st, "load.errors", 2);
    cJSON_Delete(st);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_truncated_lines_are_rejected)
{
    gd_metrics_t *m = make("cpu,disks,network,memory", 5);
    write_file("proc/stat", "cpu  1 2\ncpu0 1 2\n");
    write_file("proc/diskstats", " 254 0 vda 1 2 3\n");
    write_file("proc/net/dev", "h1\nh2\n  eth0: 1 2 3\n");
    write_file("proc/meminfo", "MemFree: 12 kB\n");
    fake_now += 1000000000ull;
    cJSON *j = sample(m, GD_METRICS_ALL);
    ck_assert_int_eq(cJSON_GetArraySize(j), 0);
    cJSON_Delete(j);
    ck_assert_uint_eq(gd_metrics_total_errors(m), 4);
    gd_metrics_free(m);
}
END_TEST

static Suite *collectors_suite(void)
{
    Suite *s = suite_create("collectors");
    TCase *tc = tcase_create("fixtures");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_cpu_percentages);
    tcase_add_test(tc, test_memory_bytes);
    tcase_add_test(tc, test_load_and_uptime);
    tcase_add_test(tc, test_pressure_avg10);
    tcase_add_test(tc, test_disks_rates_of_whole_disks);
    tcase_add_test(tc, test_disks_leave_out_partitions);
    tcase_add_test(tc, test_network_rates_without_lo);
    tcase_add_test(tc, test_network_up_from_flags_when_unknown);
    tcase_add_test(tc, test_processes_top_by_cpu);
    tcase_add_test(tc, test_processes_top_n_and_runtime_change);
    tcase_add_test(tc, test_request_does_not_move_the_periodic_window);
    tcase_add_test(tc, test_processes_past_the_fd_budget);
    tcase_add_test(tc, test_processes_ended_and_new);
    tcase_add_test(tc, test_processes_listing_only_when_a_pid_was_allocated);
    tcase_add_test(tc, test_filesystems_real_mounts_only);
    tcase_add_test(tc, test_filesystems_hung_mount_does_not_stall);
    tcase_add_test(tc, test_filesystems_free_with_request_out);
    suite_add_tcase(s, tc);

    tc = tcase_create("own_proc");
    tcase_add_checked_fixture(tc, own_tree_setup, own_tree_teardown);
    tcase_add_test(tc, test_processes_cpu_from_the_kernel_clock);
    tcase_add_test(tc, test_processes_stat_read_again_only_for_a_reallocated_pid);
    suite_add_tcase(s, tc);

    tc = tcase_create("sample");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_all_sections_in_protocol_order);
    tcase_add_test(tc, test_mask_selects_sections);
    tcase_add_test(tc, test_names_are_checked);
    tcase_add_test(tc, test_short_window_repeats_previous_rates);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_missing_source_disables_once);
    tcase_add_test(tc, test_failing_collector_is_counted_others_continue);
    tcase_add_test(tc, test_truncated_lines_are_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(collectors_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

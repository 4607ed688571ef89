/* Check suite for the collectors against the live machine: the values must
 * agree with what the kernel says through other doors (meminfo, sysconf,
 * statvfs), and a process the test starts must show up when it burns CPU. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

static uv_loop_t loop;

static void loop_setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    gd_log_set_level(GD_LOG_ERROR);
}

static void loop_teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static gd_metrics_t *make(int top)
{
    gd_config_t cfg;
    gd_config_defaults(&cfg);
    cfg.metrics.top_processes = top;
    gd_metrics_t *m = NULL;
    char err[256] = "";
    ck_assert_msg(gd_metrics_new(&m, &loop, &cfg, err, sizeof(err)) == 0, "%s", err);
    return m;
}

static cJSON *sample(gd_metrics_t *m)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_metrics_collect(m, GD_METRICS_ALL, &b), 0);
    cJSON *j = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(j);
    gd_buf_free(&b);
    return j;
}

static double num(const cJSON *obj, const char *section, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, section);
    ck_assert_msg(s != NULL, "no section %s", section);
    const cJSON *v = key ? cJSON_GetObjectItemCaseSensitive(s, key) : s;
    ck_assert_msg(cJSON_IsNumber(v), "no number %s.%s", section, key ? key : "");
    return v->valuedouble;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

START_TEST(test_memory_total_is_meminfo)
{
    FILE *f = fopen("/proc/meminfo", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long long kb = 0;
    ck_assert_int_eq(fscanf(f, "MemTotal: %llu kB", &kb), 1);
    fclose(f);
    gd_metrics_t *m = make(5);
    cJSON *j = sample(m);
    ck_assert_double_eq(num(j, "memory", "total_bytes"), (double)kb * 1024);
    double used = num(j, "memory", "used_bytes"), avail = num(j, "memory", "available_bytes");
    ck_assert_double_eq(used + avail, (double)kb * 1024);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_cpu_count_is_online_cpus)
{
    gd_metrics_t *m = make(5);
    sleep_ms(200);
    cJSON *j = sample(m);
    ck_assert_double_eq(num(j, "cpu", "count"), (double)sysconf(_SC_NPROCESSORS_ONLN));
    ck_assert_int_eq(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cpu"), "per_cpu")),
        (int)sysconf(_SC_NPROCESSORS_ONLN));
    double usage = num(j, "cpu", "usage_pct");
    ck_assert(usage >= 0.0 && usage <= 100.0);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_root_filesystem_has_statvfs_total)
{
    struct statvfs sv;
    ck_assert_int_eq(statvfs("/", &sv), 0);
    gd_metrics_t *m = make(5);
    uv_run(&loop, UV_RUN_DEFAULT); /* the statvfs requests queued at start */
    cJSON *j = sample(m);
    const cJSON *fs, *root = NULL;
    cJSON_ArrayForEach(fs, cJSON_GetObjectItem(j, "filesystems"))
    {
        if (strcmp(cJSON_GetObjectItem(fs, "mount")->valuestring, "/") == 0) root = fs;
    }
    ck_assert_msg(root != NULL, "/ is not in filesystems");
    ck_assert_double_eq(cJSON_GetObjectItem(root, "total_bytes")->valuedouble,
                        (double)sv.f_blocks * (double)sv.f_frsize);
    ck_assert_str_eq(cJSON_GetObjectItem(root, "status")->valuestring, "ok");
    /* No pseudo filesystem made it in. */
    cJSON_ArrayForEach(fs, cJSON_GetObjectItem(j, "filesystems"))
    {
        const char *type = cJSON_GetObjectItem(fs, "type")->valuestring;
        ck_assert_str_ne(type, "proc");
        ck_assert_str_ne(type, "tmpfs");
        ck_assert_str_ne(type, "cgroup2");
    }
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_uptime_and_load_are_live)
{
    double up = 0;
    FILE *f = fopen("/proc/uptime", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%lf", &up), 1);
    fclose(f);
    gd_metrics_t *m = make(5);
    cJSON *j = sample(m);
    ck_assert_double_eq_tol(cJSON_GetObjectItem(j, "uptime_s")->valuedouble, up, 2.0);
    ck_assert(num(j, "load", "procs_total") >= 1);
    cJSON_Delete(j);
    gd_metrics_free(m);
}
END_TEST

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Whether this process holds an fd open on path. */
static int holds_fd_on(const char *path)
{
    int found = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char target[256];
        ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            found |= strcmp(target, path) == 0;
        }
    }
    closedir(d);
    return found;
}

/* utime + stime of pid, in clock ticks. */
static long long child_ticks(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    unsigned long long ut, st;
    ck_assert_int_eq(sscanf(strrchr(text, ')') + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st),
                     2);
    return (long long)(ut + st);
}

static const cJSON *find_pid(const cJSON *j, pid_t pid)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "processes"), "top"))
    {
        if ((pid_t)cJSON_GetObjectItem(p, "pid")->valuedouble == pid) return p;
    }
    return NULL;
}

START_TEST(test_busy_child_in_top_and_dropped_when_gone)
{
    gd_metrics_t *m = make(10);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        for (volatile unsigned long i = 0;; i++)
            ;
    }
    char stat_path[64];
    snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)child);
    sleep_ms(100);
    cJSON_Delete(sample(m)); /* the child is known from here on */
    long long ticks0 = child_ticks(child);
    uint64_t t0 = uv_hrtime();
    sleep_ms(1000);
    cJSON *j = sample(m);
    long long ticks1 = child_ticks(child);
    double window_s = (double)(uv_hrtime() - t0) / 1e9;
    const cJSON *p = find_pid(j, child);
    ck_assert_msg(p != NULL, "busy child %d is not in the top 10", (int)child);
    double pct = cJSON_GetObjectItem(p, "cpu_pct")->valuedouble;
    /* What the kernel says the child used over (nearly) the same window;
     * other work on the machine decides how much that is. */
    double want = (double)(ticks1 - ticks0) * 100.0 / (double)sysconf(_SC_CLK_TCK) / window_s;
    ck_assert_msg(pct > 5.0, "cpu_pct %.2f", pct);
    ck_assert_msg(pct >= want * 0.85 - 3.0 && pct <= want * 1.15 + 3.0,
                  "cpu_pct %.2f, the kernel says %.2f", pct, want);
    cJSON_Delete(j);
    /* Its stat file stays open between cycles... */
    ck_assert(holds_fd_on(stat_path));

    kill(child, SIGKILL);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    sleep_ms(100); /* past the minimum window, or the sample repeats the last */
    j = sample(m);
    ck_assert_ptr_null(find_pid(j, child));
    cJSON_Delete(j);
    /* ...and is closed once the process has ended. */
    ck_assert(!holds_fd_on(stat_path));
    gd_metrics_free(m);
}
END_TEST

static void *spin(void *arg)
{
    time_t end = time(NULL) + 60;
    while (time(NULL) < end)
        ;
    return arg;
}

/* A process's CPU time is all its threads': one whose main thread sleeps
 * while another burns CPU is as busy as the kernel says (its main thread's
 * own time, /proc/<pid>/schedstat's, would be about 0). */
START_TEST(test_busy_thread_counts_for_its_process)
{
    gd_metrics_t *m = make(10);
    pid_t parent = getpid();
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(0);
        pthread_t t;
        if (pthread_create(&t, NULL, spin, NULL) != 0) _exit(1);
        pause();
        _exit(0);
    }
    sleep_ms(100);
    cJSON_Delete(sample(m));
    long long ticks0 = child_ticks(child);
    uint64_t t0 = uv_hrtime();
    sleep_ms(1000);
    cJSON *j = sample(m);
    long long ticks1 = child_ticks(child);
    double window_s = (double)(uv_hrtime() - t0) / 1e9;
    const cJSON *p = find_pid(j, child);
    ck_assert_msg(p != NULL, "process %d with a busy thread is not in the top 10", (int)child);
    double pct = cJSON_GetObjectItem(p, "cpu_pct")->valuedouble;
    double want = (double)(ticks1 - ticks0) * 100.0 / (double)sysconf(_SC_CLK_TCK) / window_s;
    ck_assert_msg(pct > 5.0, "cpu_pct %.2f", pct);
    ck_assert_msg(pct >= want * 0.85 - 3.0 && pct <= want * 1.15 + 3.0,
                  "cpu_pct %.2f, the kernel says %.2f", pct, want);
    cJSON_Delete(j);
    kill(child, SIGKILL);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    gd_metrics_free(m);
}
END_TEST

START_TEST(test_stat_files_stay_open_between_cycles)
{
    gd_metrics_t *m = make(5);
    sleep_ms(60);
    cJSON *j = sample(m);
    int procs = (int)num(j, "processes", "total");
    cJSON_Delete(j);
    /* One kept fd per process, give or take the ones that came and went. */
    int fds = count_fds();
    ck_assert_int_ge(fds, procs - 5);
    gd_metrics_free(m);
    ck_assert_int_le(count_fds(), fds - procs + 5);
}
END_TEST

/* The cpu line of /proc/stat in seconds per mode (user, nice, system, idle). */
static void proc_stat_seconds(double out[4])
{
    FILE *f = fopen("/proc/stat", "r");
    ck_assert_ptr_nonnull(f);
    unsigned long long t[4];
    ck_assert_int_eq(fscanf(f, "cpu %llu %llu %llu %llu", &t[0], &t[1], &t[2], &t[3]), 4);
    fclose(f);
    for (int i = 0; i < 4; i++)
        out[i] = (double)t[i] / (double)sysconf(_SC_CLK_TCK);
}

static double sub(const cJSON *j, const char *section, const char *obj, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, section);
    ck_assert_ptr_nonnull(s);
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, obj), key);
    ck_assert_msg(cJSON_IsNumber(v), "no number %s.%s.%s", section, obj, key);
    return v->valuedouble;
}

/* The counters beside the rates: never going back between two samples, and
 * between two reads of /proc/stat taken around the sample. */
START_TEST(test_counters_monotonic_and_match_proc)
{
    static const char *const modes[] = {"user", "nice", "system", "idle"};
    gd_metrics_t *m = make(0);
    double before[4], after[4];
    sleep_ms(60);
    proc_stat_seconds(before);
    cJSON *a = sample(m);
    proc_stat_seconds(after);
    for (int i = 0; i < 4; i++) {
        double v = sub(a, "cpu", "seconds", modes[i]);
        ck_assert_msg(v >= before[i] - 1e-9 && v <= after[i] + 1e-9, "%s %f not in [%f, %f]",
                      modes[i], v, before[i], after[i]);
    }
    /* Burn some CPU and move some bytes so the second sample has grown. */
    volatile unsigned long spin = 0;
    for (unsigned long i = 0; i < 60000000UL; i++)
        spin += i;
    sleep_ms(60);
    cJSON *b = sample(m);
    double busy_a = 0, busy_b = 0;
    for (int i = 0; i < 4; i++) {
        ck_assert(sub(b, "cpu", "seconds", modes[i]) >= sub(a, "cpu", "seconds", modes[i]));
        if (i != 3) {
            busy_a += sub(a, "cpu", "seconds", modes[i]);
            busy_b += sub(b, "cpu", "seconds", modes[i]);
        }
    }
    ck_assert_msg(busy_b > busy_a, "busy seconds did not grow: %f -> %f", busy_a, busy_b);
    const char *const keys[][2] = {{"disks", "reads"},
                                   {"disks", "read_bytes"},
                                   {"disks", "write_bytes"},
                                   {"network", "rx_bytes"},
                                   {"network", "tx_packets"}};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const cJSON *la = cJSON_GetObjectItem(a, keys[k][0]),
                    *lb = cJSON_GetObjectItem(b, keys[k][0]);
        if (!la || !lb) continue;
        for (int i = 0; i < cJSON_GetArraySize(la) && i < cJSON_GetArraySize(lb); i++) {
            const cJSON *ea = cJSON_GetArrayItem(la, i), *eb = cJSON_GetArrayItem(lb, i);
            if (strcmp(cJSON_GetObjectItem(ea, "name")->valuestring,
                       cJSON_GetObjectItem(eb, "name")->valuestring) != 0)
                continue;
            ck_assert(cJSON_GetObjectItem(eb, keys[k][1])->valuedouble >=
                      cJSON_GetObjectItem(ea, keys[k][1])->valuedouble);
        }
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    gd_metrics_free(m);
}
END_TEST

static Suite *live_suite(void)
{
    Suite *s = suite_create("collectors_live");
    TCase *tc = tcase_create("live");
    tcase_add_checked_fixture(tc, loop_setup, loop_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_memory_total_is_meminfo);
    tcase_add_test(tc, test_cpu_count_is_online_cpus);
    tcase_add_test(tc, test_root_filesystem_has_statvfs_total);
    tcase_add_test(tc, test_uptime_and_load_are_live);
    tcase_add_test(tc, test_busy_child_in_top_and_dropped_when_gone);
    tcase_add_test(tc, test_busy_thread_counts_for_its_process);
    tcase_add_test(tc, test_stat_files_stay_open_between_cycles);
    tcase_add_test(tc, test_counters_monotonic_and_match_proc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(live_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

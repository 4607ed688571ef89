/* Benchmark of one metrics collection cycle (issue 4, acceptance 2 and 3):
 * the CPU time of a full cycle (all collectors, top-5 processes) and of a
 * cycle without processes, medians over 1,000 cycles, next to the cost of
 * the bare preads of the same files; then the CPU time Debian's
 * prometheus-node-exporter spends per scrape on loopback, and the ratio.
 * --quick runs a few-second smoke version. Figures, not pass/fail. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "collectors/metrics.h"
#include "collectors/registry.h"

#define NODE_EXPORTER "/usr/bin/prometheus-node-exporter"

static uint64_t bench_now_ns = 1000000000000ull;

static uint64_t bench_clock(void *ctx)
{
    return bench_now_ns;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median of n samples, in microseconds (sorts in place). */
static double median_us(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    return (double)v[n / 2] / 1000.0;
}

static double pct_us(const uint64_t *sorted, int n, int pct)
{
    return (double)sorted[(n - 1) * pct / 100] / 1000.0;
}

/* ---- guestd's cycle ----------------------------------------------------- */

/* CPU time of each of n cycles of mask: the sample written, then the loop
 * run until the thread pool's statvfs answers are in (their CPU counts). */
static void time_cycles(gd_metrics_t *m, uv_loop_t *loop, uint32_t mask, int n, uint64_t *out,
                        gd_buf_t *buf)
{
    for (int i = 0; i < n; i++) {
        bench_now_ns += 1000000000ull; /* a second apart: every collector runs */
        uint64_t t0 = cpu_ns();
        gd_metrics_collect(m, mask, buf);
        uv_run(loop, UV_RUN_DEFAULT);
        out[i] = cpu_ns() - t0;
    }
}

/* ---- the bare syscalls ---------------------------------------------------- */

static int open_all(int *fds, int max, const char *const *paths)
{
    int n = 0;
    for (int i = 0; paths[i] && n < max; i++) {
        int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        if (fd >= 0) fds[n++] = fd;
    }
    return n;
}

static int open_proc_stats(int *fds, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) fds[n++] = fd;
    }
    if (d) closedir(d);
    return n;
}

static void time_preads(const int *fds, int nfds, int with_statvfs, int n, uint64_t *out)
{
    static char buf[65536];
    struct statvfs sv;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = cpu_ns();
        for (int k = 0; k < nfds; k++)
            if (pread(fds[k], buf, sizeof(buf), 0) < 0) buf[0] = 0;
        if (with_statvfs) statvfs("/", &sv);
        out[i] = cpu_ns() - t0;
    }
}

/* ---- node_exporter ---------------------------------------------------------- */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0) {
        if (s >= 0) close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

/* One GET /metrics; returns the body size, or -1. */
static long scrape(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0) return -1;
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(s);
        return -1;
    }
    const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(s, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
        close(s);
        return -1;
    }
    static char buf[65536];
    long total = 0;
    ssize_t n;
    while ((n = read(s, buf, sizeof(buf))) > 0)
        total += n;
    close(s);
    return n < 0 ? -1 : total;
}

/* utime + stime of pid in clock ticks (all its threads). */
static long long proc_ticks(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = '\0';
    char *p = strrchr(text, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* CPU microseconds node_exporter spends per scrape, or < 0 when it could
 * not be measured (message printed). */
static double node_exporter_us(int scrapes, long *body)
{
    if (access(NODE_EXPORTER, X_OK) != 0) {
        printf("node_exporter: skipped: %s is not installed "
               "(Debian package prometheus-node-exporter)\n",
               NODE_EXPORTER);
        return -1;
    }
    int port = free_port();
    if (port < 0) {
        printf("node_exporter: skipped: no free loopback port\n");
        return -1;
    }
    char listen[64];
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(NODE_EXPORTER, NODE_EXPORTER, listen, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        printf("node_exporter: skipped: fork: %s\n", strerror(errno));
        return -1;
    }
    double result = -1;
    int up = 0;
    for (int i = 0; i < 200 && !up; i++) { /* up to 10 s to start */
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        up = scrape(port) > 0;
    }
    if (!up) {
        printf("node_exporter: skipped: it did not answer on 127.0.0.1:%d\n", port);
        goto out;
    }
    for (int i = 0; i < 3; i++) /* warm-up */
        scrape(port);
    long long t0 = proc_ticks(pid);
    uint64_t w0 = wall_ns();
    for (int i = 0; i < scrapes; i++)
        *body = scrape(port);
    uint64_t wall = wall_ns() - w0;
    long long t1 = proc_ticks(pid);
    if (t0 < 0 || t1 < 0 || *body <= 0) {
        printf("node_exporter: skipped: could not read its CPU time\n");
        goto out;
    }
    long tck = sysconf(_SC_CLK_TCK);
    result = (double)(t1 - t0) * 1e6 / (double)tck / scrapes;
    printf("node_exporter scrape (%d scrapes, %ld-byte body): %.0f us CPU per scrape "
           "(%.0f us wall)\n",
           scrapes, *body, result, (double)wall / 1000.0 / scrapes);
out:
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return result;
}

int main(int argc, char **argv)
{
    int quick = 0, cycles = 1000, scrapes = 100;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
            cycles = 100;
            scrapes = 10;
        } else if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc) {
            cycles = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--cycles N]\n", argv[0]);
            return 2;
        }
    }
    if (cycles < 10) cycles = 10;
    gd_log_set_level(GD_LOG_ERROR);

    uv_loop_t loop;
    uv_loop_init(&loop);
    gd_config_t cfg;
    gd_config_defaults(&cfg);
    cfg.metrics.top_processes = 5;
    gd_metrics_opts_t opts = {.now_ns = bench_clock};
    gd_metrics_t *m;
    char err[256];
    if (gd_metrics_new_ex(&m, &loop, &cfg, &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_collect: %s\n", err);
        return 1;
    }
    uint32_t without_processes = GD_METRICS_ALL & ~(1u << gd_collector_index("processes"));
    uint64_t *full = calloc((size_t)cycles, sizeof(uint64_t));
    uint64_t *lite = calloc((size_t)cycles, sizeof(uint64_t));
    gd_buf_t buf;
    gd_buf_init(&buf);
    time_cycles(m, &loop, GD_METRICS_ALL, 20, full, &buf); /* warm-up */

    /* Back to back, as an agent configured each way would run them (only
     * much closer together, so caches are warmer than every 30 s). */
    time_cycles(m, &loop, GD_METRICS_ALL, cycles, full, &buf);
    time_cycles(m, &loop, without_processes, 20, lite, &buf); /* warm-up */
    time_cycles(m, &loop, without_processes, cycles, lite, &buf);
    gd_metrics_collect(m, GD_METRICS_ALL, &buf);
    cJSON *sample = cJSON_Parse(buf.data);
    int procs = cJSON_GetObjectItem(cJSON_GetObjectItem(sample, "processes"), "total")->valueint;
    int cpus = cJSON_GetObjectItem(cJSON_GetObjectItem(sample, "cpu"), "count")->valueint;
    cJSON_Delete(sample);
    size_t sample_bytes = buf.len;

    double full_us = median_us(full, cycles);
    double lite_us = median_us(lite, cycles);
    printf("bench_collect: %d cycles, %d processes, %d CPUs, sample %zu bytes%s\n", cycles, procs,
           cpus, sample_bytes, quick ? " (quick)" : "");
    printf("full cycle (all collectors, top 5): median %.1f us CPU (p10 %.1f, p90 %.1f)\n", full_us,
           pct_us(full, cycles, 10), pct_us(full, cycles, 90));
    printf("cycle without processes:           median %.1f us CPU (p10 %.1f, p90 %.1f)\n", lite_us,
           pct_us(lite, cycles, 10), pct_us(lite, cycles, 90));

    /* The floor: bare preads of the same files through fds kept open. */
    static const char *const system_files[] = {"/proc/uptime",       "/proc/stat",
                                               "/proc/meminfo",      "/proc/loadavg",
                                               "/proc/pressure/cpu", "/proc/pressure/memory",
                                               "/proc/pressure/io",  "/proc/diskstats",
                                               "/proc/net/dev",      NULL};
    static int sys_fds[16], proc_fds[8192];
    int nsys = open_all(sys_fds, 16, system_files);
    int nproc = open_proc_stats(proc_fds, 8192);
    time_preads(sys_fds, nsys, 1, cycles, lite);
    double raw_sys = median_us(lite, cycles);
    time_preads(proc_fds, nproc, 0, cycles, lite);
    double raw_proc = median_us(lite, cycles);
    printf("bare preads (the floor): %d system files + statvfs %.1f us, %d process stat files "
           "%.1f us\n",
           nsys, raw_sys, nproc, raw_proc);
    if (procs > 0 && nproc > 0)
        printf("per process: guestd %.2f us, bare pread %.2f us\n", (full_us - lite_us) / procs,
               raw_proc / nproc);
    for (int i = 0; i < nsys; i++)
        close(sys_fds[i]);
    for (int i = 0; i < nproc; i++)
        close(proc_fds[i]);

    long body = 0;
    double ne_us = node_exporter_us(scrapes, &body);
    if (ne_us > 0)
        printf("ratio: a node_exporter scrape costs %.0fx guestd's full cycle (target >= 30x)\n",
               ne_us / full_us);

    gd_buf_free(&buf);
    free(full);
    free(lite);
    gd_metrics_free(m);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}

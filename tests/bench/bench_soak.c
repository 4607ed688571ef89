/* Soak: the real guestd on a unix socket, fed a steady stream of requests
 * (1,000 a second by default: mostly ping, with info, metrics.get,
 * metrics.history, health.get and config.get mixed in) while it samples
 * metrics every 100 ms into its history and its metrics log. Prints the
 * agent's RSS and open descriptors after a warm-up, half way and at the
 * end, with the requests' latency. Fails when a response is lost, the agent
 * dies or exits non-zero, or (full run) descriptors leak or RSS grows by 1%
 * or more from the end of the warm-up to the end.
 *
 * The agent runs with the environment packaging/guestd.service gives it
 * (its Environment= lines), as an installed agent does: that unit bounds
 * glibc's per-thread cache of freed chunks, which otherwise fills for
 * minutes under this load (docs/security.md). --glibc-defaults runs the
 * agent without it, to see the difference.
 *
 *   bench_soak            10 minutes (after a 30 s warm-up)
 *   bench_soak --quick    5 seconds, for ctest (figures only, no growth check)
 *   bench_soak --seconds N --rate R --warmup N --glibc-defaults
 *
 * GUESTD_BIN names the agent (ctest sets it), GUESTD_UNIT the unit file
 * (default: the source tree's packaging/guestd.service). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A "Name: N kB" line of /proc/<pid>/status in KiB, or -1. */
static long status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* Open descriptors of pid: all, and the agent's own (without the processes
 * collector's /proc/<n>/stat files, one per process of the machine, which
 * come and go with the machine's processes). */
static void fd_counts(pid_t pid, int *all, int *own)
{
    char path[64], target[256], link[320];
    *all = *own = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        (*all)++;
        snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n < 0) continue;
        target[n] = '\0';
        int pidnum = 0;
        char tail[16] = "";
        if (sscanf(target, "/proc/%d/%15s", &pidnum, tail) == 2 && strcmp(tail, "stat") == 0)
            continue;
        (*own)++;
    }
    closedir(d);
}

/* The assignments of the unit's Environment= lines, "NAME=value" each, in
 * env[] (at most max); returns how many, or -1 when the file cannot be read
 * or a line uses quoting, which this reader does not take apart. */
static int unit_environment(const char *unit, char env[][256], int max)
{
    FILE *f = fopen(unit, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Environment=", 12) != 0) continue;
        if (strpbrk(line, "\"'\\")) {
            fclose(f);
            return -1;
        }
        for (char *tok = strtok(line + 12, " \t\n"); tok && n < max; tok = strtok(NULL, " \t\n"))
            if (strchr(tok, '=')) snprintf(env[n++], sizeof(env[0]), "%s", tok);
    }
    fclose(f);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct figures_s {
    double t;
    long rss;
    long rss_anon; /* the heap and stacks; the rest of RSS is file pages (code) */
    int fds, own_fds;
} figures_t;

static figures_t sample(pid_t pid, double t0)
{
    figures_t f = {now_s() - t0, status_kib(pid, "VmRSS"), status_kib(pid, "RssAnon"), 0, 0};
    fd_counts(pid, &f.fds, &f.own_fds);
    return f;
}

static void print_figures(const char *what, figures_t f)
{
    printf("  %-10s t=%6.1f s  RSS %6ld KiB (anon %ld)  fds %4d (own %d)\n", what, f.t, f.rss,
           f.rss_anon, f.fds, f.own_fds);
    fflush(stdout);
}

/* The request for sequence number n: the mix of a busy host. */
static int request_line(char *buf, size_t len, uint64_t n)
{
    const char *cmd = "ping", *args = "";
    if (n % 1000 == 999)
        cmd = "health.get";
    else if (n % 100 == 50)
        cmd = "metrics.get";
    else if (n % 200 == 20)
        cmd = "metrics.history", args = ",\"args\":{\"limit\":5}";
    else if (n % 300 == 30)
        cmd = "config.get", args = ",\"args\":{\"key\":\"metrics.interval_ms\"}";
    else if (n % 50 == 5)
        cmd = "info";
    return snprintf(buf, len, "{\"id\":%llu,\"cmd\":\"%s\"%s}\n", (unsigned long long)n, cmd, args);
}

int main(int argc, char **argv)
{
    double seconds = 600, warmup = 30, rate = 1000;
    int quick = 0, glibc_defaults = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
            seconds = 5;
            warmup = 1;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc) {
            warmup = atof(argv[++i]);
        } else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            rate = atof(argv[++i]);
        } else if (strcmp(argv[i], "--glibc-defaults") == 0) {
            glibc_defaults = 1;
        } else {
            fprintf(stderr, "usage: bench_soak [--quick] [--seconds N] [--warmup N] [--rate R] "
                            "[--glibc-defaults]\n");
            return 2;
        }
    }
    const char *bin = getenv("GUESTD_BIN");
    if (!bin) bin = "build/guestd";
    signal(SIGPIPE, SIG_IGN);

    const char *unit = getenv("GUESTD_UNIT");
    if (!unit) unit = GUESTD_SOURCE_DIR "/packaging/guestd.service";
    char unit_env[8][256];
    int n_unit_env = 0;
    if (!glibc_defaults) {
        n_unit_env = unit_environment(unit, unit_env, 8);
        if (n_unit_env < 0) {
            fprintf(stderr, "bench_soak: cannot take Environment= from %s\n", unit);
            return 1;
        }
    }
    printf("agent environment from %s:", glibc_defaults ? "nothing (--glibc-defaults)" : unit);
    for (int i = 0; i < n_unit_env; i++)
        printf(" %s", unit_env[i]);
    printf("%s\n", n_unit_env ? "" : " (none)");

    char dir[] = "/tmp/guestd-soak-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char sock[64], chan[100], logset[120], stderr_path[64];
    snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
    snprintf(chan, sizeof(chan), "unix-listen:%s", sock);
    snprintf(logset, sizeof(logset), "metrics.log_path=%s/log/metrics.ndjson", dir);
    snprintf(stderr_path, sizeof(stderr_path), "%s/stderr.log", dir);

    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        /* An interrupted soak must not leave its agent running. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (int i = 0; i < n_unit_env; i++)
            putenv(unit_env[i]);
        int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 2);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) dup2(null, 1);
        execl(bin, bin, "--channel", chan, "-c", "/dev/null", "--log-level", "warn", "--set",
              "metrics.interval_ms=100", "--set", "health.interval_ms=1000", "--set", logset,
              "--set", "metrics.log_max_bytes=1048576", "--set", "metrics.log_keep=2", "--set",
              "health.min_free_bytes=0", (char *)NULL);
        perror(bin);
        _exit(127);
    }

    /* Connect once it listens. */
    int s = -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    for (double give_up = now_s() + 10; s < 0;) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            s = c;
            break;
        }
        close(c);
        if (now_s() > give_up || waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "bench_soak: guestd did not listen on %s\n", sock);
            return 1;
        }
        usleep(10000);
    }
    fcntl(s, F_SETFL, O_NONBLOCK);

    /* The load runs through the warm-up too: the figures at its end are those
     * of an agent that has settled under this load. */
    uint64_t total = (uint64_t)((warmup + seconds) * rate + 0.5);
    double *sent_at = calloc(total ? total : 1, sizeof(double));
    double *lat = calloc(total ? total : 1, sizeof(double));
    unsigned char *answered = calloc(total ? total : 1, 1);
    size_t rcap = 1 << 20, rlen = 0;
    char *rbuf = malloc(rcap);
    size_t wcap = 1 << 16, wlen = 0;
    char *wbuf = malloc(wcap);
    if (!sent_at || !lat || !answered || !rbuf || !wbuf) return 1;

    uint64_t next = 0, responses = 0, events = 0, errors = 0, dup = 0;
    double t0 = now_s();
    double settled = t0 + warmup, end = settled + seconds;
    int started = 0, failed = 0;
    figures_t launch = sample(pid, t0), first = launch, mid = launch, last = launch;
    int have_mid = 0;
    print_figures("launch", launch);
    double next_print = settled + 60;

    while (1) {
        double t = now_s();
        if (!started && t >= settled) {
            started = 1;
            first = sample(pid, t0);
            print_figures("start", first);
        }
        if (next >= total && (responses >= total || t > end + 10)) break;
        if (started && !have_mid && t >= settled + seconds / 2) {
            have_mid = 1;
            mid = sample(pid, t0);
            print_figures("half way", mid);
        }
        if (started && t > next_print) {
            print_figures("running", sample(pid, t0));
            next_print += 60;
        }
        /* Requests due by now (absolute schedule, no drift). */
        uint64_t due = (uint64_t)((t - t0) * rate);
        if (due > total) due = total;
        while (next < due && wcap - wlen > 256) {
            sent_at[next] = t;
            wlen += (size_t)request_line(wbuf + wlen, wcap - wlen, next);
            next++;
        }
        if (wlen) {
            ssize_t n = send(s, wbuf, wlen, MSG_NOSIGNAL);
            if (n > 0) {
                memmove(wbuf, wbuf + n, wlen - (size_t)n);
                wlen -= (size_t)n;
            } else if (n < 0 && errno != EAGAIN) {
                fprintf(stderr, "bench_soak: send: %s\n", strerror(errno));
                failed = 1;
                break;
            }
        }
        struct pollfd p = {.fd = s, .events = POLLIN | (wlen ? POLLOUT : 0)};
        poll(&p, 1, 1);
        for (;;) {
            if (rcap - rlen < 65536) {
                rcap *= 2;
                rbuf = realloc(rbuf, rcap);
                if (!rbuf) return 1;
            }
            ssize_t n = recv(s, rbuf + rlen, rcap - rlen, 0);
            if (n == 0) {
                fprintf(stderr, "bench_soak: the agent closed the connection\n");
                failed = 1;
                goto out;
            }
            if (n < 0) break;
            rlen += (size_t)n;
        }
        double tr = now_s();
        char *line = rbuf, *nl;
        while ((nl = memchr(line, '\n', rlen - (size_t)(line - rbuf))) != NULL) {
            *nl = '\0';
            unsigned long long id;
            if (sscanf(line, "{\"id\":%llu,\"ok\":", &id) == 1 && id < total) {
                if (answered[id]) {
                    dup++;
                } else {
                    answered[id] = 1;
                    lat[responses++] = tr - sent_at[id];
                    if (!strstr(line, "\"ok\":true")) errors++;
                }
            } else if (strncmp(line, "{\"event\":", 9) == 0) {
                events++;
            } else {
                fprintf(stderr, "bench_soak: unexpected line: %.200s\n", line);
                errors++;
            }
            line = nl + 1;
        }
        rlen -= (size_t)(line - rbuf);
        memmove(rbuf, line, rlen);
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "bench_soak: guestd died\n");
            pid = -1;
            failed = 1;
            break;
        }
    }
out:
    if (pid > 0) last = sample(pid, t0);
    double elapsed = now_s() - t0;
    print_figures("end", last);

    qsort(lat, responses, sizeof(double), cmp_double);
    double p50 = responses ? lat[responses / 2] * 1e3 : 0;
    double p99 = responses ? lat[(size_t)((double)responses * 0.99)] * 1e3 : 0;
    double pmax = responses ? lat[responses - 1] * 1e3 : 0;
    long growth = last.rss - first.rss, growth2 = last.rss - mid.rss;
    double pct = first.rss > 0 ? 100.0 * (double)growth / (double)first.rss : 0;
    double pct2 = mid.rss > 0 ? 100.0 * (double)growth2 / (double)mid.rss : 0;
    printf("soak: %.0f s (%.0f s warm-up) at %.0f req/s (%.0f achieved) with metrics every 100 ms: "
           "%llu requests, %llu responses (%llu errors, %llu duplicates), %llu events\n",
           elapsed, warmup, rate, elapsed > 0 ? (double)next / elapsed : 0,
           (unsigned long long)next, (unsigned long long)responses, (unsigned long long)errors,
           (unsigned long long)dup, (unsigned long long)events);
    printf("soak: latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", p50, p99, pmax);
    printf("soak: RSS %ld -> %ld KiB (%+ld KiB, %+.2f%%); second half %ld -> %ld KiB (%+ld KiB, "
           "%+.2f%%); RssAnon %ld -> %ld KiB; fds %d -> %d (own %d -> %d)\n",
           first.rss, last.rss, growth, pct, mid.rss, last.rss, growth2, pct2, first.rss_anon,
           last.rss_anon, first.fds, last.fds, first.own_fds, last.own_fds);

    if (responses < next) {
        fprintf(stderr, "bench_soak: %llu responses lost\n",
                (unsigned long long)(next - responses));
        failed = 1;
    }
    if (errors || dup) failed = 1;
    if (!quick && (!have_mid || pct >= 1.0 || last.own_fds != first.own_fds)) {
        fprintf(stderr, "bench_soak: not flat (RSS %+.2f%% from start to end, own fds %d -> %d)\n",
                pct, first.own_fds, last.own_fds);
        failed = 1;
    }
    close(s);
    if (pid > 0) {
        kill(pid, SIGTERM);
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench_soak: guestd exited with status %d\n", status);
            failed = 1;
        }
    }
    if (failed) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "tail -n 20 %s >&2", stderr_path);
        if (system(cmd) != 0) { /* the log is only a help */
        }
    }
    char rm[200];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "bench_soak: could not remove %s\n", dir);
    free(sent_at);
    free(lat);
    free(answered);
    free(rbuf);
    free(wbuf);
    return failed ? 1 : 0;
}

/* Benchmark of guestd against QEMU's guest agent (qemu-ga) on the same work:
 * a load client that speaks both protocols over a unix socket and measures
 * round trips, pipelined throughput, a data command, and the agent's memory
 * and CPU time. By default it starts both agents itself, alternates runs
 * between them and prints one table with the ratios; --connect measures one
 * agent that is already listening (the VM comparison uses that) and prints
 * the figures as one JSON object. --quick is the smoke run: a few seconds,
 * small counts, figures printed but not judged.
 *
 * guestd is measured twice: in its own protocol (ping, metrics.get) and in
 * qemu-ga's (guest-ping, guest-get-cpustats), on the same socket, since it
 * detects the dialect per connection. The second column is the like-for-like
 * comparison: the same requests, the same replies, the same parser work. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the client waits for any progress before calling a run failed. */
#define IDLE_TIMEOUT_MS 30000
#define RBUF_SIZE (256 * 1024)
#define WRITE_CHUNK (64 * 1024)

/* PROTO_ECHO: guestd's requests to a server that sends each one back. */
typedef enum { PROTO_GUESTD, PROTO_QGA, PROTO_ECHO } proto_t;

static const char *proto_name(proto_t p)
{
    return p == PROTO_GUESTD ? "guestd" : p == PROTO_QGA ? "qemu-ga" : "echo";
}

/* The three runs of a round: which agent, spoken to in which protocol. */
typedef enum { RUN_GUESTD, RUN_GUESTD_QGA, RUN_QGA, RUN_KINDS } run_kind_t;

static const char *const run_names[RUN_KINDS] = {"guestd", "guestd-qga", "qemu-ga"};

typedef struct counts_s {
    int sequential; /* round trips of the trivial command */
    int pipelined;  /* trivial requests written back to back */
    int data;       /* round trips of the data command */
    int warmup;     /* round trips before anything is measured */
    int rounds;     /* runs per agent, alternating */
} counts_t;

/* One run of the client against one agent. */
typedef struct result_s {
    double rt_p50_us, rt_p99_us;
    double pipe_per_s;
    double data_p50_us, data_p99_us;
    double cpu_seq_us, cpu_pipe_us;  /* agent CPU time per request; < 0 unknown */
    long rss_kib, hwm_kib, anon_kib; /* after the run; < 0 unknown */
    long pss_kib, uss_kib;           /* shared pages divided among users; private only */
    long errors;                     /* replies that were not a success */
    long lost;                       /* pipelined requests never answered */
} result_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static pid_t g_children[2];
static char g_tmpdir[64]; /* /tmp/bench-agents-XXXXXX */

static void cleanup(void)
{
    for (int i = 0; i < 2; i++) {
        if (g_children[i] > 0) {
            kill(g_children[i], SIGTERM);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    }
    if (g_tmpdir[0]) {
        char cmd[sizeof(g_tmpdir) + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "bench_agents: could not remove %s\n", g_tmpdir);
        g_tmpdir[0] = '\0';
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_agents: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    cleanup();
    exit(1);
}

/* ---- the agent's figures from /proc ---- */

/* utime + stime of the whole process, in clock ticks; -1 when unreadable. */
static long long proc_cpu_ticks(pid_t pid)
{
    if (pid <= 0) return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    /* Fields after the command name, which may hold spaces and ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long utime = 0, stime = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (long long)(utime + stime);
}

/* A "Name:   123 kB" field of /proc/<pid>/<file>, in KiB; -1 when unknown. */
static long proc_field_kib(pid_t pid, const char *file, const char *field)
{
    if (pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    long v = -1;
    size_t flen = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            v = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static long proc_status_kib(pid_t pid, const char *field)
{
    return proc_field_kib(pid, "status", field);
}

/* From smaps_rollup: RSS counts every shared-library page the agent has
 * mapped, PSS divides each among the processes mapping it, USS
 * (Private_Clean + Private_Dirty) is what the agent alone costs the guest. */
static long proc_rollup_kib(pid_t pid, const char *field)
{
    return proc_field_kib(pid, "smaps_rollup", field);
}

/* ---- the connection: blocking writes, reads with a timeout ---- */

typedef struct conn_s {
    int fd;
    proto_t proto;
    char *rbuf;
    size_t start, end; /* unread bytes are rbuf[start..end) */
    char req[256];     /* the last request built */
    int soft_timeout;  /* conn_line returns NULL after the idle timeout */
} conn_t;

static int unix_connect(const char *path, int timeout_ms)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) die("socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) return fd;
        int e = errno;
        close(fd);
        if (now_ns() > deadline) die("cannot connect to %s: %s", path, strerror(e));
        usleep(10000);
    }
}

static void conn_open(conn_t *c, const char *path, proto_t proto)
{
    memset(c, 0, sizeof(*c));
    c->fd = unix_connect(path, 10000);
    c->proto = proto;
    struct timeval tv = {.tv_sec = IDLE_TIMEOUT_MS / 1000, .tv_usec = 0};
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
        die("SO_RCVTIMEO: %s", strerror(errno));
    c->rbuf = malloc(RBUF_SIZE);
    if (!c->rbuf) die("out of memory");
}

static void conn_close(conn_t *c)
{
    close(c->fd);
    free(c->rbuf);
    c->fd = -1;
    c->rbuf = NULL;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("write: %s", n < 0 ? strerror(errno) : "no progress");
        p += n;
        len -= (size_t)n;
    }
}

/* The next line (without its '\n', NUL-terminated in place); dies on EOF or
 * after IDLE_TIMEOUT_MS without data. */
static char *conn_line(conn_t *c, size_t *len)
{
    for (;;) {
        char *nl = memchr(c->rbuf + c->start, '\n', c->end - c->start);
        if (nl) {
            char *line = c->rbuf + c->start;
            *nl = '\0';
            *len = (size_t)(nl - line);
            c->start = (size_t)(nl - c->rbuf) + 1;
            return line;
        }
        if (c->start > 0) {
            memmove(c->rbuf, c->rbuf + c->start, c->end - c->start);
            c->end -= c->start;
            c->start = 0;
        }
        if (c->end == RBUF_SIZE) die("a reply longer than %d bytes", RBUF_SIZE);
        /* A plain blocking read, its timeout set by SO_RCVTIMEO: no poll()
         * first, so the client adds one system call less to each round trip. */
        ssize_t n = read(c->fd, c->rbuf + c->end, RBUF_SIZE - c->end);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->soft_timeout) return NULL;
            die("%s: no reply within %d ms", proto_name(c->proto), IDLE_TIMEOUT_MS);
        }
        if (n <= 0)
            die("%s: connection %s", proto_name(c->proto), n < 0 ? strerror(errno) : "closed");
        c->end += (size_t)n;
    }
}

static int is_event(const char *line)
{
    return strncmp(line, "{\"event\"", 8) == 0;
}

/* The numeric "id" of a reply, or -1. */
static long reply_id(const char *line)
{
    const char *p = strstr(line, "\"id\"");
    if (!p) return -1;
    p += 4;
    while (*p == ' ' || *p == ':')
        p++;
    if (*p < '0' || *p > '9') return -1;
    return strtol(p, NULL, 10);
}

static int reply_ok(proto_t proto, const char *line)
{
    if (proto == PROTO_ECHO) return 1;
    if (proto == PROTO_GUESTD) return strstr(line, "\"ok\":true") != NULL;
    return strncmp(line, "{\"return\"", 9) == 0;
}

typedef enum { REQ_TRIVIAL, REQ_DATA } req_kind_t;

/* Writes the request line for kind with id into buf; returns its length. */
static size_t build_request(proto_t proto, req_kind_t kind, long id, char *buf, size_t cap)
{
    int n;
    if (proto != PROTO_QGA)
        n = kind == REQ_TRIVIAL
                ? snprintf(buf, cap, "{\"id\":%ld,\"cmd\":\"ping\"}\n", id)
                : snprintf(
                      buf, cap,
                      "{\"id\":%ld,\"cmd\":\"metrics.get\",\"args\":{\"collectors\":[\"cpu\"]}}\n",
                      id);
    else
        n = snprintf(buf, cap, "{\"execute\":\"%s\",\"id\":%ld}\n",
                     kind == REQ_TRIVIAL ? "guest-ping" : "guest-get-cpustats", id);
    return (size_t)n;
}

/* Waits for the reply to id, skipping events; counts a failure in errors. */
static void await_reply(conn_t *c, long id, long *errors)
{
    for (;;) {
        size_t len;
        char *line = conn_line(c, &len);
        if (len == 0 || is_event(line)) continue;
        long got = reply_id(line);
        if (got != id)
            die("%s: expected the reply to id %ld, got: %.200s", proto_name(c->proto), id, line);
        if (!reply_ok(c->proto, line)) {
            if (*errors == 0)
                fprintf(stderr, "bench_agents: %s: error reply: %.200s\n", proto_name(c->proto),
                        line);
            (*errors)++;
        }
        return;
    }
}

/* Brings a connection to a known state before anything is measured: a
 * 0xFF byte resets qemu-ga's JSON parser (as guest-sync-delimited documents),
 * a newline ends any partial line for guestd; then one request, whose reply
 * is awaited while whatever came before it (events, stale lines) is skipped. */
static void sync_agent(conn_t *c, long id)
{
    write_all(c->fd, c->proto == PROTO_QGA ? "\xff" : "\n", 1);
    size_t len = build_request(c->proto, REQ_TRIVIAL, id, c->req, sizeof(c->req));
    write_all(c->fd, c->req, len);
    for (;;) {
        size_t l;
        char *line = conn_line(c, &l);
        if (l > 0 && !is_event(line) && reply_id(line) == id) return;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double percentile_us(const uint64_t *sorted, int n, double p)
{
    int rank = (int)(p * n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

/* n sequential round trips; p50 and p99 in microseconds. */
static void round_trips(conn_t *c, req_kind_t kind, int n, long *next_id, double *p50, double *p99,
                        long *errors)
{
    uint64_t *lat = malloc(sizeof(uint64_t) * (size_t)(n > 0 ? n : 1));
    if (!lat) die("out of memory");
    for (int i = 0; i < n; i++) {
        long id = (*next_id)++;
        size_t len = build_request(c->proto, kind, id, c->req, sizeof(c->req));
        uint64_t t0 = now_ns();
        write_all(c->fd, c->req, len);
        await_reply(c, id, errors);
        lat[i] = now_ns() - t0;
    }
    if (n > 0) {
        qsort(lat, (size_t)n, sizeof(uint64_t), cmp_u64);
        *p50 = percentile_us(lat, n, 0.50);
        *p99 = percentile_us(lat, n, 0.99);
    }
    free(lat);
}

/* ---- pipelined: one thread writes every request, the caller reads ---- */

typedef struct writer_s {
    int fd;
    const char *data;
    size_t len;
    int err; /* errno of a failed write, 0 when all was written */
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    size_t off = 0;
    while (off < w->len) {
        size_t chunk = w->len - off < WRITE_CHUNK ? w->len - off : WRITE_CHUNK;
        ssize_t n = write(w->fd, w->data + off, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            w->err = n < 0 ? errno : EPIPE;
            return NULL;
        }
        off += (size_t)n;
    }
    return NULL;
}

/* n trivial requests written as fast as the agent takes them while the
 * replies are read; returns replies per second. Replies come back in order
 * on one connection; a request never answered (an id skipped, or silence
 * for IDLE_TIMEOUT_MS at the end) is counted in lost. */
static double pipelined(conn_t *c, int n, long *next_id, long *errors, long *lost)
{
    size_t cap = (size_t)n * 64 + 1;
    char *data = malloc(cap);
    if (!data) die("out of memory");
    size_t len = 0;
    long first = *next_id;
    for (int i = 0; i < n; i++)
        len += build_request(c->proto, REQ_TRIVIAL, (*next_id)++, data + len, cap - len);
    writer_t w = {.fd = c->fd, .data = data, .len = len};
    pthread_t th;
    uint64_t t0 = now_ns();
    if (pthread_create(&th, NULL, writer_main, &w) != 0) die("pthread_create failed");
    long expected = first, last = first + n - 1;
    int got = 0;
    uint64_t t_last = t0;
    c->soft_timeout = 1;
    while (expected <= last) {
        size_t l;
        char *line = conn_line(c, &l);
        if (!line) { /* the rest will not come */
            *lost += last - expected + 1;
            break;
        }
        if (l == 0 || is_event(line)) continue;
        long id = reply_id(line);
        if (id < expected || id > last)
            die("%s: pipelined reply %ld out of order (expected %ld): %.200s", proto_name(c->proto),
                id, expected, line);
        *lost += id - expected;
        expected = id;
        t_last = now_ns();
        if (!reply_ok(c->proto, line)) {
            if (*errors == 0)
                fprintf(stderr, "bench_agents: %s: error reply: %.200s\n", proto_name(c->proto),
                        line);
            (*errors)++;
        }
        expected++;
        got++;
    }
    c->soft_timeout = 0;
    uint64_t elapsed = t_last - t0;
    pthread_join(th, NULL);
    if (w.err) die("%s: pipelined write: %s", proto_name(c->proto), strerror(w.err));
    free(data);
    if (*lost)
        fprintf(stderr, "bench_agents: %s: %ld of %d pipelined requests got no reply\n",
                proto_name(c->proto), *lost, n);
    return got && elapsed ? (double)got / ((double)elapsed / 1e9) : 0;
}

/* One full run against the agent listening at path (pid may be 0: no CPU or
 * memory figures, as for an agent inside a VM). */
static result_t run_client(const char *path, proto_t proto, pid_t pid, const counts_t *k)
{
    result_t r;
    memset(&r, 0, sizeof(r));
    conn_t c;
    long next_id = 1;
    double ignore;
    double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
    conn_open(&c, path, proto);
    sync_agent(&c, next_id++);

    round_trips(&c, REQ_TRIVIAL, k->warmup, &next_id, &ignore, &ignore, &r.errors);
    long long cpu0 = proc_cpu_ticks(pid);
    round_trips(&c, REQ_TRIVIAL, k->sequential, &next_id, &r.rt_p50_us, &r.rt_p99_us, &r.errors);
    long long cpu1 = proc_cpu_ticks(pid);
    r.pipe_per_s = pipelined(&c, k->pipelined, &next_id, &r.errors, &r.lost);
    long long cpu2 = proc_cpu_ticks(pid);
    round_trips(&c, REQ_DATA, k->data, &next_id, &r.data_p50_us, &r.data_p99_us, &r.errors);
    conn_close(&c);
    /* Memory is read once the agent has seen the client go, as after any
     * host session; 100 ms is ample for either agent on an idle loop. */
    if (pid > 0) usleep(100000);

    r.cpu_seq_us = r.cpu_pipe_us = -1;
    if (cpu0 >= 0 && cpu1 >= 0 && cpu2 >= 0) {
        r.cpu_seq_us = (double)(cpu1 - cpu0) * tick_us / k->sequential;
        r.cpu_pipe_us = (double)(cpu2 - cpu1) * tick_us / k->pipelined;
    }
    r.rss_kib = proc_status_kib(pid, "VmRSS");
    r.hwm_kib = proc_status_kib(pid, "VmHWM");
    r.anon_kib = proc_status_kib(pid, "RssAnon");
    r.pss_kib = proc_rollup_kib(pid, "Pss");
    long clean = proc_rollup_kib(pid, "Private_Clean"), dirty = proc_rollup_kib(pid, "Private_Dirty");
    r.uss_kib = clean >= 0 && dirty >= 0 ? clean + dirty : -1;
    return r;
}

/* ---- starting the agents ---- */

static int executable(const char *path)
{
    return path && *path && access(path, X_OK) == 0;
}

static const char *find_qemu_ga(const char *given)
{
    static char found[PATH_MAX];
    if (given) return executable(given) ? given : NULL;
    const char *env = getenv("QEMU_GA");
    if (env && *env) return executable(env) ? env : NULL;
    const char *dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(found, sizeof(found), "%s/qemu-ga", dirs[i]);
        if (executable(found)) return found;
    }
    return NULL;
}

static const char *find_guestd(const char *given, const char *argv0)
{
    static char found[PATH_MAX];
    if (given) return given;
    const char *env = getenv("GUESTD_BIN");
    if (env && *env) return env;
    /* The build tree: build/bench/bench_agents next to build/guestd. */
    snprintf(found, sizeof(found), "%s", argv0);
    char *slash = strrchr(found, '/');
    if (slash) {
        snprintf(slash, sizeof(found) - (size_t)(slash - found), "/../guestd");
        if (executable(found)) return found;
    }
    return NULL;
}

static pid_t spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed benchmark leaves no agent */
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int null = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (null >= 0) dup2(null, STDIN_FILENO);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits until path is a socket, or the agent has exited. */
static void wait_listening(pid_t pid, const char *path, const char *name, const char *log_path)
{
    uint64_t deadline = now_ns() + 10000000000ull;
    struct stat st;
    while (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            for (int i = 0; i < 2; i++)
                if (g_children[i] == pid) g_children[i] = 0;
            die("%s exited before listening (status %d); see %s", name, status, log_path);
        }
        if (now_ns() > deadline) die("%s did not listen on %s within 10 s", name, path);
        usleep(10000);
    }
}

/* ---- the floor: what any agent's round trip costs on this machine ---- */

/* A bare epoll server that writes back whatever it reads: no parsing, no
 * dispatch, one read and one write a request. Its round trip is the floor
 * under any agent's on this machine (the client, two context switches, the
 * socket), so a ratio target below floor / qemu-ga cannot be met by work
 * the agent does. Runs in a child until killed. */
static void echo_server(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) _exit(1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (l < 0 || ep < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 4) != 0)
        _exit(1);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    static char buf[65536];
    for (;;) {
        struct epoll_event got[8];
        int n = epoll_wait(ep, got, 8, -1);
        for (int i = 0; i < n; i++) {
            int fd = got[i].data.fd;
            if (fd == l) {
                int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                if (c >= 0) epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0 || write(fd, buf, (size_t)r) != r) close(fd);
        }
    }
}

/* The echo server's sequential round trip p50, in microseconds. */
static double floor_p50_us(const char *dir, int sequential, int warmup)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/echo.sock", dir);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        echo_server(path);
        _exit(1);
    }
    conn_t c;
    conn_open(&c, path, PROTO_ECHO);
    long next_id = 1, errors = 0;
    double p50 = 0, ignore;
    round_trips(&c, REQ_TRIVIAL, warmup, &next_id, &ignore, &ignore, &errors);
    round_trips(&c, REQ_TRIVIAL, sequential, &next_id, &p50, &ignore, &errors);
    conn_close(&c);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return p50;
}

/* ---- reporting ---- */

static void print_json(const char *agent, const result_t *r)
{
    printf("{\"agent\":\"%s\",\"rt_p50_us\":%.2f,\"rt_p99_us\":%.2f,\"pipelined_per_s\":%.0f,"
           "\"data_p50_us\":%.2f,\"data_p99_us\":%.2f,\"cpu_seq_us\":%.2f,\"cpu_pipe_us\":%.2f,"
           "\"rss_kib\":%ld,\"hwm_kib\":%ld,\"anon_kib\":%ld,\"pss_kib\":%ld,\"uss_kib\":%ld,"
           "\"errors\":%ld,\"lost\":%ld}\n",
           agent, r->rt_p50_us, r->rt_p99_us, r->pipe_per_s, r->data_p50_us, r->data_p99_us,
           r->cpu_seq_us, r->cpu_pipe_us, r->rss_kib, r->hwm_kib, r->anon_kib, r->pss_kib, r->uss_kib,
           r->errors, r->lost);
    fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median over rounds of the field at offset. */
static double median_of(const result_t *rs, int n, size_t offset)
{
    double v[64];
    for (int i = 0; i < n; i++)
        v[i] = *(const double *)((const char *)&rs[i] + offset);
    return median(v, n);
}

typedef struct row_s {
    const char *label;
    size_t offset; /* a double field of result_t, -1 for the long ones below */
    int is_long;
    int decimals;
    const char *target; /* the target for guestd / qemu-ga, or "" */
    double limit;       /* ratio bound of the target */
    int at_least;       /* the ratio must be >= limit (else <=) */
} row_t;

/* The figure at row for column r: memory after the last round (it is the
 * same process throughout), anything else the median over rounds. */
static double column_value(const row_t *row, const result_t *r, int rounds)
{
    if (row->is_long) return (double)*(const long *)((const char *)&r[rounds - 1] + row->offset);
    return median_of(r, rounds, row->offset);
}

/* "  0.62x <= 0.5x (MISSED)": the ratio of v to the reference, judged
 * against the row's target unless this is a smoke run. */
static void print_ratio(const row_t *row, double v, double ref, int quick)
{
    if (ref <= 0 || v < 0) {
        printf(" %8s", "-");
        return;
    }
    double ratio = v / ref;
    printf(" %7.2fx", ratio);
    if (!quick && row->target[0]) {
        int met = row->at_least ? ratio >= row->limit : ratio <= row->limit;
        printf(" %s", met ? "met " : "MISS");
    } else if (!quick) {
        printf("     ");
    }
}

static void print_table(result_t res[RUN_KINDS][64], int rounds, int have_qga, int quick)
{
    static const row_t rows[] = {
        {"round trip p50 (us)", offsetof(result_t, rt_p50_us), 0, 1, "<= 0.5x", 0.5, 0},
        {"round trip p99 (us)", offsetof(result_t, rt_p99_us), 0, 1, "", 0, 0},
        {"pipelined (replies/s)", offsetof(result_t, pipe_per_s), 0, 0, ">= 3x", 3, 1},
        {"data cmd p50 (us)", offsetof(result_t, data_p50_us), 0, 1, "", 0, 0},
        {"data cmd p99 (us)", offsetof(result_t, data_p99_us), 0, 1, "", 0, 0},
        {"CPU/request, sequential (us)", offsetof(result_t, cpu_seq_us), 0, 2, "", 0, 0},
        {"CPU/request, pipelined (us)", offsetof(result_t, cpu_pipe_us), 0, 2, "", 0, 0},
        {"VmRSS after the run (KiB)", offsetof(result_t, rss_kib), 1, 0, "<= 0.5x", 0.5, 0},
        {"VmHWM (KiB)", offsetof(result_t, hwm_kib), 1, 0, "", 0, 0},
        {"RssAnon after the run (KiB)", offsetof(result_t, anon_kib), 1, 0, "", 0, 0},
        {"PSS after the run (KiB)", offsetof(result_t, pss_kib), 1, 0, "", 0, 0},
        {"USS after the run (KiB)", offsetof(result_t, uss_kib), 1, 0, "", 0, 0},
    };
    printf("\n%-30s %11s %11s %11s %13s %13s %s\n", "figure (median of rounds)", "guestd",
           "guestd-qga", have_qga ? "qemu-ga" : "-", "guestd/qga", "guestd-qga/qga",
           quick ? "" : " target");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const row_t *row = &rows[i];
        double v[RUN_KINDS];
        for (int k = 0; k < RUN_KINDS; k++)
            v[k] = k == RUN_QGA && !have_qga ? 0 : column_value(row, res[k], rounds);
        printf("%-30s", row->label);
        for (int k = 0; k < RUN_KINDS; k++) {
            if (k == RUN_QGA && !have_qga)
                printf(" %11s", "-");
            else
                printf(" %11.*f", row->decimals, v[k]);
        }
        printf("   ");
        print_ratio(row, v[RUN_GUESTD], have_qga ? v[RUN_QGA] : 0, quick);
        printf("   ");
        print_ratio(row, v[RUN_GUESTD_QGA], have_qga ? v[RUN_QGA] : 0, quick);
        if (!quick && row->target[0]) printf("  %s", row->target);
        printf("\n");
    }
    for (int k = 0; k < RUN_KINDS; k++) {
        long err = 0, lost = 0;
        for (int i = 0; i < rounds; i++) {
            err += res[k][i].errors;
            lost += res[k][i].lost;
        }
        if (err) printf("%s: %ld error replies\n", run_names[k], err);
        if (lost) printf("%s: %ld pipelined requests never answered\n", run_names[k], lost);
    }
}

static void usage(FILE *out, const char *argv0)
{
    fprintf(out,
            "usage: %s [--quick] [--rounds N] [--sequential N] [--pipelined N] [--data N] "
            "[--warmup N]\n"
            "          [--guestd BIN] [--qemu-ga BIN | --no-qemu-ga]\n"
            "       %s --connect guestd|guestd-qga|qemu-ga:SOCKET [--pid PID] [counts as above]\n"
            "Starts guestd and qemu-ga on unix sockets, alternates runs between them and\n"
            "prints one table with the ratios (guestd / qemu-ga), guestd measured in its own\n"
            "protocol and in qemu-ga's (guestd-qga). --connect measures one agent already\n"
            "listening and prints one JSON line a round. --quick: a smoke run.\n",
            argv0, argv0);
}

static int parse_count(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 10000000) die("%s: '%s' is not a count", what, s);
    return (int)v;
}

int main(int argc, char **argv)
{
    counts_t k = {
        .sequential = 20000, .pipelined = 100000, .data = 2000, .warmup = 1000, .rounds = 5};
    counts_t quick_k = {
        .sequential = 2000, .pipelined = 10000, .data = 200, .warmup = 100, .rounds = 1};
    int quick = 0, no_qga = 0;
    const char *guestd_arg = NULL, *qga_arg = NULL, *connect_spec = NULL;
    pid_t connect_pid = 0;
    int set_seq = -1, set_pipe = -1, set_data = -1, set_rounds = -1, set_warmup = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE()                                                                              \
    do {                                                                                           \
        if (!v) die("%s needs a value", a);                                                        \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "--quick") == 0) {
            quick = 1;
        } else if (strcmp(a, "--no-qemu-ga") == 0) {
            no_qga = 1;
        } else if (strcmp(a, "--rounds") == 0) {
            NEEDS_VALUE();
            set_rounds = parse_count(v, a);
        } else if (strcmp(a, "--sequential") == 0) {
            NEEDS_VALUE();
            set_seq = parse_count(v, a);
        } else if (strcmp(a, "--pipelined") == 0) {
            NEEDS_VALUE();
            set_pipe = parse_count(v, a);
        } else if (strcmp(a, "--warmup") == 0) {
            NEEDS_VALUE();
            set_warmup = parse_count(v, a);
        } else if (strcmp(a, "--data") == 0) {
            NEEDS_VALUE();
            set_data = parse_count(v, a);
        } else if (strcmp(a, "--guestd") == 0) {
            NEEDS_VALUE();
            guestd_arg = v;
        } else if (strcmp(a, "--qemu-ga") == 0) {
            NEEDS_VALUE();
            qga_arg = v;
        } else if (strcmp(a, "--connect") == 0) {
            NEEDS_VALUE();
            connect_spec = v;
        } else if (strcmp(a, "--pid") == 0) {
            NEEDS_VALUE();
            connect_pid = (pid_t)parse_count(v, a);
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else {
            usage(stderr, argv[0]);
            return 2;
        }
#undef NEEDS_VALUE
    }
    if (quick) k = quick_k;
    if (set_seq >= 0) k.sequential = set_seq;
    if (set_pipe >= 0) k.pipelined = set_pipe;
    if (set_data >= 0) k.data = set_data;
    if (set_warmup >= 0) k.warmup = set_warmup;
    if (set_rounds > 0) k.rounds = set_rounds;
    if (k.rounds > 64) die("at most 64 rounds");
    if (k.sequential < 1 || k.pipelined < 1 || k.data < 1) die("every count must be at least 1");
    signal(SIGPIPE, SIG_IGN);

    if (connect_spec) {
        const char *colon = strchr(connect_spec, ':');
        if (!colon) die("--connect takes guestd:SOCKET, guestd-qga:SOCKET or qemu-ga:SOCKET");
        size_t n = (size_t)(colon - connect_spec);
        int kind = -1;
        for (int j = 0; j < RUN_KINDS; j++)
            if (strlen(run_names[j]) == n && strncmp(connect_spec, run_names[j], n) == 0) kind = j;
        if (kind < 0) die("--connect: unknown agent '%.*s'", (int)n, connect_spec);
        proto_t proto = kind == RUN_GUESTD ? PROTO_GUESTD : PROTO_QGA;
        for (int i = 0; i < k.rounds; i++) {
            result_t r = run_client(colon + 1, proto, connect_pid, &k);
            print_json(run_names[kind], &r);
        }
        return 0;
    }

    const char *guestd = find_guestd(guestd_arg, argv[0]);
    if (!executable(guestd)) die("no guestd binary (GUESTD_BIN, --guestd, or the build tree)");
    const char *qga = no_qga ? NULL : find_qemu_ga(qga_arg);
    if (!qga && !no_qga)
        printf("qemu-ga not found (QEMU_GA, --qemu-ga, /usr/sbin/qemu-ga): measuring guestd "
               "only\n");

    char tmpl[] = "/tmp/bench-agents-XXXXXX";
    if (!mkdtemp(tmpl)) die("mkdtemp: %s", strerror(errno));
    snprintf(g_tmpdir, sizeof(g_tmpdir), "%s", tmpl);
    char g_sock[PATH_MAX], g_log[PATH_MAX], q_sock[PATH_MAX], q_log[PATH_MAX], q_pid[PATH_MAX];
    snprintf(g_sock, sizeof(g_sock), "%s/guestd.sock", g_tmpdir);
    snprintf(g_log, sizeof(g_log), "%s/guestd.log", g_tmpdir);
    snprintf(q_sock, sizeof(q_sock), "%s/qemu-ga.sock", g_tmpdir);
    snprintf(q_log, sizeof(q_log), "%s/qemu-ga.log", g_tmpdir);
    snprintf(q_pid, sizeof(q_pid), "%s/qemu-ga.pid", g_tmpdir);

    char g_chan[PATH_MAX + 16];
    snprintf(g_chan, sizeof(g_chan), "unix-listen:%s", g_sock);
    char *g_argv[] = {(char *)guestd,          "--channel", g_chan, "-c", "/dev/null", "--set",
                      "metrics.log_path=none", NULL};
    g_children[0] = spawn(g_argv, g_log);
    if (qga) {
        /* The pidfile is moved off /var/run so a system qemu-ga is not disturbed. */
        char *q_argv[] = {(char *)qga, "-m",     "unix-listen", "-p",  q_sock,
                          "-t",        g_tmpdir, "-f",          q_pid, NULL};
        g_children[1] = spawn(q_argv, q_log);
    }
    wait_listening(g_children[0], g_sock, "guestd", g_log);
    if (qga) wait_listening(g_children[1], q_sock, "qemu-ga", q_log);

    printf("guestd:  %s (pid %d)\n", guestd, (int)g_children[0]);
    if (qga) printf("qemu-ga: %s (pid %d)\n", qga, (int)g_children[1]);
    printf("per round and agent: %d warm-up + %d sequential trivial round trips, %d pipelined "
           "trivial requests, %d data-command round trips; %d round(s), order rotating\n",
           k.warmup, k.sequential, k.pipelined, k.data, k.rounds);

    static result_t res[RUN_KINDS][64];
    for (int i = 0; i < k.rounds; i++) {
        /* The order rotates each round, so drift in the machine's speed
         * falls on every run alike. */
        for (int j = 0; j < RUN_KINDS; j++) {
            run_kind_t kind = (run_kind_t)((i + j) % RUN_KINDS);
            if (kind == RUN_QGA && !qga) continue;
            int is_qga = kind == RUN_QGA;
            result_t *r = &res[kind][i];
            *r = run_client(is_qga ? q_sock : g_sock, kind == RUN_GUESTD ? PROTO_GUESTD : PROTO_QGA,
                            g_children[is_qga ? 1 : 0], &k);
            printf("round %d %-10s: rt p50 %.1f us p99 %.1f us, pipelined %.0f/s, data p50 %.1f "
                   "us, CPU %.2f/%.2f us/req, RSS %ld KiB\n",
                   i + 1, run_names[kind], r->rt_p50_us, r->rt_p99_us, r->pipe_per_s,
                   r->data_p50_us, r->cpu_seq_us, r->cpu_pipe_us, r->rss_kib);
            fflush(stdout);
        }
    }
    print_table(res, k.rounds, qga != NULL, quick);
    double floor_us = floor_p50_us(g_tmpdir, k.sequential, k.warmup);
    printf("floor: a bare echo server's round trip p50 is %.1f us on this machine now", floor_us);
    if (qga) {
        double q50 = median_of(res[RUN_QGA], k.rounds, offsetof(result_t, rt_p50_us));
        printf(" (%.2fx qemu-ga's)", q50 > 0 ? floor_us / q50 : 0);
    }
    printf("\n");
    if (quick) printf("(--quick: a smoke run with small counts; the figures are not judged)\n");
    cleanup();
    return 0;
}

/* Benchmark of guestd-hub's Prometheus side (hub/prom.c, hub/http.c) at
 * fleet size: N guests (default 500) fed a real agent's sample line
 * (tests/fixtures/hub/guest.ndjson) at one per guest per second on the
 * libuv loop, while a client thread scrapes /metrics over HTTP with gzip.
 * Prints the CPU per ingested sample (JSON parse + render + deflate), the
 * loop thread's CPU share at N samples/s, scrape wall and CPU p50/p99
 * (in-process render and over HTTP), body sizes, and RSS.
 *
 * bench_hub [--guests N] [--seconds S] [--quick] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "hub/http.h"
#include "hub/prom.h"

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

typedef struct bench_s {
    gd_prom_t *prom;
    gd_prom_guest_t **guests;
    size_t n, next;
    char *hello_line, *metrics_line, *health_line;
    uint64_t samples;
    uv_timer_t feed;
    uv_async_t done;
    gd_http_t *http;
    double scrape_cpu[4096];
    size_t scrapes;
    gd_prom_self_t self;
} bench_t;

static int64_t wall_ms(void)
{
    return (int64_t)(now_s(CLOCK_REALTIME) * 1000.0);
}

/* One sample line in, as the hub gets it: parsed, then rendered. */
static void ingest(bench_t *b, gd_prom_guest_t *g)
{
    cJSON *ev = cJSON_Parse(b->metrics_line);
    const cJSON *ts = cJSON_GetObjectItem(ev, "ts");
    gd_prom_guest_sample(b->prom, g, cJSON_GetObjectItem(ev, "data"), (int64_t)ts->valuedouble,
                         wall_ms(), 1000);
    cJSON_Delete(ev);
    b->samples++;
}

/* Every 10 ms a tenth of... N/100 guests get their sample: N samples/s. */
static void on_feed(uv_timer_t *t)
{
    bench_t *b = t->data;
    size_t per_tick = b->n / 100 ? b->n / 100 : 1;
    for (size_t i = 0; i < per_tick; i++) {
        ingest(b, b->guests[b->next]);
        b->next = (b->next + 1) % b->n;
    }
}

static int metrics(void *ctx, int gzip, gd_buf_t *out)
{
    bench_t *b = ctx;
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    int r = gd_prom_render(b->prom, b->guests, b->n, &b->self, wall_ms(), gzip, out);
    if (b->scrapes < sizeof(b->scrape_cpu) / sizeof(b->scrape_cpu[0]))
        b->scrape_cpu[b->scrapes++] = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    return r;
}

typedef struct client_s {
    int port, count;
    double *wall;
    size_t body_bytes;
    bench_t *b;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    static char buf[1 << 22];
    for (int i = 0; i < c->count; i++) {
        usleep(50000);
        double t0 = now_s(CLOCK_MONOTONIC);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("connect");
            exit(1);
        }
        const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                          "Connection: close\r\n\r\n";
        if (write(fd, req, strlen(req)) < 0) exit(1);
        size_t len = 0;
        ssize_t r;
        while ((r = read(fd, buf + len, sizeof(buf) - len)) > 0)
            len += (size_t)r;
        close(fd);
        c->wall[i] = now_s(CLOCK_MONOTONIC) - t0;
        char *body = strstr(buf, "\r\n\r\n");
        c->body_bytes = body ? len - (size_t)(body + 4 - buf) : 0;
    }
    uv_async_send(&c->b->done);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    bench_t *b = a->data;
    uv_timer_stop(&b->feed);
    uv_close((uv_handle_t *)&b->feed, NULL);
    gd_http_stop(b->http);
    uv_close((uv_handle_t *)a, NULL);
}

static char *read_line(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, f) <= 0) {
        fprintf(stderr, "fixture too short\n");
        exit(1);
    }
    return line;
}

int main(int argc, char **argv)
{
    size_t n = 500;
    int seconds = 10, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--guests") == 0 && i + 1 < argc)
            n = (size_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
    }
    if (quick) {
        n = 50;
        seconds = 1;
    }
    char path[1024];
    const char *fx = getenv("GUESTD_FIXTURES");
    snprintf(path, sizeof(path), "%s/hub/guest.ndjson",
             fx ? fx : GUESTD_SOURCE_DIR "/tests/fixtures");
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 1;
    }
    bench_t *b = calloc(1, sizeof(*b));
    b->hello_line = read_line(f);
    b->metrics_line = read_line(f);
    b->health_line = read_line(f);
    fclose(f);
    long rss0 = rss_kb();
    gd_prom_new(&b->prom, 0);
    b->n = n;
    b->guests = calloc(n, sizeof(*b->guests));
    cJSON *hello = cJSON_Parse(b->hello_line), *health = cJSON_Parse(b->health_line);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "guest-%04zu", i);
        gd_prom_guest_new(b->prom, &b->guests[i], name);
        gd_prom_guest_connected(b->guests[i], 1);
        gd_prom_guest_hello(b->prom, b->guests[i], cJSON_GetObjectItem(hello, "data"));
        gd_prom_guest_health(b->prom, b->guests[i], cJSON_GetObjectItem(health, "data"));
        ingest(b, b->guests[i]);
    }
    cJSON_Delete(hello);
    cJSON_Delete(health);
    b->self.guests = n;

    /* Ingest alone: CPU per sample line, and the parse's share of it. */
    int reps = quick ? 200 : 5000;
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < reps; i++)
        ingest(b, b->guests[(size_t)i % n]);
    double per_sample = (now_s(CLOCK_THREAD_CPUTIME_ID) - c0) / reps;
    c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < reps; i++)
        cJSON_Delete(cJSON_Parse(b->metrics_line));
    double per_parse = (now_s(CLOCK_THREAD_CPUTIME_ID) - c0) / reps;

    /* Scrape alone, in process: gzip and text. */
    int sreps = quick ? 10 : 200;
    double *wall = calloc((size_t)sreps, sizeof(double)),
           *cpu = calloc((size_t)sreps, sizeof(double));
    gd_buf_t out;
    gd_buf_init(&out);
    size_t gz_bytes = 0, text_bytes = 0;
    int64_t at = wall_ms(); /* every guest fresh: nothing goes stale while this runs */
    for (int gz = 1; gz >= 0; gz--) {
        for (int i = 0; i < sreps; i++) {
            gd_buf_reset(&out);
            double w0 = now_s(CLOCK_MONOTONIC), t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
            gd_prom_render(b->prom, b->guests, n, &b->self, at, gz, &out);
            cpu[i] = now_s(CLOCK_THREAD_CPUTIME_ID) - t0;
            wall[i] = now_s(CLOCK_MONOTONIC) - w0;
        }
        (gz ? &gz_bytes : &text_bytes)[0] = out.len;
        printf("render %-4s %zu guests: %zu bytes, wall p50 %.2f ms p99 %.2f ms, CPU p50 %.2f ms "
               "p99 %.2f ms\n",
               gz ? "gzip" : "text", n, out.len, pct(wall, (size_t)sreps, 0.5) * 1e3,
               pct(wall, (size_t)sreps, 0.99) * 1e3, pct(cpu, (size_t)sreps, 0.5) * 1e3,
               pct(cpu, (size_t)sreps, 0.99) * 1e3);
    }
    gd_buf_free(&out);

    /* The loop: N samples/s ingested while a client scrapes over HTTP. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    if (gd_http_start(&b->http, &loop, "127.0.0.1:0", metrics, b, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uv_timer_init(&loop, &b->feed);
    b->feed.data = b;
    uv_timer_start(&b->feed, on_feed, 10, 10);
    uv_async_init(&loop, &b->done, on_done);
    b->done.data = b;
    int count = seconds * 20;
    client_t c = {gd_http_port(b->http), count, calloc((size_t)count, sizeof(double)), 0, b};
    b->scrapes = 0;
    uint64_t samples0 = b->samples;
    double loop_c0 = now_s(CLOCK_THREAD_CPUTIME_ID), loop_w0 = now_s(CLOCK_MONOTONIC);
    pthread_t t;
    pthread_create(&t, NULL, client_main, &c);
    uv_run(&loop, UV_RUN_DEFAULT);
    double loop_cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - loop_c0,
           loop_wall = now_s(CLOCK_MONOTONIC) - loop_w0;
    pthread_join(t, NULL);
    uv_loop_close(&loop);
    uint64_t fed = b->samples - samples0;
    double scrape_cpu_sum = 0;
    for (size_t i = 0; i < b->scrapes; i++)
        scrape_cpu_sum += b->scrape_cpu[i];

    printf("ingest: %.1f us CPU per sample line (JSON parse %.1f us of it)\n", per_sample * 1e6,
           per_parse * 1e6);
    printf("loop at %zu samples/s for %.1f s with %d scrapes (gzip, 20/s): %.1f%% of a core; "
           "without the scrapes %.1f%% (%llu samples)\n",
           n, loop_wall, count, 100.0 * loop_cpu / loop_wall,
           100.0 * (loop_cpu - scrape_cpu_sum) / loop_wall, (unsigned long long)fed);
    printf("http scrape gzip (%zu bytes): wall p50 %.2f ms p99 %.2f ms; render CPU p50 %.2f ms "
           "p99 %.2f ms\n",
           c.body_bytes, pct(c.wall, (size_t)count, 0.5) * 1e3,
           pct(c.wall, (size_t)count, 0.99) * 1e3, pct(b->scrape_cpu, b->scrapes, 0.5) * 1e3,
           pct(b->scrape_cpu, b->scrapes, 0.99) * 1e3);
    printf("RSS: %ld kB for %zu guests' caches (%ld kB at start)\n", rss_kb(), n, rss0);
    (void)text_bytes;
    (void)gz_bytes;
    for (size_t i = 0; i < n; i++)
        gd_prom_guest_free(b->guests[i]);
    gd_prom_free(b->prom);
    return 0;
}

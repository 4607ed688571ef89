/* Benchmark for agent/bus: one publisher, eight subscribers, metrics-sized
 * events published in batches and delivered by the loop. Prints one figure a
 * line; --quick runs about a second for the smoke test. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bus.h"

#define N_SUBS 8
#define CAPACITY 1024
/* A batch's events (64 x ~1.5 KB) stay under glibc's 128 KB trim threshold;
 * bigger batches measure the heap being trimmed and faulted back in. */
#define BATCH 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A sample shaped like the metrics collector's: cpu per core, memory, load,
 * disks, network interfaces, filesystems. */
static cJSON *make_sample(cJSON **counter)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *cpu = cJSON_AddObjectToObject(s, "cpu");
    cJSON_AddNumberToObject(cpu, "user", 12.5);
    cJSON_AddNumberToObject(cpu, "system", 3.25);
    cJSON_AddNumberToObject(cpu, "iowait", 0.5);
    cJSON_AddNumberToObject(cpu, "steal", 0.125);
    cJSON_AddNumberToObject(cpu, "idle", 83.625);
    cJSON *cores = cJSON_AddArrayToObject(cpu, "cores");
    for (int i = 0; i < 8; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "user", 10 + i);
        cJSON_AddNumberToObject(c, "system", 2 + i % 3);
        cJSON_AddNumberToObject(c, "idle", 85 - i);
        cJSON_AddItemToArray(cores, c);
    }
    cJSON *mem = cJSON_AddObjectToObject(s, "memory");
    cJSON_AddNumberToObject(mem, "total", 8589934592.0);
    cJSON_AddNumberToObject(mem, "available", 5368709120.0);
    cJSON_AddNumberToObject(mem, "free", 2147483648.0);
    cJSON_AddNumberToObject(mem, "buffers", 268435456);
    cJSON_AddNumberToObject(mem, "cached", 2684354560.0);
    cJSON_AddNumberToObject(mem, "swap_total", 2147483648.0);
    cJSON_AddNumberToObject(mem, "swap_used", 0);
    double load[] = {0.42, 0.37, 0.31};
    cJSON_AddItemToObject(s, "load", cJSON_CreateDoubleArray(load, 3));
    cJSON *disks = cJSON_AddArrayToObject(s, "disks");
    const char *disk_names[] = {"vda", "vdb", "vdc"};
    for (int i = 0; i < 3; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", disk_names[i]);
        cJSON_AddNumberToObject(d, "read_bytes", 123456789.0 * (i + 1));
        cJSON_AddNumberToObject(d, "write_bytes", 987654321.0 * (i + 1));
        cJSON_AddNumberToObject(d, "reads", 34567 + i);
        cJSON_AddNumberToObject(d, "writes", 45678 + i);
        cJSON_AddNumberToObject(d, "util", 1.5 * i);
        cJSON_AddItemToArray(disks, d);
    }
    cJSON *net = cJSON_AddArrayToObject(s, "net");
    const char *if_names[] = {"eth0", "eth1", "lo"};
    for (int i = 0; i < 3; i++) {
        cJSON *n = cJSON_CreateObject();
        cJSON_AddStringToObject(n, "name", if_names[i]);
        cJSON_AddNumberToObject(n, "rx_bytes", 1234567890.0 + i);
        cJSON_AddNumberToObject(n, "tx_bytes", 987654321.0 + i);
        cJSON_AddNumberToObject(n, "rx_packets", 1234567 + i);
        cJSON_AddNumberToObject(n, "tx_packets", 7654321 + i);
        cJSON_AddNumberToObject(n, "errors", 0);
        cJSON_AddItemToArray(net, n);
    }
    cJSON *fs = cJSON_AddArrayToObject(s, "filesystems");
    const char *mounts[] = {"/", "/var", "/home"};
    for (int i = 0; i < 3; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "mount", mounts[i]);
        cJSON_AddNumberToObject(f, "total", 21474836480.0);
        cJSON_AddNumberToObject(f, "used", 8589934592.0 + i);
        cJSON_AddNumberToObject(f, "avail", 12884901888.0 - i);
        cJSON_AddItemToArray(fs, f);
    }
    *counter = cJSON_AddNumberToObject(s, "uptime_s", 12345);
    return s;
}

typedef struct {
    gd_bus_sub_t sub;
    uint64_t bytes;
} bench_sub_t;

static int take(gd_bus_sub_t *sub, gd_event_t *ev)
{
    bench_sub_t *bs = sub->data;
    /* Touch the line's end as a real consumer would. */
    bs->bytes += ev->len + (unsigned char)ev->line[ev->len - 1];
    return 0;
}

static volatile size_t sink;

/* Returns events per second of publish + delivery to every subscriber. */
static double run_publish(uv_loop_t *loop, double seconds, cJSON *sample, cJSON *counter,
                          const char *raw, size_t raw_len, int *ok)
{
    gd_bus_t bus;
    bench_sub_t subs[N_SUBS];
    if (gd_bus_init(&bus, loop) != 0) exit(1);
    for (int i = 0; i < N_SUBS; i++) {
        memset(&subs[i], 0, sizeof(subs[i]));
        if (gd_bus_subscribe(&bus, &subs[i].sub, "bench", CAPACITY, take, &subs[i]) != 0) exit(1);
    }

    uint64_t n = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i < BATCH; i++) {
            if (raw) {
                gd_bus_publish_raw(&bus, "metrics", raw, raw_len);
            } else {
                cJSON_SetNumberValue(counter, (double)n + i);
                gd_bus_publish(&bus, "metrics", sample);
            }
        }
        uv_run(loop, UV_RUN_DEFAULT);
        n += BATCH;
        elapsed = now_s() - start;
    } while (elapsed < seconds);

    for (int i = 0; i < N_SUBS; i++) {
        if (subs[i].sub.delivered != n || subs[i].sub.lagged != 0) {
            fprintf(stderr,
                    "subscriber %d: delivered %" PRIu64 " lagged %" PRIu64 " of %" PRIu64 "\n", i,
                    subs[i].sub.delivered, subs[i].sub.lagged, n);
            *ok = 0;
        }
        sink += subs[i].bytes;
    }
    gd_bus_close(&bus, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return (double)n / elapsed;
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            seconds = 0.25;
        } else {
            fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
            return 2;
        }
    }

    cJSON *counter;
    cJSON *sample = make_sample(&counter);
    char *raw = cJSON_PrintUnformatted(sample);
    size_t raw_len = strlen(raw);
    gd_event_t *probe = gd_event_new("metrics", 1, gd_now_ms(), sample);
    printf("subscribers: %d (capacity %d, batch %d)\n", N_SUBS, CAPACITY, BATCH);
    printf("data_bytes: %zu\n", raw_len);
    printf("line_bytes: %zu\n", probe->len);
    gd_event_unref(probe);

    /* Serialisation alone, then serialisation plus building the event. */
    uint64_t n = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i < BATCH; i++) {
            cJSON_SetNumberValue(counter, (double)n + i);
            char *s = cJSON_PrintUnformatted(sample);
            sink += s[0];
            cJSON_free(s);
        }
        n += BATCH;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    printf("serialise_ns_per_event: %.0f\n", elapsed * 1e9 / (double)n);

    n = 0;
    start = now_s();
    do {
        for (int i = 0; i < BATCH; i++) {
            cJSON_SetNumberValue(counter, (double)n + i);
            gd_event_t *ev = gd_event_new("metrics", n + i + 1, 0, sample);
            sink += ev->len;
            gd_event_unref(ev);
        }
        n += BATCH;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    printf("event_new_ns_per_event: %.0f\n", elapsed * 1e9 / (double)n);

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return 1;
    int ok = 1;
    double eps = run_publish(&loop, seconds, sample, counter, NULL, 0, &ok);
    printf("publish_deliver%d_events_per_s: %.0f\n", N_SUBS, eps);
    printf("publish_deliver%d_ns_per_event: %.0f\n", N_SUBS, 1e9 / eps);
    double raw_eps = run_publish(&loop, seconds, sample, counter, raw, raw_len, &ok);
    printf("publish_raw_deliver%d_events_per_s: %.0f\n", N_SUBS, raw_eps);
    printf("publish_raw_deliver%d_ns_per_event: %.0f\n", N_SUBS, 1e9 / raw_eps);
    printf("bus_ns_per_delivery: %.1f\n", 1e9 / raw_eps / N_SUBS);

    int closed = uv_loop_close(&loop);
    cJSON_free(raw);
    cJSON_Delete(sample);
    if (closed != 0 || gd_event_live_count() != 0) {
        fprintf(stderr, "bench_bus: loop close %d, live events %zu\n", closed,
                gd_event_live_count());
        ok = 0;
    }
    return ok ? 0 : 1;
}

/* The hub's Prometheus exposition: the families, each guest's fragment
 * cache, and a scrape that concatenates cached fragments family by family,
 * as text or through one gzip stream.
 *
 * Why gzip is made at scrape time: fragments deflated one by one at ingest
 * (raw deflate pieces with a sync flush, spliced into one gzip member) were
 * measured with tests/bench/bench_hub: 1.6x smaller than the text against
 * 15x for one stream, and 190 us of CPU per ingested sample against 30 us,
 * because each short piece pays for its own block and cannot refer to the
 * other guests' identical names. With samples every second and scrapes
 * every 15 s, deflating once per scrape is the cheaper place.
 *
 * Why libdeflate rather than zlib: a gzip scrape is the text (copying the
 * cached fragments, 0.2 ms for 500 guests) then one deflate of about 3 MB,
 * which is nearly all of its cost. On that text libdeflate's level 1 took
 * 3.9 ms and wrote 127 kB where zlib's level 1 took 5.6 ms for 155 kB
 * (docs/prometheus.md). It compresses a whole buffer, not a stream, so the
 * text is assembled first in a buffer kept between scrapes. */
#include "hub/prom.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/prom_internal.h"

const gd_prom_family_desc_t gd_prom_families[F_COUNT] = {
    [F_UP] = {"guestd_up", "gauge",
              "1 when the hub holds the guest's port and its latest sample is younger than 3 "
              "intervals."},
    [F_CONNECTED] = {"guestd_guest_connected", "gauge",
                     "1 while the hub holds a connection to the guest's port."},
    [F_LAST_SAMPLE] = {"guestd_last_sample_timestamp_seconds", "gauge",
                       "When the guest made its latest sample (guest clock)."},
    [F_INFO] = {"guestd_guest_info", "gauge", "The guest's OS, kernel and agent version."},
    [F_BOOT_TIME] = {"guestd_boot_time_seconds", "gauge", "When the guest booted."},
    [F_CPU_SECONDS] = {"guestd_cpu_seconds_total", "counter",
                       "Seconds the guest's CPUs spent in each mode."},
    [F_MEM_TOTAL] = {"guestd_memory_MemTotal_bytes", "gauge", "Usable RAM."},
    [F_MEM_AVAILABLE] = {"guestd_memory_MemAvailable_bytes", "gauge",
                         "Memory available to programs without swapping."},
    [F_SWAP_TOTAL] = {"guestd_memory_SwapTotal_bytes", "gauge", "Swap space."},
    [F_SWAP_FREE] = {"guestd_memory_SwapFree_bytes", "gauge", "Swap space not in use."},
    [F_LOAD1] = {"guestd_load1", "gauge", "1-minute load average."},
    [F_LOAD5] = {"guestd_load5", "gauge", "5-minute load average."},
    [F_LOAD15] = {"guestd_load15", "gauge", "15-minute load average."},
    [F_PROCS_RUNNING] = {"guestd_procs_running", "gauge", "Runnable tasks."},
    [F_THREADS] = {"guestd_processes_threads", "gauge", "Tasks (threads) that exist."},
    [F_PSI_CPU_WAITING] = {"guestd_pressure_cpu_waiting_seconds_total", "counter",
                           "Time some tasks waited for a CPU."},
    [F_PSI_MEM_WAITING] = {"guestd_pressure_memory_waiting_seconds_total", "counter",
                           "Time some tasks stalled on memory."},
    [F_PSI_MEM_STALLED] = {"guestd_pressure_memory_stalled_seconds_total", "counter",
                           "Time all non-idle tasks stalled on memory."},
    [F_PSI_IO_WAITING] = {"guestd_pressure_io_waiting_seconds_total", "counter",
                          "Time some tasks waited for I/O."},
    [F_PSI_IO_STALLED] = {"guestd_pressure_io_stalled_seconds_total", "counter",
                          "Time all non-idle tasks waited for I/O."},
    [F_DISK_READS] = {"guestd_disk_reads_completed_total", "counter", "Reads completed."},
    [F_DISK_WRITES] = {"guestd_disk_writes_completed_total", "counter", "Writes completed."},
    [F_DISK_READ_BYTES] = {"guestd_disk_read_bytes_total", "counter", "Bytes read."},
    [F_DISK_WRITTEN_BYTES] = {"guestd_disk_written_bytes_total", "counter", "Bytes written."},
    [F_DISK_IO_TIME] = {"guestd_disk_io_time_seconds_total", "counter",
                        "Time the disk had I/O in flight."},
    [F_FS_SIZE] = {"guestd_filesystem_size_bytes", "gauge", "Filesystem size."},
    [F_FS_FREE] = {"guestd_filesystem_free_bytes", "gauge",
                   "Free space, reserved blocks included."},
    [F_FS_AVAIL] = {"guestd_filesystem_avail_bytes", "gauge",
                    "Space an unprivileged user can still use."},
    [F_FS_FILES] = {"guestd_filesystem_files", "gauge", "Inodes."},
    [F_FS_FILES_FREE] = {"guestd_filesystem_files_free", "gauge", "Free inodes."},
    [F_FS_ERROR] = {"guestd_filesystem_device_error", "gauge",
                    "1 when the filesystem's statvfs failed or has not answered."},
    [F_NET_UP] = {"guestd_network_up", "gauge", "1 when the interface's link is up."},
    [F_NET_RX_BYTES] = {"guestd_network_receive_bytes_total", "counter", "Bytes received."},
    [F_NET_TX_BYTES] = {"guestd_network_transmit_bytes_total", "counter", "Bytes sent."},
    [F_NET_RX_PACKETS] = {"guestd_network_receive_packets_total", "counter", "Packets received."},
    [F_NET_TX_PACKETS] = {"guestd_network_transmit_packets_total", "counter", "Packets sent."},
    [F_NET_RX_ERRS] = {"guestd_network_receive_errs_total", "counter", "Receive errors."},
    [F_NET_TX_ERRS] = {"guestd_network_transmit_errs_total", "counter", "Transmit errors."},
    [F_NET_RX_DROP] = {"guestd_network_receive_drop_total", "counter", "Received packets dropped."},
    [F_NET_TX_DROP] = {"guestd_network_transmit_drop_total", "counter", "Packets dropped on send."},
    [F_TOP_CPU] = {"guestd_top_process_cpu_ratio", "gauge",
                   "CPU used by one of the guest's busiest processes over the interval, per CPU."},
    [F_TOP_RSS] = {"guestd_top_process_resident_memory_bytes", "gauge",
                   "Resident memory of one of the guest's busiest processes."},
    [F_HEALTH] = {"guestd_health_status", "gauge",
                  "The agent's overall health: 0 ok, 1 degraded, 2 failing."},
    [F_HEALTH_CHECK] = {"guestd_health_check_status", "gauge",
                        "One health check of the agent: 0 ok, 1 degraded, 2 failing."},
    [F_AGENT_RSS] = {"guestd_agent_resident_memory_bytes", "gauge", "The agent's own RSS."},
    [F_AGENT_CPU] = {"guestd_agent_cpu_seconds_total", "counter",
                     "CPU time the agent used (user and system)."},
    [F_AGENT_DROPPED] = {"guestd_agent_dropped_events_total", "counter",
                         "Events the agent dropped (a host too slow to read)."},
};

/* ---- writing lines ---- */

void gd_prom_escape(gd_buf_t *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!rep) continue;
        gd_buf_append(b, run, (size_t)(s - run));
        gd_buf_puts(b, rep);
        run = s + 1;
    }
    gd_buf_append(b, run, (size_t)(s - run));
}

void gd_prom_number(gd_buf_t *b, double v)
{
    char tmp[40];
    int n;
    if (isnan(v))
        n = snprintf(tmp, sizeof(tmp), "NaN");
    else if (isinf(v))
        n = snprintf(tmp, sizeof(tmp), v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
    else
        /* The guest writes at most 15 significant digits: %.15g gives its
         * text back, where %.17g would show the binary rounding. */
        n = snprintf(tmp, sizeof(tmp), "%.15g", v);
    gd_buf_append(b, tmp, (size_t)n);
}

void gd_prom_begin(gd_buf_t *b, gd_prom_family_t fam, const gd_prom_guest_t *g)
{
    gd_buf_puts(b, gd_prom_families[fam].name);
    gd_buf_append(b, "{", 1);
    gd_buf_append(b, g->label.data, g->label.len);
}

void gd_prom_label(gd_buf_t *b, const char *key, const char *value)
{
    gd_buf_append(b, ",", 1);
    gd_buf_puts(b, key);
    gd_buf_append(b, "=\"", 2);
    gd_prom_escape(b, value);
    gd_buf_append(b, "\"", 1);
}

void gd_prom_end(gd_buf_t *b, double v)
{
    gd_buf_append(b, "} ", 2);
    gd_prom_number(b, v);
    /* A failed append anywhere in the line: drop the fragment rather than
     * serve a torn line (the next event renders it again). */
    if (gd_buf_append(b, "\n", 1) != 0) gd_buf_reset(b);
}

void gd_prom_line(gd_buf_t *b, gd_prom_family_t fam, const gd_prom_guest_t *g, double v)
{
    gd_prom_begin(b, fam, g);
    gd_prom_end(b, v);
}

/* ---- fragments ---- */

static void frag_free(gd_prom_frag_t *f)
{
    gd_buf_free(&f->text);
}

/* ---- the exposition and its guests ---- */

int gd_prom_new(gd_prom_t **out, int top_processes)
{
    gd_prom_t *p = calloc(1, sizeof(*p));
    if (!p) return -ENOMEM;
    p->top_processes = top_processes;
    gd_buf_init(&p->scratch);
    gd_buf_init(&p->text);
    /* Level 1: a scrape deflates megabytes of very repetitive text, where
     * level 1 keeps most of the gain for a fraction of the CPU. */
    p->gz = libdeflate_alloc_compressor(1);
    if (!p->gz) {
        free(p);
        return -ENOMEM;
    }
    for (int i = 0; i < F_COUNT; i++) {
        gd_prom_frag_t *h = &p->header[i];
        gd_buf_init(&h->text);
        if (gd_buf_printf(&h->text, "# HELP %s %s\n# TYPE %s %s\n", gd_prom_families[i].name,
                          gd_prom_families[i].help, gd_prom_families[i].name,
                          gd_prom_families[i].type) < 0) {
            gd_prom_free(p);
            return -ENOMEM;
        }
    }
    *out = p;
    return 0;
}

void gd_prom_free(gd_prom_t *p)
{
    if (!p) return;
    for (int i = 0; i < F_COUNT; i++)
        frag_free(&p->header[i]);
    gd_buf_free(&p->scratch);
    gd_buf_free(&p->text);
    libdeflate_free_compressor(p->gz);
    free(p);
}

int gd_prom_guest_new(gd_prom_t *p, gd_prom_guest_t **out, const char *domain)
{
    gd_prom_guest_t *g = calloc(1, sizeof(*g));
    if (!g) return -ENOMEM;
    g->interval_ms = GD_PROM_DEFAULT_INTERVAL_MS;
    g->domain = strdup(domain);
    gd_buf_init(&g->label);
    for (int i = 0; i < F_COUNT; i++) {
        gd_buf_init(&g->frag[i].text);
    }
    int r = g->domain ? 0 : -ENOMEM;
    if (r == 0) {
        gd_buf_puts(&g->label, "domain=\"");
        gd_prom_escape(&g->label, domain);
        if (gd_buf_puts(&g->label, "\"") < 0) r = -ENOMEM;
    }
    for (int v = 0; v < 2; v++) {
        gd_buf_init(&g->up[v].text);
        gd_buf_init(&g->conn[v].text);
    }
    for (int v = 0; v < 2 && r == 0; v++) {
        gd_prom_line(&g->up[v].text, F_UP, g, v);
        gd_prom_line(&g->conn[v].text, F_CONNECTED, g, v);
        r = g->up[v].text.len && g->conn[v].text.len ? 0 : -ENOMEM;
    }
    if (r < 0) {
        gd_prom_guest_free(g);
        return r;
    }
    *out = g;
    return 0;
}

void gd_prom_guest_free(gd_prom_guest_t *g)
{
    if (!g) return;
    for (int i = 0; i < F_COUNT; i++)
        frag_free(&g->frag[i]);
    for (int v = 0; v < 2; v++) {
        frag_free(&g->up[v]);
        frag_free(&g->conn[v]);
    }
    gd_buf_free(&g->label);
    free(g->domain);
    free(g);
}

static const char *string_at(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int gd_prom_guest_hello(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *hello)
{
    gd_buf_t *b = &g->frag[F_INFO].text;
    gd_buf_reset(b);
    gd_prom_begin(b, F_INFO, g);
    gd_prom_label(b, "os", string_at(hello, "os", ""));
    gd_prom_label(b, "kernel", string_at(hello, "kernel", ""));
    gd_prom_label(b, "agent_version", string_at(hello, "version", ""));
    gd_prom_end(b, 1);
    /* The agent's interval, until samples show the one it runs at. */
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(hello, "metrics_interval_ms");
    if (!g->interval_known && cJSON_IsNumber(iv) && iv->valuedouble >= 1)
        g->interval_ms = (int64_t)iv->valuedouble;
    (void)p;
    return b->len ? 0 : -ENOMEM;
}

int gd_prom_guest_sample(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *data, int64_t ts_ms,
                         int64_t rx_ms, int64_t interval_ms)
{
    g->have_sample = 1;
    g->rx_ms = rx_ms;
    if (interval_ms > 0) {
        g->interval_ms = interval_ms;
        g->interval_known = 1;
    }
    return gd_prom_render_sample(p, g, data, ts_ms);
}

static int status_value(const char *s)
{
    if (strcmp(s, "ok") == 0) return 0;
    if (strcmp(s, "degraded") == 0) return 1;
    return 2;
}

int gd_prom_guest_health(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *health)
{
    static const gd_prom_family_t fams[] = {F_HEALTH, F_HEALTH_CHECK, F_AGENT_RSS, F_AGENT_CPU,
                                            F_AGENT_DROPPED};
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++)
        gd_buf_reset(&g->frag[fams[i]].text);
    gd_prom_line(&g->frag[F_HEALTH].text, F_HEALTH, g,
                 status_value(string_at(health, "status", "failing")));
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(health, "checks"))
    {
        gd_buf_t *b = &g->frag[F_HEALTH_CHECK].text;
        gd_prom_begin(b, F_HEALTH_CHECK, g);
        gd_prom_label(b, "check", string_at(c, "name", ""));
        gd_prom_end(b, status_value(string_at(c, "status", "failing")));
    }
    const cJSON *self = cJSON_GetObjectItemCaseSensitive(health, "self");
    const cJSON *rss = cJSON_GetObjectItemCaseSensitive(self, "rss_bytes");
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(self, "cpu_ms");
    const cJSON *dropped = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(health, "channel"), "dropped_events");
    if (cJSON_IsNumber(rss))
        gd_prom_line(&g->frag[F_AGENT_RSS].text, F_AGENT_RSS, g, rss->valuedouble);
    if (cJSON_IsNumber(cpu))
        gd_prom_line(&g->frag[F_AGENT_CPU].text, F_AGENT_CPU, g, cpu->valuedouble / 1000.0);
    if (cJSON_IsNumber(dropped))
        gd_prom_line(&g->frag[F_AGENT_DROPPED].text, F_AGENT_DROPPED, g, dropped->valuedouble);
    (void)p;
    return g->frag[F_HEALTH].text.len ? 0 : -ENOMEM;
}

void gd_prom_guest_connected(gd_prom_guest_t *g, int connected)
{
    g->connected = connected;
}

int gd_prom_guest_up(const gd_prom_guest_t *g, int64_t now_ms)
{
    return g->connected && g->have_sample &&
           now_ms - g->rx_ms <= GD_PROM_STALE_INTERVALS * g->interval_ms;
}

/* ---- the scrape ---- */

/* Where the scrape's pieces go: the text, appended to out. */
typedef struct sink_s {
    gd_prom_t *p;
    gd_buf_t *out;
    int err;
} sink_t;

static void sink_piece(sink_t *s, const gd_prom_frag_t *f)
{
    if (f->text.len == 0 || s->err) return;
    if (gd_buf_append(s->out, f->text.data, f->text.len) != 0) s->err = -ENOMEM;
}

/* Replaces out with text in gzip framing. */
static int gzip_into(gd_prom_t *p, const gd_buf_t *text, gd_buf_t *out)
{
    size_t bound = libdeflate_gzip_compress_bound(p->gz, text->len);
    if (gd_buf_reserve(out, bound + 1) != 0) return -ENOMEM;
    size_t n = libdeflate_gzip_compress(p->gz, text->data, text->len, out->data, bound);
    if (n == 0) return -EINVAL; /* cannot happen with the bound's room */
    out->len = n;
    return 0;
}

/* The hub's own families, rendered at each scrape (a few lines). */
static void render_self(gd_prom_t *p, const gd_prom_self_t *self, sink_t *s)
{
    gd_prom_frag_t f = {p->scratch};
    gd_buf_reset(&f.text);
    if (gd_buf_printf(&f.text,
                      "# HELP guestd_hub_guests Guests the hub holds.\n"
                      "# TYPE guestd_hub_guests gauge\nguestd_hub_guests %llu\n"
                      "# HELP guestd_hub_reconnects_total Connections to guests made again.\n"
                      "# TYPE guestd_hub_reconnects_total counter\n"
                      "guestd_hub_reconnects_total %llu\n"
                      "# HELP guestd_hub_parse_errors_total Lines from guests that were not JSON "
                      "objects.\n"
                      "# TYPE guestd_hub_parse_errors_total counter\n"
                      "guestd_hub_parse_errors_total %llu\n"
                      "# HELP guestd_hub_samples_total Samples received from guests.\n"
                      "# TYPE guestd_hub_samples_total counter\nguestd_hub_samples_total %llu\n"
                      "# HELP guestd_hub_scrapes_total Scrapes of /metrics served.\n"
                      "# TYPE guestd_hub_scrapes_total counter\nguestd_hub_scrapes_total %llu\n"
                      "# HELP guestd_hub_scrape_duration_seconds Wall time of the previous "
                      "scrape.\n"
                      "# TYPE guestd_hub_scrape_duration_seconds gauge\n"
                      "guestd_hub_scrape_duration_seconds %.6f\n",
                      (unsigned long long)self->guests, (unsigned long long)self->reconnects_total,
                      (unsigned long long)self->parse_errors_total,
                      (unsigned long long)self->samples_total,
                      (unsigned long long)self->scrapes_total, self->last_scrape_s) < 0)
        s->err = -ENOMEM;
    sink_piece(s, &f);
    p->scratch = f.text;
}

int gd_prom_render(gd_prom_t *p, gd_prom_guest_t *const *guests, size_t n,
                   const gd_prom_self_t *self, int64_t now_ms, int gzip, gd_buf_t *out)
{
    if (gzip) gd_buf_reset(&p->text);
    sink_t s = {p, gzip ? &p->text : out, 0};
    unsigned char live_small[256];
    unsigned char *live = n <= sizeof(live_small) ? live_small : malloc(n);
    if (!live) return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        live[i] = (unsigned char)gd_prom_guest_up(guests[i], now_ms);
    for (int fam = 0; fam < F_COUNT; fam++) {
        int any = 0;
        for (size_t i = 0; i < n && !any; i++)
            any =
                fam == F_UP || fam == F_CONNECTED || (live[i] && guests[i]->frag[fam].text.len > 0);
        if (!any) continue;
        sink_piece(&s, &p->header[fam]);
        for (size_t i = 0; i < n; i++) {
            if (fam == F_UP)
                sink_piece(&s, &guests[i]->up[live[i]]);
            else if (fam == F_CONNECTED)
                sink_piece(&s, &guests[i]->conn[guests[i]->connected != 0]);
            else if (live[i])
                sink_piece(&s, &guests[i]->frag[fam]);
        }
    }
    if (live != live_small) free(live);
    if (self) render_self(p, self, &s);
    if (gzip && !s.err) s.err = gzip_into(p, &p->text, out);
    return s.err;
}

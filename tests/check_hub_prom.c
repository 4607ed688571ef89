/* Check suite for the hub's Prometheus exposition (hub/prom.c): a real
 * agent's hello, sample and health (tests/fixtures/hub/guest.ndjson,
 * captured from guestd) rendered with node_exporter's names, each family's
 * samples together under one HELP/TYPE, the gzip form inflating to the same
 * text, stale and disconnected guests reduced to guestd_up 0, and the
 * output accepted by `promtool check metrics`. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "doc_page.h"
#include "hub/prom.h"
#include "hub/prom_internal.h"

static cJSON *events[3]; /* hello, metrics, health */
static int64_t sample_ts;

static void load_fixture(void)
{
    const char *dir = getenv("GUESTD_FIXTURES");
    char path[512];
    snprintf(path, sizeof(path), "%s/hub/guest.ndjson", dir ? dir : "tests/fixtures");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s", path);
    char *line = NULL;
    size_t cap = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert(getline(&line, &cap, f) > 0);
        events[i] = cJSON_Parse(line);
        ck_assert_ptr_nonnull(events[i]);
    }
    free(line);
    fclose(f);
    sample_ts = (int64_t)cJSON_GetObjectItem(events[1], "ts")->valuedouble;
}

static void free_fixture(void)
{
    for (int i = 0; i < 3; i++)
        cJSON_Delete(events[i]);
}

static gd_prom_guest_t *guest(gd_prom_t *p, const char *domain, int64_t rx_ms)
{
    gd_prom_guest_t *g;
    ck_assert_int_eq(gd_prom_guest_new(p, &g, domain), 0);
    gd_prom_guest_connected(g, 1);
    ck_assert_int_eq(gd_prom_guest_hello(p, g, cJSON_GetObjectItem(events[0], "data")), 0);
    ck_assert_int_eq(
        gd_prom_guest_sample(p, g, cJSON_GetObjectItem(events[1], "data"), sample_ts, rx_ms, 1000),
        0);
    ck_assert_int_eq(gd_prom_guest_health(p, g, cJSON_GetObjectItem(events[2], "data")), 0);
    return g;
}

static void free_all(gd_prom_t *p, gd_prom_guest_t **gs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gd_prom_guest_free(gs[i]);
    gd_prom_free(p);
}

static char *render(gd_prom_t *p, gd_prom_guest_t **gs, size_t n, int64_t now, int gzip,
                    size_t *len)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_prom_render(p, gs, n, NULL, now, gzip, &b), 0);
    *len = b.len;
    if (!gzip) ck_assert_int_eq(gd_buf_append(&b, "", 1), 0);
    return b.data;
}

static void assert_has(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    ck_assert_msg(strstr(text, want) != NULL, "missing line: %s", line);
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

START_TEST(test_sample_lines_with_node_names)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_guest_t *g = guest(p, "vm1", 5000);
    size_t len;
    char *t = render(p, &g, 1, 5000, 0, &len);
    assert_has(t, "guestd_up{domain=\"vm1\"} 1");
    assert_has(t, "guestd_last_sample_timestamp_seconds{domain=\"vm1\"} 1796686360.677");
    assert_has(t, "guestd_guest_info{domain=\"vm1\",os=\"Debian GNU/Linux 12 (bookworm)\","
                  "kernel=\"6.18.44-fc-v1272\",agent_version=\"0.1.0\"} 1");
    assert_has(t, "# TYPE guestd_cpu_seconds_total counter");
    assert_has(t, "guestd_cpu_seconds_total{domain=\"vm1\",cpu=\"1\",mode=\"user\"} 2946.38");
    assert_has(t, "guestd_cpu_seconds_total{domain=\"vm1\",cpu=\"0\",mode=\"softirq\"} 25.57");
    ck_assert_int_eq(count(t, "guestd_cpu_seconds_total{"), 16); /* 2 CPUs x 8 modes */
    assert_has(t, "guestd_memory_MemTotal_bytes{domain=\"vm1\"} 25276157952");
    assert_has(t, "guestd_memory_MemAvailable_bytes{domain=\"vm1\"} 24577404928");
    assert_has(t, "guestd_memory_SwapFree_bytes{domain=\"vm1\"} 0");
    assert_has(t, "guestd_load1{domain=\"vm1\"} 7.45");
    assert_has(t, "guestd_boot_time_seconds{domain=\"vm1\"} 1796674081");
    assert_has(t, "guestd_pressure_cpu_waiting_seconds_total{domain=\"vm1\"} 2489.325297");
    assert_has(t, "guestd_pressure_io_stalled_seconds_total{domain=\"vm1\"} 25.365176");
    assert_has(t, "guestd_disk_read_bytes_total{domain=\"vm1\",device=\"vda\"} 11259786240");
    assert_has(t, "guestd_disk_io_time_seconds_total{domain=\"vm1\",device=\"vda\"} 115.712");
    assert_has(t,
               "guestd_filesystem_avail_bytes{domain=\"vm1\",device=\"/dev/vda\",fstype=\"ext4\","
               "mountpoint=\"/\"} 83165724672");
    assert_has(t, "guestd_filesystem_free_bytes{domain=\"vm1\",device=\"/dev/vda\",fstype=\"ext4\","
                  "mountpoint=\"/\"} 250973618176");
    assert_has(t, "guestd_filesystem_files_free{domain=\"vm1\",device=\"/dev/vda\",fstype=\"ext4\","
                  "mountpoint=\"/\"} 16312634");
    assert_has(t, "guestd_network_receive_bytes_total{domain=\"vm1\",device=\"eth0\"} 370703384");
    assert_has(t, "guestd_network_up{domain=\"vm1\",device=\"ifb0\"} 0");
    assert_has(t, "guestd_health_status{domain=\"vm1\"} 0");
    assert_has(t, "guestd_health_check_status{domain=\"vm1\",check=\"metrics_log\"} 0");
    assert_has(t, "guestd_agent_cpu_seconds_total{domain=\"vm1\"} 0.011549");
    /* Percentages and rates stay in the sample: counters only. */
    ck_assert_ptr_null(strstr(t, "pct"));
    ck_assert_ptr_null(strstr(t, "per_s"));
    /* Top processes are off by default (label churn). */
    ck_assert_ptr_null(strstr(t, "guestd_top_process"));
    free(t);
    free_all(p, &g, 1);
}
END_TEST

START_TEST(test_top_processes_when_asked)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 1), 0);
    gd_prom_guest_t *g = guest(p, "vm1", 0);
    size_t len;
    char *t = render(p, &g, 1, 0, 0, &len);
    assert_has(t, "guestd_top_process_cpu_ratio{domain=\"vm1\",pid=\"27872\",name=\"cc1\"} 0.2208");
    assert_has(
        t, "guestd_top_process_resident_memory_bytes{domain=\"vm1\",pid=\"27872\",name=\"cc1\"} "
           "54034432");
    free(t);
    free_all(p, &g, 1);
}
END_TEST

/* Each family: one HELP, one TYPE, then all its samples, never again later. */
START_TEST(test_families_contiguous_across_guests)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_guest_t *gs[3] = {guest(p, "a", 0), guest(p, "b\"\\\n", 0), guest(p, "c", 0)};
    size_t len;
    char *t = render(p, gs, 3, 0, 0, &len);
    ck_assert_int_eq(count(t, "# TYPE guestd_cpu_seconds_total counter\n"), 1);
    ck_assert_int_eq(count(t, "# HELP guestd_up "), 1);
    ck_assert_int_eq(count(t, "guestd_cpu_seconds_total{"), 48);
    assert_has(t, "guestd_up{domain=\"b\\\"\\\\\\n\"} 1"); /* escaped label value */
    char done[256][80];
    int ndone = 0;
    char current[80] = "";
    char *save;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[80];
        if (line[0] == '#') {
            ck_assert_int_eq(sscanf(line, "# %*s %79s", name), 1);
        } else {
            size_t n = strcspn(line, "{ ");
            ck_assert_uint_lt(n, sizeof(name));
            memcpy(name, line, n);
            name[n] = '\0';
        }
        if (strcmp(name, current) == 0) continue;
        for (int i = 0; i < ndone; i++)
            ck_assert_msg(strcmp(done[i], name) != 0, "%s appears in two places", name);
        if (current[0]) snprintf(done[ndone++], sizeof(done[0]), "%s", current);
        snprintf(current, sizeof(current), "%s", name);
    }
    ck_assert_int_gt(ndone, 30);
    free(t);
    free_all(p, gs, 3);
}
END_TEST

static char *inflate_all(const unsigned char *z, size_t len, size_t *out_len)
{
    z_stream s = {0};
    ck_assert_int_eq(inflateInit2(&s, 16 + MAX_WBITS), Z_OK);
    size_t cap = len * 40 + 1024;
    char *out = malloc(cap);
    s.next_in = (Bytef *)(uintptr_t)z;
    s.avail_in = (uInt)len;
    s.next_out = (Bytef *)out;
    s.avail_out = (uInt)cap;
    ck_assert_int_eq(inflate(&s, Z_FINISH), Z_STREAM_END); /* CRC and length checked */
    ck_assert_uint_eq(s.avail_in, 0);
    *out_len = cap - s.avail_out;
    inflateEnd(&s);
    return out;
}

START_TEST(test_gzip_inflates_to_the_text)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_guest_t *gs[2] = {guest(p, "a", 0), guest(p, "b", 0)};
    gd_prom_guest_connected(gs[1], 0);
    size_t tlen, zlen, ilen;
    char *t = render(p, gs, 2, 0, 0, &tlen);
    char *z = render(p, gs, 2, 0, 1, &zlen);
    ck_assert_uint_lt(zlen, tlen / 4); /* one stream: the guests' names repeat */
    char *i = inflate_all((unsigned char *)z, zlen, &ilen);
    ck_assert_uint_eq(ilen, tlen);
    ck_assert_int_eq(memcmp(i, t, tlen), 0);
    free(t);
    free(z);
    free(i);
    free_all(p, gs, 2);
}
END_TEST

START_TEST(test_silent_or_gone_guest_keeps_only_up_zero)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_guest_t *gs[2] = {guest(p, "live", 10000), guest(p, "quiet", 0)};
    /* interval 1000 ms: silent for 3 intervals is still up, past that not. */
    size_t len;
    char *t = render(p, gs, 2, 3000, 0, &len);
    assert_has(t, "guestd_up{domain=\"quiet\"} 1");
    free(t);
    t = render(p, gs, 2, 3001, 0, &len);
    assert_has(t, "guestd_up{domain=\"quiet\"} 0");
    assert_has(t, "guestd_up{domain=\"live\"} 1");
    ck_assert_ptr_null(strstr(t, "domain=\"quiet\","));          /* no other series of it */
    assert_has(t, "guestd_guest_connected{domain=\"quiet\"} 1"); /* port held, samples stopped */
    ck_assert_int_eq(count(t, "domain=\"quiet\""), 2);
    free(t);
    /* A guest whose connection dropped goes at once. */
    gd_prom_guest_connected(gs[0], 0);
    t = render(p, gs, 2, 10000, 0, &len);
    assert_has(t, "guestd_up{domain=\"live\"} 0");
    assert_has(t, "guestd_guest_connected{domain=\"live\"} 0");
    ck_assert_ptr_null(strstr(t, "guestd_cpu_seconds_total"));
    ck_assert_ptr_null(strstr(t, "# TYPE guestd_cpu_seconds_total")); /* no empty family */
    free(t);
    /* It comes back with a fresh sample. */
    gd_prom_guest_connected(gs[0], 1);
    ck_assert_int_eq(
        gd_prom_guest_sample(p, gs[0], cJSON_GetObjectItem(events[1], "data"), sample_ts, 20000, 0),
        0);
    t = render(p, gs, 2, 20500, 0, &len);
    assert_has(t, "guestd_up{domain=\"live\"} 1");
    ck_assert_int_eq(count(t, "guestd_cpu_seconds_total{domain=\"live\""), 16);
    free(t);
    free_all(p, gs, 2);
}
END_TEST

/* Before two samples show it, the interval is the one hello announced. */
START_TEST(test_interval_from_hello_until_measured)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_guest_t *g;
    ck_assert_int_eq(gd_prom_guest_new(p, &g, "vm"), 0);
    gd_prom_guest_connected(g, 1);
    cJSON *hello = cJSON_Parse("{\"version\":\"1.0.0\",\"metrics_interval_ms\":2000}");
    ck_assert_int_eq(gd_prom_guest_hello(p, g, hello), 0);
    ck_assert_int_eq(
        gd_prom_guest_sample(p, g, cJSON_GetObjectItem(events[1], "data"), sample_ts, 0, 0), 0);
    ck_assert(gd_prom_guest_up(g, 6000));
    ck_assert(!gd_prom_guest_up(g, 6001));
    /* Measured: 500 ms between samples wins over hello, even a later hello. */
    ck_assert_int_eq(
        gd_prom_guest_sample(p, g, cJSON_GetObjectItem(events[1], "data"), sample_ts, 500, 500), 0);
    ck_assert_int_eq(gd_prom_guest_hello(p, g, hello), 0);
    ck_assert(gd_prom_guest_up(g, 2000));
    ck_assert(!gd_prom_guest_up(g, 2001));
    cJSON_Delete(hello);
    free_all(p, &g, 1);
}
END_TEST

START_TEST(test_a_sample_replaces_the_previous_one)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_guest_t *g = guest(p, "vm", 0);
    cJSON *data = cJSON_Parse("{\"memory\":{\"total_bytes\":1000,\"available_bytes\":250}}");
    ck_assert_int_eq(gd_prom_guest_sample(p, g, data, 2000, 1, 0), 0);
    cJSON_Delete(data);
    size_t len;
    char *t = render(p, &g, 1, 1, 0, &len);
    assert_has(t, "guestd_memory_MemTotal_bytes{domain=\"vm\"} 1000");
    assert_has(t, "guestd_last_sample_timestamp_seconds{domain=\"vm\"} 2");
    ck_assert_ptr_null(strstr(t, "guestd_cpu_seconds_total")); /* not in this sample */
    ck_assert_int_eq(count(t, "guestd_memory_MemTotal_bytes{"), 1);
    free(t);
    free_all(p, &g, 1);
}
END_TEST

START_TEST(test_self_metrics)
{
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_self_t self = {.guests = 0,
                           .reconnects_total = 7,
                           .parse_errors_total = 3,
                           .samples_total = 11,
                           .scrapes_total = 2,
                           .last_scrape_s = 0.00125};
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_prom_render(p, NULL, 0, &self, 0, 0, &b), 0);
    gd_buf_append(&b, "", 1);
    assert_has(b.data, "guestd_hub_guests 0");
    assert_has(b.data, "guestd_hub_reconnects_total 7");
    assert_has(b.data, "guestd_hub_parse_errors_total 3");
    assert_has(b.data, "guestd_hub_samples_total 11");
    assert_has(b.data, "guestd_hub_scrape_duration_seconds 0.001250");
    gd_buf_free(&b);
    gd_prom_free(p);
}
END_TEST

START_TEST(test_promtool_accepts_it)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not installed: skipped\n");
        return;
    }
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 1), 0);
    gd_prom_guest_t *gs[2] = {guest(p, "a", 0), guest(p, "b", 0)};
    gd_prom_self_t self = {.guests = 2};
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_prom_render(p, gs, 2, &self, 0, 0, &b), 0);
    char path[] = "/tmp/check_hub_prom_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fwrite(b.data, 1, b.len, f);
    fclose(f);
    char cmd[600];
    /* node_exporter's own memory names are camelCase (MemTotal_bytes): kept
     * so the node_ relabel works, and the one lint promtool has about them. */
    snprintf(cmd, sizeof(cmd),
             "promtool check metrics < %s 2>&1 | grep -v '^guestd_memory_[A-Za-z]*_bytes "
             "metric names should be written in .snake_case. not .camelCase.$' | grep .; "
             "test $? = 1",
             path);
    FILE *out = popen(cmd, "r");
    char msg[4096] = "";
    size_t n = fread(msg, 1, sizeof(msg) - 1, out);
    msg[n] = '\0';
    int rc = pclose(out);
    unlink(path);
    ck_assert_msg(rc == 0, "promtool check metrics: %s", msg);
    gd_buf_free(&b);
    free_all(p, gs, 2);
}
END_TEST

/* docs/prometheus.md's names table: every metric the hub serves has its
 * row, and every name in the first column is one the hub serves. */
START_TEST(test_docs_name_every_metric)
{
    gd_doc_page_t doc;
    gd_doc_page_load(&doc, "prometheus.md", "GUESTD_PROMETHEUS_DOC");
    gd_prom_t *p;
    ck_assert_int_eq(gd_prom_new(&p, 0), 0);
    gd_prom_self_t self = {0};
    gd_buf_t b;
    gd_buf_init(&b);
    /* The served names: the families, and the hub's own from a render. */
    for (int f = 0; f < F_COUNT; f++)
        gd_buf_printf(&b, "# TYPE %s x\n", gd_prom_families[f].name);
    ck_assert_int_eq(gd_prom_render(p, NULL, 0, &self, 0, 0, &b), 0);
    gd_buf_append(&b, "", 1);
    int documented = 0;
    for (int i = 0; i < doc.n_lines; i++) {
        const char *l = doc.lines[i];
        if (strncmp(l, "| `guestd_", 10) != 0) continue;
        const char *end = strchr(l + 2, '|');
        for (const char *q = l; (q = strstr(q, "`guestd_")) != NULL && q < end;) {
            const char *close = strchr(q + 1, '`');
            char name[128], want[160];
            snprintf(name, sizeof(name), "%.*s", (int)(close - q - 1), q + 1);
            snprintf(want, sizeof(want), "# TYPE %s ", name);
            ck_assert_msg(strstr(b.data, want) != NULL, "prometheus.md names %s: not served", name);
            documented++;
            q = close + 1;
        }
    }
    for (const char *q = b.data; (q = strstr(q, "# TYPE ")) != NULL; q++) {
        char name[128], want[160];
        ck_assert_int_eq(sscanf(q, "# TYPE %127s", name), 1);
        snprintf(want, sizeof(want), "`%s`", name);
        int found = 0;
        for (int i = 0; i < doc.n_lines && !found; i++)
            found = strncmp(doc.lines[i], "| `guestd_", 10) == 0 && strstr(doc.lines[i], want);
        ck_assert_msg(found, "%s has no row in prometheus.md", name);
    }
    ck_assert_int_ge(documented, F_COUNT);
    gd_buf_free(&b);
    gd_prom_free(p);
    gd_doc_page_free(&doc);
}
END_TEST

static Suite *prom_suite(void)
{
    Suite *s = suite_create("hub_prom");
    TCase *tc = tcase_create("render");
    tcase_add_checked_fixture(tc, load_fixture, free_fixture);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sample_lines_with_node_names);
    tcase_add_test(tc, test_top_processes_when_asked);
    tcase_add_test(tc, test_families_contiguous_across_guests);
    tcase_add_test(tc, test_gzip_inflates_to_the_text);
    tcase_add_test(tc, test_silent_or_gone_guest_keeps_only_up_zero);
    tcase_add_test(tc, test_interval_from_hello_until_measured);
    tcase_add_test(tc, test_a_sample_replaces_the_previous_one);
    tcase_add_test(tc, test_self_metrics);
    tcase_add_test(tc, test_promtool_accepts_it);
    tcase_add_test(tc, test_docs_name_every_metric);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(prom_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

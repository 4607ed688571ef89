/* The metrics log on a real loop and real files: lines as published,
 * rotation boundaries, a partial last line cut at start, short writes cut
 * back, a slow disk that drops and counts, an unwritable path and a full
 * tmpfs that both recover by themselves, fsync modes, and a stop that
 * writes what is queued. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics_log.h"

static char dir[64];
static char path[128];
static uv_loop_t loop;
static gd_bus_t bus;
static gd_config_t cfg;
static gd_metrics_log_t *mlog;

static int64_t fixed_now(void)
{
    return 1000;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_mlog.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/log/m.ndjson", dir);
    gd_log_set_level(GD_LOG_ERROR);
    gd_config_defaults(&cfg);
    snprintf(cfg.metrics.log_path, sizeof(cfg.metrics.log_path), "%s", path);
    cfg.metrics.log_fsync = GD_FSYNC_NEVER;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(gd_bus_init(&bus, &loop), 0);
    bus.now_ms = fixed_now;
    mlog = NULL;
}

static void teardown(void)
{
    char cmd[128], mnt[128];
    snprintf(mnt, sizeof(mnt), "%s/log", dir);
    umount2(mnt, MNT_DETACH); /* left mounted by a failed tmpfs test */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void open_log(const gd_metrics_log_opts_t *opts)
{
    char err[256];
    ck_assert_int_eq(gd_metrics_log_new(&mlog, &loop, &bus, &cfg, opts, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(mlog);
    gd_metrics_log_start(mlog);
}

static gd_metrics_log_stats_t stats(void)
{
    gd_metrics_log_stats_t s;
    gd_metrics_log_stats(mlog, &s);
    return s;
}

/* Runs the loop until the log has nothing queued or in flight. */
static void drain(void)
{
    for (int i = 0; i < 5000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        gd_metrics_log_stats_t s = stats();
        if (!s.busy && s.queued == 0 && !uv_is_active((uv_handle_t *)&bus.idle)) return;
        usleep(1000);
    }
    ck_abort_msg("the metrics log did not drain");
}

/* Stops the log and the bus, runs the loop out, checks nothing is left. */
static void finish(void)
{
    gd_metrics_log_stop(mlog);
    gd_bus_close(&bus, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_metrics_log_free(mlog);
    mlog = NULL;
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    ck_assert_uint_eq(gd_event_live_count(), 0);
}

/* Publishes a `metrics` event whose whole line is exactly len bytes. */
static uint64_t publish_sized(size_t len)
{
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)bus.next_seq);
    size_t fixed = strlen("{\"event\":\"metrics\",\"seq\":") + strlen(seq) +
                   strlen(",\"ts\":1000,\"data\":") + strlen("{\"p\":\"\"}") + strlen("}\n");
    ck_assert_uint_ge(len, fixed);
    size_t pad = len - fixed;
    char *data = malloc(pad + 16);
    size_t n = (size_t)sprintf(data, "{\"p\":\"");
    memset(data + n, 'x', pad);
    n += pad;
    n += (size_t)sprintf(data + n, "\"}");
    uint64_t s = gd_bus_publish_raw(&bus, "metrics", data, n);
    free(data);
    return s;
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* The seqs of the lines of a log file, which must all be whole lines. */
static int seqs_of(const char *p, unsigned long *out, int max)
{
    size_t len;
    char *text = slurp(p, &len);
    if (!text) return -1;
    ck_assert_msg(len == 0 || text[len - 1] == '\n', "%s ends in a partial line", p);
    int n = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_msg(strncmp(line, "{\"event\":\"", 10) == 0 && nl[-1] == '}', "torn line in %s",
                      p);
        unsigned long seq;
        ck_assert_int_eq(sscanf(strstr(line, "\"seq\":"), "\"seq\":%lu", &seq), 1);
        if (n < max) out[n] = seq;
        n++;
        line = nl + 1;
    }
    free(text);
    return n;
}

START_TEST(test_metrics_and_health_lines_as_published)
{
    open_log(NULL);
    cJSON *data = cJSON_Parse("{\"cpu\":{\"usage_pct\":12.5}}");
    gd_bus_publish(&bus, "metrics", data);
    gd_bus_publish(&bus, "exec.output", data); /* not logged */
    gd_bus_publish(&bus, "health", data);
    cJSON_Delete(data);
    drain();
    char *text = slurp(path, NULL);
    ck_assert_str_eq(
        text,
        "{\"event\":\"metrics\",\"seq\":1,\"ts\":1000,\"data\":{\"cpu\":{\"usage_pct\":12.5}}}\n"
        "{\"event\":\"health\",\"seq\":3,\"ts\":1000,\"data\":{\"cpu\":{\"usage_pct\":12.5}}}\n");
    free(text);
    gd_metrics_log_stats_t s = stats();
    ck_assert_uint_eq(s.lines_written, 2);
    ck_assert_int_eq(s.error, 0);
    ck_assert_int_gt(s.free_bytes, 0);
    finish();
}
END_TEST

START_TEST(test_rotation_boundaries)
{
    cfg.metrics.log_max_bytes = 4096;
    cfg.metrics.log_keep = 2;
    open_log(NULL);
    /* Four 1024-byte lines fill 4096 exactly: no rotation yet. */
    for (int i = 0; i < 4; i++)
        publish_sized(1024);
    drain();
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 4096);
    ck_assert_uint_eq(stats().rotations, 0);
    /* The fifth would pass the limit: it starts a new file. */
    publish_sized(1024);
    drain();
    ck_assert_uint_eq(stats().rotations, 1);
    unsigned long seqs[16];
    char p1[160], p2[160], p3[160];
    snprintf(p1, sizeof(p1), "%s.1", path);
    snprintf(p2, sizeof(p2), "%s.2", path);
    snprintf(p3, sizeof(p3), "%s.3", path);
    ck_assert_int_eq(seqs_of(p1, seqs, 16), 4);
    ck_assert_uint_eq(seqs[0], 1);
    ck_assert_uint_eq(seqs[3], 4);
    ck_assert_int_eq(seqs_of(path, seqs, 16), 1);
    ck_assert_uint_eq(seqs[0], 5);
    /* 13 lines with keep 2: 1-4 fell off, 5-8 in .2, 9-12 in .1, 13 live. */
    for (int i = 0; i < 8; i++)
        publish_sized(1024);
    drain();
    ck_assert_int_eq(seqs_of(p2, seqs, 16), 4);
    ck_assert_uint_eq(seqs[0], 5);
    ck_assert_int_eq(seqs_of(p1, seqs, 16), 4);
    ck_assert_uint_eq(seqs[0], 9);
    ck_assert_int_eq(seqs_of(path, seqs, 16), 1);
    ck_assert_uint_eq(seqs[0], 13);
    ck_assert_int_eq(access(p3, F_OK), -1);
    ck_assert_uint_eq(stats().rotations, 3);
    ck_assert_uint_eq(stats().lines_lost, 0);
    finish();
}
END_TEST

START_TEST(test_keep_zero_and_a_line_longer_than_the_limit)
{
    cfg.metrics.log_max_bytes = 4096;
    cfg.metrics.log_keep = 0;
    open_log(NULL);
    publish_sized(5000); /* alone in an empty file: written whole */
    drain();
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 5000);
    publish_sized(100); /* rotates: with keep 0 the old file is gone */
    drain();
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 100);
    char p1[160];
    snprintf(p1, sizeof(p1), "%s.1", path);
    ck_assert_int_eq(access(p1, F_OK), -1);
    finish();
}
END_TEST

START_TEST(test_partial_last_line_is_cut_at_start)
{
    char d[128];
    snprintf(d, sizeof(d), "%s/log", dir);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    write_file(path, "{\"event\":\"metrics\",\"seq\":1}\n{\"event\":\"metr");
    open_log(NULL);
    drain();
    ck_assert_uint_eq(stats().cut_bytes, 14);
    char *text = slurp(path, NULL);
    ck_assert_str_eq(text, "{\"event\":\"metrics\",\"seq\":1}\n");
    free(text);
    /* The next line starts on a line of its own. */
    gd_bus_publish_raw(&bus, "metrics", "{}", 2);
    drain();
    text = slurp(path, NULL);
    ck_assert_str_eq(text, "{\"event\":\"metrics\",\"seq\":1}\n"
                           "{\"event\":\"metrics\",\"seq\":1,\"ts\":1000,\"data\":{}}\n");
    free(text);
    finish();
}
END_TEST

START_TEST(test_cut_partial_across_chunks)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/f", dir);
    /* One whole line, then 10000 bytes without a newline (three 4 KiB reads). */
    char *text = malloc(10040);
    strcpy(text, "whole\n");
    memset(text + 6, 'y', 10000);
    text[10006] = '\0';
    write_file(p, text);
    free(text);
    int fd = open(p, O_RDWR);
    off_t size = 10006;
    ck_assert_int_eq(gd_metrics_log_cut_partial(fd, &size), 10000);
    ck_assert_int_eq(size, 6);
    ck_assert_int_eq(gd_metrics_log_cut_partial(fd, &size), 0); /* ends in '\n' */
    close(fd);
    write_file(p, "no newline at all");
    fd = open(p, O_RDWR);
    size = 17;
    ck_assert_int_eq(gd_metrics_log_cut_partial(fd, &size), 17);
    ck_assert_int_eq(size, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    close(fd);
}
END_TEST

/* A disk that takes only part of a write while `full` is set. */
static atomic_int full;
static ssize_t half_write(int fd, const void *buf, size_t len)
{
    if (atomic_load(&full)) {
        ssize_t n = write(fd, buf, len / 2);
        return n;
    }
    return write(fd, buf, len);
}

START_TEST(test_short_write_is_cut_back_and_recovers)
{
    gd_metrics_log_opts_t opts = {.write_fn = half_write};
    open_log(&opts);
    publish_sized(200);
    drain();
    atomic_store(&full, 1);
    publish_sized(300);
    publish_sized(300);
    drain();
    gd_metrics_log_stats_t s = stats();
    ck_assert_int_eq(s.error, ENOSPC);
    ck_assert_str_eq(s.error_what, "write");
    ck_assert_uint_eq(s.lines_lost, 2);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 200); /* the halves were cut back */
    atomic_store(&full, 0);
    publish_sized(400);
    drain();
    s = stats();
    ck_assert_int_eq(s.error, 0);
    ck_assert_uint_eq(s.lines_written, 2);
    unsigned long seqs[8];
    ck_assert_int_eq(seqs_of(path, seqs, 8), 2);
    ck_assert_uint_eq(seqs[0], 1);
    ck_assert_uint_eq(seqs[1], 4);
    finish();
}
END_TEST

/* A disk that hangs until the test lets it go. */
static sem_t release;
static ssize_t slow_write(int fd, const void *buf, size_t len)
{
    sem_wait(&release);
    return write(fd, buf, len);
}

START_TEST(test_slow_disk_queues_a_bounded_number_then_drops)
{
    gd_metrics_log_opts_t opts = {.write_fn = slow_write, .queue_lines = 4};
    ck_assert_int_eq(sem_init(&release, 0, 0), 0);
    open_log(&opts);
    /* Let the open-only start job finish first. */
    drain();
    for (int i = 0; i < 20; i++)
        publish_sized(100);
    /* Delivery: the first line goes to the (hanging) pool job, four wait,
     * fifteen are dropped. The loop itself is never held up. */
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_uint_lt(uv_hrtime() - t0, 500000000u);
    gd_metrics_log_stats_t s = stats();
    ck_assert_int_eq(s.busy, 1);
    ck_assert_uint_eq(s.queued, 4);
    ck_assert_uint_eq(s.lines_dropped, 15);
    for (int i = 0; i < 5; i++)
        sem_post(&release);
    drain();
    s = stats();
    ck_assert_uint_eq(s.lines_written, 5);
    unsigned long seqs[8];
    ck_assert_int_eq(seqs_of(path, seqs, 8), 5);
    ck_assert_uint_eq(seqs[0], 1);
    ck_assert_uint_eq(seqs[1], 17); /* the newest four waited */
    ck_assert_uint_eq(seqs[4], 20);
    finish();
    sem_destroy(&release);
}
END_TEST

static int writes_seen;
static ssize_t counting_write(int fd, const void *buf, size_t len)
{
    __atomic_add_fetch(&writes_seen, 1, __ATOMIC_SEQ_CST);
    return write(fd, buf, len);
}

/* While filesystems are frozen no write is attempted (it would hold a pool
 * thread until the thaw): lines wait, the oldest dropped and counted past
 * the queue's size, and the rest go out, in order, on resume. */
START_TEST(test_paused_while_frozen_then_resumes)
{
    gd_metrics_log_opts_t opts = {.write_fn = counting_write, .queue_lines = 4};
    writes_seen = 0;
    open_log(&opts);
    drain();
    publish_sized(100); /* seq 1, written */
    drain();
    ck_assert_int_eq(writes_seen, 1);
    gd_metrics_log_pause(mlog, 1);
    for (int i = 0; i < 6; i++)
        publish_sized(100); /* seqs 2..7 */
    for (int i = 0; i < 50; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    gd_metrics_log_stats_t s = stats();
    ck_assert_int_eq(writes_seen, 1); /* nothing while frozen */
    ck_assert_int_eq(s.paused, 1);
    ck_assert_int_eq(s.busy, 0);
    ck_assert_uint_eq(s.queued, 4);
    ck_assert_uint_eq(s.lines_dropped, 2);
    gd_metrics_log_pause(mlog, 0);
    drain();
    s = stats();
    ck_assert_int_eq(s.paused, 0);
    ck_assert_uint_eq(s.lines_written, 5);
    unsigned long seqs[8];
    ck_assert_int_eq(seqs_of(path, seqs, 8), 5);
    ck_assert_uint_eq(seqs[0], 1);
    ck_assert_uint_eq(seqs[1], 4); /* the newest four waited */
    ck_assert_uint_eq(seqs[4], 7);
    /* Stopping while paused waits for the resume (the thaw comes first). */
    gd_metrics_log_pause(mlog, 1);
    publish_sized(100);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* delivered to the log */
    ck_assert_uint_eq(stats().queued, 1);
    gd_metrics_log_stop(mlog);
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(stats().busy, 0);
    gd_metrics_log_pause(mlog, 0);
    finish();
    ck_assert_int_eq(seqs_of(path, seqs, 8), 6);
}
END_TEST

START_TEST(test_unwritable_path_recovers_by_itself)
{
    /* The log's directory is a regular file: nothing can be created. */
    char d[128];
    snprintf(d, sizeof(d), "%s/log", dir);
    write_file(d, "not a directory");
    open_log(NULL);
    drain();
    gd_metrics_log_stats_t s = stats();
    ck_assert_int_ne(s.error, 0);
    ck_assert_str_eq(s.error_what, "open");
    publish_sized(100);
    publish_sized(100);
    drain();
    ck_assert_uint_eq(stats().lines_lost, 2);
    /* The obstacle goes: the next line is written with no help. */
    ck_assert_int_eq(unlink(d), 0);
    publish_sized(100);
    drain();
    s = stats();
    ck_assert_int_eq(s.error, 0);
    ck_assert_uint_eq(s.lines_written, 1);
    unsigned long seqs[4];
    ck_assert_int_eq(seqs_of(path, seqs, 4), 1);
    ck_assert_uint_eq(seqs[0], 3);
    finish();
}
END_TEST

START_TEST(test_full_tmpfs_loses_lines_whole_and_recovers)
{
    char mnt[128], filler[160];
    snprintf(mnt, sizeof(mnt), "%s/log", dir);
    ck_assert_int_eq(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
        fprintf(stderr, "check_metrics_log: SKIPPED the full-tmpfs test: mount: %s (needs root)\n",
                strerror(errno));
        return;
    }
    /* Fill all but a few KiB, then log 1000-byte lines past the end. */
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    int fd = open(filler, O_WRONLY | O_CREAT, 0644);
    char block[4096];
    memset(block, 'f', sizeof(block));
    for (int i = 0; i < 14; i++)
        ck_assert_int_eq(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
    close(fd);
    open_log(NULL);
    for (int i = 0; i < 12; i++)
        publish_sized(1000);
    drain();
    gd_metrics_log_stats_t s = stats();
    ck_assert_int_eq(s.error, ENOSPC);
    ck_assert_uint_gt(s.lines_lost, 0);
    ck_assert_uint_gt(s.lines_written, 0);
    ck_assert_uint_eq(s.lines_written + s.lines_lost, 12);
    ck_assert_int_lt(s.free_bytes, 4096);
    unsigned long seqs[16];
    ck_assert_int_eq(seqs_of(path, seqs, 16), (int)s.lines_written); /* whole lines only */
    /* Space comes back: logging resumes. */
    ck_assert_int_eq(unlink(filler), 0);
    publish_sized(1000);
    drain();
    s = stats();
    ck_assert_int_eq(s.error, 0);
    ck_assert_int_gt(s.free_bytes, 32768);
    int n = seqs_of(path, seqs, 16);
    ck_assert_int_eq(n, (int)s.lines_written);
    ck_assert_uint_eq(seqs[n - 1], 13);
    finish();
    ck_assert_int_eq(umount(mnt), 0);
}
END_TEST

START_TEST(test_fsync_modes)
{
    cfg.metrics.log_fsync = GD_FSYNC_ALWAYS;
    open_log(NULL);
    for (int i = 0; i < 3; i++)
        publish_sized(100);
    drain();
    ck_assert_uint_eq(stats().fsyncs, 3);
    /* Runtime key: read again for each job. */
    cfg.metrics.log_fsync = GD_FSYNC_NEVER;
    publish_sized(100);
    drain();
    ck_assert_uint_eq(stats().fsyncs, 3);
    finish();
}
END_TEST

START_TEST(test_fsync_on_rotate_and_stop)
{
    cfg.metrics.log_fsync = GD_FSYNC_ROTATE;
    cfg.metrics.log_max_bytes = 4096;
    open_log(NULL);
    for (int i = 0; i < 5; i++)
        publish_sized(1024);
    drain();
    /* The old file and the directory at the rotation. */
    ck_assert_uint_eq(stats().fsyncs, 2);
    gd_metrics_log_stop(mlog);
    gd_bus_close(&bus, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(stats().fsyncs, 3);
    gd_metrics_log_free(mlog);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_stop_writes_what_is_queued)
{
    open_log(NULL);
    for (int i = 0; i < 50; i++)
        publish_sized(300);
    /* Deliver, then stop at once: queued lines are still written. */
    uv_run(&loop, UV_RUN_NOWAIT);
    finish();
    unsigned long seqs[64];
    ck_assert_int_eq(seqs_of(path, seqs, 64), 50);
}
END_TEST

START_TEST(test_none_means_no_log)
{
    char err[128];
    snprintf(cfg.metrics.log_path, sizeof(cfg.metrics.log_path), "none");
    ck_assert_int_eq(gd_metrics_log_new(&mlog, &loop, &bus, &cfg, NULL, err, sizeof(err)), 0);
    ck_assert_ptr_null(mlog);
    snprintf(cfg.metrics.log_path, sizeof(cfg.metrics.log_path), "relative.ndjson");
    ck_assert_int_eq(gd_metrics_log_new(&mlog, &loop, &bus, &cfg, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "absolute"));
    gd_bus_close(&bus, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *metrics_log_suite(void)
{
    Suite *s = suite_create("metrics_log");
    TCase *tc = tcase_create("lines");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_metrics_and_health_lines_as_published);
    tcase_add_test(tc, test_none_means_no_log);
    tcase_add_test(tc, test_stop_writes_what_is_queued);
    suite_add_tcase(s, tc);

    tc = tcase_create("rotation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rotation_boundaries);
    tcase_add_test(tc, test_keep_zero_and_a_line_longer_than_the_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("torn_lines");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_partial_last_line_is_cut_at_start);
    tcase_add_test(tc, test_cut_partial_across_chunks);
    tcase_add_test(tc, test_short_write_is_cut_back_and_recovers);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_slow_disk_queues_a_bounded_number_then_drops);
    tcase_add_test(tc, test_paused_while_frozen_then_resumes);
    tcase_add_test(tc, test_unwritable_path_recovers_by_itself);
    tcase_add_test(tc, test_full_tmpfs_loses_lines_whole_and_recovers);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("fsync");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fsync_modes);
    tcase_add_test(tc, test_fsync_on_rotate_and_stop);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

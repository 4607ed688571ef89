/* The agent's own health: checks, the report, status changes published at
 * once, and systemd notification. */
#include "agent/health.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
/* mallopt/malloc_trim are glibc's; musl's allocator (the static build)
 * returns freed memory to the kernel by itself and has neither. */
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "agent/agent.h"
#include "core/log.h"
#include "core/metrics_log.h"
#include "agent/sd_notify.h"
#include "collectors/metrics.h"
#include "commands/command.h"
#include "transport/channel.h"

enum {
    CHECK_LOOP,
    CHECK_MEMORY,
    CHECK_FDS,
    CHECK_CHANNEL,
    CHECK_COLLECTORS,
    CHECK_EVENTS,
    CHECK_METRICS_LOG,
    N_CHECKS
};
static const char *const check_names[N_CHECKS] = {"loop",       "memory", "fds",        "channel",
                                                  "collectors", "events", "metrics_log"};
static const char *const status_names[] = {"ok", "degraded", "failing"};

typedef struct check_s {
    int status;
    char detail[400];
} check_t;

typedef struct gd_health_s {
    gd_agent_t *a;
    gd_metrics_log_t *log;
    gd_bus_sub_t sub;     /* metrics events: what the collectors' last cycle did */
    uv_prepare_t prepare; /* each loop iteration: lag, and status changes at once */
    uv_timer_t watchdog;  /* WATCHDOG=1 at half of WATCHDOG_USEC */
    int handles, started, stopped;
    uint64_t watchdog_ms; /* 0: no systemd watchdog */

    /* Loop lag: the busy time of one loop iteration (wall time between two
     * prepare callbacks less the time spent waiting in poll). */
    int idle_metrics;
    uint64_t last_prepare_ns, last_idle_ns;
    double window_lag_ms; /* worst since the last health tick */
    uint64_t lag_over_at; /* uv_now() when a lag over the limit was seen; 0 never */
    double lag_over_ms;   /* that lag */

    /* The collectors' last cycle, from the latest metrics event. */
    uint64_t errors_seen;
    uint64_t cycle_errors;
    uint64_t cycle_us;
    char failing_collectors[96];
    int cycles;

    /* Drops: events (out-queue + bus lag) and metrics log lines. */
    uint64_t dropped_seen, dropped_at;
    uint64_t log_dropped_seen, log_dropped_at;

    /* The latest self sample (cheap checks reuse it between samples). */
    long rss;
    int fds;
    long fd_limit;

    int last_status; /* of the latest health event, -1 before start */
} gd_health_t;

const char *gd_health_status_name(int status)
{
    return status >= 0 && status <= GD_HEALTH_FAILING ? status_names[status] : "unknown";
}

/* ---- systemd ---- */

static void notify(const char *state)
{
    int r = gd_sd_notify(state);
    if (r < 0) gd_debug("health: sd_notify: %s", strerror(-r));
}

/* ---- samples ---- */

static long self_rss_bytes(void)
{
    char buf[128];
    long pages = 0, rss = 0;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%ld %ld", &pages, &rss) != 2) return 0;
    return rss * sysconf(_SC_PAGESIZE);
}

static int self_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void sample_self(gd_health_t *h)
{
    struct rlimit rl;
    h->rss = self_rss_bytes();
    h->fds = self_fds();
    h->fd_limit =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur : 0;
}

/* Counters that only grow: note when they last moved, so a check can say
 * "recently" without a timer of its own. */
static void observe(gd_health_t *h)
{
    gd_agent_t *a = h->a;
    uint64_t now = uv_now(a->loop);
    uint64_t dropped = a->channel->outq.dropped_events + gd_bus_total_lagged(&a->bus);
    if (dropped != h->dropped_seen) {
        h->dropped_seen = dropped;
        h->dropped_at = now;
    }
    if (h->log) {
        gd_metrics_log_stats_t s;
        gd_metrics_log_stats(h->log, &s);
        if (s.lines_dropped != h->log_dropped_seen) {
            h->log_dropped_seen = s.lines_dropped;
            h->log_dropped_at = now;
        }
    }
}

static void note_lag(gd_health_t *h, double lag_ms)
{
    if (lag_ms > h->window_lag_ms) h->window_lag_ms = lag_ms;
    if (lag_ms > (double)h->a->cfg.health.max_loop_lag_ms) {
        h->lag_over_at = uv_now(h->a->loop);
        if (!h->lag_over_at) h->lag_over_at = 1;
        h->lag_over_ms = lag_ms;
    }
}

/* ---- the checks ---- */

static int recent(gd_health_t *h, uint64_t at)
{
    return at && uv_now(h->a->loop) - at < (uint64_t)h->a->cfg.health.interval_ms;
}

static void set(check_t *c, int status)
{
    c->status = status;
    c->detail[0] = '\0';
}

#define DETAIL(c, ...)                                                                             \
    (details ? (void)snprintf((c)->detail, sizeof((c)->detail), __VA_ARGS__) : (void)0)

/* Fills every check from the latest samples and live counters. Without
 * details it costs a few comparisons: it runs at every loop iteration. */
static int evaluate(gd_health_t *h, check_t *c, int details)
{
    gd_agent_t *a = h->a;
    const gd_config_t *cfg = &a->cfg;
    gd_channel_t *ch = a->channel;
    uint64_t now = uv_now(a->loop);
    double limit_s = (double)cfg->health.interval_ms / 1000.0;

    /* loop */
    if (recent(h, h->lag_over_at)) {
        set(&c[CHECK_LOOP], GD_HEALTH_DEGRADED);
        DETAIL(&c[CHECK_LOOP],
               "the loop was busy for %.0f ms in one go %.0f s ago (limit %" PRId64 " ms)",
               h->lag_over_ms, (double)(now - h->lag_over_at) / 1000.0,
               cfg->health.max_loop_lag_ms);
    } else {
        set(&c[CHECK_LOOP], GD_HEALTH_OK);
        DETAIL(&c[CHECK_LOOP], "worst lag %.1f ms since the last report (limit %" PRId64 " ms)",
               h->window_lag_ms, cfg->health.max_loop_lag_ms);
    }

    /* memory */
    int64_t max_rss = cfg->health.max_rss_bytes;
    set(&c[CHECK_MEMORY], h->rss > max_rss                         ? GD_HEALTH_FAILING
                          : (double)h->rss > 0.8 * (double)max_rss ? GD_HEALTH_DEGRADED
                                                                   : GD_HEALTH_OK);
    DETAIL(&c[CHECK_MEMORY], "%ld bytes resident (limit %" PRId64 ")", h->rss, max_rss);

    /* fds */
    if (h->fd_limit > 0 && h->fds >= 0) {
        double used = (double)h->fds / (double)h->fd_limit;
        set(&c[CHECK_FDS], used >= 0.95   ? GD_HEALTH_FAILING
                           : used >= 0.80 ? GD_HEALTH_DEGRADED
                                          : GD_HEALTH_OK);
        DETAIL(&c[CHECK_FDS], "%d open of %ld allowed", h->fds, h->fd_limit);
    } else {
        set(&c[CHECK_FDS], GD_HEALTH_OK);
        DETAIL(&c[CHECK_FDS], "%d open, no limit", h->fds);
    }

    /* channel */
    if (!ch->attached) {
        set(&c[CHECK_CHANNEL], GD_HEALTH_DEGRADED);
        if (ch->kind == GD_EP_VIRTIO_SERIAL && ch->fd < 0)
            DETAIL(&c[CHECK_CHANNEL], "port %.200s not present", ch->path);
        else
            DETAIL(&c[CHECK_CHANNEL], "no host attached");
    } else if (gd_outq_over_limit(&ch->outq)) {
        set(&c[CHECK_CHANNEL], GD_HEALTH_DEGRADED);
        DETAIL(&c[CHECK_CHANNEL], "the host is not reading: %zu bytes wait for it", ch->outq.bytes);
    } else {
        set(&c[CHECK_CHANNEL], GD_HEALTH_OK);
        if (details) {
            int64_t wall = gd_now_ms();
            DETAIL(&c[CHECK_CHANNEL], "host attached %.0f s ago, last spoke %.0f s ago",
                   (double)(wall - ch->attached_since_ms) / 1000.0,
                   (double)(wall - ch->last_rx_ms) / 1000.0);
        }
    }

    /* collectors */
    if (h->cycle_errors) {
        set(&c[CHECK_COLLECTORS], GD_HEALTH_DEGRADED);
        DETAIL(&c[CHECK_COLLECTORS], "%" PRIu64 " errors in the last cycle (failing: %s)",
               h->cycle_errors, h->failing_collectors[0] ? h->failing_collectors : "none now");
    } else if (h->cycle_us > (uint64_t)cfg->health.max_loop_lag_ms * 1000u) {
        set(&c[CHECK_COLLECTORS], GD_HEALTH_DEGRADED);
        DETAIL(&c[CHECK_COLLECTORS], "the last cycle took %.1f ms (limit %" PRId64 " ms)",
               (double)h->cycle_us / 1000.0, cfg->health.max_loop_lag_ms);
    } else {
        set(&c[CHECK_COLLECTORS], GD_HEALTH_OK);
        if (h->cycles)
            DETAIL(&c[CHECK_COLLECTORS], "last cycle %.1f ms, no errors",
                   (double)h->cycle_us / 1000.0);
        else
            DETAIL(&c[CHECK_COLLECTORS], "no cycle yet");
    }

    /* events */
    set(&c[CHECK_EVENTS], recent(h, h->dropped_at) ? GD_HEALTH_DEGRADED : GD_HEALTH_OK);
    if (h->dropped_at)
        DETAIL(&c[CHECK_EVENTS], "%" PRIu64 " events dropped since start, the latest %.0f s ago",
               h->dropped_seen, (double)(now - h->dropped_at) / 1000.0);
    else
        DETAIL(&c[CHECK_EVENTS], "no event dropped");

    /* metrics_log */
    if (!h->log) {
        set(&c[CHECK_METRICS_LOG], GD_HEALTH_OK);
        DETAIL(&c[CHECK_METRICS_LOG], "off");
    } else {
        gd_metrics_log_stats_t s;
        gd_metrics_log_stats(h->log, &s);
        if (s.error) {
            set(&c[CHECK_METRICS_LOG], GD_HEALTH_DEGRADED);
            DETAIL(&c[CHECK_METRICS_LOG], "cannot %s %s: %s (%" PRIu64 " lines lost)", s.error_what,
                   s.path, strerror(s.error), s.lines_lost);
        } else if (s.free_bytes >= 0 && s.free_bytes < cfg->health.min_free_bytes) {
            set(&c[CHECK_METRICS_LOG], GD_HEALTH_DEGRADED);
            DETAIL(&c[CHECK_METRICS_LOG], "%" PRId64 " bytes free for %s (min %" PRId64 ")",
                   s.free_bytes, s.path, cfg->health.min_free_bytes);
        } else if (recent(h, h->log_dropped_at)) {
            set(&c[CHECK_METRICS_LOG], GD_HEALTH_DEGRADED);
            DETAIL(&c[CHECK_METRICS_LOG],
                   "the disk is slow: %" PRIu64 " lines dropped, the latest %.0f s ago",
                   s.lines_dropped, (double)(now - h->log_dropped_at) / 1000.0);
        } else {
            set(&c[CHECK_METRICS_LOG], GD_HEALTH_OK);
            DETAIL(&c[CHECK_METRICS_LOG], "%s: %" PRIu64 " lines written, %" PRId64 " bytes free",
                   s.path, s.lines_written, s.free_bytes);
        }
    }
    (void)limit_s;

    int worst = GD_HEALTH_OK;
    for (int i = 0; i < N_CHECKS; i++)
        if (c[i].status > worst) worst = c[i].status;
    return worst;
}

/* "ok", or "degraded: channel: no host attached; events: ..." for STATUS=. */
static void summary(const check_t *c, int worst, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "%s", status_names[worst]);
    const char *sep = ": ";
    for (int i = 0; i < N_CHECKS && used < len; i++) {
        if (c[i].status == GD_HEALTH_OK) continue;
        used +=
            (size_t)snprintf(buf + used, len - used, "%s%s: %s", sep, check_names[i], c[i].detail);
        sep = "; ";
    }
}

/* ---- the report ---- */

static cJSON *build_report(gd_health_t *h, int *worst_out, char *status_line, size_t status_len)
{
    gd_agent_t *a = h->a;
    gd_channel_t *ch = a->channel;
    check_t c[N_CHECKS];
    struct rusage ru;
    sample_self(h);
    observe(h);
    int worst = evaluate(h, c, 1);
    getrusage(RUSAGE_SELF, &ru);

    cJSON *report = cJSON_CreateObject();
    cJSON_AddStringToObject(report, "status", status_names[worst]);
    cJSON *checks = cJSON_AddArrayToObject(report, "checks");
    for (int i = 0; i < N_CHECKS; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", check_names[i]);
        cJSON_AddStringToObject(o, "status", status_names[c[i].status]);
        cJSON_AddStringToObject(o, "detail", c[i].detail);
        cJSON_AddItemToArray(checks, o);
    }

    cJSON *self = cJSON_AddObjectToObject(report, "self");
    cJSON_AddNumberToObject(self, "rss_bytes", (double)h->rss);
    cJSON_AddNumberToObject(self, "cpu_ms",
                            (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
                                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0);
    cJSON_AddNumberToObject(self, "wakeups", (double)ru.ru_nvcsw);
    cJSON_AddNumberToObject(self, "fds", h->fds);
    cJSON_AddNumberToObject(self, "fds_limit", (double)h->fd_limit);
    cJSON_AddNumberToObject(self, "loop_lag_ms", (double)(int64_t)(h->window_lag_ms * 100) / 100);

    cJSON *chan = cJSON_AddObjectToObject(report, "channel");
    int64_t wall = gd_now_ms();
    cJSON_AddBoolToObject(chan, "connected", ch->attached);
    cJSON_AddNumberToObject(chan, "since_ms",
                            ch->attached ? (double)(wall - ch->attached_since_ms) : 0);
    if (ch->attached)
        cJSON_AddNumberToObject(chan, "last_rx_ms_ago", (double)(wall - ch->last_rx_ms));
    else
        cJSON_AddNullToObject(chan, "last_rx_ms_ago");
    cJSON_AddNumberToObject(chan, "sent", (double)ch->lines_out);
    cJSON_AddNumberToObject(chan, "received", (double)ch->lines_in);
    cJSON_AddNumberToObject(chan, "dropped_events", (double)h->dropped_seen);

    cJSON_AddItemToObject(report, "collectors",
                          a->metrics ? gd_metrics_stats_json(a->metrics) : cJSON_CreateObject());

    cJSON *ml = cJSON_AddObjectToObject(report, "metrics_log");
    cJSON_AddBoolToObject(ml, "enabled", h->log != NULL);
    if (h->log) {
        gd_metrics_log_stats_t s;
        gd_metrics_log_stats(h->log, &s);
        cJSON_AddStringToObject(ml, "path", s.path);
        cJSON_AddBoolToObject(ml, "ok", s.error == 0);
        if (s.error)
            cJSON_AddStringToObject(ml, "error", strerror(s.error));
        else
            cJSON_AddNullToObject(ml, "error");
        cJSON_AddNumberToObject(ml, "lines_written", (double)s.lines_written);
        cJSON_AddNumberToObject(ml, "lines_lost", (double)s.lines_lost);
        cJSON_AddNumberToObject(ml, "lines_dropped", (double)s.lines_dropped);
        cJSON_AddNumberToObject(ml, "rotations", (double)s.rotations);
        cJSON_AddNumberToObject(ml, "free_bytes", (double)s.free_bytes);
    }
    if (worst_out) *worst_out = worst;
    if (status_line) summary(c, worst, status_line, status_len);
    return report;
}

cJSON *gd_health_report(gd_agent_t *a)
{
    if (!a->health) return cJSON_CreateObject();
    return build_report(a->health, NULL, NULL, 0);
}

/* Publishes a report as a `health` event; tells systemd when the status
 * changed, and feeds its watchdog when asked and not failing. */
static void publish(gd_health_t *h, int feed_watchdog)
{
    char line[1024];
    int worst;
    cJSON *report = build_report(h, &worst, line, sizeof(line) - 8);
    gd_bus_publish(&h->a->bus, "health", report);
    cJSON_Delete(report);
    char msg[1100];
    size_t n = 0;
    msg[0] = '\0';
    if (worst != h->last_status) {
        if (h->last_status >= 0) gd_info("health: %s -> %s", status_names[h->last_status], line);
        n += (size_t)snprintf(msg, sizeof(msg), "STATUS=%s\n", line);
    }
    if (feed_watchdog && h->watchdog_ms && worst != GD_HEALTH_FAILING)
        snprintf(msg + n, sizeof(msg) - n, "WATCHDOG=1\n");
    if (msg[0]) notify(msg);
    h->last_status = worst;
}

/* ---- loop hooks ---- */

static void on_prepare(uv_prepare_t *p)
{
    gd_health_t *h = p->data;
    gd_agent_t *a = h->a;
    if (h->idle_metrics) {
        uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(a->loop);
        if (h->last_prepare_ns) {
            uint64_t wall = now - h->last_prepare_ns, waited = idle - h->last_idle_ns;
            note_lag(h, wall > waited ? (double)(wall - waited) / 1e6 : 0);
        }
        h->last_prepare_ns = now;
        h->last_idle_ns = idle;
    }
    if (a->stopping) return;
    check_t c[N_CHECKS];
    observe(h);
    if (evaluate(h, c, 0) != h->last_status) publish(h, 0);
}

static void on_watchdog(uv_timer_t *t)
{
    gd_health_t *h = t->data;
    check_t c[N_CHECKS];
    sample_self(h);
    observe(h);
    int worst = evaluate(h, c, 0);
    if (worst != h->last_status)
        publish(h, 1);
    else if (worst != GD_HEALTH_FAILING)
        notify("WATCHDOG=1");
}

/* The collectors' last cycle: errors since the previous metrics event, the
 * names of those failing now, and the time the cycle took. */
static int on_event(gd_bus_sub_t *sub, gd_event_t *ev)
{
    gd_health_t *h = sub->data;
    gd_agent_t *a = h->a;
    if (strcmp(ev->name, "metrics") != 0 || !a->metrics) return 0;
    uint64_t errors = gd_metrics_total_errors(a->metrics);
    h->cycle_errors = errors - h->errors_seen;
    h->errors_seen = errors;
    h->cycles++;
    h->cycle_us = 0;
    h->failing_collectors[0] = '\0';
    cJSON *stats = gd_metrics_stats_json(a->metrics);
    const cJSON *c;
    size_t used = 0;
    cJSON_ArrayForEach(c, stats)
    {
        const cJSON *us = cJSON_GetObjectItemCaseSensitive(c, "last_us");
        if (cJSON_IsNumber(us)) h->cycle_us += (uint64_t)us->valuedouble;
        if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c, "ok")) &&
            used < sizeof(h->failing_collectors))
            used +=
                (size_t)snprintf(h->failing_collectors + used, sizeof(h->failing_collectors) - used,
                                 "%s%s", used ? ", " : "", c->string);
    }
    cJSON_Delete(stats);
    return 0;
}

/* ---- life cycle ---- */

static void on_closed(uv_handle_t *handle)
{
    (void)handle;
}

int gd_health_init(gd_agent_t *a, char *err, size_t errlen)
{
    gd_health_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "health: out of memory");
        return -ENOMEM;
    }
    a->health = h;
    h->a = a;
    h->last_status = -1;
    int r = gd_metrics_log_new(&h->log, a->loop, &a->bus, &a->cfg, NULL, err, errlen);
    if (r < 0) return r;
    r = gd_bus_subscribe(&a->bus, &h->sub, "health", 256, on_event, h);
    if (r < 0) {
        snprintf(err, errlen, "health: %s", strerror(-r));
        return r;
    }
    /* Idle-time accounting lets the prepare hook tell work from waiting. */
    h->idle_metrics = uv_loop_configure(a->loop, UV_METRICS_IDLE_TIME) == 0;
    uv_prepare_init(a->loop, &h->prepare);
    uv_timer_init(a->loop, &h->watchdog);
    h->prepare.data = h->watchdog.data = h;
    h->handles = 1;
    uint64_t usec = gd_sd_watchdog_usec();
    if (usec > 0) h->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
    return 0;
}

void gd_health_started(gd_agent_t *a)
{
    gd_health_t *h = a->health;
    if (!h || h->started) return;
    h->started = 1;
    check_t c[N_CHECKS];
    char line[1024], msg[1100];
    sample_self(h);
    observe(h);
    h->last_status = evaluate(h, c, 1);
    summary(c, h->last_status, line, sizeof(line));
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\n", line);
    notify(msg);
    gd_metrics_log_start(h->log);
    uv_prepare_start(&h->prepare, on_prepare);
    if (h->watchdog_ms) uv_timer_start(&h->watchdog, on_watchdog, h->watchdog_ms, h->watchdog_ms);
}

void gd_health_tick(gd_agent_t *a)
{
    gd_health_t *h = a->health;
    if (!h) return;
#ifdef __GLIBC__
    /* Memory a burst left free in the heap goes back to the kernel here
     * (and when a host detaches) rather than after every drained write,
     * where it cost a third of pipelined throughput: malloc cannot shrink
     * a heap fragmented by thousands of small replies by itself. */
    malloc_trim(0); /* musl's mallocng unmaps free groups itself */
#endif
    publish(h, 1);
    h->window_lag_ms = 0;
}

void gd_health_stopping(gd_agent_t *a)
{
    gd_health_t *h = a->health;
    notify("STOPPING=1");
    if (!h || h->stopped) return;
    h->stopped = 1;
    if (h->handles) {
        uv_close((uv_handle_t *)&h->prepare, on_closed);
        uv_close((uv_handle_t *)&h->watchdog, on_closed);
    }
    if (h->sub.subscribed) gd_bus_unsubscribe(&h->sub);
    gd_metrics_log_stop(h->log);
}

void gd_health_free(gd_agent_t *a)
{
    gd_health_t *h = a->health;
    if (!h) return;
    if (h->sub.subscribed) gd_bus_unsubscribe(&h->sub);
    gd_metrics_log_free(h->log);
    free(h);
    a->health = NULL;
}

int gd_health_status(const gd_agent_t *a)
{
    return a->health ? a->health->last_status : -1;
}

gd_metrics_log_t *gd_health_metrics_log(const gd_agent_t *a)
{
    return a->health ? a->health->log : NULL;
}

static void cmd_health_get(gd_request_t *req, const cJSON *args)
{
    gd_reply_ok(req, gd_health_report(req->agent));
}

const gd_command_t gd_commands_health[] = {
    {"health.get", cmd_health_get, 0, "The agent's health report, computed now.", NULL,
     "status, checks, self, channel, collectors (protocol.md, Health report)"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};

/* The agent's own health: checks, the report, and systemd notification. */
#include "agent/health.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifdef GUESTD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "agent/agent.h"
#include "agent/log.h"
#include "collectors/metrics.h"
#include "commands/command.h"
#include "transport/channel.h"

typedef struct gd_health_s {
    uint64_t last_tick_ms; /* when the health timer last fired */
    double loop_lag_ms;    /* how late it fired */
    int last_status;       /* -1 before the first report */
} gd_health_t;

enum { STATUS_OK, STATUS_DEGRADED, STATUS_FAILING };
static const char *const status_names[] = {"ok", "degraded", "failing"};

void gd_health_init(gd_agent_t *a)
{
    a->health = calloc(1, sizeof(gd_health_t));
    if (a->health)
        a->health->last_status = -1;
}

static void notify(const char *state)
{
#ifdef GUESTD_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

void gd_health_started(gd_agent_t *a)
{
    if (a->health)
        a->health->last_tick_ms = uv_now(a->loop);
    notify("READY=1\nSTATUS=running");
}

void gd_health_stopping(gd_agent_t *a)
{
    notify("STOPPING=1");
}

void gd_health_free(gd_agent_t *a)
{
    free(a->health);
    a->health = NULL;
}

static long self_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * 4096L;
}

static int self_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own fd */
}

static void add_check(cJSON *checks, int *worst, const char *name, int status, const char *detail)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "status", status_names[status]);
    cJSON_AddStringToObject(c, "detail", detail);
    cJSON_AddItemToArray(checks, c);
    if (status > *worst)
        *worst = status;
}

cJSON *gd_health_report(gd_agent_t *a)
{
    char detail[160];
    int worst = STATUS_OK;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss = self_rss_bytes();
    int fds = self_fds();
    double lag = a->health ? a->health->loop_lag_ms : 0;
    gd_channel_t *ch = a->channel;

    cJSON *report = cJSON_CreateObject();
    cJSON *status = cJSON_AddStringToObject(report, "status", "ok");
    cJSON *checks = cJSON_AddArrayToObject(report, "checks");

    snprintf(detail, sizeof(detail), "timers fire %.1f ms late (limit %lld)", lag,
             (long long)a->cfg.health.max_loop_lag_ms);
    add_check(checks, &worst, "loop",
              lag > (double)a->cfg.health.max_loop_lag_ms ? STATUS_DEGRADED : STATUS_OK, detail);
    snprintf(detail, sizeof(detail), "%ld bytes resident (limit %lld)", rss,
             (long long)a->cfg.health.max_rss_bytes);
    add_check(checks, &worst, "memory",
              rss > a->cfg.health.max_rss_bytes ? STATUS_FAILING : STATUS_OK, detail);
    add_check(checks, &worst, "channel", ch->attached ? STATUS_OK : STATUS_DEGRADED,
              ch->attached ? "host connected" : "no host attached");
    uint64_t collector_errors = a->metrics ? gd_metrics_total_errors(a->metrics) : 0;
    snprintf(detail, sizeof(detail), "%llu collector errors since start",
             (unsigned long long)collector_errors);
    add_check(checks, &worst, "collectors", collector_errors ? STATUS_DEGRADED : STATUS_OK,
              detail);
    uint64_t dropped = ch->outq.dropped_events + gd_bus_total_lagged(&a->bus);
    snprintf(detail, sizeof(detail), "%llu events dropped", (unsigned long long)dropped);
    add_check(checks, &worst, "events", STATUS_OK, detail);
    cJSON_SetValuestring(status, status_names[worst]);

    cJSON *self = cJSON_AddObjectToObject(report, "self");
    cJSON_AddNumberToObject(self, "rss_bytes", (double)rss);
    cJSON_AddNumberToObject(self, "cpu_ms",
                            (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
                                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0);
    cJSON_AddNumberToObject(self, "wakeups", (double)ru.ru_nvcsw);
    cJSON_AddNumberToObject(self, "fds", fds);
    cJSON_AddNumberToObject(self, "loop_lag_ms", lag);

    cJSON *chan = cJSON_AddObjectToObject(report, "channel");
    cJSON_AddBoolToObject(chan, "connected", ch->attached);
    cJSON_AddNumberToObject(chan, "since_ms",
                            ch->attached ? (double)(gd_now_ms() - ch->attached_since_ms) : 0);
    cJSON_AddNumberToObject(chan, "sent", (double)ch->lines_out);
    cJSON_AddNumberToObject(chan, "received", (double)ch->lines_in);
    cJSON_AddNumberToObject(chan, "dropped_events", (double)dropped);
    cJSON_AddItemToObject(report, "collectors",
                          a->metrics ? gd_metrics_stats_json(a->metrics) : cJSON_CreateObject());
    if (a->health)
        a->health->last_status = worst;
    return report;
}

void gd_health_tick(gd_agent_t *a)
{
    gd_health_t *h = a->health;
    if (h) {
        uint64_t now = uv_now(a->loop);
        double expected = (double)h->last_tick_ms + (double)a->cfg.health.interval_ms;
        h->loop_lag_ms = h->last_tick_ms && (double)now > expected ? (double)now - expected : 0;
        h->last_tick_ms = now;
    }
    cJSON *report = gd_health_report(a);
    gd_bus_publish(&a->bus, "health", report);
    char status[128];
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "status");
    snprintf(status, sizeof(status), "STATUS=%s%s", s ? s->valuestring : "?",
             strcmp(s ? s->valuestring : "", "failing") ? "\nWATCHDOG=1" : "");
    notify(status);
    cJSON_Delete(report);
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

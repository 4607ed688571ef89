/* The running agent: wires the loop's timers and signals, the bus and its
 * subscribers, the channel and the dispatcher, and takes them all down. */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/families.h"
#include "agent/health.h"
#include "core/metrics_log.h"
#include "core/buf.h"
#include "core/history.h"
#include "core/log.h"
#include "collectors/metrics.h"
#include "commands/dispatch.h"
#include "commands/info.h"
#include "commands/qga/qga.h"
#include "commands/system.h"
#include "commands/table.h"
#include "transport/channel.h"

#define GD_CHANNEL_SUB_QUEUE 256

/* Reads one short line from a file (boot_id, hostname) into buf. */
static void read_first_line(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

/* commands.max_concurrent, within what the commands' share of the fd
 * budget holds (fewer only under an open-file limit below about 350). */
static unsigned max_concurrent(const gd_agent_t *a)
{
    unsigned want = (unsigned)a->cfg.commands.max_concurrent;
    return want < a->fds.max_commands ? want : a->fds.max_commands;
}

static void log_fd_budget(const gd_agent_t *a)
{
    const gd_fd_budget_t *b = &a->fds;
    gd_info("fd budget: open-file limit %llu: headroom %zu, commands %zu (%u at once), "
            "collectors %zu, guest-file handles %zu",
            (unsigned long long)b->limit, b->headroom, b->commands, b->max_commands, b->collectors,
            b->file_handles);
    if (max_concurrent(a) < (unsigned)a->cfg.commands.max_concurrent)
        gd_warn("commands.max_concurrent %lld is more than the open-file limit holds: at most "
                "%u commands run at once",
                (long long)a->cfg.commands.max_concurrent, max_concurrent(a));
}

/* ---- the channel's side: hosts, lines, replies ---- */

static void publish_hello(gd_agent_t *a)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "agent", "guestd");
    cJSON_AddStringToObject(data, "version", GUESTD_VERSION);
    cJSON_AddNumberToObject(data, "protocol", GD_PROTOCOL_VERSION);
    cJSON_AddStringToObject(data, "hostname", a->hostname);
    cJSON_AddStringToObject(data, "boot_id", a->boot_id);
    cJSON_AddNumberToObject(data, "started_at", (double)a->started_at_ms);
    cJSON_AddItemToObject(data, "commands", gd_info_command_list(a->dispatch, 1));
    /* What the guest runs, so a host can label it without asking system.info. */
    cJSON *sys = gd_system_info(a->cfg.agent.proc_root, "/etc", a->hostname, a->boot_id);
    const cJSON *os =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(sys, "os"), "pretty_name");
    const cJSON *kernel =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(sys, "kernel"), "release");
    cJSON_AddStringToObject(data, "os", cJSON_IsString(os) ? os->valuestring : "Linux");
    cJSON_AddStringToObject(data, "kernel", cJSON_IsString(kernel) ? kernel->valuestring : "");
    /* So a host knows when a sample is late before it has seen two. */
    cJSON_AddNumberToObject(data, "metrics_interval_ms", (double)a->cfg.metrics.interval_ms);
    cJSON_Delete(sys);
    /* hello is for the host that just attached, not a broadcast: it goes
     * straight to the channel, first, with a seq from the bus's sequence. */
    gd_event_t *ev = gd_event_new("hello", gd_bus_take_seq(&a->bus), a->bus.now_ms(), data);
    cJSON_Delete(data);
    if (!ev) return;
    gd_channel_send_event(a->channel, ev);
    gd_event_unref(ev);
}

static void on_host_attach(void *ctx, uint64_t gen)
{
    gd_agent_t *a = ctx;
    if (gd_qga_events_wanted(a->qga, gen)) /* qemu-ga hosts get no events */
        publish_hello(ctx);
}

static void on_host_line(void *ctx, uint64_t gen, char *line, size_t len)
{
    gd_agent_t *a = ctx;
    gd_dispatch_line(a->dispatch, gen, line, len);
}

static void on_host_too_large(void *ctx, uint64_t gen)
{
    gd_agent_t *a = ctx;
    gd_dispatch_too_large(a->dispatch, gen, (size_t)a->cfg.channel.max_message_bytes);
}

static const gd_channel_cbs_t channel_cbs = {
    .on_attach = on_host_attach,
    .on_line = on_host_line,
    .on_too_large = on_host_too_large,
};

/* ---- qemu-ga's dialect (commands/qga/qga.h): unless channel.dialect is
 * guestd, the main channel's bytes go through the dialect's framing, and
 * replies of the second channel or made for qemu-ga requests are its to
 * route ---- */

static size_t on_host_data(void *ctx, uint64_t gen, char *data, size_t len)
{
    gd_agent_t *a = ctx;
    return gd_qga_feed_main(a->qga, gen, data, len);
}

static const gd_channel_cbs_t channel_cbs_dialects = {
    .on_attach = on_host_attach,
    .on_data = on_host_data,
};

static void send_reply(void *ctx, uint64_t gen, const char *line, size_t len)
{
    gd_agent_t *a = ctx;
    if (gd_qga_route_reply(a->qga, gen, line, len)) return;
    gd_channel_send_reply(a->channel, gen, line, len);
}

static void send_reply_owned(void *ctx, uint64_t gen, char *line, size_t len)
{
    gd_agent_t *a = ctx;
    if (gd_qga_route_reply(a->qga, gen, line, len)) {
        free(line);
        return;
    }
    gd_channel_send_reply_owned(a->channel, gen, line, line, len);
}

/* The reservations (core/owed.h) of the channel a reply goes to. */
static gd_owed_t *owed_of(void *ctx, uint64_t gen)
{
    gd_agent_t *a = ctx;
    gd_channel_t *port = gd_qga_port(a->qga);
    if ((gen & GD_QGA_GEN_PORT) && !(gen & GD_QGA_GEN_INTERNAL))
        return port ? gd_channel_owed(port) : NULL;
    return a->channel_initialised ? gd_channel_owed(a->channel) : NULL;
}

/* Every event on the bus goes to the host while one is attached (and
 * speaks guestd's protocol). */
static int deliver_to_channel(gd_bus_sub_t *sub, gd_event_t *ev)
{
    gd_agent_t *a = sub->data;
    if (gd_qga_events_wanted(a->qga, gd_channel_gen(a->channel)))
        gd_channel_send_event(a->channel, ev);
    return 0;
}

/* ---- timers ---- */

static void on_metrics_timer(uv_timer_t *t)
{
    gd_agent_t *a = t->data;
    a->metrics_ticks++;
    if (!a->metrics) return;
    gd_buf_t *sample = &a->sample;
    if (gd_metrics_collect(a->metrics, GD_METRICS_ALL, sample) != 0 || sample->len == 0) return;
    gd_bus_publish_raw(&a->bus, "metrics", sample->data, sample->len);
}

static void on_health_timer(uv_timer_t *t)
{
    gd_agent_t *a = t->data;
    a->health_ticks++;
    gd_health_tick(a);
}

static void start_timers(gd_agent_t *a)
{
    uint64_t m = (uint64_t)a->cfg.metrics.interval_ms;
    uint64_t h = (uint64_t)a->cfg.health.interval_ms;
    uv_timer_start(&a->metrics_timer, on_metrics_timer, m, m);
    uv_timer_start(&a->health_timer, on_health_timer, h, h);
}

/* ---- signals ---- */

static void on_stop_signal(uv_signal_t *s, int signum)
{
    gd_agent_t *a = s->data;
    gd_info("received %s, stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    gd_agent_stop(a);
}

static void on_hup(uv_signal_t *s, int signum)
{
    gd_agent_t *a = s->data;
    char err[512];
    if (gd_agent_reload(a, err, sizeof(err)) != 0)
        gd_error("reload failed, keeping the running configuration: %s", err);
    else
        gd_info("configuration reloaded");
}

/* ---- what commands reach (commands/command.h, gd_cmd_env_t) ---- */

static int env_apply_config(void *ctx, const gd_config_t *next, char *err, size_t errlen)
{
    return gd_agent_apply_config(ctx, next, err, errlen);
}

static void env_after_flush(void *ctx, void (*cb)(void *arg), void *arg)
{
    gd_agent_after_flush(ctx, cb, arg);
}

static cJSON *env_health_report(void *ctx)
{
    return gd_health_report(ctx);
}

static void env_pause_writes(void *ctx, int on)
{
    gd_metrics_log_pause(gd_health_metrics_log(ctx), on);
}

void gd_agent_env_bind(gd_agent_t *a)
{
    a->env = (gd_cmd_env_t){
        .loop = a->loop,
        .config = &a->cfg,
        .fds = &a->fds,
        .bus = &a->bus,
        .dispatch = a->dispatch,
        .history = a->history,
        .metrics = a->metrics,
        .stopping = &a->stopping,
        .started_at_ms = a->started_at_ms,
        .hostname = a->hostname,
        .boot_id = a->boot_id,
        .ctx = a,
        .apply_config = env_apply_config,
        .after_flush = env_after_flush,
        .health_report = env_health_report,
        .pause_writes = env_pause_writes,
    };
}

/* ---- life cycle ---- */

int gd_agent_init(gd_agent_t *a, uv_loop_t *loop, const gd_config_t *cfg, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->cfg = *cfg;
    a->started_at_ms = gd_now_ms();
    gd_fd_budget_from_rlimit(&a->fds);
    gd_buf_init(&a->sample);
    read_first_line("/proc/sys/kernel/random/boot_id", a->boot_id, sizeof(a->boot_id));
    if (gethostname(a->hostname, sizeof(a->hostname)) != 0) a->hostname[0] = '\0';
    a->hostname[sizeof(a->hostname) - 1] = '\0';

    int r = gd_bus_init(&a->bus, loop);
    if (r < 0) {
        snprintf(err, errlen, "bus: %s", strerror(-r));
        return r;
    }
    a->dispatch = calloc(1, sizeof(*a->dispatch));
    if (!a->dispatch) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    gd_agent_env_bind(a);
    gd_dispatch_init(a->dispatch, &a->env, send_reply, a);
    a->dispatch->send_owned = send_reply_owned;
    a->dispatch->owed_of = owed_of;
    gd_dispatch_configure(a->dispatch, cfg->commands.allow, cfg->commands.deny, max_concurrent(a));
    r = gd_channel_new(&a->channel, loop, cfg->channel.spec, (size_t)cfg->channel.max_message_bytes,
                       (size_t)cfg->channel.out_queue_bytes, (uint64_t)cfg->channel.poll_ms,
                       (uint64_t)cfg->channel.poll_max_ms,
                       cfg->channel.dialect == 1 /* guestd */ ? &channel_cbs
                                                              : &channel_cbs_dialects,
                       a, err, errlen);
    if (r < 0) return r;
    a->channel_initialised = 1;
    /* qemu-ga's dialect, and its second channel. */
    r = gd_qga_new(&a->qga, &a->env, a->channel, err, errlen);
    if (r < 0) return r;
    r = gd_bus_subscribe(&a->bus, &a->channel_sub, "channel", GD_CHANNEL_SUB_QUEUE,
                         deliver_to_channel, a);
    if (r < 0) {
        snprintf(err, errlen, "bus: %s", strerror(-r));
        return r;
    }
    r = gd_history_new(&a->history, &a->bus, (size_t)cfg->metrics.history);
    if (r < 0) {
        snprintf(err, errlen, "history: %s", strerror(-r));
        return r;
    }
    r = gd_metrics_new(&a->metrics, loop, cfg, err, errlen);
    if (r < 0) return r;
    a->env.history = a->history;
    a->env.metrics = a->metrics;
    uv_timer_init(loop, &a->metrics_timer);
    uv_timer_init(loop, &a->health_timer);
    a->metrics_timer.data = a->health_timer.data = a;
    uv_signal_init(loop, &a->sig_term);
    uv_signal_init(loop, &a->sig_int);
    uv_signal_init(loop, &a->sig_hup);
    a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
    a->handles_initialised = 1;
    /* Health: its checks, and the metrics log it owns and watches. */
    r = gd_health_init(a, err, errlen);
    if (r < 0) return r;
    return 0;
}

int gd_agent_start(gd_agent_t *a)
{
    char err[512];
    uv_signal_start(&a->sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&a->sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&a->sig_hup, on_hup, SIGHUP);
    start_timers(a);
    int r = gd_channel_start(a->channel, err, sizeof(err));
    if (r == 0) r = gd_qga_start(a->qga, err, sizeof(err));
    if (r < 0) {
        gd_error("%s", err);
        a->exit_code = 1;
        gd_agent_stop(a);
        return r;
    }
    gd_info("guestd %s started (channel %s)", GUESTD_VERSION, a->cfg.channel.spec);
    log_fd_budget(a);
    gd_health_started(a);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_channel_closed(gd_channel_t *ch)
{
    (void)ch;
}

void gd_agent_stop(gd_agent_t *a)
{
    if (a->stopping) return;
    a->stopping = 1;
    gd_health_stopping(a);
    gd_dispatch_close(a->dispatch);
    gd_commands_shutdown(&a->env);
    gd_qga_stop(a->qga);
    if (a->handles_initialised) {
        uv_close((uv_handle_t *)&a->metrics_timer, on_closed);
        uv_close((uv_handle_t *)&a->health_timer, on_closed);
        uv_close((uv_handle_t *)&a->sig_term, on_closed);
        uv_close((uv_handle_t *)&a->sig_int, on_closed);
        uv_close((uv_handle_t *)&a->sig_hup, on_closed);
    }
    if (a->history) gd_history_free(a->history);
    a->history = a->env.history = NULL;
    if (a->channel_sub.subscribed) gd_bus_unsubscribe(&a->channel_sub);
    if (a->channel_initialised) gd_channel_close(a->channel, on_channel_closed);
    gd_bus_close(&a->bus, NULL);
}

void gd_agent_free(gd_agent_t *a)
{
    if (a->metrics) gd_metrics_free(a->metrics);
    a->metrics = a->env.metrics = NULL;
    gd_channel_free(a->channel);
    gd_qga_free(a->qga);
    a->qga = NULL;
    if (a->dispatch) {
        gd_dispatch_free(a->dispatch);
        free(a->dispatch);
    }
    gd_health_free(a);
    gd_buf_free(&a->sample);
    a->channel = NULL;
    a->dispatch = NULL;
}

/* ---- configuration at runtime ---- */

int gd_agent_apply_config(gd_agent_t *a, const gd_config_t *next, char *err, size_t errlen)
{
    int refused = 0;
    size_t used = 0;
    err[0] = '\0';
    gd_config_t merged = a->cfg;
    for (const gd_cfg_key_t *k = gd_config_keys; k->name; k++) {
        const char *old_val = (const char *)&a->cfg + k->offset;
        const char *new_val = (const char *)next + k->offset;
        size_t size = k->type == GD_CFG_STRING ? GD_CFG_STR_MAX : sizeof(int64_t);
        if (memcmp(old_val, new_val, size) == 0) continue;
        if (!k->runtime) {
            refused++;
            if (used < errlen)
                used += (size_t)snprintf(err + used, errlen - used, "%s%s.%s", used ? ", " : "",
                                         k->section, k->name);
            continue;
        }
        memcpy((char *)&merged + k->offset, new_val, size);
    }
    if (refused && used < errlen)
        snprintf(err + used, errlen - used, ": not changed (takes a restart)");
    int timers_changed = merged.metrics.interval_ms != a->cfg.metrics.interval_ms ||
                         merged.health.interval_ms != a->cfg.health.interval_ms;
    a->cfg = merged;
    gd_log_set_level((gd_log_level_t)a->cfg.agent.log_level);
    gd_dispatch_configure(a->dispatch, a->cfg.commands.allow, a->cfg.commands.deny,
                          max_concurrent(a));
    if (a->channel_initialised)
        gd_channel_set_poll(a->channel, (uint64_t)a->cfg.channel.poll_ms,
                            (uint64_t)a->cfg.channel.poll_max_ms);
    if (a->metrics) gd_metrics_apply_config(a->metrics, &a->cfg);
    /* A new interval takes effect at once, not after the old one runs out. */
    if (timers_changed && a->handles_initialised && !a->stopping) start_timers(a);
    return refused;
}

int gd_agent_reload(gd_agent_t *a, char *err, size_t errlen)
{
    gd_config_t next;
    if (gd_config_assemble(a->config_path, a->overrides, a->n_overrides, &next, err, errlen) != 0)
        return -EINVAL;
    a->reloads++;
    char refused[512];
    if (gd_agent_apply_config(a, &next, refused, sizeof(refused)) > 0)
        gd_warn("reload: %s", refused);
    return 0;
}

void gd_agent_after_flush(gd_agent_t *a, void (*cb)(void *arg), void *arg)
{
    if (!a->channel_initialised || gd_channel_after_flush(a->channel, cb, arg) != 0) cb(arg);
}

/* The running agent: one libuv loop, its timers (metrics, health; the
 * channel owns its poll timer), signals, the bus and its subscribers, the
 * channel and the command dispatcher. main() only parses flags and wires. */
#ifndef GUESTD_AGENT_H
#define GUESTD_AGENT_H

#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "core/bus.h"
#include "core/config.h"
#include "core/fd_budget.h"
#include "commands/command.h"

struct gd_channel_s;
struct gd_dispatch_s;
struct gd_metrics_s;
struct gd_history_s;
struct gd_qga_s;

typedef struct gd_agent_s {
    uv_loop_t *loop;
    gd_config_t cfg;
    gd_fd_budget_t fds; /* the open-file limit's shares, from the limit at start */

    /* Where the configuration came from, so SIGHUP can reload it
     * (gd_config_assemble's arguments). */
    const char *config_path; /* -c; NULL: the default path, which may be missing */
    char **overrides;        /* --set assignments, re-applied over each reload */
    int n_overrides;

    gd_bus_t bus;
    uv_timer_t metrics_timer;
    uv_timer_t health_timer;
    uv_signal_t sig_term, sig_int, sig_hup;

    struct gd_channel_s *channel;
    struct gd_dispatch_s *dispatch;
    struct gd_metrics_s *metrics;
    struct gd_history_s *history;
    struct gd_qga_s *qga;     /* qemu-ga's dialect and its second channel */
    gd_bus_sub_t channel_sub; /* events to the host */
    gd_cmd_env_t env;         /* what commands reach of all this (gd_agent_env_bind) */

    int64_t started_at_ms;
    char boot_id[40];
    char hostname[256];

    /* Counters the health report and the tests read. */
    uint64_t metrics_ticks;
    uint64_t health_ticks;
    uint64_t reloads;

    gd_buf_t sample; /* the metrics sample, reused every cycle */
    struct gd_health_s *health;

    int channel_initialised, handles_initialised;
    int stopping;
    int exit_code;
} gd_agent_t;

/* Points a->env at a's parts (loop, configuration, bus, dispatcher,
 * history, metrics, identity) and at the agent's hooks. gd_agent_init calls
 * it; a test that assembles an agent by hand calls it once its parts are
 * set. Requests keep &a->env: call it again to refresh, never move a. */
void gd_agent_env_bind(gd_agent_t *a);

/* Sets up everything on loop from cfg; nothing runs until the loop does.
 * Returns 0 or a negative errno with err set. */
int gd_agent_init(gd_agent_t *a, uv_loop_t *loop, const gd_config_t *cfg, char *err, size_t errlen);
/* Starts timers, signals and the channel; publishes hello. */
int gd_agent_start(gd_agent_t *a);
/* Stops timers, flushes, closes every handle; the loop then ends by itself
 * and uv_loop_close() returns 0. Safe to call twice. */
void gd_agent_stop(gd_agent_t *a);
/* Frees what outlives the handles; call after the loop has ended. */
void gd_agent_free(gd_agent_t *a);

/* Applies the runtime keys of next (intervals take effect at once). Keys
 * that cannot change at runtime and differ are reported in err and left
 * unchanged; returns how many such keys were refused. */
int gd_agent_apply_config(gd_agent_t *a, const gd_config_t *next, char *err, size_t errlen);
/* Re-reads the configuration file and --set overrides (SIGHUP). A broken
 * file keeps the old configuration; returns 0 or -EINVAL with err set. */
int gd_agent_reload(gd_agent_t *a, char *err, size_t errlen);

/* Runs cb once every reply queued so far has been written to the host (at
 * once when no host is attached): power commands answer, then act. */
void gd_agent_after_flush(gd_agent_t *a, void (*cb)(void *arg), void *arg);

#endif

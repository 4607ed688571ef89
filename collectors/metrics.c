/* The metrics sampler: runs the enabled collectors of the registry as one
 * cycle and writes the sample straight into the caller's reused buffer. A
 * collector that fails is counted and left out of that sample; one whose
 * source is missing is disabled at start with one log line. */
#include "collectors/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fd_budget.h"
#include "core/log.h"
#include "core/json/writer.h"
#include "collectors/registry.h"

#define MAX_COLLECTORS 32

typedef struct slot_s {
    const gd_collector_t *c;
    void *state;
    int selected; /* named by metrics.collectors */
    int enabled;  /* selected, and its source is there */
    int have;     /* the latest collect succeeded: its section is written */
    int failing;  /* the latest collect failed (logged once per failure run) */
    int windowed; /* the periodic cycle has collected it since the priming */
    uint64_t last_ns;
    uint64_t errors;
    uint64_t last_us;
    char why[192]; /* why it is disabled */
} slot_t;

struct gd_metrics_s {
    uv_loop_t *loop;
    char proc_root[GD_CFG_STR_MAX];
    char sys_root[GD_CFG_STR_MAX];
    gd_collector_env_t env;
    gd_fd_pool_t fd_pool;
    uint64_t (*now_ns)(void *ctx);
    void *clock_ctx;
    slot_t slots[MAX_COLLECTORS];
    int nslots;
};

static uint64_t default_now_ns(void *ctx)
{
    return uv_hrtime();
}

static int unknown_name(const char *name, size_t len, char *err, size_t errlen)
{
    char known[256] = "";
    size_t used = 0;
    for (int i = 0; gd_collectors[i]; i++) {
        int n = snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
                         gd_collectors[i]->name);
        if (n < 0 || (size_t)n >= sizeof(known) - used) break;
        used += (size_t)n;
    }
    snprintf(err, errlen, "unknown collector '%.*s' (known: %s)", (int)len, name, known);
    return -EINVAL;
}

int gd_metrics_mask_from_list(const char *list, uint32_t *mask, char *err, size_t errlen)
{
    uint32_t bits = 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && end[-1] == ' ')
            end--;
        size_t len = (size_t)(end - start);
        if (len == 0) continue;
        if (len == 3 && strncmp(start, "all", 3) == 0) {
            bits = GD_METRICS_ALL;
            continue;
        }
        int found = -1;
        for (int i = 0; gd_collectors[i]; i++)
            if (strlen(gd_collectors[i]->name) == len &&
                strncmp(gd_collectors[i]->name, start, len) == 0)
                found = i;
        if (found < 0) return unknown_name(start, len, err, errlen);
        bits |= 1u << found;
    }
    *mask = bits;
    return 0;
}

int gd_metrics_mask_from_json(const cJSON *names, uint32_t *mask, char *err, size_t errlen)
{
    uint32_t bits = 0;
    if (!cJSON_IsArray(names)) {
        snprintf(err, errlen, "collectors must be an array of names");
        return -EINVAL;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, names)
    {
        if (!cJSON_IsString(item)) {
            snprintf(err, errlen, "collectors must be an array of names");
            return -EINVAL;
        }
        int i = gd_collector_index(item->valuestring);
        if (i < 0) return unknown_name(item->valuestring, strlen(item->valuestring), err, errlen);
        bits |= 1u << i;
    }
    *mask = bits;
    return 0;
}

static void disable(slot_t *slot, const char *what, int r)
{
    snprintf(slot->why, sizeof(slot->why), "%s: %s", what, strerror(-r));
    gd_warn("metrics: collector %s disabled: %s", slot->c->name, slot->why);
    if (slot->state) slot->c->fini(slot->state);
    slot->state = NULL;
    slot->enabled = 0;
}

static int source_missing(int r)
{
    return r == -ENOENT || r == -EOPNOTSUPP || r == -ENODEV;
}

/* One collector's turn in a cycle: collect unless the window is too short,
 * then write its section if it has one. Returns the collect's result. */
static int run_slot(gd_metrics_t *m, slot_t *slot, gd_jw_t *w, int priming)
{
    uint64_t now = m->now_ns(m->clock_ctx);
    uint64_t t0 = uv_hrtime();
    int r = 0;
    int held = !priming && slot->have && (slot->c->flags & GD_COLLECTOR_RATES) &&
               now - slot->last_ns < (uint64_t)GD_METRICS_MIN_WINDOW_MS * 1000000u;
    if (!held) {
        gd_collect_ctx_t ctx = {.now_ns = now, .elapsed_s = 0.0};
        if (!priming && now > slot->last_ns) ctx.elapsed_s = (double)(now - slot->last_ns) / 1e9;
        r = slot->c->collect(slot->state, &ctx);
        slot->last_ns = now;
        if (r < 0 && priming && source_missing(r)) return r; /* the caller disables the collector */
        if (r < 0) {
            slot->have = 0;
            slot->errors++;
            if (!slot->failing)
                gd_warn("metrics: collector %s failed: %s", slot->c->name, strerror(-r));
            slot->failing = 1;
        } else {
            if (slot->failing) gd_info("metrics: collector %s recovered", slot->c->name);
            slot->failing = 0;
            slot->have = 1;
        }
    }
    if (slot->have && w) slot->c->write(slot->state, w);
    slot->last_us = (uv_hrtime() - t0) / 1000;
    return r;
}

int gd_metrics_new_ex(gd_metrics_t **out, uv_loop_t *loop, const gd_config_t *cfg,
                      const gd_metrics_opts_t *opts, char *err, size_t errlen)
{
    uint32_t selected;
    char why[160];
    *out = NULL;
    if (gd_metrics_mask_from_list(cfg->metrics.collectors, &selected, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "metrics.collectors: %s", why);
        return -EINVAL;
    }
    gd_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) return -ENOMEM;
    m->loop = loop;
    snprintf(m->proc_root, sizeof(m->proc_root), "%s", cfg->agent.proc_root);
    snprintf(m->sys_root, sizeof(m->sys_root), "%s", cfg->agent.sys_root);
    m->now_ns = opts && opts->now_ns ? opts->now_ns : default_now_ns;
    m->clock_ctx = opts ? opts->clock_ctx : NULL;
    m->env.loop = loop;
    m->env.proc_root = m->proc_root;
    m->env.sys_root = m->sys_root;
    m->env.top_processes = (int)cfg->metrics.top_processes;
    m->env.statvfs_fn = opts ? opts->statvfs_fn : NULL;
    if (opts && opts->proc_fd_budget) {
        m->fd_pool.budget = opts->proc_fd_budget;
    } else {
        gd_fd_budget_t fds;
        gd_fd_budget_from_rlimit(&fds);
        m->fd_pool.budget = fds.collectors;
    }
    m->env.fd_pool = &m->fd_pool;
    m->env.fs_timeout_ns =
        (opts && opts->fs_timeout_ms ? opts->fs_timeout_ms : GD_METRICS_FS_TIMEOUT_MS) * 1000000u;

    for (int i = 0; gd_collectors[i] && i < MAX_COLLECTORS; i++) {
        slot_t *slot = &m->slots[m->nslots++];
        slot->c = gd_collectors[i];
        slot->selected = (selected >> i) & 1u;
        if (!slot->selected) continue;
        char what[160] = "";
        int r = slot->c->init(&slot->state, &m->env, what, sizeof(what));
        if (r == -ENOMEM) {
            gd_metrics_free(m);
            snprintf(err, errlen, "metrics: out of memory");
            return r;
        }
        if (r < 0) {
            slot->state = NULL;
            disable(slot, what[0] ? what : slot->c->name, r);
            continue;
        }
        slot->enabled = 1;
        /* Prime the counters so the first sample already has rates. A
         * source that exists but cannot be read (psi=0 answers EOPNOTSUPP)
         * is as missing as an absent one. */
        r = run_slot(m, slot, NULL, 1);
        if (r < 0 && source_missing(r)) disable(slot, slot->c->name, r);
    }
    *out = m;
    return 0;
}

int gd_metrics_new(gd_metrics_t **out, uv_loop_t *loop, const gd_config_t *cfg, char *err,
                   size_t errlen)
{
    return gd_metrics_new_ex(out, loop, cfg, NULL, err, errlen);
}

static int collect(gd_metrics_t *m, uint32_t mask, gd_buf_t *out, int on_demand)
{
    gd_jw_t w;
    gd_buf_reset(out);
    gd_jw_init(&w, out);
    gd_jw_obj_begin(&w);
    for (int i = 0; i < m->nslots; i++) {
        slot_t *slot = &m->slots[i];
        if (!slot->enabled || !((mask >> i) & 1u)) continue;
        /* A rate collector's window is the periodic cycle's: a request in
         * between reads its latest section instead of collecting, which
         * would start a new, shorter window for the next periodic sample. */
        if (on_demand && slot->windowed && (slot->c->flags & GD_COLLECTOR_RATES)) {
            if (slot->have) slot->c->write(slot->state, &w);
            continue;
        }
        run_slot(m, slot, &w, 0);
        if (!on_demand) slot->windowed = 1;
    }
    gd_jw_obj_end(&w);
    return gd_jw_error(&w);
}

int gd_metrics_collect(gd_metrics_t *m, uint32_t mask, gd_buf_t *out)
{
    return collect(m, mask, out, 0);
}

int gd_metrics_collect_now(gd_metrics_t *m, uint32_t mask, gd_buf_t *out)
{
    return collect(m, mask, out, 1);
}

void gd_metrics_apply_config(gd_metrics_t *m, const gd_config_t *cfg)
{
    m->env.top_processes = (int)cfg->metrics.top_processes;
    for (int i = 0; i < m->nslots; i++) {
        slot_t *slot = &m->slots[i];
        if (slot->enabled && slot->c->configure) slot->c->configure(slot->state, &m->env);
    }
}

uint32_t gd_metrics_enabled_mask(const gd_metrics_t *m)
{
    uint32_t mask = 0;
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].enabled) mask |= 1u << i;
    return mask;
}

cJSON *gd_metrics_stats_json(const gd_metrics_t *m)
{
    cJSON *all = cJSON_CreateObject();
    for (int i = 0; all && i < m->nslots; i++) {
        const slot_t *slot = &m->slots[i];
        if (!slot->selected) continue;
        cJSON *o = cJSON_CreateObject();
        /* A collector without a source is off, not failing. */
        cJSON_AddBoolToObject(o, "ok", !slot->enabled || !slot->failing);
        cJSON_AddNumberToObject(o, "errors", (double)slot->errors);
        cJSON_AddNumberToObject(o, "last_us", (double)slot->last_us);
        if (!slot->enabled) {
            cJSON_AddBoolToObject(o, "enabled", 0);
            cJSON_AddStringToObject(o, "detail", slot->why);
        }
        cJSON_AddItemToObject(all, slot->c->name, o);
    }
    return all;
}

uint64_t gd_metrics_total_errors(const gd_metrics_t *m)
{
    uint64_t n = 0;
    for (int i = 0; i < m->nslots; i++)
        n += m->slots[i].errors;
    return n;
}

void gd_metrics_free(gd_metrics_t *m)
{
    if (!m) return;
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].state) m->slots[i].c->fini(m->slots[i].state);
    free(m);
}

/* guestd-hub's key table and its [guests] section, on core/config's loops. */
#include "hub/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define RESTART 0 /* every key is read once at startup */

/* clang-format off */
#define HUB_FIELD(path, size)                                                              \
    (offsetof(gd_hub_config_t, path) +                                                     \
     0 * sizeof(char[1 - 2 * (sizeof(((gd_hub_config_t *)0)->path) != (size))]))
#define HUB_INT(sec, key, def, lo, hi, help_text)                                          \
    { .section = #sec, .name = #key, .type = GD_CFG_INT,                                   \
      .offset = HUB_FIELD(sec.key, sizeof(int64_t)), .default_value = def,                 \
      .min = lo, .max = hi, .runtime = RESTART, .help = help_text }
#define HUB_STR(sec, key, def, min_len, help_text)                                         \
    { .section = #sec, .name = #key, .type = GD_CFG_STRING,                                \
      .offset = HUB_FIELD(sec.key, GD_CFG_STR_MAX), .default_value = def,                  \
      .min = min_len, .max = GD_CFG_STR_MAX - 1, .runtime = RESTART, .help = help_text }
#define HUB_BOOL(sec, key, def, help_text)                                                 \
    { .section = #sec, .name = #key, .type = GD_CFG_BOOL,                                  \
      .offset = HUB_FIELD(sec.key, sizeof(int64_t)), .default_value = def,                 \
      .runtime = RESTART, .help = help_text }
/* clang-format on */

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

const gd_cfg_key_t gd_hub_config_keys[] = {
    HUB_STR(hub, socket, "/run/guestd-hub/hub.sock", 1,
            "Unix socket the clients (guestctl --hub) connect to, mode 0660"),
    HUB_STR(hub, socket_group, "", 0, "Group owning hub.socket; empty: the hub's own group"),
    {.section = "hub",
     .name = "log_level",
     .type = GD_CFG_ENUM,
     .offset = HUB_FIELD(hub.log_level, sizeof(int64_t)),
     .default_value = "info",
     .choices = log_levels,
     .runtime = RESTART,
     .help = "Least severe messages logged"},
    /* A guest's reply to file.read of 16 MiB is 22 MiB of base64. */
    HUB_INT(hub, guest_max_line_bytes, "25165824", 1024, 67108864,
            "Longest line accepted from a guest; a longer one is dropped and counted"),
    HUB_INT(hub, client_max_line_bytes, "1048576", 1024, 67108864,
            "Longest request line accepted from a client"),
    HUB_INT(hub, guest_queue_bytes, "4194304", 65536, 134217728,
            "Bytes of requests queued for one guest; past it requests are answered busy"),
    HUB_INT(hub, client_queue_bytes, "33554432", 65536, 268435456,
            "Bytes queued for one client; past it its oldest events are dropped"),
    HUB_INT(hub, max_pending, "256", 1, 65536,
            "Requests forwarded to one guest and not yet answered; past it: busy"),
    HUB_INT(hub, max_clients, "256", 1, 65536, "Clients connected at the same time"),
    HUB_INT(hub, reconnect_min_ms, "100", 10, 600000, "First delay before reconnecting to a guest"),
    HUB_INT(hub, reconnect_max_ms, "5000", 10, 600000,
            "Longest delay before reconnecting; the delay doubles up to it"),

    HUB_STR(discovery, libvirt_uri, "", 0,
            "libvirt URI to follow (read-only), e.g. qemu:///system; empty: off"),
    HUB_STR(discovery, globs, "", 0,
            "Comma-separated globs of guest sockets, e.g. /run/guestd/*.sock; the guest's "
            "name is the file name without its last extension"),
    HUB_INT(discovery, relist_ms, "60000", 1000, 86400000,
            "Time between full re-lists of libvirt's domains"),

    HUB_STR(http, listen, GD_HUB_HTTP_DEFAULT, 1,
            "HOST:PORT of the Prometheus endpoint (/metrics), or none"),
    /* Off by default: a pid and a process name per series churn the
     * scraper's index on every guest. */
    HUB_BOOL(http, top_processes, "false",
             "Serve the guests' top processes (guestd_top_process_*) in /metrics"),

    HUB_STR(log, dir, "", 0, "Per-guest metrics logs under DIR/NAME/metrics.ndjson; empty: off"),
    HUB_INT(log, max_bytes, "10485760", 4096, INT64_C(1099511627776),
            "Size at which a guest's log is rotated"),
    HUB_INT(log, keep, "5", 0, 100, "Rotated logs kept per guest"),

    {.name = NULL},
};

void gd_hub_config_defaults(gd_hub_config_t *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof(*cfg));
    for (const gd_cfg_key_t *k = gd_hub_config_keys; k->name != NULL; k++) {
        if (gd_cfg_set_value(cfg, k, k->default_value, err, sizeof(err)) != 0) {
            fprintf(stderr, "guestd-hub: bad built-in default: %s\n", err);
            abort();
        }
    }
}

int gd_hub_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len >= GD_HUB_NAME_MAX || name[0] == '.' || name[0] == '-') return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int set_static(gd_hub_config_t *cfg, const char *name, const char *path, char *why,
                      size_t whylen)
{
    if (!gd_hub_name_valid(name)) {
        snprintf(why, whylen,
                 "guests.%s: a guest's name is 1 to %d of A-Z a-z 0-9 _ . - "
                 "and does not start with . or -",
                 name, GD_HUB_NAME_MAX - 1);
        return -EINVAL;
    }
    if (path[0] != '/' || strlen(path) >= GD_CFG_STR_MAX) {
        snprintf(why, whylen, "guests.%s: '%s' is not an absolute socket path (up to %d bytes)",
                 name, path, GD_CFG_STR_MAX - 1);
        return -EINVAL;
    }
    size_t i;
    for (i = 0; i < cfg->n_static; i++)
        if (strcmp(cfg->statics[i].name, name) == 0) break;
    if (i == cfg->n_static) {
        if (cfg->n_static == GD_HUB_MAX_STATIC) {
            snprintf(why, whylen, "guests.%s: more than %d static guests", name, GD_HUB_MAX_STATIC);
            return -EINVAL;
        }
        cfg->n_static++;
        snprintf(cfg->statics[i].name, sizeof(cfg->statics[i].name), "%s", name);
    }
    snprintf(cfg->statics[i].path, sizeof(cfg->statics[i].path), "%s", path);
    return 0;
}

int gd_hub_config_set(gd_hub_config_t *cfg, const char *section, const char *name,
                      const char *value, char *why, size_t whylen)
{
    if (strcmp(section, "guests") == 0) return set_static(cfg, name, value, why, whylen);
    const gd_cfg_key_t *key =
        gd_cfg_find(gd_hub_config_keys, section, strlen(section), name, strlen(name));
    if (key == NULL) return gd_cfg_unknown_key(section, name, why, whylen);
    return gd_cfg_set_value(cfg, key, value, why, whylen);
}

int gd_hub_config_set_dotted(gd_hub_config_t *cfg, const char *assignment, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    char section[64], name[GD_HUB_NAME_MAX + 64], why[1024];

    if (dot == NULL || (size_t)(dot - assignment) >= sizeof(section) ||
        (size_t)(eq - dot - 1) >= sizeof(name)) {
        snprintf(err, errlen, "--set %s: expected section.key=value", assignment);
        return -EINVAL;
    }
    snprintf(section, sizeof(section), "%.*s", (int)(dot - assignment), assignment);
    snprintf(name, sizeof(name), "%.*s", (int)(eq - dot - 1), dot + 1);
    if (gd_hub_config_set(cfg, section, name, eq + 1, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--set %s: %s", assignment, why);
        return -EINVAL;
    }
    return 0;
}

static int hub_ini_value(void *ctx, const char *section, const char *name, const char *value,
                         char *why, size_t whylen)
{
    return gd_hub_config_set(ctx, section, name, value, why, whylen);
}

int gd_hub_config_load_file(gd_hub_config_t *cfg, const char *path, int missing_ok, char *err,
                            size_t errlen)
{
    return gd_cfg_load_over(cfg, sizeof(*cfg), path, missing_ok, hub_ini_value, err, errlen);
}

int gd_hub_parse_listen(const char *text, char *host, size_t hostlen, unsigned *port)
{
    if (strcmp(text, "none") == 0) return -ENOENT;
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || (size_t)(colon - text) >= hostlen) return -EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535) return -EINVAL;
    /* "[::1]:9709": the brackets are the URL's, not the address's. */
    if (text[0] == '[' && colon[-1] == ']')
        snprintf(host, hostlen, "%.*s", (int)(colon - text - 2), text + 1);
    else
        snprintf(host, hostlen, "%.*s", (int)(colon - text), text);
    *port = (unsigned)p;
    return 0;
}

int gd_hub_config_validate(const gd_hub_config_t *cfg, char *err, size_t errlen)
{
    char host[GD_CFG_STR_MAX];
    unsigned port;

    if (cfg->hub.reconnect_min_ms > cfg->hub.reconnect_max_ms) {
        snprintf(err, errlen,
                 "hub.reconnect_min_ms (%lld) must not be greater than "
                 "hub.reconnect_max_ms (%lld)",
                 (long long)cfg->hub.reconnect_min_ms, (long long)cfg->hub.reconnect_max_ms);
        return -EINVAL;
    }
    int rc = gd_hub_parse_listen(cfg->http.listen, host, sizeof(host), &port);
    if (rc == -EINVAL) {
        snprintf(err, errlen, "http.listen: '%s' is not HOST:PORT or none", cfg->http.listen);
        return -EINVAL;
    }
    if (cfg->hub.socket[0] != '/') {
        snprintf(err, errlen, "hub.socket: '%s' is not an absolute path", cfg->hub.socket);
        return -EINVAL;
    }
    return 0;
}

void gd_hub_config_dump(const gd_hub_config_t *cfg, FILE *out)
{
    fputs("; guestd-hub configuration (guestd-hub --dump-config); read at startup.\n", out);
    gd_cfg_dump_table(cfg, gd_hub_config_keys, out);
    fputs("\n[guests]\n; NAME = SOCKET_PATH, one line per guest not found by discovery\n", out);
    for (size_t i = 0; i < cfg->n_static; i++)
        fprintf(out, "%s = %s\n", cfg->statics[i].name, cfg->statics[i].path);
}

/* guestd-hub's configuration: one table of fixed keys (core/config's loops
 * over it) and the [guests] section, one NAME = SOCKET_PATH line per guest. */
#ifndef GUESTD_HUB_CONFIG_H
#define GUESTD_HUB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config.h"

#define GD_HUB_CONFIG_DEFAULT_PATH "/etc/guestd-hub/guestd-hub.conf"
/* Not one of the ports the common exporters listen on (node_exporter 9100,
 * the libvirt exporter 9177): prometheus' allocation list is full, so
 * this one is ours by choice and changes here only. */
#define GD_HUB_HTTP_DEFAULT "127.0.0.1:9709"
#define GD_HUB_NAME_MAX 64 /* a guest's name, including the NUL */
#define GD_HUB_MAX_STATIC 1024

typedef struct gd_hub_static_s {
    char name[GD_HUB_NAME_MAX];
    char path[GD_CFG_STR_MAX];
} gd_hub_static_t;

/* Plain data, copied by value. */
typedef struct gd_hub_config_s {
    struct {
        char socket[GD_CFG_STR_MAX];
        char socket_group[GD_CFG_STR_MAX];
        int64_t log_level;
        int64_t guest_max_line_bytes;
        int64_t client_max_line_bytes;
        int64_t guest_queue_bytes;
        int64_t client_queue_bytes;
        int64_t max_pending;
        int64_t max_clients;
        int64_t reconnect_min_ms;
        int64_t reconnect_max_ms;
    } hub;
    struct {
        char libvirt_uri[GD_CFG_STR_MAX];
        char globs[GD_CFG_STR_MAX];
        int64_t relist_ms;
    } discovery;
    struct {
        char listen[GD_CFG_STR_MAX];
        int64_t top_processes;
    } http;
    struct {
        char dir[GD_CFG_STR_MAX];
        int64_t max_bytes;
        int64_t keep;
    } log;
    size_t n_static;
    gd_hub_static_t statics[GD_HUB_MAX_STATIC];
} gd_hub_config_t;

extern const gd_cfg_key_t gd_hub_config_keys[];

void gd_hub_config_defaults(gd_hub_config_t *cfg);
/* A guest's name: 1 to 63 of [A-Za-z0-9_.-], not starting with '.' or '-'
 * (it names a directory under log.dir and a Prometheus label value). */
int gd_hub_name_valid(const char *name);
/* Sets section.name = value: a table key, or a [guests] line (added, or
 * replacing the path of a guest of that name). -EINVAL with why. */
int gd_hub_config_set(gd_hub_config_t *cfg, const char *section, const char *name,
                      const char *value, char *why, size_t whylen);
/* "section.key=value" (--set). */
int gd_hub_config_set_dotted(gd_hub_config_t *cfg, const char *assignment, char *err,
                             size_t errlen);
/* Loads FILE over cfg (changed only on success); missing_ok as the agent's. */
int gd_hub_config_load_file(gd_hub_config_t *cfg, const char *path, int missing_ok, char *err,
                            size_t errlen);
/* Cross-key checks: reconnect_min_ms <= reconnect_max_ms, http.listen's form. */
int gd_hub_config_validate(const gd_hub_config_t *cfg, char *err, size_t errlen);
/* INI that loads back unchanged, [guests] last. */
void gd_hub_config_dump(const gd_hub_config_t *cfg, FILE *out);
/* Splits "HOST:PORT" (http.listen); "none" gives -ENOENT. */
int gd_hub_parse_listen(const char *text, char *host, size_t hostlen, unsigned *port);

#endif

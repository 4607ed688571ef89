/* Finding guests: globs of socket paths watched for new and removed
 * sockets, and libvirt's running domains (hub/libvirt.h). The static list
 * is the hub's own (gd_hub_start). */
#ifndef GUESTD_HUB_DISCOVERY_H
#define GUESTD_HUB_DISCOVERY_H

#include <stddef.h>

#include <uv.h>

#include "hub/hub.h"

#define GD_DISCOVERY_MAX_GLOBS 16

typedef struct gd_glob_watch_s {
    char pattern[GD_CFG_STR_MAX];
    char dir[GD_CFG_STR_MAX];
    uv_fs_event_t ev;
    int watching;
} gd_glob_watch_t;

typedef struct gd_libvirt_s gd_libvirt_t;

typedef struct gd_discovery_s {
    gd_hub_t *hub;
    gd_glob_watch_t globs[GD_DISCOVERY_MAX_GLOBS];
    size_t n_globs;
    /* Re-scans: a directory that did not exist yet, and a short delay after
     * an inotify burst so one scan covers it. */
    uv_timer_t rescan;
    int timer_open;
    gd_libvirt_t *libvirt;
} gd_discovery_t;

/* The guest's name for a socket path: the file name without its last
 * extension (/run/guestd/web-1.sock -> web-1). -EINVAL when that is not a
 * valid name (hub/config.h). */
int gd_glob_name(const char *path, char *name, size_t len);
/* Splits discovery.globs; each pattern's directory must be free of
 * wildcards. 0 or -EINVAL with err. */
int gd_glob_split(const char *globs, char out[][GD_CFG_STR_MAX], char dirs[][GD_CFG_STR_MAX],
                  size_t max, size_t *n, char *err, size_t errlen);

int gd_discovery_start(gd_discovery_t *d, gd_hub_t *hub, char *err, size_t errlen);
void gd_discovery_stop(gd_discovery_t *d);
/* Scans every glob now: adds new sockets, removes guests whose socket went. */
void gd_discovery_rescan(gd_discovery_t *d);

#endif

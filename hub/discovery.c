/* Glob discovery: each pattern's directory watched with inotify (uv_fs_event);
 * any change there rescans every pattern, adding the sockets that appeared
 * and removing the guests whose socket is gone. */
#include "hub/discovery.h"

#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "hub/libvirt.h"

#define GD_RESCAN_DELAY_MS 50     /* one scan for a burst of directory events */
#define GD_RESCAN_MISSING_MS 2000 /* a directory that does not exist yet */

int gd_glob_name(const char *path, char *name, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n == 0 || n >= len) return -EINVAL;
    memcpy(name, base, n);
    name[n] = '\0';
    return gd_hub_name_valid(name) ? 0 : -EINVAL;
}

int gd_glob_split(const char *globs, char out[][GD_CFG_STR_MAX], char dirs[][GD_CFG_STR_MAX],
                  size_t max, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    for (const char *p = globs; *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len > 0) {
            if (*n == max) {
                snprintf(err, errlen, "discovery.globs: more than %zu patterns", max);
                return -EINVAL;
            }
            char *pat = out[*n];
            snprintf(pat, GD_CFG_STR_MAX, "%.*s", (int)len, p);
            const char *slash = strrchr(pat, '/');
            if (pat[0] != '/' || slash == NULL) {
                snprintf(err, errlen, "discovery.globs: '%s' is not an absolute path", pat);
                return -EINVAL;
            }
            size_t dlen = slash == pat ? 1 : (size_t)(slash - pat);
            snprintf(dirs[*n], GD_CFG_STR_MAX, "%.*s", (int)dlen, pat);
            if (strpbrk(dirs[*n], "*?[") != NULL) {
                snprintf(err, errlen,
                         "discovery.globs: '%s': only the file name may hold wildcards", pat);
                return -EINVAL;
            }
            (*n)++;
        }
        if (end == NULL) break;
        p = end + 1;
    }
    return 0;
}

static void on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status);

static void watch_dirs(gd_discovery_t *d)
{
    for (size_t i = 0; i < d->n_globs; i++) {
        gd_glob_watch_t *w = &d->globs[i];
        if (w->watching) continue;
        if (uv_fs_event_start(&w->ev, on_dir_event, w->dir, 0) == 0) w->watching = 1;
    }
}

static int all_watching(const gd_discovery_t *d)
{
    for (size_t i = 0; i < d->n_globs; i++)
        if (!d->globs[i].watching) return 0;
    return 1;
}

static int seen(char **paths, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(paths[i], path) == 0) return 1;
    return 0;
}

void gd_discovery_rescan(gd_discovery_t *d)
{
    char **found = NULL;
    size_t n_found = 0;
    char name[GD_HUB_NAME_MAX];

    watch_dirs(d);
    for (size_t i = 0; i < d->n_globs; i++) {
        glob_t gl;
        if (glob(d->globs[i].pattern, GLOB_NOSORT, NULL, &gl) != 0) continue;
        for (size_t k = 0; k < gl.gl_pathc; k++) {
            const char *path = gl.gl_pathv[k];
            struct stat st;
            if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
            if (gd_glob_name(path, name, sizeof(name)) != 0) {
                gd_debug("discovery: %s: no guest name in it", path);
                continue;
            }
            char **grown = realloc(found, (n_found + 1) * sizeof(*found));
            if (grown == NULL) break;
            found = grown;
            found[n_found] = strdup(path);
            if (found[n_found] == NULL) break;
            n_found++;
            int rc = gd_hub_add_guest(d->hub, name, path, GD_SRC_GLOB);
            if (rc == -EEXIST) gd_debug("discovery: %s: name %s is taken", path, name);
        }
        globfree(&gl);
    }
    /* A guest whose socket went away is dropped. */
    gd_guest_t *next;
    for (gd_guest_t *g = d->hub->guests; g != NULL; g = next) {
        next = g->next;
        if (g->source == GD_SRC_GLOB && !seen(found, n_found, g->path))
            gd_hub_remove_guest(d->hub, g->name, GD_SRC_GLOB);
    }
    for (size_t i = 0; i < n_found; i++)
        free(found[i]);
    free(found);
}

static void on_rescan(uv_timer_t *t)
{
    gd_discovery_t *d = t->data;
    gd_discovery_rescan(d);
    if (!all_watching(d)) uv_timer_start(&d->rescan, on_rescan, GD_RESCAN_MISSING_MS, 0);
}

static void on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    gd_discovery_t *d = h->data;
    gd_glob_watch_t *w = (gd_glob_watch_t *)((char *)h - offsetof(gd_glob_watch_t, ev));
    if (status < 0 || (events & UV_RENAME && filename == NULL)) {
        /* The directory itself went: watch it again when it is back. */
        uv_fs_event_stop(h);
        w->watching = 0;
    }
    uv_timer_start(&d->rescan, on_rescan, GD_RESCAN_DELAY_MS, 0);
}

int gd_discovery_start(gd_discovery_t *d, gd_hub_t *hub, char *err, size_t errlen)
{
    char(*pats)[GD_CFG_STR_MAX] = calloc(GD_DISCOVERY_MAX_GLOBS, GD_CFG_STR_MAX);
    char(*dirs)[GD_CFG_STR_MAX] = calloc(GD_DISCOVERY_MAX_GLOBS, GD_CFG_STR_MAX);

    memset(d, 0, sizeof(*d));
    d->hub = hub;
    int rc = pats && dirs ? gd_glob_split(hub->cfg->discovery.globs, pats, dirs,
                                          GD_DISCOVERY_MAX_GLOBS, &d->n_globs, err, errlen)
                          : -ENOMEM;
    if (rc < 0) {
        free(pats);
        free(dirs);
        return rc;
    }
    uv_timer_init(hub->loop, &d->rescan);
    d->rescan.data = d;
    d->timer_open = 1;
    for (size_t i = 0; i < d->n_globs; i++) {
        gd_glob_watch_t *w = &d->globs[i];
        snprintf(w->pattern, sizeof(w->pattern), "%s", pats[i]);
        snprintf(w->dir, sizeof(w->dir), "%s", dirs[i]);
        uv_fs_event_init(hub->loop, &w->ev);
        w->ev.data = d;
    }
    free(pats);
    free(dirs);
    if (d->n_globs > 0) on_rescan(&d->rescan);
    if (hub->cfg->discovery.libvirt_uri[0] != '\0') {
        rc = gd_libvirt_start(&d->libvirt, hub, hub->cfg->discovery.libvirt_uri, err, errlen);
        if (rc < 0) return rc;
    }
    return 0;
}

void gd_discovery_stop(gd_discovery_t *d)
{
    if (d->libvirt) {
        gd_libvirt_stop(d->libvirt);
        d->libvirt = NULL;
    }
    if (!d->timer_open) return;
    d->timer_open = 0;
    uv_close((uv_handle_t *)&d->rescan, NULL);
    for (size_t i = 0; i < d->n_globs; i++)
        uv_close((uv_handle_t *)&d->globs[i].ev, NULL);
}

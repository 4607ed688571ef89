/* The hub's registry of guests and its clients' socket. */
#include "hub/hub.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/log.h"
#include "hub/guestlog.h"

#define GD_HUB_READ_BUF (64 * 1024)

int gd_hub_init(gd_hub_t *hub, uv_loop_t *loop, const gd_hub_config_t *cfg)
{
    memset(hub, 0, sizeof(*hub));
    hub->loop = loop;
    hub->cfg = cfg;
    hub->next_client = 1;
    hub->next_hub_id = 1;
    hub->started_ms = gd_now_ms();
    hub->rbuf_len = GD_HUB_READ_BUF;
    hub->rbuf = malloc(hub->rbuf_len);
    if (hub->rbuf == NULL) return -ENOMEM;
    if (cfg->log.dir[0] != '\0') {
        hub->log_cfg = malloc(sizeof(*hub->log_cfg));
        if (hub->log_cfg == NULL) return -ENOMEM;
        gd_guestlog_config(hub->log_cfg, cfg->log.max_bytes, cfg->log.keep);
    }
    return 0;
}

void gd_hub_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* Every guest's and client's reads go through one buffer: libuv calls
     * the read callback right after this, and the framers copy what they
     * keep, so 500 guests cost one buffer, not 500. */
    gd_hub_t *hub = h->loop->data;
    (void)suggested;
    buf->base = hub->rbuf;
    buf->len = hub->rbuf_len;
}

gd_guest_t *gd_hub_find(gd_hub_t *hub, const char *name)
{
    for (gd_guest_t *g = hub->guests; g != NULL; g = g->next)
        if (strcmp(g->name, name) == 0) return g;
    return NULL;
}

int gd_hub_add_guest(gd_hub_t *hub, const char *name, const char *path, gd_guest_source_t src)
{
    if (hub->closing) return -ECANCELED;
    if (!gd_hub_name_valid(name)) return -EINVAL;
    gd_guest_t *g = gd_hub_find(hub, name);
    if (g != NULL) {
        if (g->source != src) return -EEXIST;
        if (strcmp(g->path, path) != 0) {
            gd_info("guest %s: moved to %s", name, path);
            snprintf(g->path, sizeof(g->path), "%s", path);
            gd_guest_restart(g);
        }
        return 0;
    }
    g = gd_guest_new(hub, name, path, src);
    if (g == NULL) return -ENOMEM;
    /* Appended: list order is the order guests were found. */
    gd_guest_t **tail = &hub->guests;
    gd_guest_t *prev = NULL;
    while (*tail != NULL) {
        prev = *tail;
        tail = &(*tail)->next;
    }
    *tail = g;
    g->prev = prev;
    hub->n_guests++;
    gd_info("guest %s: added (%s, %s)", name, gd_guest_source_name(src), path);
    if (hub->log_cfg != NULL) {
        char err[512];
        int rc = gd_guestlog_open(&g->glog, hub->loop, hub->log_cfg, hub->cfg->log.dir, name, err,
                                  sizeof(err));
        if (rc < 0) gd_warn("guest %s: no metrics log: %s", name, err);
    }
    gd_guest_start(g);
    return 0;
}

static void unlink_guest(gd_hub_t *hub, gd_guest_t *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        hub->guests = g->next;
    if (g->next) g->next->prev = g->prev;
    g->prev = g->next = NULL;
    hub->n_guests--;
}

static void remove_guest(gd_hub_t *hub, gd_guest_t *g)
{
    gd_info("guest %s: removed", g->name);
    if (hub->hooks.on_remove) hub->hooks.on_remove(hub->hooks.ctx, g);
    unlink_guest(hub, g);
    if (g->glog != NULL) gd_guestlog_close(g->glog, &hub->retired_logs);
    g->glog = NULL;
    gd_guest_remove(g);
}

void gd_hub_remove_guest(gd_hub_t *hub, const char *name, gd_guest_source_t src)
{
    gd_guest_t *g = gd_hub_find(hub, name);
    if (g != NULL && g->source == src) remove_guest(hub, g);
}

/* A socket file left by a hub that died is replaced; one a live hub
 * answers on is not. */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "hub.socket: %s exists and is not a socket", path);
        return -EEXIST;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        snprintf(err, errlen, "hub.socket: another hub listens on %s", path);
        return -EADDRINUSE;
    }
    if (fd >= 0) close(fd);
    unlink(path);
    return 0;
}

static int listen_clients(gd_hub_t *hub, char *err, size_t errlen)
{
    const char *path = hub->cfg->hub.socket;
    struct sockaddr_un sa;
    int rc;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "hub.socket: %s is longer than a socket path may be", path);
        return -ENAMETOOLONG;
    }
    rc = clear_stale_socket(path, err, errlen);
    if (rc < 0) return rc;
    gid_t gid = (gid_t)-1;
    if (hub->cfg->hub.socket_group[0] != '\0') {
        struct group *gr = getgrnam(hub->cfg->hub.socket_group);
        if (gr == NULL) {
            snprintf(err, errlen, "hub.socket_group: no group '%s'", hub->cfg->hub.socket_group);
            return -ENOENT;
        }
        gid = gr->gr_gid;
    }
    uv_pipe_init(hub->loop, &hub->listener, 0);
    hub->listener.data = hub;
    hub->listening = 1;
    /* Created 0660 from the start: no moment where others may connect. */
    mode_t old = umask(0117);
    rc = uv_pipe_bind(&hub->listener, path);
    umask(old);
    if (rc == 0 && gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) rc = -errno;
    if (rc == 0 && chmod(path, 0660) != 0) rc = -errno;
    if (rc == 0) rc = uv_listen((uv_stream_t *)&hub->listener, 128, gd_hub_on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "hub.socket: %s: %s", path, uv_strerror(rc));
        return rc;
    }
    return 0;
}

int gd_hub_start(gd_hub_t *hub, char *err, size_t errlen)
{
    hub->loop->data = hub;
    int rc = listen_clients(hub, err, errlen);
    if (rc < 0) return rc;
    for (size_t i = 0; i < hub->cfg->n_static; i++) {
        const gd_hub_static_t *s = &hub->cfg->statics[i];
        rc = gd_hub_add_guest(hub, s->name, s->path, GD_SRC_STATIC);
        if (rc < 0) {
            snprintf(err, errlen, "guests.%s: %s", s->name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

void gd_hub_stop(gd_hub_t *hub)
{
    if (hub->closing) return;
    hub->closing = 1;
    while (hub->guests != NULL)
        remove_guest(hub, hub->guests);
    gd_hub_clients_close(hub);
    if (hub->listening) {
        hub->listening = 0;
        uv_close((uv_handle_t *)&hub->listener, NULL);
        unlink(hub->cfg->hub.socket);
    }
}

void gd_hub_free(gd_hub_t *hub)
{
    free(hub->rbuf);
    hub->rbuf = NULL;
    gd_guestlog_free_retired(&hub->retired_logs);
    free(hub->log_cfg);
    hub->log_cfg = NULL;
}

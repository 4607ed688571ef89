/* libvirt discovery. Every libvirt call runs in a timer's or libvirt's own
 * event callback on the loop, never while a client or a scrape is being
 * answered; event callbacks only note what changed and a zero-delay timer
 * does the calls (libvirt is not re-entered from inside its dispatch). */
#include "hub/libvirt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "core/log.h"
#include "hub/channel_xml.h"
#include "hub/virt_loop.h"

#define LV_RECONNECT_MIN_MS 500
#define LV_RECONNECT_MAX_MS 30000
#define LV_MAX_DIRTY 1024

struct gd_libvirt_s {
    gd_hub_t *hub;
    char uri[GD_CFG_STR_MAX];
    virConnectPtr conn;
    int cb_ids[3];
    int lost;       /* the close callback fired: reconnect on the next turn */
    int relist_due; /* a full list is owed */
    char **dirty;   /* domains to look at again */
    size_t n_dirty;
    uv_timer_t work; /* zero-delay: does what the callbacks noted */
    uv_timer_t relist;
    int64_t backoff_ms;
    int stopping;
    int open_timers;
};

static void schedule(gd_libvirt_t *lv, uint64_t ms);

static void silence(void *data, virErrorPtr e)
{
    (void)data;
    gd_debug("libvirt: %s", e && e->message ? e->message : "error");
}

static void note_dirty(gd_libvirt_t *lv, const char *name)
{
    for (size_t i = 0; i < lv->n_dirty; i++)
        if (strcmp(lv->dirty[i], name) == 0) return;
    if (lv->n_dirty == LV_MAX_DIRTY) {
        lv->relist_due = 1; /* a storm of events: one full list covers them */
        return;
    }
    char **grown = realloc(lv->dirty, (lv->n_dirty + 1) * sizeof(*grown));
    if (grown == NULL || (grown[lv->n_dirty] = strdup(name)) == NULL) {
        if (grown) lv->dirty = grown;
        lv->relist_due = 1;
        return;
    }
    lv->dirty = grown;
    lv->n_dirty++;
}

/* Whether the libvirt call that just failed failed because the domain is
 * gone. Any other failure (the connection dropped, libvirtd busy) says
 * nothing about the guest, which keeps running: it is kept, and looked at
 * again by a re-list. */
static int domain_gone(void)
{
    return virGetLastErrorCode() == VIR_ERR_NO_DOMAIN;
}

/* Reads one running domain's XML and adds, moves or removes its guest. */
static void refresh_domain(gd_libvirt_t *lv, virDomainPtr dom)
{
    const char *name = virDomainGetName(dom);
    char path[GD_CFG_STR_MAX];
    if (name == NULL) return;
    int active = virDomainIsActive(dom);
    if (active < 0 && !domain_gone()) {
        lv->relist_due = 1;
        return;
    }
    if (active != 1) {
        gd_hub_remove_guest(lv->hub, name, GD_SRC_LIBVIRT);
        return;
    }
    char *xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL && !domain_gone()) {
        lv->relist_due = 1;
        return;
    }
    int rc = xml ? gd_channel_xml_path(xml, strlen(xml), path, sizeof(path)) : -ENOENT;
    free(xml);
    if (rc == 0) {
        rc = gd_hub_add_guest(lv->hub, name, path, GD_SRC_LIBVIRT);
        if (rc == -EEXIST) gd_debug("libvirt: domain %s: the name is held by another source", name);
        if (rc == -EINVAL) gd_warn("libvirt: domain %s: not a name the hub can use", name);
    } else {
        gd_hub_remove_guest(lv->hub, name, GD_SRC_LIBVIRT);
    }
}

static int list_all(gd_libvirt_t *lv)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) return -EIO;
    for (int i = 0; i < n; i++)
        refresh_domain(lv, doms[i]);
    /* Libvirt's guests no longer running are dropped. */
    gd_guest_t *next;
    for (gd_guest_t *g = lv->hub->guests; g != NULL; g = next) {
        next = g->next;
        if (g->source != GD_SRC_LIBVIRT) continue;
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(virDomainGetName(doms[i]), g->name) == 0;
        if (!found) gd_hub_remove_guest(lv->hub, g->name, GD_SRC_LIBVIRT);
    }
    for (int i = 0; i < n; i++)
        virDomainFree(doms[i]);
    free(doms);
    return 0;
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    gd_libvirt_t *lv = opaque;
    const char *name = virDomainGetName(dom);
    (void)conn;
    (void)detail;
    if (name == NULL) return 0;
    if (event == VIR_DOMAIN_EVENT_STOPPED || event == VIR_DOMAIN_EVENT_UNDEFINED ||
        (event == VIR_DOMAIN_EVENT_SHUTDOWN && detail == VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED)) {
        /* No libvirt call needed to drop it. */
        gd_hub_remove_guest(lv->hub, name, GD_SRC_LIBVIRT);
    } else if (event == VIR_DOMAIN_EVENT_STARTED || event == VIR_DOMAIN_EVENT_RESUMED ||
               event == VIR_DOMAIN_EVENT_DEFINED) {
        note_dirty(lv, name);
        schedule(lv, 0);
    }
    return 0;
}

static void on_device(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
    gd_libvirt_t *lv = opaque;
    const char *name = virDomainGetName(dom);
    (void)conn;
    (void)alias;
    if (name == NULL) return;
    note_dirty(lv, name);
    schedule(lv, 0);
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    gd_libvirt_t *lv = opaque;
    (void)conn;
    gd_warn("libvirt: connection to %s closed (reason %d); reconnecting", lv->uri, reason);
    lv->lost = 1;
    schedule(lv, 0);
}

static void disconnect(gd_libvirt_t *lv)
{
    if (lv->conn == NULL) return;
    for (int i = 0; i < 3; i++)
        if (lv->cb_ids[i] >= 0) virConnectDomainEventDeregisterAny(lv->conn, lv->cb_ids[i]);
    virConnectUnregisterCloseCallback(lv->conn, on_close);
    virConnectClose(lv->conn);
    lv->conn = NULL;
}

static int connect_now(gd_libvirt_t *lv)
{
    lv->conn = virConnectOpenReadOnly(lv->uri);
    if (lv->conn == NULL) return -EIO;
    for (int i = 0; i < 3; i++)
        lv->cb_ids[i] = -1;
    /* A libvirtd that stops answering is noticed in 5 s x 3 probes. */
    virConnectSetKeepAlive(lv->conn, 5, 3);
    virConnectRegisterCloseCallback(lv->conn, on_close, lv, NULL);
    lv->cb_ids[0] =
        virConnectDomainEventRegisterAny(lv->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), lv, NULL);
    lv->cb_ids[1] =
        virConnectDomainEventRegisterAny(lv->conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_device), lv, NULL);
    lv->cb_ids[2] =
        virConnectDomainEventRegisterAny(lv->conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                         VIR_DOMAIN_EVENT_CALLBACK(on_device), lv, NULL);
    if (lv->cb_ids[0] < 0)
        gd_warn("libvirt: %s: no lifecycle events; relying on re-lists", lv->uri);
    gd_info("libvirt: connected to %s", lv->uri);
    lv->relist_due = 1;
    return 0;
}

static void do_work(uv_timer_t *t)
{
    gd_libvirt_t *lv = t->data;

    if (lv->stopping) return;
    if (lv->lost) {
        lv->lost = 0;
        disconnect(lv);
    }
    if (lv->conn == NULL) {
        if (connect_now(lv) < 0) {
            gd_warn("libvirt: cannot connect to %s; again in %lld ms", lv->uri,
                    (long long)lv->backoff_ms);
            schedule(lv, (uint64_t)lv->backoff_ms);
            lv->backoff_ms =
                lv->backoff_ms * 2 > LV_RECONNECT_MAX_MS ? LV_RECONNECT_MAX_MS : lv->backoff_ms * 2;
            return;
        }
        lv->backoff_ms = LV_RECONNECT_MIN_MS;
    }
    if (lv->relist_due) {
        lv->relist_due = 0;
        if (list_all(lv) < 0) {
            lv->lost = 1;
            schedule(lv, LV_RECONNECT_MIN_MS);
            return;
        }
    }
    while (lv->n_dirty > 0) {
        char *name = lv->dirty[--lv->n_dirty];
        virDomainPtr dom = virDomainLookupByName(lv->conn, name);
        if (dom != NULL) {
            refresh_domain(lv, dom);
            virDomainFree(dom);
        } else if (domain_gone()) {
            gd_hub_remove_guest(lv->hub, name, GD_SRC_LIBVIRT);
        } else {
            lv->relist_due = 1;
        }
        free(name);
    }
    /* A call failed for another reason than a domain gone: look again. */
    if (lv->relist_due) schedule(lv, LV_RECONNECT_MIN_MS);
}

static void schedule(gd_libvirt_t *lv, uint64_t ms)
{
    if (!lv->stopping) uv_timer_start(&lv->work, do_work, ms, 0);
}

static void on_relist(uv_timer_t *t)
{
    gd_libvirt_t *lv = t->data;
    lv->relist_due = 1;
    schedule(lv, 0);
}

int gd_libvirt_start(gd_libvirt_t **out, gd_hub_t *hub, const char *uri, char *err, size_t errlen)
{
    gd_libvirt_t *lv = calloc(1, sizeof(*lv));
    if (lv == NULL) {
        snprintf(err, errlen, "libvirt: out of memory");
        return -ENOMEM;
    }
    lv->hub = hub;
    snprintf(lv->uri, sizeof(lv->uri), "%s", uri);
    lv->backoff_ms = LV_RECONNECT_MIN_MS;
    gd_virt_loop_register(hub->loop);
    virSetErrorFunc(NULL, silence);
    uv_timer_init(hub->loop, &lv->work);
    uv_timer_init(hub->loop, &lv->relist);
    lv->work.data = lv->relist.data = lv;
    uint64_t every = (uint64_t)hub->cfg->discovery.relist_ms;
    uv_timer_start(&lv->relist, on_relist, every, every);
    schedule(lv, 0); /* connects and lists on the loop's first turn */
    *out = lv;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    gd_libvirt_t *lv = h->data;
    if (--lv->open_timers == 0) free(lv);
}

void gd_libvirt_stop(gd_libvirt_t *lv)
{
    lv->stopping = 1;
    disconnect(lv);
    for (size_t i = 0; i < lv->n_dirty; i++)
        free(lv->dirty[i]);
    free(lv->dirty);
    lv->dirty = NULL;
    lv->n_dirty = 0;
    /* The last of the two close callbacks frees lv. */
    lv->open_timers = 2;
    uv_close((uv_handle_t *)&lv->work, on_timer_closed);
    uv_close((uv_handle_t *)&lv->relist, on_timer_closed);
}

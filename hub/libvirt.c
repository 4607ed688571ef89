/* libvirt discovery on a thread of its own. libvirt's calls are synchronous
 * RPCs to libvirtd (a hung libvirtd holds virConnectOpen for as long as it
 * is hung), so none of them may run on the hub's loop: one discovery thread
 * runs libvirt's default event loop and does every call there (connect,
 * keepalive, lists, XML reads, events, reconnect, re-lists), and only sends
 * {add, name, path}, {remove, name} and {listed, names} messages, through a
 * mutex-held queue and a uv_async_t, to the loop, which changes the hub. */
#include "hub/libvirt.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "core/log.h"
#include "hub/channel_xml.h"

#define LV_RECONNECT_MIN_MS 500
#define LV_RECONNECT_MAX_MS 30000
#define LV_MAX_DIRTY 1024
#define LV_STOP_WAIT_S 2

typedef enum { LV_ADD, LV_REMOVE, LV_LISTED } lv_kind_t;

/* One message from the thread to the loop. LV_LISTED carries every running
 * domain's name (names: n strings, each NUL-terminated, one after another). */
typedef struct lv_msg_s {
    struct lv_msg_s *next;
    lv_kind_t kind;
    char *name;
    char path[GD_CFG_STR_MAX];
    char *names;
    size_t n;
} lv_msg_t;

struct gd_libvirt_s {
    gd_hub_t *hub; /* the loop's: never touched by the thread */
    uv_async_t wake;
    pthread_mutex_t lock; /* holds head/tail */
    lv_msg_t *head, *tail;
    pthread_t thread;
    atomic_int stopping;

    /* The thread's own. */
    char uri[GD_CFG_STR_MAX];
    virConnectPtr conn;
    int cb_ids[3];
    int lost;       /* the close callback fired: reconnect on the next turn */
    int relist_due; /* a full list is owed */
    char **dirty;   /* domains to look at again */
    size_t n_dirty;
    int work_id; /* libvirt timeout: does what the callbacks noted */
    int relist_id;
    int64_t backoff_ms;
};

static pthread_once_t event_impl_once = PTHREAD_ONCE_INIT;
static int event_impl_rc;

static void register_event_impl(void)
{
    event_impl_rc = virEventRegisterDefaultImpl();
}

static void schedule(gd_libvirt_t *lv, int ms);

static void silence(void *data, virErrorPtr e)
{
    (void)data;
    gd_debug("libvirt: %s", e && e->message ? e->message : "error");
}

/* Thread side: queues a message for the loop. */
static void send_msg(gd_libvirt_t *lv, lv_msg_t *m)
{
    pthread_mutex_lock(&lv->lock);
    if (atomic_load(&lv->stopping)) {
        /* The loop may have closed wake: nothing more is sent. */
        pthread_mutex_unlock(&lv->lock);
        free(m->name);
        free(m->names);
        free(m);
        return;
    }
    if (lv->tail)
        lv->tail->next = m;
    else
        lv->head = m;
    lv->tail = m;
    pthread_mutex_unlock(&lv->lock);
    uv_async_send(&lv->wake);
}

static void send_guest(gd_libvirt_t *lv, lv_kind_t kind, const char *name, const char *path)
{
    lv_msg_t *m = calloc(1, sizeof(*m));
    if (m == NULL || (m->name = strdup(name)) == NULL) {
        free(m);
        lv->relist_due = 1; /* the next list says it again */
        return;
    }
    m->kind = kind;
    if (path) snprintf(m->path, sizeof(m->path), "%s", path);
    send_msg(lv, m);
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

/* Reads one running domain's XML and says to add, move or remove its guest. */
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
        send_guest(lv, LV_REMOVE, name, NULL);
        return;
    }
    char *xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL && !domain_gone()) {
        lv->relist_due = 1;
        return;
    }
    int rc = xml ? gd_channel_xml_path(xml, strlen(xml), path, sizeof(path)) : -ENOENT;
    free(xml);
    send_guest(lv, rc == 0 ? LV_ADD : LV_REMOVE, name, rc == 0 ? path : NULL);
}

/* Sends every running domain, then their names: the loop drops libvirt's
 * guests not among them. */
static int list_all(gd_libvirt_t *lv)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(lv->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) return -EIO;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        refresh_domain(lv, doms[i]);
        const char *name = virDomainGetName(doms[i]);
        len += (name ? strlen(name) : 0) + 1;
    }
    lv_msg_t *m = calloc(1, sizeof(*m));
    char *names = malloc(len + 1);
    if (m && names) {
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            const char *name = virDomainGetName(doms[i]);
            size_t l = name ? strlen(name) : 0;
            memcpy(names + off, name ? name : "", l + 1);
            off += l + 1;
        }
        m->kind = LV_LISTED;
        m->names = names;
        m->n = (size_t)n;
        send_msg(lv, m);
    } else {
        free(m);
        free(names);
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
    if (name == NULL) return 0;
    if (event == VIR_DOMAIN_EVENT_STOPPED || event == VIR_DOMAIN_EVENT_UNDEFINED ||
        (event == VIR_DOMAIN_EVENT_SHUTDOWN && detail == VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED)) {
        /* No libvirt call needed to drop it. */
        send_guest(lv, LV_REMOVE, name, NULL);
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

static void do_work(int id, void *opaque)
{
    gd_libvirt_t *lv = opaque;
    (void)id;

    virEventUpdateTimeout(lv->work_id, -1);
    if (atomic_load(&lv->stopping)) return;
    if (lv->lost) {
        lv->lost = 0;
        disconnect(lv);
    }
    if (lv->conn == NULL) {
        if (connect_now(lv) < 0) {
            gd_warn("libvirt: cannot connect to %s; again in %lld ms", lv->uri,
                    (long long)lv->backoff_ms);
            schedule(lv, (int)lv->backoff_ms);
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
            send_guest(lv, LV_REMOVE, name, NULL);
        } else {
            lv->relist_due = 1;
        }
        free(name);
    }
    /* A call failed for another reason than a domain gone: look again. */
    if (lv->relist_due) schedule(lv, LV_RECONNECT_MIN_MS);
}

static void schedule(gd_libvirt_t *lv, int ms)
{
    if (!atomic_load(&lv->stopping)) virEventUpdateTimeout(lv->work_id, ms);
}

static void on_relist(int id, void *opaque)
{
    gd_libvirt_t *lv = opaque;
    (void)id;
    lv->relist_due = 1;
    schedule(lv, 0);
}

static void *run_thread(void *arg)
{
    gd_libvirt_t *lv = arg;
    while (!atomic_load(&lv->stopping))
        if (virEventRunDefaultImpl() < 0) gd_warn("libvirt: its event loop failed");
    disconnect(lv);
    virEventRemoveTimeout(lv->work_id);
    virEventRemoveTimeout(lv->relist_id);
    for (size_t i = 0; i < lv->n_dirty; i++)
        free(lv->dirty[i]);
    free(lv->dirty);
    return NULL;
}

/* Loop side: drops libvirt's guests not among a full list's names. */
static void apply_listed(gd_libvirt_t *lv, const lv_msg_t *m)
{
    gd_guest_t *next;
    for (gd_guest_t *g = lv->hub->guests; g != NULL; g = next) {
        next = g->next;
        if (g->source != GD_SRC_LIBVIRT) continue;
        int found = 0;
        const char *s = m->names;
        for (size_t i = 0; i < m->n && !found; i++, s += strlen(s) + 1)
            found = strcmp(s, g->name) == 0;
        if (!found) gd_hub_remove_guest(lv->hub, g->name, GD_SRC_LIBVIRT);
    }
}

static void free_msgs(lv_msg_t *m)
{
    while (m) {
        lv_msg_t *next = m->next;
        free(m->name);
        free(m->names);
        free(m);
        m = next;
    }
}

static void on_wake(uv_async_t *a)
{
    gd_libvirt_t *lv = a->data;
    pthread_mutex_lock(&lv->lock);
    lv_msg_t *m = lv->head;
    lv->head = lv->tail = NULL;
    pthread_mutex_unlock(&lv->lock);
    for (lv_msg_t *it = m; it != NULL; it = it->next) {
        if (it->kind == LV_LISTED) {
            apply_listed(lv, it);
        } else if (it->kind == LV_REMOVE) {
            gd_hub_remove_guest(lv->hub, it->name, GD_SRC_LIBVIRT);
        } else {
            int rc = gd_hub_add_guest(lv->hub, it->name, it->path, GD_SRC_LIBVIRT);
            if (rc == -EEXIST)
                gd_debug("libvirt: domain %s: the name is held by another source", it->name);
            if (rc == -EINVAL) gd_warn("libvirt: domain %s: not a name the hub can use", it->name);
        }
    }
    free_msgs(m);
}

static void on_wake_closed(uv_handle_t *h)
{
    gd_libvirt_t *lv = h->data;
    free_msgs(lv->head);
    pthread_mutex_destroy(&lv->lock);
    free(lv);
}

int gd_libvirt_start(gd_libvirt_t **out, gd_hub_t *hub, const char *uri, char *err, size_t errlen)
{
    /* Before any connection, once per process. */
    pthread_once(&event_impl_once, register_event_impl);
    if (event_impl_rc < 0) {
        snprintf(err, errlen, "libvirt: cannot set up its event loop");
        return -EIO;
    }
    gd_libvirt_t *lv = calloc(1, sizeof(*lv));
    if (lv == NULL) {
        snprintf(err, errlen, "libvirt: out of memory");
        return -ENOMEM;
    }
    lv->hub = hub;
    snprintf(lv->uri, sizeof(lv->uri), "%s", uri);
    lv->backoff_ms = LV_RECONNECT_MIN_MS;
    virSetErrorFunc(NULL, silence);
    pthread_mutex_init(&lv->lock, NULL);
    int every = hub->cfg->discovery.relist_ms;
    /* Connects and lists on the thread's first turn. */
    lv->work_id = virEventAddTimeout(0, do_work, lv, NULL);
    lv->relist_id = virEventAddTimeout(every, on_relist, lv, NULL);
    int rc = lv->work_id < 0 || lv->relist_id < 0 ? -EIO : 0;
    int async_open = 0;
    if (rc == 0) rc = -uv_async_init(hub->loop, &lv->wake, on_wake);
    if (rc == 0) {
        async_open = 1;
        lv->wake.data = lv;
        rc = -pthread_create(&lv->thread, NULL, run_thread, lv);
    }
    if (rc < 0) {
        if (lv->work_id >= 0) virEventRemoveTimeout(lv->work_id);
        if (lv->relist_id >= 0) virEventRemoveTimeout(lv->relist_id);
        snprintf(err, errlen, "libvirt: cannot start the discovery thread: %s", strerror(-rc));
        if (async_open) {
            uv_close((uv_handle_t *)&lv->wake, on_wake_closed); /* frees lv */
        } else {
            pthread_mutex_destroy(&lv->lock);
            free(lv);
        }
        return rc;
    }
    *out = lv;
    return 0;
}

void gd_libvirt_stop(gd_libvirt_t *lv)
{
    pthread_mutex_lock(&lv->lock);
    atomic_store(&lv->stopping, 1);
    pthread_mutex_unlock(&lv->lock);
    /* Wakes virEventRunDefaultImpl, which then sees stopping. */
    virEventUpdateTimeout(lv->work_id, 0);
    /* A thread inside a call to a hung libvirtd (an open waits as long as
     * libvirtd is hung) would hold the hub's exit: after 2 s it is left to
     * the process's end, with lv, which it still uses; it sends no more. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += LV_STOP_WAIT_S;
    if (pthread_timedjoin_np(lv->thread, NULL, &until) != 0) {
        gd_warn("libvirt: the discovery thread is held by libvirtd; not waiting for it");
        pthread_detach(lv->thread);
        uv_close((uv_handle_t *)&lv->wake, NULL);
        return;
    }
    uv_close((uv_handle_t *)&lv->wake, on_wake_closed);
}

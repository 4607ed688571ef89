/* virEventRegisterImpl over libuv. libvirt calls these from the thread that
 * calls its API, which in the hub is always the loop's. A removal frees the
 * caller's data (ff) from uv_close's callback, never inside the removal:
 * libvirt may hold its own locks there. */
#include "hub/virt_loop.h"

#include <stdlib.h>

#include <libvirt/libvirt.h>

typedef struct vl_handle_s {
    struct vl_handle_s *next;
    int id;
    int fd;
    int timer; /* a timeout rather than a handle */
    int frequency;
    virEventHandleCallback hcb;
    virEventTimeoutCallback tcb;
    void *opaque;
    virFreeCallback ff;
    int removed;
    union {
        uv_poll_t poll;
        uv_timer_t t;
        uv_handle_t h;
    } u;
} vl_handle_t;

/* One loop per process, as libvirt has one event implementation. */
static uv_loop_t *vl_loop;
static vl_handle_t *vl_list;
static int vl_next_id = 1;
static int vl_live;

static vl_handle_t *find(int id, int timer)
{
    for (vl_handle_t *h = vl_list; h != NULL; h = h->next)
        if (h->id == id && h->timer == timer && !h->removed) return h;
    return NULL;
}

static int to_uv(int events)
{
    int uv = 0;
    if (events & VIR_EVENT_HANDLE_READABLE) uv |= UV_READABLE;
    if (events & VIR_EVENT_HANDLE_WRITABLE) uv |= UV_WRITABLE;
    return uv;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    vl_handle_t *h = p->data;
    int vir = 0;
    if (status < 0)
        vir = VIR_EVENT_HANDLE_ERROR;
    else {
        if (events & UV_READABLE) vir |= VIR_EVENT_HANDLE_READABLE;
        if (events & UV_WRITABLE) vir |= VIR_EVENT_HANDLE_WRITABLE;
        if (events & UV_DISCONNECT) vir |= VIR_EVENT_HANDLE_HANGUP;
    }
    h->hcb(h->id, h->fd, vir, h->opaque);
}

static void on_closed(uv_handle_t *uh)
{
    vl_handle_t *h = uh->data;
    for (vl_handle_t **p = &vl_list; *p != NULL; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    if (h->ff) h->ff(h->opaque);
    vl_live--;
    free(h);
}

static int add_handle(int fd, int events, virEventHandleCallback cb, void *opaque,
                      virFreeCallback ff)
{
    vl_handle_t *h = calloc(1, sizeof(*h));
    if (h == NULL) return -1;
    if (uv_poll_init(vl_loop, &h->u.poll, fd) != 0) {
        free(h);
        return -1;
    }
    h->id = vl_next_id++;
    h->fd = fd;
    h->hcb = cb;
    h->opaque = opaque;
    h->ff = ff;
    h->u.poll.data = h;
    h->next = vl_list;
    vl_list = h;
    vl_live++;
    if (to_uv(events)) uv_poll_start(&h->u.poll, to_uv(events) | UV_DISCONNECT, on_poll);
    return h->id;
}

static void update_handle(int id, int events)
{
    vl_handle_t *h = find(id, 0);
    if (h == NULL) return;
    if (to_uv(events))
        uv_poll_start(&h->u.poll, to_uv(events) | UV_DISCONNECT, on_poll);
    else
        uv_poll_stop(&h->u.poll);
}

static int remove_any(int id, int timer)
{
    vl_handle_t *h = find(id, timer);
    if (h == NULL) return -1;
    h->removed = 1;
    uv_close(&h->u.h, on_closed);
    return 0;
}

static int remove_handle(int id)
{
    return remove_any(id, 0);
}

static void arm(vl_handle_t *h);

static void on_timer(uv_timer_t *t)
{
    vl_handle_t *h = t->data;
    /* Re-armed before the call: the callback may change or remove it. */
    arm(h);
    h->tcb(h->id, h->opaque);
}

/* frequency -1: off; 0: on every loop turn; N: every N ms. */
static void arm(vl_handle_t *h)
{
    if (h->frequency < 0)
        uv_timer_stop(&h->u.t);
    else
        uv_timer_start(&h->u.t, on_timer, (uint64_t)h->frequency, 0);
}

static int add_timeout(int frequency, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
    vl_handle_t *h = calloc(1, sizeof(*h));
    if (h == NULL) return -1;
    uv_timer_init(vl_loop, &h->u.t);
    h->id = vl_next_id++;
    h->timer = 1;
    h->frequency = frequency;
    h->tcb = cb;
    h->opaque = opaque;
    h->ff = ff;
    h->u.t.data = h;
    h->next = vl_list;
    vl_list = h;
    vl_live++;
    arm(h);
    return h->id;
}

static void update_timeout(int id, int frequency)
{
    vl_handle_t *h = find(id, 1);
    if (h == NULL) return;
    h->frequency = frequency;
    arm(h);
}

static int remove_timeout(int id)
{
    return remove_any(id, 1);
}

void gd_virt_loop_register(uv_loop_t *loop)
{
    if (vl_loop != NULL) return;
    vl_loop = loop;
    virEventRegisterImpl(add_handle, update_handle, remove_handle, add_timeout, update_timeout,
                         remove_timeout);
}

int gd_virt_loop_live(void)
{
    return vl_live;
}

/* The pending-request map of one guest: a short list (hub.max_pending
 * bounds it), newest first, since answers mostly come in order. */
#include "hub/idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void gd_idmap_init(gd_idmap_t *m)
{
    m->head = NULL;
    m->count = 0;
}

int gd_idmap_add(gd_idmap_t *m, uint64_t hub_id, uint64_t client, const char *orig, size_t orig_len)
{
    gd_idmap_entry_t *e = malloc(sizeof(*e) + orig_len + 1);
    if (e == NULL) return -ENOMEM;
    e->hub_id = hub_id;
    e->client = client;
    e->orig_len = orig_len;
    memcpy(e->orig, orig, orig_len);
    e->orig[orig_len] = '\0';
    e->next = m->head;
    m->head = e;
    m->count++;
    return 0;
}

gd_idmap_entry_t *gd_idmap_take(gd_idmap_t *m, uint64_t hub_id)
{
    for (gd_idmap_entry_t **p = &m->head; *p != NULL; p = &(*p)->next) {
        if ((*p)->hub_id != hub_id) continue;
        gd_idmap_entry_t *e = *p;
        *p = e->next;
        m->count--;
        return e;
    }
    return NULL;
}

size_t gd_idmap_forget_client(gd_idmap_t *m, uint64_t client)
{
    size_t n = 0;
    gd_idmap_entry_t **p = &m->head;

    while (*p != NULL) {
        gd_idmap_entry_t *e = *p;
        if (e->client == client) {
            *p = e->next;
            free(e);
            m->count--;
            n++;
        } else {
            p = &e->next;
        }
    }
    return n;
}

void gd_idmap_drain(gd_idmap_t *m, void (*cb)(void *ctx, gd_idmap_entry_t *e), void *ctx)
{
    /* Reverse first, so the clients hear in the order they asked. */
    gd_idmap_entry_t *rev = NULL;
    while (m->head != NULL) {
        gd_idmap_entry_t *e = m->head;
        m->head = e->next;
        e->next = rev;
        rev = e;
    }
    m->count = 0;
    while (rev != NULL) {
        gd_idmap_entry_t *e = rev;
        rev = e->next;
        cb(ctx, e);
    }
}

int gd_idmap_parse(const char *text, uint64_t *hub_id)
{
    size_t plen = strlen(GD_IDMAP_PREFIX);
    uint64_t v = 0;

    if (strncmp(text, GD_IDMAP_PREFIX, plen) != 0) return -EINVAL;
    const char *d = text + plen;
    if (*d == '\0' || (d[0] == '0' && d[1] != '\0')) return -EINVAL;
    for (; *d != '\0'; d++) {
        if (*d < '0' || *d > '9') return -EINVAL;
        uint64_t next = v * 10 + (uint64_t)(*d - '0');
        if (next / 10 != v) return -EINVAL; /* overflow */
        v = next;
    }
    *hub_id = v;
    return 0;
}

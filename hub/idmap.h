/* Requests forwarded to one guest and not yet answered: the hub-unique id
 * each was sent with, the client that asked and the id that client gave. */
#ifndef GUESTD_HUB_IDMAP_H
#define GUESTD_HUB_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gd_idmap_entry_s {
    struct gd_idmap_entry_s *next;
    uint64_t hub_id;
    uint64_t client; /* the asking client's serial number */
    size_t orig_len;
    char orig[]; /* the client's id as JSON text ("42", "\"a\"", null), NUL-terminated */
} gd_idmap_entry_t;

typedef struct gd_idmap_s {
    gd_idmap_entry_t *head;
    size_t count;
} gd_idmap_t;

/* The text of a hub id on the wire: "hub-N", a JSON string. */
#define GD_IDMAP_PREFIX "hub-"

void gd_idmap_init(gd_idmap_t *m);
/* Remembers a forwarded request. 0 or -ENOMEM. */
int gd_idmap_add(gd_idmap_t *m, uint64_t hub_id, uint64_t client, const char *orig,
                 size_t orig_len);
/* Removes and returns the entry for hub_id (the caller frees it), or NULL. */
gd_idmap_entry_t *gd_idmap_take(gd_idmap_t *m, uint64_t hub_id);
/* Forgets every request of a client that went away; returns how many. */
size_t gd_idmap_forget_client(gd_idmap_t *m, uint64_t client);
/* Removes every entry, oldest first, handing each to cb (which frees it). */
void gd_idmap_drain(gd_idmap_t *m, void (*cb)(void *ctx, gd_idmap_entry_t *e), void *ctx);
/* Reads a hub id's text ("hub-17") back; 0, or -EINVAL for anything else. */
int gd_idmap_parse(const char *text, uint64_t *hub_id);

#endif

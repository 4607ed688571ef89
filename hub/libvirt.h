/* libvirt discovery: a read-only connection, the running domains' guestd
 * channels, lifecycle and device events, a full re-list every
 * discovery.relist_ms and a reconnect when libvirtd goes away, all on a
 * discovery thread running libvirt's own event loop (libvirt's calls block);
 * the loop only receives add and remove messages. */
#ifndef GUESTD_HUB_LIBVIRT_H
#define GUESTD_HUB_LIBVIRT_H

#include <stddef.h>

#include "hub/hub.h"

typedef struct gd_libvirt_s gd_libvirt_t;

int gd_libvirt_start(gd_libvirt_t **out, gd_hub_t *hub, const char *uri, char *err, size_t errlen);
void gd_libvirt_stop(gd_libvirt_t *lv);

#endif

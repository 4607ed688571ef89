/* libvirt's event loop implemented on the hub's libuv loop (uv_poll for
 * handles, uv_timer for timeouts), so libvirt's connection, keepalive and
 * domain events are driven by the loop that serves everything else. */
#ifndef GUESTD_HUB_VIRT_LOOP_H
#define GUESTD_HUB_VIRT_LOOP_H

#include <uv.h>

/* Registers the implementation with libvirt (virEventRegisterImpl), once per
 * process, before any connection is opened. Every call then runs on loop's
 * thread. */
void gd_virt_loop_register(uv_loop_t *loop);
/* Handles and timeouts libvirt still has registered (0 after a clean close). */
int gd_virt_loop_live(void);

#endif

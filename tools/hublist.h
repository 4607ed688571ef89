/* guestctl --hub SOCKET list: the hub's guests as a table. */
#ifndef GUESTD_HUBLIST_H
#define GUESTD_HUBLIST_H

#include <stdio.h>

/* Asks the hub at socket for its list and prints one row per guest (or the
 * hub's answer as JSON with raw). Returns an exit status (tools/client.h). */
int gd_ctl_list(const char *socket, int timeout_ms, int raw, FILE *out, FILE *errs);

#endif

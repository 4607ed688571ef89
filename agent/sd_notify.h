/* systemd's service notification protocol, spoken directly: one datagram of
 * "KEY=value\n" lines to the unix socket named by $NOTIFY_SOCKET (see
 * sd_notify(3)). guestd needs two of its calls, READY/STATUS/WATCHDOG/
 * STOPPING messages and the watchdog interval, and linking libsystemd for
 * them pulled seven shared libraries (about 1 MB of resident memory) into
 * every guest. */
#ifndef GUESTD_SD_NOTIFY_H
#define GUESTD_SD_NOTIFY_H

#include <stdint.h>

/* Sends state to the service manager. 1 when sent, 0 when the agent does
 * not run under a manager that listens ($NOTIFY_SOCKET unset), or a negative
 * errno. Never blocks: a manager that is not reading loses the message, as
 * a stalled watchdog ping should. */
int gd_sd_notify(const char *state);

/* The watchdog interval systemd expects pings within, in microseconds, or 0
 * when there is no watchdog for this process ($WATCHDOG_USEC unset or
 * invalid, or $WATCHDOG_PID naming another process). */
uint64_t gd_sd_watchdog_usec(void);

#endif

/* guestctl's side of the wire: a unix-socket connection to a guest (guestd
 * on unix-listen, or the host end of a QEMU/libvirt virtio-serial chardev),
 * lines in and out with deadlines, and the `call` and `watch` commands. */
#ifndef GUESTD_CLIENT_H
#define GUESTD_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* guestctl's exit statuses. */
enum { GD_CTL_OK = 0, GD_CTL_ERROR = 1, GD_CTL_USAGE = 2, GD_CTL_TIMEOUT = 3 };

typedef struct gd_client_s {
    int fd;
    char *buf;
    size_t len, cap, start; /* unread bytes are buf[start..len) */
} gd_client_t;

int gd_client_connect(gd_client_t *c, const char *path, char *err, size_t errlen);
void gd_client_close(gd_client_t *c);
/* Sends all of data. 0 or a negative errno. */
int gd_client_send(gd_client_t *c, const char *data, size_t len);
/* The next line (without '\n', NUL-terminated, valid until the next call)
 * before deadline (CLOCK_MONOTONIC ms; -1 waits for ever). Returns 1 with a
 * line, 0 at the deadline, -1 when the guest closed or on error. */
int gd_client_read_line(gd_client_t *c, int64_t deadline, char **line, size_t *len);
int64_t gd_client_now_ms(void);

/* key=value: the value as JSON where it is a JSON number (strict grammar, so
 * "0644" stays a string), true, false, null, an array, an object or a quoted
 * string; anything else is the string as typed. */
cJSON *gd_ctl_value(const char *text);
/* The request's args from --args JSON (an object, may be NULL) and key=value
 * words (which win). NULL with err set on a bad word or bad JSON. */
cJSON *gd_ctl_build_args(const char *args_json, char **kv, int n, char *err, size_t errlen);
/* JSON with two-space indentation and a final newline. */
void gd_ctl_print_pretty(FILE *out, const cJSON *item);

/* msg as one line. 0 or a negative errno. */
int gd_client_send_json(gd_client_t *c, const cJSON *msg);

typedef struct gd_ctl_call_opts_s {
    const char *socket;
    const char *guest; /* through a hub (--hub): the guest's name; NULL: a guest's own socket */
    const char *cmd;
    cJSON *args; /* may be NULL; not taken */
    int timeout_ms;
    int raw; /* print the response line as it came */
} gd_ctl_call_opts_t;
/* Sends one request and prints its result. Returns an exit status. */
int gd_ctl_call(const gd_ctl_call_opts_t *o, FILE *out, FILE *errs);

typedef struct gd_ctl_watch_opts_s {
    const char *socket;
    const char *guest;   /* through a hub: the guest watched; NULL: a guest's own socket */
    const char **events; /* names to print; NULL all */
    int n_events;
    int table;      /* metrics as a table, other events as one short line */
    long count;     /* stop after this many events (0: never) */
    int timeout_ms; /* exit 3 when no event comes for this long (0: wait) */
} gd_ctl_watch_opts_t;
int gd_ctl_watch(const gd_ctl_watch_opts_t *o, FILE *out, FILE *errs);

/* One table row for a metrics event line (header when line is NULL). */
void gd_ctl_table_row(const cJSON *event, char *buf, size_t len);
/* 1536 -> "1.5K", 0 -> "0", binary units. */
void gd_ctl_human_bytes(double v, char *buf, size_t len);

#endif

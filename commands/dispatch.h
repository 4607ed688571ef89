/* The dispatcher: parses a request line, validates it against protocol.md,
 * applies policy and the concurrency bound, and runs the command's handler.
 * It knows nothing of the transport: replies go out through a send callback
 * tagged with the host connection they answer. */
#ifndef GUESTD_DISPATCH_H
#define GUESTD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "commands/command.h"

/* protocol.md's error codes (docs/protocol.md, "Errors"), NULL-terminated:
 * the only codes a reply carries. tests/check_docs_protocol.c fails when one
 * is missing from the page. */
extern const char *const gd_error_codes[];
/* Whether code is one of gd_error_codes. */
int gd_error_code_known(const char *code);

/* Sends one complete line (ending in '\n') to connection conn_gen. */
typedef void (*gd_dispatch_send_fn)(void *ctx, uint64_t conn_gen, const char *line, size_t len);
/* The same, taking ownership of line (malloc'd). */
typedef void (*gd_dispatch_send_owned_fn)(void *ctx, uint64_t conn_gen, char *line, size_t len);

typedef struct gd_dispatch_s {
    const gd_cmd_env_t *env; /* handed to every request */
    gd_dispatch_send_fn send;
    gd_dispatch_send_owned_fn send_owned; /* NULL: send, then free */
    /* The reservations of the channel conn_gen's replies go to; NULL
     * (or returning NULL): replies are not reserved for. */
    struct gd_owed_s *(*owed_of)(void *ctx, uint64_t conn_gen);
    void *send_ctx;
    gd_request_t *inflight; /* requests handed to a handler, not yet replied */
    unsigned running;       /* of which GD_CMD_CONCURRENT */
    unsigned max_concurrent;
    char allow[256], deny[256]; /* comma-separated fnmatch patterns */
    gd_buf_t out;               /* reused for serialising replies */
    uint64_t requests, errors;
    int closing; /* replies after close are dropped quietly */
} gd_dispatch_t;

void gd_dispatch_init(gd_dispatch_t *d, const gd_cmd_env_t *env, gd_dispatch_send_fn send,
                      void *send_ctx);
/* Policy and bound from the configuration (called again on reload). */
void gd_dispatch_configure(gd_dispatch_t *d, const char *allow, const char *deny,
                           unsigned max_concurrent);
/* One request line (no newline). Always produces exactly one reply, now or
 * when the handler finishes. */
void gd_dispatch_line(gd_dispatch_t *d, uint64_t conn_gen, const char *line, size_t len);
/* The framer dropped an oversized line. */
void gd_dispatch_too_large(gd_dispatch_t *d, uint64_t conn_gen, size_t limit);
/* Whether policy lets this command run (deny wins over allow). */
int gd_dispatch_allowed(const gd_dispatch_t *d, const char *name);
/* Drops pending replies (shutdown); handlers still finish their own cleanup. */
void gd_dispatch_close(gd_dispatch_t *d);
void gd_dispatch_free(gd_dispatch_t *d);

/* Validates args against a spec: unknown keys, missing required ones, wrong
 * types, ints out of range. 0, or -EINVAL with a message in err. */
int gd_args_validate(const gd_arg_spec_t *spec, const cJSON *args, char *err, size_t errlen);

#endif

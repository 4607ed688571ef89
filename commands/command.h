/* The command table's types and the request/reply API every handler uses.
 * A handler validates nothing itself: the dispatcher has already checked the
 * arguments against the command's spec. It answers now or later (after a
 * child exits, after thread-pool work) with exactly one gd_reply_*. */
#ifndef GUESTD_COMMAND_H
#define GUESTD_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/fd_budget.h"
#include "core/owed.h"

/* guestd's wire protocol (docs/protocol.md): hello's and info's "protocol". */
#define GD_PROTOCOL_VERSION 1

struct gd_dispatch_s;
struct gd_history_s;
struct gd_metrics_s;

/* What a command may reach of the running agent, filled once by the
 * composition root (agent/agent.c) and shared by every request. What the
 * root implements itself (applying a configuration, the health report, the
 * reply flush) is a hook taking ctx, so commands never see the agent's types. */
typedef struct gd_cmd_env_s {
    uv_loop_t *loop;
    const gd_config_t *config;      /* the running configuration */
    const gd_fd_budget_t *fds;      /* the open-file limit's shares */
    gd_bus_t *bus;                  /* events to the host (exec.output) */
    struct gd_dispatch_s *dispatch; /* policy, the bound, requests in flight */
    struct gd_history_s *history;   /* metrics.history; NULL when it keeps none */
    struct gd_metrics_s *metrics;   /* the collectors; NULL when not running */
    const int *stopping;            /* nonzero once the agent is stopping */

    /* The agent's identity (info, system.info). */
    int64_t started_at_ms;
    const char *hostname;
    const char *boot_id;

    void *ctx; /* the hooks' first argument */
    /* Applies the runtime keys of next; returns how many keys it refused
     * (with err set), as gd_agent_apply_config. */
    int (*apply_config)(void *ctx, const gd_config_t *next, char *err, size_t errlen);
    /* Runs cb once every reply queued so far has been written to the host. */
    void (*after_flush)(void *ctx, void (*cb)(void *arg), void *arg);
    /* The health report computed now (protocol.md, "Health report"). */
    cJSON *(*health_report)(void *ctx);
    /* on: the agent writes no file of its own until called with 0
     * (guest-fsfreeze: the metrics log waits for the thaw). */
    void (*pause_writes)(void *ctx, int on);
} gd_cmd_env_t;

typedef enum {
    GD_ARG_STRING,        /* JSON string */
    GD_ARG_INT,           /* JSON number with no fraction, within [min, max] */
    GD_ARG_BOOL,          /* true / false */
    GD_ARG_OBJECT,        /* JSON object */
    GD_ARG_STRING_ARRAY,  /* array of strings */
    GD_ARG_INT_OR_STRING, /* a number or a string (signals, ids) */
    GD_ARG_ANY,           /* any JSON value (config.set value, exec.cancel request_id) */
} gd_arg_type_t;

typedef struct gd_arg_spec_s {
    const char *name;
    gd_arg_type_t type;
    int required;
    int64_t min, max; /* GD_ARG_INT range; both 0 means unbounded */
    const char *help;
} gd_arg_spec_t;

typedef struct gd_request_s gd_request_t;

/* args is the request's "args" object (an empty object when absent), valid
 * until the reply. */
typedef void (*gd_command_fn)(gd_request_t *req, const cJSON *args);

enum {
    GD_CMD_CONCURRENT = 1u << 0, /* counts against commands.max_concurrent */
};

typedef struct gd_command_s {
    const char *name;
    gd_command_fn handler;
    unsigned flags;
    const char *summary;
    const gd_arg_spec_t *args; /* NULL-name terminated; NULL = no arguments */
    const char *result_doc;    /* what the result holds, for docs/commands.md */
} gd_command_t;

struct gd_request_s {
    struct gd_dispatch_s *dispatch;
    const gd_cmd_env_t *env; /* the running agent's parts: config, bus, history... */
    const gd_command_t *cmd;
    cJSON *id;                 /* a copy of the request id, or NULL */
    cJSON *args;               /* owned by the request */
    uint64_t conn_gen;         /* the host connection this answers */
    uint64_t started_ns;       /* uv_hrtime() when dispatched */
    void *data;                /* the handler's own state */
    gd_request_t *next, *prev; /* the dispatcher's list of requests in flight */
    size_t owed;               /* bytes reserved for its reply (gd_request_reserve) */
    gd_owed_waiter_t owed_wait;
    void (*owed_resume)(gd_request_t *req, int status);
};

/* Sends {"id":..,"ok":true,"result":RESULT} and frees the request. Takes
 * ownership of result (NULL means {}). */
void gd_reply_ok(gd_request_t *req, cJSON *result);
/* Sends {"id":..,"ok":false,"error":{"code":CODE,"message":...}} and frees
 * the request. code is one of protocol.md's error codes. */
void gd_reply_error(gd_request_t *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sends a reply line built elsewhere (in the thread pool: a large result
 * is never printed on the loop), ending in '\n'. Takes ownership of line
 * (malloc'd) and frees the request. */
void gd_reply_line(gd_request_t *req, char *line, size_t len);
/* Reserves bytes for req's reply against the agent's owed bound (agent/
 * owed.h); released when the request is freed. 0: reserved now; 1: resume
 * runs later from the loop with status 0 (reserved) or -ECANCELED (the
 * agent is stopping: resume must answer the request). */
int gd_request_reserve(gd_request_t *req, size_t bytes,
                       void (*resume)(gd_request_t *req, int status));
/* The request's id printed as JSON ("null" when it has none), for a reply
 * line built outside the dispatcher. malloc'd, or NULL. */
char *gd_request_id_json(const gd_request_t *req);

/* errno text as the message, code "failed" or "not_found" for ENOENT/ESRCH. */
void gd_reply_errno(gd_request_t *req, int err, const char *what);

/* Argument accessors for handlers (the dispatcher already checked types). */
const char *gd_arg_string(const cJSON *args, const char *name, const char *fallback);
int64_t gd_arg_int(const cJSON *args, const char *name, int64_t fallback);
int gd_arg_bool(const cJSON *args, const char *name, int fallback);

/* The families, each in its own file: a NULL-name terminated array. */
extern const gd_command_t gd_commands_info[];

#endif

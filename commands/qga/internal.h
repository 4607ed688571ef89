/* Private to the qemu-ga dialect (commands/qga*.c, and agent/families.c,
 * which lists its families): its state, its requests and its command
 * table. qga.c is the dispatcher; each qga_<family>.c holds one family of
 * qemu-ga commands mapped onto guestd's own parts. */
#ifndef GUESTD_QGA_INTERNAL_H
#define GUESTD_QGA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/buf.h"
#include "core/owed.h"
#include "commands/command.h"
#include "commands/qga/qga.h"
#include "commands/qga/json.h"
#include "transport/qga_link.h"

struct gd_channel_s;
typedef struct gd_qga_req_s gd_qga_req_t;

/* What a guestd command made for a qemu-ga request answered: ok and its
 * "result", or its "error" ({"code", "message"}). Must answer req. */
typedef void (*gd_qga_native_done)(gd_qga_req_t *req, int ok, const cJSON *body);

/* Argument types, as qemu-ga's schema names them in its errors. */
typedef enum {
    QGA_ARG_INT,      /* "integer" */
    QGA_ARG_STR,      /* "string" */
    QGA_ARG_BOOL,     /* "boolean" */
    QGA_ARG_STR_LIST, /* array of strings */
    QGA_ARG_LIST,     /* array of anything (the handler checks the elements) */
    QGA_ARG_ANY,      /* an alternate (whence, capture-output): the handler checks */
} gd_qga_arg_type_t;

typedef struct gd_qga_arg_s {
    const char *name;
    gd_qga_arg_type_t type;
    int required;
} gd_qga_arg_t;

enum {
    QGA_NO_SUCCESS_RESPONSE = 1u << 0, /* answers only errors (guest-shutdown) */
    QGA_FREEZE_SAFE = 1u << 1,         /* allowed while the filesystems are frozen */
    QGA_CONCURRENT = 1u << 2,          /* counts against commands.max_concurrent */
};

typedef void (*gd_qga_fn)(gd_qga_req_t *req, const cJSON *args);

typedef struct gd_qga_cmd_s {
    const char *name;
    gd_qga_fn handler;
    unsigned flags;
    /* guestd's own command doing the same work: the policy must allow it
     * too (commands.deny = exec also stops guest-exec). NULL: none. */
    const char *native;
    const gd_qga_arg_t *args; /* NULL-name terminated; NULL: no arguments */
} gd_qga_cmd_t;

/* One connection of one channel as the dialect sees it. */
typedef struct gd_qga_conn_s {
    struct gd_qga_s *qga;
    int index;                    /* 0: the main channel, 1: channel.qga_spec */
    struct gd_channel_s *channel; /* where replies go */
    gd_qga_link_t link;
    uint64_t gen; /* the connection link's state belongs to */
    int seen;     /* gen is valid */
} gd_qga_conn_t;

struct gd_qga_req_s {
    struct gd_qga_s *qga;
    gd_qga_conn_t *conn;
    uint64_t gen;
    const gd_qga_cmd_t *cmd;
    cJSON *id; /* a copy of the request's id (JSON null included), or NULL */
    cJSON *args;
    void *data;     /* the handler's own */
    uint64_t token; /* a guestd request made on its behalf (guest-shutdown) */
    gd_qga_native_done native_done;
    int concurrent; /* counted in the dispatcher's running */
    size_t owed;    /* bytes reserved for its reply (gd_qga_reserve) */
    gd_owed_waiter_t owed_wait;
    void (*owed_resume)(gd_qga_req_t *req, int status);
    gd_qga_req_t *next, *prev;
};

/* Families' private state, created on first use, freed by their fini. */
struct gd_qga_files_s;
struct gd_qga_execs_s;
struct gd_qga_freeze_s;

struct gd_qga_s {
    const gd_cmd_env_t *env;
    uv_loop_t *loop;
    gd_qga_conn_t conns[2];
    int n_conns;
    struct gd_channel_s *port; /* the second channel, owned here; NULL: none */
    int port_initialised;
    gd_qga_req_t *inflight;
    uint64_t next_token;
    gd_buf_t out;
    struct gd_qga_files_s *files;
    struct gd_qga_execs_s *execs;
    struct gd_qga_freeze_s *freeze;
    int stopping;
    /* Figures for tests. */
    uint64_t requests, errors;
};

/* ---- replies (each frees the request) ---- */

/* {"return": value} (NULL: {}); takes ownership of value. */
void gd_qga_reply(gd_qga_req_t *req, cJSON *value);
/* {"error": {"class": cls, "desc": ...}}. */
void gd_qga_reply_error(gd_qga_req_t *req, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* GenericError "what: strerror(err)". */
void gd_qga_reply_errno(gd_qga_req_t *req, int err, const char *what);
/* Sends a reply line built elsewhere (in the thread pool: a large result
 * is never printed on the loop), ending in '\n'; takes ownership of heap
 * (malloc'd), which holds line, and frees the request. */
void gd_qga_reply_line(gd_qga_req_t *req, char *heap, const char *line, size_t len);
/* Reserves bytes for req's reply against the agent's owed bound (agent/
 * owed.h), released when the request is freed. 0: reserved now; 1: resume
 * runs later from the loop, with status 0 (reserved) or -ECANCELED (the
 * agent is stopping: resume must answer the request). */
int gd_qga_reserve(gd_qga_req_t *req, size_t bytes, void (*resume)(gd_qga_req_t *req, int status));
/* A command that answers only on error succeeded: no reply, the request is
 * freed. */
void gd_qga_reply_nothing(gd_qga_req_t *req);
/* req's id printed as qemu-ga prints it, for a reply line built outside
 * the loop: *out is malloc'd, or NULL when the request has no id. 0 or
 * -ENOMEM. */
int gd_qga_id_json(const gd_qga_req_t *req, char **out);

/* Runs guestd's own command cmd with args (consumed) for req, through the
 * dispatcher (its policy, checks and bound); its reply comes to done.
 * 0, or -ENOMEM (then done is never called). */
int gd_qga_call_native(gd_qga_req_t *req, const char *cmd, cJSON *args, gd_qga_native_done done);

/* How a child run for a request ended (gd_qga_run_child). */
typedef struct gd_qga_child_result_s {
    int spawn_error;     /* negative errno when it did not start */
    int64_t exit_status; /* when term_signal is 0 */
    int term_signal;
    int timed_out;
    const char *out, *err; /* what it wrote (up to 64 KiB each) */
    size_t out_len, err_len;
} gd_qga_child_result_t;
typedef void (*gd_qga_child_done)(gd_qga_req_t *req, const gd_qga_child_result_t *res);

/* Runs argv (argv[0] looked up in PATH; the fixed base of child_env.h)
 * with input on its stdin, in its own process group, within
 * commands.exec_timeout_ms; done answers req once it has ended. 0 or
 * -ENOMEM (done is then not called). */
int gd_qga_run_child(gd_qga_req_t *req, char *const argv[], const void *input, size_t input_len,
                     gd_qga_child_done done);

/* Reads a small file root/rel whole into buf (reset first). 0 or -errno. */
int gd_qga_read_file(const char *root, const char *rel, gd_buf_t *buf);

/* Whether the policy allows name (deny wins). */
int gd_qga_allowed(const struct gd_qga_s *q, const char *name);

/* ---- the families ---- */

extern const gd_qga_cmd_t gd_qga_cmds_sync[];   /* qga.c */
extern const gd_qga_cmd_t gd_qga_cmds_system[]; /* system.c */
extern const gd_qga_cmd_t gd_qga_cmds_stats[];  /* stats.c */
extern const gd_qga_cmd_t gd_qga_cmds_net[];    /* net.c */
extern const gd_qga_cmd_t gd_qga_cmds_fs[];     /* fs.c */
extern const gd_qga_cmd_t gd_qga_cmds_exec[];   /* exec.c */
extern const gd_qga_cmd_t gd_qga_cmds_file[];   /* file.c */
extern const gd_qga_cmd_t gd_qga_cmds_user[];   /* user.c */

/* NULL-terminated; defined by the composition root (agent/families.c),
 * which says which families the dialect serves. */
extern const gd_qga_cmd_t *const gd_qga_families[];
const gd_qga_cmd_t *gd_qga_find(const char *name);

/* Start, stop (end work in flight so every handle closes) and free hooks. */
void gd_qga_exec_stop(struct gd_qga_s *q);
void gd_qga_exec_free(struct gd_qga_s *q);
void gd_qga_file_stop(struct gd_qga_s *q);
void gd_qga_file_free(struct gd_qga_s *q);
int gd_qga_freeze_start(struct gd_qga_s *q);
void gd_qga_freeze_stop(struct gd_qga_s *q);
void gd_qga_freeze_free(struct gd_qga_s *q);

/* ---- pure parts, for the unit tests ---- */

cJSON *gd_qga_osinfo(const char *etc_dir);
cJSON *gd_qga_timezone(time_t now);
cJSON *gd_qga_users(const char *utmp_path); /* NULL: the system's utmp */
cJSON *gd_qga_cpustats(const char *proc_root, long clk_tck);
cJSON *gd_qga_diskstats(const char *proc_root);
cJSON *gd_qga_vcpus(const char *sys_root);
cJSON *gd_qga_load(const char *proc_root);
cJSON *gd_qga_interfaces(const char *proc_root, int *err);
cJSON *gd_qga_fsinfo(const char *proc_root, const char *sys_root);
cJSON *gd_qga_disks(const char *sys_root);

/* The mounts qemu-ga works on: backed by a block device (major != 0, or
 * btrfs), in mountinfo order. */
typedef struct gd_qga_mount_s {
    char *dir, *type, *source;
    unsigned major, minor;
} gd_qga_mount_t;
int gd_qga_mounts_parse(const char *mountinfo, gd_qga_mount_t **out, size_t *count);
void gd_qga_mounts_free(gd_qga_mount_t *m, size_t n);
typedef int (*gd_qga_ioctl_fn)(int fd, unsigned long request, void *arg);
/* FIFREEZE over the mounts in reverse order (only those listed in only, an
 * array of mount points, when not NULL); EOPNOTSUPP and EBUSY are skipped.
 * Returns how many froze, or a negative errno with err set after thawing
 * everything again. */
int gd_qga_freeze_mounts(const gd_qga_mount_t *m, size_t n, const cJSON *only, gd_qga_ioctl_fn io,
                         char *err, size_t errlen);
/* FITHAW over every mount until each says it is not frozen; how many
 * thawed. */
int gd_qga_thaw_mounts(const gd_qga_mount_t *m, size_t n, gd_qga_ioctl_fn io);

/* authorized_keys edits: add keys not there yet (one per line); remove the
 * lines equal to one of keys; list the keys (no comments, no blanks). */
int gd_qga_authkeys_add(const char *existing, const cJSON *keys, gd_buf_t *out);
void gd_qga_authkeys_remove(const char *existing, const cJSON *keys, gd_buf_t *out);
cJSON *gd_qga_authkeys_list(const char *text);

#endif

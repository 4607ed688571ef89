/* The qemu-ga dialect's dispatcher: framing per connection (transport/
 * qga_link), request checks with qemu-ga's error classes and messages,
 * policy, the concurrency bound, replies, the second channel, and the
 * routing of the guestd dispatcher's replies that are not the main
 * channel's. */
#include "commands/qga/qga.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "collectors/procfs.h"
#include "commands/dispatch.h"
#include "commands/qga/internal.h"
#include "transport/channel.h"

const gd_qga_cmd_t *gd_qga_find(const char *name)
{
    for (const gd_qga_cmd_t *const *fam = gd_qga_families; *fam; fam++)
        for (const gd_qga_cmd_t *c = *fam; c->name; c++)
            if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

int gd_qga_read_file(const char *root, const char *rel, gd_buf_t *buf)
{
    char path[GD_PROCFS_PATH_MAX];
    int r = gd_procfs_path(path, sizeof(path), root, rel);
    if (r < 0) return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    /* A page to start with: a procfs file is generated anew by each read
     * that does not fit, and /proc/stat costs the kernel a walk of every
     * CPU's and interrupt's counters each time. */
    if (buf->cap < 4096 && gd_buf_reserve(buf, 4095) != 0) {
        close(fd);
        return -ENOMEM;
    }
    ssize_t n = gd_procfs_pread(fd, buf);
    close(fd);
    return n < 0 ? (int)n : 0;
}

int gd_qga_allowed(const gd_qga_t *q, const char *name)
{
    return gd_dispatch_allowed(q->env->dispatch, name);
}

/* ---- sending ---- */

/* Sends one serialised reply (obj is consumed) to connection gen of conn,
 * with a leading 0xFF when delimited. */
static void send_obj(gd_qga_t *q, gd_qga_conn_t *conn, uint64_t gen, cJSON *obj, int delimited)
{
    gd_buf_reset(&q->out);
    int r = delimited ? gd_buf_append(&q->out, "\xff", 1) : 0;
    if (r == 0) r = gd_qga_json_print(&q->out, obj);
    if (r == 0) r = gd_buf_append(&q->out, "\n", 1);
    cJSON_Delete(obj);
    if (r != 0) {
        gd_error("qga: out of memory serialising a reply");
        return;
    }
    if (!q->stopping && conn->channel)
        gd_channel_send_reply(conn->channel, gen, q->out.data, q->out.len);
    /* Reply buffers of large results are given back, not kept for ever. */
    if (q->out.cap > 65536) gd_buf_free(&q->out);
}

static cJSON *error_obj(const cJSON *id, const char *cls, const char *desc)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(obj, "error");
    cJSON_AddStringToObject(err, "class", cls);
    cJSON_AddStringToObject(err, "desc", desc);
    if (id) cJSON_AddItemToObject(obj, "id", cJSON_Duplicate(id, 1));
    return obj;
}

static void send_error(gd_qga_conn_t *conn, uint64_t gen, const cJSON *id, const char *cls,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void send_error(gd_qga_conn_t *conn, uint64_t gen, const cJSON *id, const char *cls,
                       const char *fmt, ...)
{
    char desc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    conn->qga->errors++;
    send_obj(conn->qga, conn, gen, error_obj(id, cls, desc), 0);
}

/* ---- requests in flight ---- */

static void req_free(gd_qga_req_t *req)
{
    gd_qga_t *q = req->qga;
    if (req->prev)
        req->prev->next = req->next;
    else if (q->inflight == req)
        q->inflight = req->next;
    if (req->next) req->next->prev = req->prev;
    if (req->concurrent && q->env->dispatch->running > 0) q->env->dispatch->running--;
    if (req->owed && req->conn->channel)
        gd_owed_release(gd_channel_owed(req->conn->channel), req->owed);
    cJSON_Delete(req->id);
    cJSON_Delete(req->args);
    free(req);
}

static void reply_value(gd_qga_req_t *req, cJSON *value, int delimited)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj || !cJSON_AddItemToObject(obj, "return", value ? value : cJSON_CreateObject())) {
        cJSON_Delete(obj);
        if (!obj) cJSON_Delete(value);
        gd_error("qga: out of memory building a reply");
        req_free(req);
        return;
    }
    if (req->id) cJSON_AddItemToObject(obj, "id", cJSON_Duplicate(req->id, 1));
    send_obj(req->qga, req->conn, req->gen, obj, delimited);
    req_free(req);
}

void gd_qga_reply(gd_qga_req_t *req, cJSON *value)
{
    reply_value(req, value, 0);
}

void gd_qga_reply_error(gd_qga_req_t *req, const char *cls, const char *fmt, ...)
{
    char desc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof(desc), fmt, ap);
    va_end(ap);
    req->qga->errors++;
    send_obj(req->qga, req->conn, req->gen, error_obj(req->id, cls, desc), 0);
    req_free(req);
}

void gd_qga_reply_errno(gd_qga_req_t *req, int err, const char *what)
{
    gd_qga_reply_error(req, "GenericError", "%s: %s", what, strerror(err < 0 ? -err : err));
}

void gd_qga_reply_line(gd_qga_req_t *req, char *heap, const char *line, size_t len)
{
    gd_qga_t *q = req->qga;
    if (!q->stopping && req->conn->channel)
        gd_channel_send_reply_owned(req->conn->channel, req->gen, heap, line, len);
    else
        free(heap);
    req_free(req);
}

static void on_owed(gd_owed_waiter_t *w, int status)
{
    gd_qga_req_t *req = (gd_qga_req_t *)((char *)w - offsetof(gd_qga_req_t, owed_wait));
    if (status == 0) req->owed = w->bytes;
    req->owed_resume(req, status);
}

int gd_qga_reserve(gd_qga_req_t *req, size_t bytes, void (*resume)(gd_qga_req_t *req, int status))
{
    if (!req->conn->channel) return 0;
    gd_owed_t *o = gd_channel_owed(req->conn->channel);
    req->owed_resume = resume;
    req->owed_wait.cb = on_owed;
    int r = gd_owed_reserve(o, &req->owed_wait, bytes);
    if (r == 0) req->owed = bytes;
    return r;
}

void gd_qga_reply_nothing(gd_qga_req_t *req)
{
    req_free(req);
}

int gd_qga_id_json(const gd_qga_req_t *req, char **out)
{
    *out = NULL;
    if (!req->id) return 0;
    gd_buf_t id;
    gd_buf_init(&id);
    if (gd_qga_json_print(&id, req->id) != 0) {
        gd_buf_free(&id);
        return -ENOMEM;
    }
    *out = id.data; /* NUL-terminated, malloc'd */
    return 0;
}

/* ---- guest-sync and guest-sync-delimited live here: they are about the
 * stream, not the guest ---- */

static void cmd_sync(gd_qga_req_t *req, const cJSON *args)
{
    cJSON *id = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(args, "id"), 1);
    reply_value(req, id, 0);
}

/* The reply starts with 0xFF: the host resets its parser when it sees it. */
static void cmd_sync_delimited(gd_qga_req_t *req, const cJSON *args)
{
    cJSON *id = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(args, "id"), 1);
    reply_value(req, id, 1);
}

static const gd_qga_arg_t sync_args[] = {{"id", QGA_ARG_INT, 1}, {NULL, 0, 0}};

const gd_qga_cmd_t gd_qga_cmds_sync[] = {
    {"guest-sync-delimited", cmd_sync_delimited, QGA_FREEZE_SAFE, NULL, sync_args},
    {"guest-sync", cmd_sync, QGA_FREEZE_SAFE, NULL, sync_args},
    {NULL, NULL, 0, NULL, NULL},
};

/* ---- argument checks, with qemu-ga's messages ---- */

static const char *type_name(gd_qga_arg_type_t t)
{
    switch (t) {
    case QGA_ARG_INT:
        return "integer";
    case QGA_ARG_STR:
        return "string";
    case QGA_ARG_BOOL:
        return "boolean";
    case QGA_ARG_STR_LIST:
    case QGA_ARG_LIST:
        return "array";
    case QGA_ARG_ANY:
        return "value";
    }
    return "?";
}

static int check_args(const gd_qga_arg_t *spec, const cJSON *args, char *err, size_t len)
{
    for (const gd_qga_arg_t *s = spec; s && s->name; s++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, s->name);
        if (!v) {
            if (!s->required) continue;
            snprintf(err, len, "Parameter '%s' is missing", s->name);
            return -EINVAL;
        }
        int64_t i;
        int ok = 1;
        switch (s->type) {
        case QGA_ARG_INT:
            ok = gd_qga_json_get_int(v, &i) == 0;
            break;
        case QGA_ARG_STR:
            ok = cJSON_IsString(v);
            break;
        case QGA_ARG_BOOL:
            ok = cJSON_IsBool(v);
            break;
        case QGA_ARG_LIST:
            ok = cJSON_IsArray(v);
            break;
        case QGA_ARG_STR_LIST:
            ok = cJSON_IsArray(v);
            for (const cJSON *e = ok ? v->child : NULL; e; e = e->next) {
                if (!cJSON_IsString(e)) {
                    snprintf(err, len, "Invalid parameter type for '%s[%d]', expected: string",
                             s->name, (int)(e == v->child ? 0 : 1));
                    return -EINVAL;
                }
            }
            break;
        case QGA_ARG_ANY:
            break;
        }
        if (!ok) {
            snprintf(err, len, "Invalid parameter type for '%s', expected: %s", s->name,
                     type_name(s->type));
            return -EINVAL;
        }
    }
    for (const cJSON *a = args->child; a; a = a->next) {
        const gd_qga_arg_t *s = spec;
        while (s && s->name && strcmp(s->name, a->string) != 0)
            s++;
        if (!s || !s->name) {
            snprintf(err, len, "Parameter '%s' is unexpected", a->string);
            return -EINVAL;
        }
    }
    return 0;
}

/* ---- one qemu-ga message ---- */

static void handle_message(gd_qga_conn_t *conn, const char *text, size_t len)
{
    gd_qga_t *q = conn->qga;
    uint64_t gen = conn->gen;
    char why[512];
    q->requests++;
    cJSON *root = gd_qga_json_parse(text, len, why, sizeof(why));
    if (!root) {
        send_error(conn, gen, NULL, "GenericError", "%s", why);
        return;
    }
    if (!cJSON_IsObject(root)) {
        send_error(conn, gen, NULL, "GenericError", "QMP input must be a JSON object");
        cJSON_Delete(root);
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *execute = NULL;
    cJSON *args = NULL;
    for (cJSON *m = root->child; m; m = m->next) {
        if (strcmp(m->string, "execute") == 0) {
            if (!cJSON_IsString(m)) {
                send_error(conn, gen, id, "GenericError",
                           "QMP input member 'execute' must be a string");
                goto done;
            }
            execute = m;
        } else if (strcmp(m->string, "arguments") == 0) {
            if (!cJSON_IsObject(m)) {
                send_error(conn, gen, id, "GenericError",
                           "QMP input member 'arguments' must be an object");
                goto done;
            }
            args = m;
        } else if (strcmp(m->string, "id") != 0) {
            send_error(conn, gen, id, "GenericError", "QMP input member '%.64s' is unexpected",
                       m->string);
            goto done;
        }
    }
    if (!execute) {
        send_error(conn, gen, id, "GenericError", "QMP input lacks member 'execute'");
        goto done;
    }
    const char *name = execute->valuestring;
    const gd_qga_cmd_t *c = gd_qga_find(name);
    if (!c) {
        send_error(conn, gen, id, "CommandNotFound", "The command %.128s has not been found", name);
        goto done;
    }
    if (!gd_qga_allowed(q, c->name) || (c->native && !gd_qga_allowed(q, c->native))) {
        send_error(conn, gen, id, "CommandNotFound", "Command %s has been disabled", c->name);
        goto done;
    }
    if (gd_qga_frozen(q) && !(c->flags & QGA_FREEZE_SAFE)) {
        send_error(conn, gen, id, "CommandNotFound",
                   "Command %s has been disabled: the agent is in frozen state", c->name);
        goto done;
    }
    static const cJSON no_args = {.type = cJSON_Object};
    if (check_args(c->args, args ? args : &no_args, why, sizeof(why)) != 0) {
        send_error(conn, gen, id, "GenericError", "%s", why);
        goto done;
    }
    gd_dispatch_t *d = q->env->dispatch;
    if ((c->flags & QGA_CONCURRENT) && d->running >= d->max_concurrent) {
        send_error(conn, gen, id, "GenericError",
                   "%u commands are already running (commands.max_concurrent)", d->running);
        goto done;
    }
    gd_qga_req_t *req = calloc(1, sizeof(*req));
    if (!req) {
        send_error(conn, gen, id, "GenericError", "out of memory");
        goto done;
    }
    req->qga = q;
    req->conn = conn;
    req->gen = gen;
    req->cmd = c;
    req->id = id ? cJSON_Duplicate(id, 1) : NULL;
    req->args = args ? cJSON_DetachItemViaPointer(root, args) : cJSON_CreateObject();
    if ((id && !req->id) || !req->args) {
        cJSON_Delete(req->id);
        cJSON_Delete(req->args);
        free(req);
        send_error(conn, gen, id, "GenericError", "out of memory");
        goto done;
    }
    req->next = q->inflight;
    if (q->inflight) q->inflight->prev = req;
    q->inflight = req;
    if (c->flags & QGA_CONCURRENT) {
        req->concurrent = 1;
        d->running++;
    }
    cJSON_Delete(root);
    gd_debug("qga: %s", c->name);
    c->handler(req, req->args);
    return;
done:
    cJSON_Delete(root);
}

/* ---- a connection's framing ---- */

static uint64_t native_gen(const gd_qga_conn_t *conn)
{
    return conn->index == 0 ? conn->gen : (conn->gen | GD_QGA_GEN_PORT);
}

/* No next request while the replies owed are over the bound: the link
 * stops, and the channel feeds the rest once room frees. */
static void pause_if_full(gd_qga_conn_t *conn)
{
    if (!gd_channel_admitting(conn->channel)) gd_qga_link_pause(&conn->link);
}

static void on_guestd_line(void *ctx, char *line, size_t len)
{
    gd_qga_conn_t *conn = ctx;
    gd_channel_count_line_in(conn->channel);
    /* Both dialects on one connection: a qemu-ga request on a connection
     * that began with guestd's protocol is still answered in its own. */
    if (conn->link.dialect == GD_DIALECT_AUTO && memmem(line, len, "\"execute\"", 9) &&
        gd_qga_is_request(line, len))
        handle_message(conn, line, len);
    else
        gd_dispatch_line(conn->qga->env->dispatch, native_gen(conn), line, len);
    pause_if_full(conn);
}

static void on_guestd_too_large(void *ctx)
{
    gd_qga_conn_t *conn = ctx;
    gd_dispatch_too_large(conn->qga->env->dispatch, native_gen(conn),
                          (size_t)conn->qga->env->config->channel.max_message_bytes);
    pause_if_full(conn);
}

static void on_qga_message(void *ctx, char *text, size_t len)
{
    gd_qga_conn_t *conn = ctx;
    gd_channel_count_line_in(conn->channel);
    /* ... and a guestd request on a qemu-ga connection in its own. */
    if (conn->link.dialect == GD_DIALECT_AUTO && memmem(text, len, "\"cmd\"", 5) &&
        !gd_qga_is_request(text, len))
        gd_dispatch_line(conn->qga->env->dispatch, native_gen(conn), text, len);
    else
        handle_message(conn, text, len);
    pause_if_full(conn);
}

static void on_qga_error(void *ctx, gd_qga_frame_error_t what)
{
    gd_qga_conn_t *conn = ctx;
    conn->qga->requests++;
    if (what == GD_QGA_FRAME_TOO_LARGE)
        send_error(conn, conn->gen, NULL, "GenericError",
                   "JSON parse error, message exceeds channel.max_message_bytes (%lld bytes)",
                   (long long)conn->qga->env->config->channel.max_message_bytes);
    else if (what == GD_QGA_FRAME_TOO_DEEP)
        send_error(conn, conn->gen, NULL, "GenericError",
                   "JSON parse error, nesting deeper than %d levels", GD_QGA_FRAME_MAX_DEPTH);
    else
        send_error(conn, conn->gen, NULL, "GenericError",
                   "JSON parse error, message cut by a 0xFF resync byte");
    pause_if_full(conn);
}

static const gd_qga_link_cbs_t link_cbs = {
    .guestd_line = on_guestd_line,
    .guestd_too_large = on_guestd_too_large,
    .qga_message = on_qga_message,
    .qga_error = on_qga_error,
};

/* Returns the bytes the link took (fewer when it paused). */
static size_t feed(gd_qga_conn_t *conn, uint64_t gen, char *data, size_t len)
{
    if (!conn->seen || conn->gen != gen) {
        gd_qga_link_reset(&conn->link);
        conn->gen = gen;
        conn->seen = 1;
    }
    if (gd_qga_link_feed(&conn->link, data, len) == -ENOMEM)
        gd_error("qga: out of memory reading from the host");
    return conn->link.fed;
}

size_t gd_qga_feed_main(gd_qga_t *q, uint64_t gen, char *data, size_t len)
{
    return feed(&q->conns[0], gen, data, len);
}

int gd_qga_events_wanted(const gd_qga_t *q, uint64_t gen)
{
    if (!q) return 1;
    const gd_qga_conn_t *conn = &q->conns[0];
    if (conn->link.dialect == GD_DIALECT_QGA) return 0;
    if (!conn->seen || conn->gen != gen) return 1; /* a new connection: not decided yet */
    return conn->link.mode != GD_LINK_QGA;
}

/* ---- guestd requests made for a qemu-ga request ---- */

int gd_qga_call_native(gd_qga_req_t *req, const char *cmd, cJSON *args, gd_qga_native_done done)
{
    gd_qga_t *q = req->qga;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "cmd", cmd);
    if (args) cJSON_AddItemToObject(line, "args", args);
    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (!text) return -ENOMEM;
    req->token = ++q->next_token;
    req->native_done = done;
    gd_dispatch_line(q->env->dispatch, GD_QGA_GEN_INTERNAL | req->token, text, strlen(text));
    cJSON_free(text);
    return 0;
}

static void native_reply(gd_qga_t *q, uint64_t token, const char *line, size_t len)
{
    gd_qga_req_t *req = q->inflight;
    while (req && req->token != token)
        req = req->next;
    if (!req) return; /* its qemu-ga request is gone (the agent is stopping) */
    cJSON *reply = cJSON_ParseWithLength(line, len);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
    gd_qga_native_done done = req->native_done;
    req->token = 0;
    req->native_done = NULL;
    if (!reply || !cJSON_IsBool(ok)) {
        cJSON_Delete(reply);
        gd_qga_reply_error(req, "GenericError", "internal: unreadable reply from %s",
                           req->cmd->native ? req->cmd->native : "guestd");
        return;
    }
    const cJSON *body =
        cJSON_GetObjectItemCaseSensitive(reply, cJSON_IsTrue(ok) ? "result" : "error");
    done(req, cJSON_IsTrue(ok), body);
    cJSON_Delete(reply);
}

int gd_qga_route_reply(gd_qga_t *q, uint64_t gen, const char *line, size_t len)
{
    if (!q) return 0;
    if (gen & GD_QGA_GEN_INTERNAL) {
        native_reply(q, gen & ~GD_QGA_GEN_INTERNAL, line, len);
        return 1;
    }
    if (gen & GD_QGA_GEN_PORT) {
        if (q->port && !q->stopping)
            gd_channel_send_reply(q->port, gen & ~GD_QGA_GEN_PORT, line, len);
        return 1;
    }
    return 0;
}

/* ---- the second channel ---- */

static size_t on_port_data(void *ctx, uint64_t gen, char *data, size_t len)
{
    gd_qga_t *q = ctx;
    return feed(&q->conns[1], gen, data, len);
}

static const gd_channel_cbs_t port_cbs = {
    .on_data = on_port_data,
};

/* ---- life cycle ---- */

static void conn_init(gd_qga_t *q, int index, gd_channel_t *ch, gd_dialect_t dialect)
{
    gd_qga_conn_t *conn = &q->conns[index];
    conn->qga = q;
    conn->index = index;
    conn->channel = ch;
    gd_qga_link_init(&conn->link, dialect, (size_t)q->env->config->channel.max_message_bytes,
                     &link_cbs, conn);
}

int gd_qga_new(gd_qga_t **out, const gd_cmd_env_t *env, gd_channel_t *main, char *err,
               size_t errlen)
{
    *out = NULL;
    gd_qga_t *q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    q->env = env;
    q->loop = env->loop;
    gd_buf_init(&q->out);
    const gd_config_t *cfg = env->config;
    conn_init(q, 0, main, (gd_dialect_t)cfg->channel.dialect);
    q->n_conns = 1;
    if (cfg->channel.qga_spec[0]) {
        if (strcmp(cfg->channel.qga_spec, cfg->channel.spec) == 0) {
            snprintf(err, errlen, "channel.qga_spec: '%s' is channel.spec too",
                     cfg->channel.qga_spec);
            gd_qga_free(q);
            return -EINVAL;
        }
        char why[512];
        int r = gd_channel_new(&q->port, env->loop, cfg->channel.qga_spec,
                               (size_t)cfg->channel.max_message_bytes,
                               (size_t)cfg->channel.out_queue_bytes, (uint64_t)cfg->channel.poll_ms,
                               (uint64_t)cfg->channel.poll_max_ms, &port_cbs, q, why, sizeof(why));
        if (r < 0) {
            snprintf(err, errlen, "channel.qga_spec: %s", why);
            gd_qga_free(q);
            return r;
        }
        q->port_initialised = 1;
        conn_init(q, 1, q->port, (gd_dialect_t)cfg->channel.qga_dialect);
        q->n_conns = 2;
    }
    *out = q;
    return 0;
}

int gd_qga_start(gd_qga_t *q, char *err, size_t errlen)
{
    gd_qga_freeze_start(q);
    if (!q->port_initialised) return 0;
    int r = gd_channel_start(q->port, err, errlen);
    if (r == 0) gd_info("qga: second channel %s", q->env->config->channel.qga_spec);
    return r;
}

gd_channel_t *gd_qga_port(const gd_qga_t *q)
{
    return q && q->port_initialised ? q->port : NULL;
}

static void on_port_closed(gd_channel_t *ch)
{
    (void)ch;
}

void gd_qga_stop(gd_qga_t *q)
{
    if (!q || q->stopping) return;
    gd_qga_freeze_stop(q);
    gd_qga_exec_stop(q);
    gd_qga_file_stop(q);
    q->stopping = 1;
    if (q->port_initialised) gd_channel_close(q->port, on_port_closed);
}

void gd_qga_free(gd_qga_t *q)
{
    if (!q) return;
    while (q->inflight) {
        q->inflight->concurrent = 0; /* the dispatcher may be gone already */
        req_free(q->inflight);
    }
    gd_qga_exec_free(q);
    gd_qga_file_free(q);
    gd_qga_freeze_free(q);
    for (int i = 0; i < q->n_conns; i++)
        gd_qga_link_free(&q->conns[i].link);
    gd_channel_free(q->port);
    gd_buf_free(&q->out);
    free(q);
}

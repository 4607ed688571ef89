/* guest-file-open/read/write/seek/flush/close: qemu-ga's handle-based file
 * access. A handle is an fd (opened O_NONBLOCK like qemu-ga's, so a FIFO
 * cannot hang anything); open, read and write run in the thread pool. The
 * operations on one handle run one at a time, in the order they came, so a
 * host that does not wait for each answer still sees file-position order.
 * Sizes are capped by commands.file_max_bytes; the policy must also allow
 * file.read (any handle) and file.write (writing modes, guest-file-write).
 * Handles are the fd budget's file_handles share (core/fd_budget.h): past
 * it guest-file-open fails as qemu-ga's does at EMFILE. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/log.h"
#include "commands/dispatch.h"
#include "commands/qga/internal.h"

#define QGA_FIRST_HANDLE 1000 /* qemu-ga's handles start there too */
#define QGA_READ_DEFAULT 4096
/* Bytes per read(2) of guest-file-read: a multiple of 3, so each chunk
 * encodes to whole base64 quads. */
#define QGA_READ_CHUNK (3 * 21846)
/* Room before the data for {"return": {"count": N, "buf-b64": " */
#define QGA_READ_HEAD 64
/* After it: ", "eof": false}, "id": ID}\n, the id excluded. */
#define QGA_READ_TAIL 40

typedef enum { OP_OPEN, OP_READ, OP_WRITE, OP_SEEK, OP_FLUSH, OP_CLOSE } op_kind_t;

typedef struct qga_file_s qga_file_t;

typedef struct qga_op_s {
    uv_work_t work;
    gd_qga_req_t *req;
    qga_file_t *file;
    op_kind_t kind;
    struct qga_op_s *next; /* in the handle's queue */
    /* open */
    char *path;
    int flags;
    /* read / write */
    size_t count;
    gd_buf_t data;
    /* read: the whole reply line, built in the pool */
    char *id_json; /* the request's id as printed, or NULL: none */
    char *line_heap;
    const char *line;
    size_t line_len;
    /* outcome (set in the pool) */
    int fd;
    ssize_t done;
    int eof;
    int err;
} qga_op_t;

struct qga_file_s {
    int64_t handle;
    int fd;
    int writable;
    int busy;   /* an operation is in the pool */
    int closed; /* guest-file-close came: the handle is gone for new requests */
    qga_op_t *head, *tail;
    qga_file_t *next;
};

struct gd_qga_files_s {
    qga_file_t *files;
    int64_t next_handle;
    int pool_jobs; /* in the pool now */
    size_t held;   /* handles with an fd, and opens in the pool: against the share */
};

static struct gd_qga_files_s *files_of(gd_qga_t *q)
{
    if (!q->files) {
        q->files = calloc(1, sizeof(*q->files));
        if (q->files) q->files->next_handle = QGA_FIRST_HANDLE;
    }
    return q->files;
}

static qga_file_t *find(gd_qga_t *q, int64_t handle)
{
    for (qga_file_t *f = q->files ? q->files->files : NULL; f; f = f->next)
        if (f->handle == handle && !f->closed) return f;
    return NULL;
}

static void file_forget(gd_qga_t *q, qga_file_t *f)
{
    for (qga_file_t **p = &q->files->files; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    if (f->fd >= 0) close(f->fd);
    q->files->held--;
    free(f);
}

static void op_free(qga_op_t *op)
{
    free(op->path);
    free(op->id_json);
    free(op->line_heap);
    gd_buf_free(&op->data);
    free(op);
}

/* The mode of fopen(3), as qemu-ga reads it. -1 when unknown. */
static int open_flags(const char *mode, int *writable)
{
    static const struct {
        const char *mode;
        int flags;
    } modes[] = {
        {"r", O_RDONLY},
        {"rb", O_RDONLY},
        {"w", O_WRONLY | O_CREAT | O_TRUNC},
        {"wb", O_WRONLY | O_CREAT | O_TRUNC},
        {"a", O_WRONLY | O_CREAT | O_APPEND},
        {"ab", O_WRONLY | O_CREAT | O_APPEND},
        {"r+", O_RDWR},
        {"rb+", O_RDWR},
        {"r+b", O_RDWR},
        {"w+", O_RDWR | O_CREAT | O_TRUNC},
        {"wb+", O_RDWR | O_CREAT | O_TRUNC},
        {"w+b", O_RDWR | O_CREAT | O_TRUNC},
        {"a+", O_RDWR | O_CREAT | O_APPEND},
        {"ab+", O_RDWR | O_CREAT | O_APPEND},
        {"a+b", O_RDWR | O_CREAT | O_APPEND},
    };
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(mode, modes[i].mode) == 0) {
            *writable = (modes[i].flags & O_ACCMODE) != O_RDONLY;
            return modes[i].flags;
        }
    }
    return -1;
}

/* ---- the pool side ---- */

/* guest-file-read: reads up to count bytes and encodes them, chunk by
 * chunk, straight into the reply line, so the loop neither encodes nor
 * prints them. The count leads the line but is known last: the data goes
 * at QGA_READ_HEAD and the head is written right before it at the end. */
static void read_encode(qga_op_t *op, int fd)
{
    size_t id_len = op->id_json ? strlen(op->id_json) : 0;
    size_t cap = QGA_READ_HEAD + gd_base64_encoded_len(op->count) + QGA_READ_TAIL + id_len + 1;
    char *chunk = malloc(QGA_READ_CHUNK);
    char *line = malloc(cap);
    if (!chunk || !line) {
        free(chunk);
        free(line);
        op->err = ENOMEM;
        return;
    }
    size_t n = QGA_READ_HEAD, got = 0, have = 0;
    while (got < op->count) {
        size_t room = QGA_READ_CHUNK - have;
        if (room > op->count - got) room = op->count - got;
        ssize_t r = read(fd, chunk + have, room);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r < 0) {
            op->err = errno;
            break;
        }
        if (r == 0) {
            op->eof = 1;
            break;
        }
        got += (size_t)r;
        have += (size_t)r;
        size_t whole = have - have % 3;
        n += gd_base64_encode_to(line + n, chunk, whole);
        memmove(chunk, chunk + whole, have - whole);
        have -= whole;
    }
    n += gd_base64_encode_to(line + n, chunk, have);
    free(chunk);
    if (op->err) {
        free(line);
        return;
    }
    n += (size_t)snprintf(line + n, cap - n, "\", \"eof\": %s}%s%s}\n", op->eof ? "true" : "false",
                          op->id_json ? ", \"id\": " : "", op->id_json ? op->id_json : "");
    char head[QGA_READ_HEAD + 1];
    int hl = snprintf(head, sizeof(head), "{\"return\": {\"count\": %zu, \"buf-b64\": \"", got);
    memcpy(line + QGA_READ_HEAD - hl, head, (size_t)hl);
    op->line_heap = line;
    op->line = line + QGA_READ_HEAD - hl;
    op->line_len = n - (QGA_READ_HEAD - (size_t)hl);
}

static void work_cb(uv_work_t *w)
{
    qga_op_t *op = w->data;
    int fd = op->file ? op->file->fd : -1;
    switch (op->kind) {
    case OP_OPEN:
        op->fd = open(op->path, op->flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
        if (op->fd < 0) op->err = errno;
        break;
    case OP_READ:
        read_encode(op, fd);
        break;
    case OP_WRITE:
        while ((size_t)op->done < op->count) {
            ssize_t n = write(fd, op->data.data + op->done, op->count - (size_t)op->done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                if (op->done == 0) op->err = errno;
                break;
            }
            op->done += n;
        }
        break;
    default:
        break;
    }
}

static void run_queue(gd_qga_t *q, qga_file_t *f);

static void reply_op(gd_qga_t *q, qga_op_t *op)
{
    gd_qga_req_t *req = op->req;
    qga_file_t *f = op->file;
    char num[32];
    switch (op->kind) {
    case OP_OPEN:
        if (op->err) {
            gd_qga_reply_error(req, "GenericError", "failed to open file '%s' (mode: '%s'): %s",
                               op->path, gd_arg_string(req->args, "mode", "r"), strerror(op->err));
            return;
        }
        gd_qga_reply(req, gd_qga_json_int(f->handle));
        return;
    case OP_READ: {
        if (op->err) {
            gd_qga_reply_errno(req, op->err, "failed to read file");
            return;
        }
        char *heap = op->line_heap;
        op->line_heap = NULL;
        gd_qga_reply_line(req, heap, op->line, op->line_len);
        return;
    }
    case OP_WRITE: {
        if (op->err) {
            gd_qga_reply_errno(req, op->err, "failed to write to file");
            return;
        }
        cJSON *r = cJSON_CreateObject();
        gd_qga_json_add_int(r, "count", (int64_t)op->done);
        cJSON_AddBoolToObject(r, "eof", 0);
        gd_qga_reply(req, r);
        return;
    }
    default:
        snprintf(num, sizeof(num), "%lld", (long long)f->handle);
        gd_qga_reply_error(req, "GenericError", "internal: operation on handle %s", num);
    }
}

static void after_work_cb(uv_work_t *w, int status)
{
    qga_op_t *op = w->data;
    gd_qga_t *q = op->req->qga;
    qga_file_t *f = op->file;
    q->files->pool_jobs--;
    if (status == UV_ECANCELED && !op->err) op->err = ECANCELED;
    if (op->kind == OP_OPEN) {
        if (!op->err && q->stopping) {
            close(op->fd);
            op->err = ECANCELED;
        }
        if (!op->err) {
            f = calloc(1, sizeof(*f));
            if (!f) {
                close(op->fd);
                op->err = ENOMEM;
            } else {
                f->fd = op->fd;
                f->writable = op->flags != O_RDONLY;
                f->handle = q->files->next_handle++;
                f->next = q->files->files;
                q->files->files = f;
                op->file = f;
                gd_debug("qga: guest-file-open %s: handle %lld", op->path, (long long)f->handle);
            }
        }
        if (op->err) q->files->held--; /* else the new handle holds its place */
        reply_op(q, op);
        op_free(op);
        return;
    }
    f->busy = 0;
    reply_op(q, op);
    op_free(op);
    run_queue(q, f);
}

/* Runs the handle's operations in order until one goes to the pool. */
static void run_queue(gd_qga_t *q, qga_file_t *f)
{
    while (!f->busy && f->head) {
        qga_op_t *op = f->head;
        f->head = op->next;
        if (!f->head) f->tail = NULL;
        if (q->stopping) {
            gd_qga_reply_error(op->req, "GenericError", "the agent is stopping");
            op_free(op);
            continue;
        }
        switch (op->kind) {
        case OP_READ:
        case OP_WRITE:
            f->busy = 1;
            q->files->pool_jobs++;
            op->work.data = op;
            if (uv_queue_work(q->loop, &op->work, work_cb, after_work_cb) != 0) {
                f->busy = 0;
                q->files->pool_jobs--;
                gd_qga_reply_error(op->req, "GenericError", "cannot queue the work");
                op_free(op);
            }
            break;
        case OP_SEEK: {
            int64_t off = gd_arg_int(op->req->args, "offset", 0);
            off_t pos = lseek(f->fd, (off_t)off, op->flags);
            if (pos < 0) {
                gd_qga_reply_errno(op->req, errno, "failed to seek file");
            } else {
                cJSON *r = cJSON_CreateObject();
                gd_qga_json_add_int(r, "position", (int64_t)pos);
                cJSON_AddBoolToObject(r, "eof", 0);
                gd_qga_reply(op->req, r);
            }
            op_free(op);
            break;
        }
        case OP_FLUSH: /* writes go to the kernel at once: no buffer to flush */
            gd_qga_reply(op->req, NULL);
            op_free(op);
            break;
        case OP_CLOSE:
            gd_debug("qga: guest-file-close: handle %lld", (long long)f->handle);
            gd_qga_reply(op->req, NULL);
            op_free(op);
            /* Anything queued after the close finds no handle. */
            while (f->head) {
                qga_op_t *later = f->head;
                f->head = later->next;
                gd_qga_reply_error(later->req, "GenericError", "handle '%lld' has not been found",
                                   (long long)f->handle);
                op_free(later);
            }
            file_forget(q, f);
            return;
        default:
            op_free(op);
        }
    }
}

/* ---- the commands ---- */

static qga_op_t *op_new(gd_qga_req_t *req, op_kind_t kind)
{
    qga_op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return NULL;
    }
    op->req = req;
    op->kind = kind;
    op->fd = -1;
    gd_buf_init(&op->data);
    return op;
}

/* Finds the handle of req's "handle" argument, or answers the error. */
static qga_file_t *handle_of(gd_qga_req_t *req)
{
    int64_t h = 0;
    gd_qga_json_get_int(cJSON_GetObjectItemCaseSensitive(req->args, "handle"), &h);
    qga_file_t *f = find(req->qga, h);
    if (!f)
        gd_qga_reply_error(req, "GenericError", "handle '%lld' has not been found", (long long)h);
    return f;
}

static void enqueue(gd_qga_req_t *req, qga_file_t *f, qga_op_t *op)
{
    op->file = f;
    if (f->tail)
        f->tail->next = op;
    else
        f->head = op;
    f->tail = op;
    if (op->kind == OP_CLOSE) f->closed = 1;
    run_queue(req->qga, f);
}

static void cmd_open(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_t *q = req->qga;
    const char *path = gd_arg_string(args, "path", "");
    const char *mode = gd_arg_string(args, "mode", "r");
    int writable = 0;
    int flags = open_flags(mode, &writable);
    if (flags < 0) {
        gd_qga_reply_error(req, "GenericError", "invalid file open mode '%s'", mode);
        return;
    }
    if (writable && !gd_qga_allowed(q, "file.write")) {
        gd_qga_reply_error(req, "GenericError",
                           "mode '%s' writes, and file.write is disabled by the agent's policy",
                           mode);
        return;
    }
    if (!files_of(q)) {
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    size_t share = q->env->fds->file_handles;
    if (q->files->held >= share) {
        gd_qga_reply_error(req, "GenericError",
                           "failed to open file '%s' (mode: '%s'): %s: %zu handles are open, "
                           "guest-file-open's share of the agent's open-file limit; close one "
                           "with guest-file-close",
                           path, mode, strerror(EMFILE), q->files->held);
        return;
    }
    qga_op_t *op = op_new(req, OP_OPEN);
    if (!op) return;
    op->path = strdup(path);
    op->flags = flags;
    op->work.data = op;
    if (!op->path || uv_queue_work(q->loop, &op->work, work_cb, after_work_cb) != 0) {
        op_free(op);
        gd_qga_reply_error(req, "GenericError", "cannot queue the work");
        return;
    }
    q->files->pool_jobs++;
    q->files->held++;
}

/* The reply's room came free (status 0), or the agent is stopping. */
static void read_reserved(gd_qga_req_t *req, int status)
{
    qga_op_t *op = req->data;
    if (status != 0) {
        op_free(op);
        gd_qga_reply_error(req, "GenericError", "the agent is stopping");
        return;
    }
    /* The other channel may have closed the handle meanwhile. */
    qga_file_t *f = handle_of(req);
    if (!f) {
        op_free(op);
        return;
    }
    enqueue(req, f, op);
}

static void cmd_read(gd_qga_req_t *req, const cJSON *args)
{
    const gd_config_t *cfg = req->qga->env->config;
    int64_t count = QGA_READ_DEFAULT;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(args, "count");
    if (c) gd_qga_json_get_int(c, &count);
    if (count < 0 || count > cfg->commands.file_max_bytes) {
        gd_qga_reply_error(req, "GenericError",
                           "value '%lld' is invalid for argument count (at most "
                           "commands.file_max_bytes, %lld)",
                           (long long)count, (long long)cfg->commands.file_max_bytes);
        return;
    }
    qga_file_t *f = handle_of(req);
    if (!f) return;
    qga_op_t *op = op_new(req, OP_READ);
    if (!op) return;
    op->count = (size_t)count;
    if (gd_qga_id_json(req, &op->id_json) != 0) {
        op_free(op);
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    /* The reply's room is reserved before anything is read, not count
     * bytes allocated per request: the agent holds what it admitted. */
    req->data = op;
    size_t line = QGA_READ_HEAD + gd_base64_encoded_len(op->count) + QGA_READ_TAIL +
                  (op->id_json ? strlen(op->id_json) : 0);
    if (gd_qga_reserve(req, line, read_reserved) == 0) enqueue(req, f, op);
}

static void cmd_write(gd_qga_req_t *req, const cJSON *args)
{
    const gd_config_t *cfg = req->qga->env->config;
    qga_file_t *f = handle_of(req);
    if (!f) return;
    qga_op_t *op = op_new(req, OP_WRITE);
    if (!op) return;
    const char *b64 = gd_arg_string(args, "buf-b64", "");
    if (gd_base64_decode(&op->data, b64, strlen(b64)) != 0) {
        op_free(op);
        gd_qga_reply_error(req, "GenericError", "Parameter 'buf-b64' is not valid base64");
        return;
    }
    int64_t count = (int64_t)op->data.len;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(args, "count");
    if (c) gd_qga_json_get_int(c, &count);
    if (count < 0 || (size_t)count > op->data.len || count > cfg->commands.file_max_bytes) {
        op_free(op);
        gd_qga_reply_error(req, "GenericError", "value '%lld' is invalid for argument count",
                           (long long)count);
        return;
    }
    op->count = (size_t)count;
    enqueue(req, f, op);
}

static void cmd_seek(gd_qga_req_t *req, const cJSON *args)
{
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(args, "whence");
    int whence = -1;
    int64_t v;
    if (gd_qga_json_get_int(w, &v) == 0) {
        whence = v == 0 ? SEEK_SET : v == 1 ? SEEK_CUR : v == 2 ? SEEK_END : -1;
        if (whence < 0) {
            gd_qga_reply_error(req, "GenericError", "invalid whence code %lld", (long long)v);
            return;
        }
    } else if (cJSON_IsString(w)) {
        const char *s = w->valuestring;
        whence = strcmp(s, "set") == 0   ? SEEK_SET
                 : strcmp(s, "cur") == 0 ? SEEK_CUR
                 : strcmp(s, "end") == 0 ? SEEK_END
                                         : -1;
        if (whence < 0) {
            gd_qga_reply_error(req, "GenericError", "Parameter 'whence' does not accept value '%s'",
                               s);
            return;
        }
    } else {
        gd_qga_reply_error(req, "GenericError",
                           "Invalid parameter type for 'whence', expected: QGASeek or integer");
        return;
    }
    qga_file_t *f = handle_of(req);
    if (!f) return;
    qga_op_t *op = op_new(req, OP_SEEK);
    if (!op) return;
    op->flags = whence;
    enqueue(req, f, op);
}

static void simple_op(gd_qga_req_t *req, op_kind_t kind)
{
    qga_file_t *f = handle_of(req);
    if (!f) return;
    qga_op_t *op = op_new(req, kind);
    if (op) enqueue(req, f, op);
}

static void cmd_flush(gd_qga_req_t *req, const cJSON *args)
{
    simple_op(req, OP_FLUSH);
}

static void cmd_close(gd_qga_req_t *req, const cJSON *args)
{
    simple_op(req, OP_CLOSE);
}

/* ---- life cycle ---- */

void gd_qga_file_stop(gd_qga_t *q)
{
    if (!q->files) return;
    /* Idle handles close now; one with work in the pool when it comes back
     * (run_queue refuses what is queued behind it). */
    qga_file_t *next;
    for (qga_file_t *f = q->files->files; f; f = next) {
        next = f->next;
        if (!f->busy && !f->head) file_forget(q, f);
    }
}

void gd_qga_file_free(gd_qga_t *q)
{
    if (!q->files) return;
    while (q->files->files)
        file_forget(q, q->files->files);
    free(q->files);
    q->files = NULL;
}

static const gd_qga_arg_t open_args[] = {
    {"path", QGA_ARG_STR, 1}, {"mode", QGA_ARG_STR, 0}, {NULL, 0, 0}};
static const gd_qga_arg_t handle_args[] = {{"handle", QGA_ARG_INT, 1}, {NULL, 0, 0}};
static const gd_qga_arg_t read_args[] = {
    {"handle", QGA_ARG_INT, 1}, {"count", QGA_ARG_INT, 0}, {NULL, 0, 0}};
static const gd_qga_arg_t write_args[] = {{"handle", QGA_ARG_INT, 1},
                                          {"buf-b64", QGA_ARG_STR, 1},
                                          {"count", QGA_ARG_INT, 0},
                                          {NULL, 0, 0}};
static const gd_qga_arg_t seek_args[] = {{"handle", QGA_ARG_INT, 1},
                                         {"offset", QGA_ARG_INT, 1},
                                         {"whence", QGA_ARG_ANY, 1},
                                         {NULL, 0, 0}};

const gd_qga_cmd_t gd_qga_cmds_file[] = {
    {"guest-file-open", cmd_open, QGA_CONCURRENT, "file.read", open_args},
    {"guest-file-close", cmd_close, 0, NULL, handle_args},
    {"guest-file-read", cmd_read, QGA_CONCURRENT, "file.read", read_args},
    {"guest-file-write", cmd_write, QGA_CONCURRENT, "file.write", write_args},
    {"guest-file-seek", cmd_seek, 0, NULL, seek_args},
    {"guest-file-flush", cmd_flush, 0, NULL, handle_args},
    {NULL, NULL, 0, NULL, NULL},
};

/* file.read, file.write, file.stat. Every system call on the file runs in
 * the thread pool (uv_queue_work); the loop only checks arguments and turns
 * the outcome into a reply. Sizes are capped by commands.file_max_bytes. */
#include "commands/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "core/base64.h"
#include "core/utf8.h"

typedef enum { OP_READ, OP_WRITE, OP_STAT, OP_READ_DATA } file_op_t;

/* Bytes read per pread of file.read: a multiple of 3, so each chunk
 * encodes to whole base64 quads. */
#define READ_CHUNK (3 * 21846)
/* The reply line around the data: {"id":..,"ok":true,"result":{"data_b64":"
 * then ","size":N,"eof":B}}\n, the id excluded. */
#define READ_LINE_OVERHEAD 96

typedef struct file_job_s {
    gd_request_t *req;
    uv_work_t work;
    file_op_t op;
    const char *path; /* inside req->args, valid until the reply */
    uint64_t cap;     /* commands.file_max_bytes when the request came */
    /* read */
    uint64_t offset, max_bytes;
    uint64_t want; /* bytes to read: max_bytes, or what the file holds past offset */
    int eof;
    int fd;        /* open between the two steps of a read */
    char *id_json; /* the request's id, printed on the loop */
    char *line;    /* the whole reply line, built in the pool */
    size_t line_len, line_cap;
    /* write */
    const char *data_b64; /* inside req->args */
    size_t data_b64_len;
    int mode; /* -1: not given */
    int append;
    uint64_t written;
    /* read and stat */
    struct stat st;
    char link_target[PATH_MAX];
    /* The outcome: error code NULL means success. */
    const char *code;
    char message[512];
    gd_buf_t buf; /* read: the data, base64-encoded; write: the decoded data */
} file_job_t;

/* ---- errors, set in the pool ---- */

static void job_errno(file_job_t *j, int err, const char *what)
{
    j->code = err == ENOENT ? "not_found" : "failed";
    snprintf(j->message, sizeof(j->message), "%s %s: %s", what, j->path, strerror(err));
}

static void job_error(file_job_t *j, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job_error(file_job_t *j, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->message, sizeof(j->message), fmt, ap);
    va_end(ap);
    j->code = code;
}

static const char *type_name(mode_t m)
{
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "directory";
    if (S_ISLNK(m)) return "symlink";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISSOCK(m)) return "socket";
    if (S_ISCHR(m)) return "char_device";
    if (S_ISBLK(m)) return "block_device";
    return "unknown";
}

/* ---- file.read: the file is opened and checked in the pool, its reply
 * size reserved on the loop (core/owed.h), then read and encoded straight
 * into the reply line in the pool: the loop never touches the data ---- */

static void do_open_read(file_job_t *j)
{
    /* O_NONBLOCK: a FIFO or a terminal must not hold a pool thread. */
    int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        job_errno(j, errno, "open");
        return;
    }
    if (fstat(fd, &j->st) != 0) {
        job_errno(j, errno, "stat");
    } else if (S_ISDIR(j->st.st_mode)) {
        job_errno(j, EISDIR, "read");
    } else if (!S_ISREG(j->st.st_mode) && !S_ISCHR(j->st.st_mode) && !S_ISBLK(j->st.st_mode)) {
        job_error(j, "failed", "read %s: not a regular file (a %s)", j->path,
                  type_name(j->st.st_mode));
    } else {
        j->fd = fd;
        /* A regular file says how much it holds (procfs files say 0: not
         * known); the reply is reserved for that much, not max_bytes. */
        j->want = j->max_bytes;
        if (S_ISREG(j->st.st_mode) && j->st.st_size > 0) {
            uint64_t size = (uint64_t)j->st.st_size;
            uint64_t left = size > j->offset ? size - j->offset : 0;
            if (left < j->want) j->want = left;
        }
        return;
    }
    close(fd);
}

/* A number as cJSON prints it, so the line reads like every other reply. */
static int print_number(char *out, size_t len, double d)
{
    int n = snprintf(out, len, "%1.15g", d);
    if (strtod(out, NULL) != d) n = snprintf(out, len, "%1.17g", d);
    return n;
}

static void do_read_data(file_job_t *j)
{
    char *chunk = malloc(READ_CHUNK);
    size_t id_len = strlen(j->id_json);
    j->line_cap = id_len + READ_LINE_OVERHEAD + gd_base64_encoded_len((size_t)j->want) + 1;
    j->line = malloc(j->line_cap);
    if (!chunk || !j->line) {
        job_error(j, "internal", "out of memory reading %s", j->path);
        goto out;
    }
    size_t n = (size_t)snprintf(j->line, j->line_cap,
                                "{\"id\":%s,\"ok\":true,\"result\":{\"data_b64\":\"", j->id_json);
    uint64_t got = 0;
    size_t have = 0; /* bytes in chunk not encoded yet (fewer than 3 between reads) */
    int stopped = 0; /* the end, or a device with nothing more for now */
    while (got < j->want) {
        size_t room = READ_CHUNK - have;
        if (room > j->want - got) room = (size_t)(j->want - got);
        ssize_t r = pread(j->fd, chunk + have, room, (off_t)(j->offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) {
            stopped = 1;
            break;
        }
        if (r < 0) {
            job_errno(j, errno, "read");
            goto out;
        }
        if (r == 0) {
            stopped = 1;
            break;
        }
        got += (uint64_t)r;
        have += (size_t)r;
        size_t whole = have - have % 3;
        n += gd_base64_encode_to(j->line + n, chunk, whole);
        memmove(chunk, chunk + whole, have - whole);
        have -= whole;
    }
    n += gd_base64_encode_to(j->line + n, chunk, have);
    /* One byte past what was read tells whether the end was reached, even
     * for files whose size stat does not know (/proc). */
    if (!stopped) {
        char probe;
        ssize_t r;
        do {
            r = pread(j->fd, &probe, 1, (off_t)(j->offset + got));
        } while (r < 0 && errno == EINTR);
        stopped = r == 0 || (r < 0 && errno == EAGAIN);
    }
    j->eof = stopped;
    char size[40];
    print_number(size, sizeof(size), (double)j->st.st_size);
    n += (size_t)snprintf(j->line + n, j->line_cap - n, "\",\"size\":%s,\"eof\":%s}}\n", size,
                          j->eof ? "true" : "false");
    j->line_len = n;
out:
    free(chunk);
    close(j->fd);
    j->fd = -1;
}

/* ---- file.write ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void do_append(file_job_t *j)
{
    /* A FIFO would fail to open (ENXIO, no reader): say what it is. */
    struct stat pre;
    if (stat(j->path, &pre) == 0 && !S_ISREG(pre.st_mode)) {
        if (S_ISDIR(pre.st_mode))
            job_errno(j, EISDIR, "append to");
        else
            job_error(j, "failed", "append to %s: not a regular file (a %s)", j->path,
                      type_name(pre.st_mode));
        return;
    }
    int fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                  j->mode >= 0 ? (mode_t)j->mode : 0644);
    if (fd < 0) {
        job_errno(j, errno, "open");
        return;
    }
    struct stat st;
    int rc;
    if (fstat(fd, &st) != 0) {
        job_errno(j, errno, "stat");
    } else if (!S_ISREG(st.st_mode)) {
        job_error(j, "failed", "append to %s: not a regular file (a %s)", j->path,
                  type_name(st.st_mode));
    } else if (j->mode >= 0 && fchmod(fd, (mode_t)j->mode) != 0) {
        job_errno(j, errno, "chmod");
    } else if ((rc = write_all(fd, j->buf.data, j->buf.len)) != 0) {
        job_errno(j, -rc, "write");
    } else if (fsync(fd) != 0) {
        job_errno(j, errno, "fsync");
    } else {
        j->written = j->buf.len;
    }
    if (close(fd) != 0 && !j->code) job_errno(j, errno, "close");
}

/* fsync of the directory makes the rename itself durable. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static void do_replace(file_job_t *j)
{
    /* Follow a symlink to the file it names: replacing /etc/resolv.conf
     * must write its target, not turn the link into a file. */
    char target[PATH_MAX];
    if (!realpath(j->path, target)) {
        if (errno != ENOENT) {
            job_errno(j, errno, "resolve");
            return;
        }
        if (strlen(j->path) >= sizeof(target)) {
            job_errno(j, ENAMETOOLONG, "write");
            return;
        }
        snprintf(target, sizeof(target), "%s", j->path);
    }
    struct stat old;
    int exists = lstat(target, &old) == 0;
    if (exists && S_ISDIR(old.st_mode)) {
        job_errno(j, EISDIR, "write");
        return;
    }
    if (exists && !S_ISREG(old.st_mode)) {
        job_error(j, "failed", "write %s: not a regular file (a %s)", j->path,
                  type_name(old.st_mode));
        return;
    }
    char dir[PATH_MAX], tmp[PATH_MAX];
    const char *slash = strrchr(target, '/');
    size_t dlen = slash == target ? 1 : (size_t)(slash - target);
    memcpy(dir, target, dlen);
    dir[dlen] = '\0';
    int n = snprintf(tmp, sizeof(tmp), "%s/.%s.guestd-XXXXXX", dlen == 1 ? "" : dir, slash + 1);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        job_errno(j, ENAMETOOLONG, "write");
        return;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        j->code = err == ENOENT ? "not_found" : "failed";
        /* The directory name is cut to fit the message; the errno text is kept. */
        snprintf(j->message, sizeof(j->message), "create a temporary file in %.400s: %s", dir,
                 strerror(err));
        return;
    }
    mode_t mode = j->mode >= 0 ? (mode_t)j->mode : exists ? (old.st_mode & 07777) : 0644;
    int rc;
    /* Keep the owner of the file being replaced (needs root; best effort),
     * before the mode: a chown clears the setuid and setgid bits. */
    if (exists && (old.st_uid != geteuid() || old.st_gid != getegid()))
        (void)!fchown(fd, old.st_uid, old.st_gid);
    if ((rc = write_all(fd, j->buf.data, j->buf.len)) != 0)
        job_errno(j, -rc, "write");
    else if (fchmod(fd, mode) != 0)
        job_errno(j, errno, "chmod");
    else if (fsync(fd) != 0)
        job_errno(j, errno, "fsync");
    if (close(fd) != 0 && !j->code) job_errno(j, errno, "close");
    if (!j->code && rename(tmp, target) != 0) job_errno(j, errno, "rename onto");
    if (j->code) {
        unlink(tmp);
        return;
    }
    sync_dir(dir);
    j->written = j->buf.len;
}

static void do_write(file_job_t *j)
{
    int rc = gd_base64_decode(&j->buf, j->data_b64, j->data_b64_len);
    if (rc == -EINVAL) {
        job_error(j, "invalid_args", "data_b64 is not valid base64");
        return;
    }
    if (rc != 0) {
        job_error(j, "internal", "out of memory decoding data_b64");
        return;
    }
    if (j->buf.len > j->cap) {
        job_error(j, "invalid_args",
                  "data_b64 holds %zu bytes, more than commands.file_max_bytes (%llu)", j->buf.len,
                  (unsigned long long)j->cap);
        return;
    }
    if (j->append)
        do_append(j);
    else
        do_replace(j);
}

/* ---- file.stat ---- */

static void do_stat(file_job_t *j)
{
    if (lstat(j->path, &j->st) != 0) {
        job_errno(j, errno, "stat");
        return;
    }
    if (S_ISLNK(j->st.st_mode)) {
        ssize_t n = readlink(j->path, j->link_target, sizeof(j->link_target) - 1);
        j->link_target[n > 0 ? n : 0] = '\0';
    }
}

/* ---- the job ---- */

static void job_work(uv_work_t *w)
{
    file_job_t *j = w->data;
    switch (j->op) {
    case OP_READ:
        do_open_read(j);
        break;
    case OP_READ_DATA:
        do_read_data(j);
        break;
    case OP_WRITE:
        do_write(j);
        break;
    case OP_STAT:
        do_stat(j);
        break;
    }
}

static cJSON *stat_result(const file_job_t *j)
{
    cJSON *r = cJSON_CreateObject();
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", (unsigned)(j->st.st_mode & 07777));
    cJSON_AddStringToObject(r, "type", type_name(j->st.st_mode));
    cJSON_AddNumberToObject(r, "size", (double)j->st.st_size);
    cJSON_AddStringToObject(r, "mode", mode);
    cJSON_AddNumberToObject(r, "uid", (double)j->st.st_uid);
    cJSON_AddNumberToObject(r, "gid", (double)j->st.st_gid);
    cJSON_AddNumberToObject(
        r, "mtime_ms",
        (double)((int64_t)j->st.st_mtim.tv_sec * 1000 + j->st.st_mtim.tv_nsec / 1000000));
    if (S_ISLNK(j->st.st_mode)) {
        gd_buf_t clean;
        gd_buf_init(&clean);
        gd_utf8_sanitize(&clean, j->link_target, strlen(j->link_target));
        cJSON_AddStringToObject(r, "target", clean.data ? clean.data : "");
        gd_buf_free(&clean);
    }
    return r;
}

static void job_free(file_job_t *j)
{
    if (j->fd >= 0) close(j->fd);
    gd_buf_free(&j->buf);
    free(j->line);
    free(j->id_json);
    free(j);
}

static void start_job(gd_request_t *req, file_job_t *j);

/* The reply's room is reserved: read. */
static void read_reserved(gd_request_t *req, int status)
{
    file_job_t *j = req->data;
    if (status != 0) {
        gd_reply_error(req, "internal", "file.read cancelled: the agent is stopping");
        job_free(j);
        return;
    }
    j->op = OP_READ_DATA;
    start_job(req, j);
}

static void job_after_work(uv_work_t *w, int status)
{
    file_job_t *j = w->data;
    if (status == 0 && !j->code && j->op == OP_READ) {
        /* Opened: the reply's size is reserved before a byte is read. */
        gd_request_t *req = j->req;
        req->data = j;
        size_t line = strlen(j->id_json) + READ_LINE_OVERHEAD + gd_base64_encoded_len(j->want);
        if (gd_request_reserve(req, line, read_reserved) == 0) read_reserved(req, 0);
        return;
    }
    if (status == 0 && !j->code && j->op == OP_READ_DATA) {
        char *line = j->line;
        j->line = NULL;
        gd_reply_line(j->req, line, j->line_len);
        job_free(j);
        return;
    }
    if (status != 0) {
        gd_reply_error(j->req, "internal", "%s cancelled: %s", j->req->cmd->name,
                       uv_strerror(status));
    } else if (j->code) {
        gd_reply_error(j->req, j->code, "%s", j->message);
    } else {
        cJSON *r;
        if (j->op == OP_WRITE) {
            r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "written", (double)j->written);
        } else {
            r = stat_result(j);
        }
        gd_reply_ok(j->req, r);
    }
    job_free(j);
}

static void start_job(gd_request_t *req, file_job_t *j)
{
    j->work.data = j;
    int rc = uv_queue_work(req->env->loop, &j->work, job_work, job_after_work);
    if (rc != 0) {
        job_free(j);
        gd_reply_error(req, "internal", "cannot queue work: %s", uv_strerror(rc));
    }
}

/* A job for req with its path checked; NULL when a reply was sent. */
static file_job_t *new_job(gd_request_t *req, const cJSON *args, file_op_t op)
{
    const char *path = gd_arg_string(args, "path", "");
    if (path[0] != '/') {
        gd_reply_error(req, "invalid_args", "path must be absolute, not \"%.128s\"", path);
        return NULL;
    }
    if (strlen(path) >= PATH_MAX) {
        gd_reply_error(req, "invalid_args", "path is longer than %d bytes", PATH_MAX - 1);
        return NULL;
    }
    file_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        gd_reply_error(req, "internal", "out of memory");
        return NULL;
    }
    j->req = req;
    j->op = op;
    j->path = path;
    j->mode = -1;
    j->fd = -1;
    j->cap = (uint64_t)req->env->config->commands.file_max_bytes;
    gd_buf_init(&j->buf);
    return j;
}

int gd_file_parse_mode(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 5) return -EINVAL;
    int mode = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7') return -EINVAL;
        mode = mode * 8 + (s[i] - '0');
    }
    return mode <= 07777 ? mode : -EINVAL;
}

static void cmd_read(gd_request_t *req, const cJSON *args)
{
    uint64_t cap = (uint64_t)req->env->config->commands.file_max_bytes;
    int64_t max_bytes = gd_arg_int(args, "max_bytes", (int64_t)cap);
    if ((uint64_t)max_bytes > cap) {
        gd_reply_error(req, "invalid_args",
                       "max_bytes %lld is more than commands.file_max_bytes (%llu)",
                       (long long)max_bytes, (unsigned long long)cap);
        return;
    }
    file_job_t *j = new_job(req, args, OP_READ);
    if (!j) return;
    j->offset = (uint64_t)gd_arg_int(args, "offset", 0);
    j->max_bytes = (uint64_t)max_bytes;
    j->id_json = gd_request_id_json(req);
    if (!j->id_json) {
        job_free(j);
        gd_reply_error(req, "internal", "out of memory");
        return;
    }
    start_job(req, j);
}

static void cmd_write(gd_request_t *req, const cJSON *args)
{
    const char *mode_text = gd_arg_string(args, "mode", NULL);
    int mode = -1;
    if (mode_text && (mode = gd_file_parse_mode(mode_text)) < 0) {
        gd_reply_error(req, "invalid_args",
                       "mode must be an octal string like \"0644\", not \"%.32s\"", mode_text);
        return;
    }
    const char *data = gd_arg_string(args, "data_b64", "");
    size_t data_len = strlen(data);
    uint64_t cap = (uint64_t)req->env->config->commands.file_max_bytes;
    /* A quick refusal before any work; the exact size is checked on decode. */
    if (data_len / 4 * 3 > cap + 2) {
        gd_reply_error(req, "invalid_args",
                       "data_b64 holds more than commands.file_max_bytes (%llu) bytes",
                       (unsigned long long)cap);
        return;
    }
    file_job_t *j = new_job(req, args, OP_WRITE);
    if (!j) return;
    j->data_b64 = data;
    j->data_b64_len = data_len;
    j->mode = mode;
    j->append = gd_arg_bool(args, "append", 0);
    start_job(req, j);
}

static void cmd_stat(gd_request_t *req, const cJSON *args)
{
    file_job_t *j = new_job(req, args, OP_STAT);
    if (j) start_job(req, j);
}

#define MAX_SIZE INT64_C(50331648) /* the ceiling of commands.file_max_bytes */

static const gd_arg_spec_t read_args[] = {
    {"path", GD_ARG_STRING, 1, 0, 0, "absolute path of the file"},
    {"offset", GD_ARG_INT, 0, 0, INT64_C(9007199254740992), "where to start, in bytes (default 0)"},
    {"max_bytes", GD_ARG_INT, 0, 0, MAX_SIZE,
     "at most this many bytes (default and limit: commands.file_max_bytes)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const gd_arg_spec_t write_args[] = {
    {"path", GD_ARG_STRING, 1, 0, 0, "absolute path of the file"},
    {"data_b64", GD_ARG_STRING, 1, 0, 0,
     "the bytes, base64 (at most commands.file_max_bytes decoded)"},
    {"mode", GD_ARG_STRING, 0, 0, 0,
     "permissions as an octal string (\"0644\"); default: kept, or 0644 for a new file"},
    {"append", GD_ARG_BOOL, 0, 0, 0, "append instead of replacing (default false)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const gd_arg_spec_t stat_args[] = {
    {"path", GD_ARG_STRING, 1, 0, 0, "absolute path; a symlink is described, not followed"},
    {NULL, 0, 0, 0, 0, NULL},
};

const gd_command_t gd_commands_file[] = {
    {"file.read", cmd_read, GD_CMD_CONCURRENT, "Reads part of a file, base64-encoded.", read_args,
     "{data_b64, size, eof}"},
    {"file.write", cmd_write, GD_CMD_CONCURRENT,
     "Writes a file: atomic replace (temporary file, fsync, rename) or append.", write_args,
     "{written}"},
    {"file.stat", cmd_stat, GD_CMD_CONCURRENT, "Type, size, mode, owner and mtime of a path.",
     stat_args, "{type, size, mode, uid, gid, mtime_ms, target (symlinks only)}"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};

/* qemu-ga's user commands: guest-set-user-password (chpasswd, fed on its
 * stdin so the password is never on a command line) and
 * guest-ssh-get/add/remove-authorized-keys (~user/.ssh/authorized_keys,
 * replaced atomically, owned by the user, mode 0600, reached only where the
 * user could reach it: commands/userfile.h). The user lookup and the file
 * work run in the thread pool: NSS and home directories may be on the
 * network. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/log.h"
#include "commands/dispatch.h"
#include "commands/qga/internal.h"
#include "commands/userfile.h"

/* ---- authorized_keys text, as qemu-ga edits it ---- */

static int key_valid(const char *key)
{
    return key && key[0] != '#' && !strchr(key, '\n');
}

/* Whether line (len bytes) is one of keys. */
static int is_one_of(const char *line, size_t len, const cJSON *keys)
{
    for (const cJSON *k = keys ? keys->child : NULL; k; k = k->next)
        if (strlen(k->valuestring) == len && memcmp(k->valuestring, line, len) == 0) return 1;
    return 0;
}

/* Calls fn for each line of text (without its '\n'). */
static void each_line(const char *text, void (*fn)(const char *line, size_t len, void *ctx),
                      void *ctx)
{
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        fn(p, len, ctx);
        p = nl ? nl + 1 : NULL;
    }
}

typedef struct edit_s {
    gd_buf_t *out;
    const cJSON *keys;
    cJSON *list;
    int found; /* add: whether the key being added is already there */
    const char *key;
} edit_t;

static void keep_unless_removed(const char *line, size_t len, void *ctx)
{
    edit_t *e = ctx;
    if (is_one_of(line, len, e->keys)) return;
    gd_buf_append(e->out, line, len);
    gd_buf_append(e->out, "\n", 1);
}

static void find_key(const char *line, size_t len, void *ctx)
{
    edit_t *e = ctx;
    if (strlen(e->key) == len && memcmp(e->key, line, len) == 0) e->found = 1;
}

int gd_qga_authkeys_add(const char *existing, const cJSON *keys, gd_buf_t *out)
{
    gd_buf_reset(out);
    if (existing && existing[0]) {
        gd_buf_puts(out, existing);
        if (existing[strlen(existing) - 1] != '\n') gd_buf_append(out, "\n", 1);
    }
    for (const cJSON *k = keys ? keys->child : NULL; k; k = k->next) {
        edit_t e = {.key = k->valuestring};
        each_line(out->data, find_key, &e);
        if (e.found) continue;
        gd_buf_puts(out, k->valuestring);
        gd_buf_append(out, "\n", 1);
    }
    return out->data || !out->len ? 0 : -ENOMEM;
}

void gd_qga_authkeys_remove(const char *existing, const cJSON *keys, gd_buf_t *out)
{
    gd_buf_reset(out);
    edit_t e = {.out = out, .keys = keys};
    each_line(existing, keep_unless_removed, &e);
}

static void list_key(const char *line, size_t len, void *ctx)
{
    edit_t *e = ctx;
    while (len && (*line == ' ' || *line == '\t' || *line == '\r')) {
        line++;
        len--;
    }
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        len--;
    if (!len || line[0] == '#') return;
    char *copy = strndup(line, len);
    if (!copy) return;
    cJSON_AddItemToArray(e->list, cJSON_CreateString(copy));
    free(copy);
}

cJSON *gd_qga_authkeys_list(const char *text)
{
    edit_t e = {.list = cJSON_CreateArray()};
    each_line(text, list_key, &e);
    return e.list;
}

/* ---- the pool job ---- */

typedef enum { SSH_GET, SSH_ADD, SSH_REMOVE } ssh_op_t;

typedef struct ssh_job_s {
    uv_work_t work;
    gd_qga_req_t *req;
    ssh_op_t op;
    const char *user; /* in req->args */
    const cJSON *keys;
    int reset;
    gd_buf_t text; /* the file as read */
    gd_buf_t next; /* the file to write */
    cJSON *result;
    char error[512];
} ssh_job_t;

/* The user's ~/.ssh as a directory fd, reached as userfile.h says; with
 * create, made when missing. -errno with j->error set. */
static int open_ssh_dir(ssh_job_t *j, const struct passwd *pw, const char *dir, int create)
{
    int home = gd_userfile_open_home(pw->pw_dir, pw->pw_uid, j->error, sizeof(j->error));
    if (home < 0) return home;
    int fd = gd_userfile_open_dir(home, ".ssh", pw->pw_uid, pw->pw_gid, create, dir, j->error,
                                  sizeof(j->error));
    close(home);
    return fd;
}

static void ssh_work(uv_work_t *w)
{
    ssh_job_t *j = w->data;
    struct passwd pwbuf, *pw = NULL;
    char strbuf[4096];
    int r = getpwnam_r(j->user, &pwbuf, strbuf, sizeof(strbuf), &pw);
    if (!pw) {
        snprintf(j->error, sizeof(j->error), "failed to lookup user '%s': %s", j->user,
                 r ? strerror(r) : "no such user");
        return;
    }
    char dir[4000], path[4096];
    snprintf(dir, sizeof(dir), "%s/.ssh", pw->pw_dir);
    snprintf(path, sizeof(path), "%s/authorized_keys", dir);
    int sshfd = open_ssh_dir(j, pw, dir, j->op == SSH_ADD);
    if (sshfd == -ENOENT && j->op == SSH_REMOVE) {
        j->error[0] = '\0'; /* no ~/.ssh: nothing to remove */
        return;
    }
    if (sshfd == -ENOENT && j->op == SSH_GET)
        snprintf(j->error, sizeof(j->error), "failed to read '%.400s': %s", path, strerror(ENOENT));
    if (sshfd < 0) return;
    char err[sizeof(j->error)];
    int rc = 0;
    if (j->op != SSH_ADD || !j->reset)
        rc = gd_userfile_read(sshfd, "authorized_keys", pw->pw_uid, &j->text, path, err,
                              sizeof(err));
    /* Only a missing file is an empty one: any other failure (a link, a FIFO,
     * a file of root's, EACCES) leaves the file as it is. */
    if (rc < 0 && !(rc == -ENOENT && j->op != SSH_GET)) {
        snprintf(j->error, sizeof(j->error), "%s", err);
        close(sshfd);
        return;
    }
    switch (j->op) {
    case SSH_GET:
        j->result = cJSON_CreateObject();
        cJSON_AddItemToObject(j->result, "keys", gd_qga_authkeys_list(j->text.data));
        close(sshfd);
        return;
    case SSH_ADD:
        if (gd_qga_authkeys_add(rc == 0 ? j->text.data : NULL, j->keys, &j->next) != 0) {
            snprintf(j->error, sizeof(j->error), "out of memory");
            close(sshfd);
            return;
        }
        break;
    case SSH_REMOVE:
        if (rc == -ENOENT) { /* nothing to remove */
            close(sshfd);
            return;
        }
        gd_qga_authkeys_remove(j->text.data, j->keys, &j->next);
        break;
    }
    gd_userfile_replace(sshfd, "authorized_keys", pw->pw_uid, pw->pw_gid,
                        j->next.data ? j->next.data : "", j->next.len, path, j->error,
                        sizeof(j->error));
    close(sshfd);
}

static void ssh_after(uv_work_t *w, int status)
{
    ssh_job_t *j = w->data;
    gd_qga_req_t *req = j->req;
    if (status == UV_ECANCELED)
        gd_qga_reply_error(req, "GenericError", "cancelled");
    else if (j->error[0])
        gd_qga_reply_error(req, "GenericError", "%s", j->error);
    else
        gd_qga_reply(req, j->result);
    gd_buf_free(&j->text);
    gd_buf_free(&j->next);
    free(j);
}

static void start_ssh(gd_qga_req_t *req, ssh_op_t op)
{
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(req->args, "keys");
    for (const cJSON *k = keys ? keys->child : NULL; k; k = k->next) {
        if (!key_valid(k->valuestring)) {
            gd_qga_reply_error(req, "GenericError", "invalid OpenSSH public key: '%s'",
                               k->valuestring);
            return;
        }
    }
    ssh_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    j->req = req;
    j->op = op;
    j->user = gd_arg_string(req->args, "username", "");
    j->keys = keys;
    j->reset = gd_arg_bool(req->args, "reset", 0);
    gd_buf_init(&j->text);
    gd_buf_init(&j->next);
    j->work.data = j;
    if (uv_queue_work(req->qga->loop, &j->work, ssh_work, ssh_after) != 0) {
        free(j);
        gd_qga_reply_error(req, "GenericError", "cannot queue the work");
    }
}

static void cmd_ssh_get(gd_qga_req_t *req, const cJSON *args)
{
    start_ssh(req, SSH_GET);
}

static void cmd_ssh_add(gd_qga_req_t *req, const cJSON *args)
{
    start_ssh(req, SSH_ADD);
}

static void cmd_ssh_remove(gd_qga_req_t *req, const cJSON *args)
{
    start_ssh(req, SSH_REMOVE);
}

/* ---- guest-set-user-password ---- */

static void chpasswd_done(gd_qga_req_t *req, const gd_qga_child_result_t *res)
{
    if (res->spawn_error == -ENOENT) {
        gd_qga_reply_error(req, "GenericError", "cannot find 'chpasswd' program in PATH");
    } else if (res->spawn_error) {
        gd_qga_reply_errno(req, res->spawn_error, "cannot run chpasswd");
    } else if (res->term_signal || res->exit_status != 0) {
        gd_warn("qga: chpasswd failed (exit %lld, signal %d): %.*s", (long long)res->exit_status,
                res->term_signal, (int)(res->err_len > 200 ? 200 : res->err_len), res->err);
        gd_qga_reply_error(req, "GenericError", "child process has failed to set user password");
    } else {
        gd_info("qga: password of '%s' set", gd_arg_string(req->args, "username", "?"));
        gd_qga_reply(req, NULL);
    }
}

static void cmd_set_password(gd_qga_req_t *req, const cJSON *args)
{
    const char *user = gd_arg_string(args, "username", "");
    const char *b64 = gd_arg_string(args, "password", "");
    gd_buf_t raw, line;
    gd_buf_init(&raw);
    gd_buf_init(&line);
    if (gd_base64_decode(&raw, b64, strlen(b64)) != 0) {
        gd_qga_reply_error(req, "GenericError", "Parameter 'password' is not valid base64");
        return;
    }
    if (memchr(raw.data ? raw.data : "", '\n', raw.len) ||
        memchr(raw.data ? raw.data : "", '\0', raw.len)) {
        gd_buf_free(&raw);
        gd_qga_reply_error(req, "GenericError", "forbidden characters in raw password");
        return;
    }
    if (!user[0] || strchr(user, '\n') || strchr(user, ':')) {
        gd_buf_free(&raw);
        gd_qga_reply_error(req, "GenericError", "forbidden characters in username");
        return;
    }
    int r = gd_buf_printf(&line, "%s:%s\n", user, raw.data ? raw.data : "");
    /* The clear text is not kept longer than it takes to hand it over. */
    if (raw.data) explicit_bzero(raw.data, raw.len);
    gd_buf_free(&raw);
    static char *const plain[] = {"chpasswd", NULL};
    static char *const crypted[] = {"chpasswd", "-e", NULL};
    if (r != 0 || gd_qga_run_child(req, gd_arg_bool(args, "crypted", 0) ? crypted : plain,
                                   line.data, line.len, chpasswd_done) != 0)
        gd_qga_reply_error(req, "GenericError", "out of memory");
    if (line.data) explicit_bzero(line.data, line.len);
    gd_buf_free(&line);
}

static const gd_qga_arg_t password_args[] = {{"username", QGA_ARG_STR, 1},
                                             {"password", QGA_ARG_STR, 1},
                                             {"crypted", QGA_ARG_BOOL, 1},
                                             {NULL, 0, 0}};
static const gd_qga_arg_t ssh_get_args[] = {{"username", QGA_ARG_STR, 1}, {NULL, 0, 0}};
static const gd_qga_arg_t ssh_add_args[] = {{"username", QGA_ARG_STR, 1},
                                            {"keys", QGA_ARG_STR_LIST, 1},
                                            {"reset", QGA_ARG_BOOL, 0},
                                            {NULL, 0, 0}};
static const gd_qga_arg_t ssh_remove_args[] = {
    {"username", QGA_ARG_STR, 1}, {"keys", QGA_ARG_STR_LIST, 1}, {NULL, 0, 0}};

const gd_qga_cmd_t gd_qga_cmds_user[] = {
    {"guest-set-user-password", cmd_set_password, QGA_CONCURRENT, NULL, password_args},
    {"guest-ssh-get-authorized-keys", cmd_ssh_get, QGA_CONCURRENT, "file.read", ssh_get_args},
    {"guest-ssh-add-authorized-keys", cmd_ssh_add, QGA_CONCURRENT, "file.write", ssh_add_args},
    {"guest-ssh-remove-authorized-keys", cmd_ssh_remove, QGA_CONCURRENT, "file.write",
     ssh_remove_args},
    {NULL, NULL, 0, NULL, NULL},
};

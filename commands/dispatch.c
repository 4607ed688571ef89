/* The dispatcher: request validation (protocol.md's error codes), policy,
 * the concurrency bound, and the reply path shared by every handler. */
#include "commands/dispatch.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/json/keys.h"
#include "core/json/print.h"
#include "core/log.h"
#include "core/utf8.h"
#include "commands/table.h"

#define GD_DISPATCH_KEEP_BYTES (256 * 1024)

const char *const gd_error_codes[] = {
    "parse_error", "too_large", "invalid_request", "unknown_command", "invalid_args", "forbidden",
    "busy",        "not_found", "timeout",         "unsupported",     "failed",       "internal",
    NULL,
};

int gd_error_code_known(const char *code)
{
    for (const char *const *c = gd_error_codes; *c; c++)
        if (strcmp(*c, code) == 0) return 1;
    return 0;
}

void gd_dispatch_init(gd_dispatch_t *d, const gd_cmd_env_t *env, gd_dispatch_send_fn send,
                      void *send_ctx)
{
    memset(d, 0, sizeof(*d));
    d->env = env;
    d->send = send;
    d->send_ctx = send_ctx;
    d->max_concurrent = 8;
    snprintf(d->allow, sizeof(d->allow), "*");
    gd_buf_init(&d->out);
}

void gd_dispatch_configure(gd_dispatch_t *d, const char *allow, const char *deny,
                           unsigned max_concurrent)
{
    snprintf(d->allow, sizeof(d->allow), "%s", allow);
    snprintf(d->deny, sizeof(d->deny), "%s", deny);
    d->max_concurrent = max_concurrent;
}

/* Whether name matches any pattern of a comma-separated list. */
static int matches_any(const char *patterns, const char *name)
{
    char pattern[256];
    const char *p = patterns;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ",");
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0 && n < sizeof(pattern)) {
            memcpy(pattern, p, n);
            pattern[n] = '\0';
            if (fnmatch(pattern, name, 0) == 0) return 1;
        }
        p += strcspn(p, ",");
    }
    return 0;
}

int gd_dispatch_allowed(const gd_dispatch_t *d, const char *name)
{
    if (matches_any(d->deny, name)) return 0;
    return matches_any(d->allow, name);
}

/* Serialises and sends one reply object; consumes it. */
static void send_object(gd_dispatch_t *d, uint64_t conn_gen, cJSON *obj)
{
    int r = gd_json_print(&d->out, obj);
    cJSON_Delete(obj);
    if (r != 0 || gd_buf_append(&d->out, "\n", 1) != 0)
        gd_error("out of memory serialising a reply");
    else if (!d->closing)
        d->send(d->send_ctx, conn_gen, d->out.data, d->out.len);
    /* One huge reply (exec output, file.read) must not pin its size for the
     * agent's lifetime: keep small buffers, give large ones back. */
    if (d->out.cap > GD_DISPATCH_KEEP_BYTES) gd_buf_free(&d->out);
}

/* The request's id for its reply. cJSON prints every number with
 * sprintf("%1.15g") and checks it with sscanf, about 4,000 instructions
 * with musl's stdio (the static build) on every reply. An integer id below
 * 10^15 prints as its plain digits under "%1.15g", so it is written as those
 * digits, ready-printed; anything else is copied for cJSON to print. */
static cJSON *reply_id(const cJSON *id)
{
    if (!id) return cJSON_CreateNull();
    double d = id->valuedouble;
    if (!cJSON_IsNumber(id) || d != d || d <= -1e15 || d >= 1e15 || d != (double)(long long)d ||
        (d == 0 && signbit(d)))
        return cJSON_Duplicate(id, 1);
    char digits[24];
    char *p = digits + sizeof(digits);
    *--p = '\0';
    long long v = (long long)d;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return cJSON_CreateRaw(p);
}

static cJSON *reply_object(const cJSON *id, int ok)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj) return NULL;
    cJSON_AddItemToObject(obj, "id", reply_id(id));
    cJSON_AddBoolToObject(obj, "ok", ok);
    return obj;
}

/* Messages quote what the host sent, cut by "%.64s" or by the message
 * buffer: a cut inside a character would make the reply line invalid UTF-8
 * (protocol.md promises UTF-8), so a broken sequence becomes U+FFFD. */
static void add_message(cJSON *err, const char *message)
{
    size_t len = strlen(message);
    gd_buf_t clean;
    if (gd_utf8_valid(message, len)) {
        cJSON_AddStringToObject(err, "message", message);
        return;
    }
    gd_buf_init(&clean);
    if (gd_utf8_sanitize(&clean, message, len) == 0)
        cJSON_AddStringToObject(err, "message", clean.data);
    else
        cJSON_AddStringToObject(err, "message", "out of memory");
    gd_buf_free(&clean);
}

static void send_error(gd_dispatch_t *d, uint64_t conn_gen, const cJSON *id, const char *code,
                       const char *message)
{
    d->errors++;
    /* A code outside protocol.md's list is a bug: the host gets internal. */
    if (!gd_error_code_known(code)) {
        gd_error("error code '%s' is not one of protocol.md's (answered internal)", code);
        code = "internal";
    }
    cJSON *obj = reply_object(id, 0);
    if (!obj) return;
    cJSON *err = cJSON_AddObjectToObject(obj, "error");
    cJSON_AddStringToObject(err, "code", code);
    add_message(err, message);
    send_object(d, conn_gen, obj);
}

static void request_free(gd_request_t *req)
{
    gd_dispatch_t *d = req->dispatch;
    if (req->prev)
        req->prev->next = req->next;
    else if (d->inflight == req)
        d->inflight = req->next;
    if (req->next) req->next->prev = req->prev;
    if (req->cmd && (req->cmd->flags & GD_CMD_CONCURRENT)) d->running--;
    if (req->owed && d->owed_of) {
        gd_owed_t *o = d->owed_of(d->send_ctx, req->conn_gen);
        if (o) gd_owed_release(o, req->owed);
    }
    cJSON_Delete(req->id);
    cJSON_Delete(req->args);
    free(req);
}

void gd_reply_ok(gd_request_t *req, cJSON *result)
{
    gd_dispatch_t *d = req->dispatch;
    cJSON *obj = reply_object(req->id, 1);
    if (obj) {
        cJSON_AddItemToObject(obj, "result", result ? result : cJSON_CreateObject());
        send_object(d, req->conn_gen, obj);
    } else {
        cJSON_Delete(result);
    }
    request_free(req);
}

void gd_reply_line(gd_request_t *req, char *line, size_t len)
{
    gd_dispatch_t *d = req->dispatch;
    if (d->closing) {
        free(line);
    } else if (d->send_owned) {
        d->send_owned(d->send_ctx, req->conn_gen, line, len);
    } else {
        d->send(d->send_ctx, req->conn_gen, line, len);
        free(line);
    }
    request_free(req);
}

static void on_owed(gd_owed_waiter_t *w, int status)
{
    gd_request_t *req = (gd_request_t *)((char *)w - offsetof(gd_request_t, owed_wait));
    if (status == 0) req->owed = w->bytes;
    req->owed_resume(req, status);
}

int gd_request_reserve(gd_request_t *req, size_t bytes,
                       void (*resume)(gd_request_t *req, int status))
{
    gd_dispatch_t *d = req->dispatch;
    gd_owed_t *o = d->owed_of ? d->owed_of(d->send_ctx, req->conn_gen) : NULL;
    if (!o) return 0;
    req->owed_resume = resume;
    req->owed_wait.cb = on_owed;
    int r = gd_owed_reserve(o, &req->owed_wait, bytes);
    if (r == 0) req->owed = bytes;
    return r;
}

char *gd_request_id_json(const gd_request_t *req)
{
    if (!req->id) return strdup("null");
    /* cJSON's printer allocates through cJSON's hooks (core/json/alloc.h);
     * the caller gets a plain malloc'd copy, freed with free(). */
    char *printed = cJSON_PrintUnformatted(req->id);
    if (!printed) return NULL;
    char *copy = strdup(printed);
    cJSON_free(printed);
    return copy;
}

void gd_reply_error(gd_request_t *req, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    send_error(req->dispatch, req->conn_gen, req->id, code, message);
    request_free(req);
}

void gd_reply_errno(gd_request_t *req, int err, const char *what)
{
    if (err < 0) err = -err;
    const char *code = (err == ENOENT || err == ESRCH) ? "not_found" : "failed";
    gd_reply_error(req, code, "%s: %s", what, strerror(err));
}

const char *gd_arg_string(const cJSON *args, const char *name, const char *fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

int64_t gd_arg_int(const cJSON *args, const char *name, int64_t fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : fallback;
}

int gd_arg_bool(const cJSON *args, const char *name, int fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : fallback;
}

static const char *arg_type_name(gd_arg_type_t t)
{
    switch (t) {
    case GD_ARG_STRING:
        return "a string";
    case GD_ARG_INT:
        return "a whole number of at most 2^53 in size";
    case GD_ARG_BOOL:
        return "a boolean";
    case GD_ARG_OBJECT:
        return "an object";
    case GD_ARG_STRING_ARRAY:
        return "an array of strings";
    case GD_ARG_INT_OR_STRING:
        return "a whole number of at most 2^53 in size, or a string";
    case GD_ARG_ANY:
        return "any value";
    }
    return "?";
}

/* Integers arrive as doubles: accept only whole numbers that an int64 holds
 * exactly (|v| <= 2^53). */
static int is_whole_number(const cJSON *v)
{
    if (!cJSON_IsNumber(v)) return 0;
    double x = v->valuedouble;
    return isfinite(x) && floor(x) == x && fabs(x) <= 9007199254740992.0;
}

static int type_matches(const gd_arg_spec_t *s, const cJSON *v)
{
    switch (s->type) {
    case GD_ARG_STRING:
        return cJSON_IsString(v);
    case GD_ARG_INT:
        return is_whole_number(v);
    case GD_ARG_BOOL:
        return cJSON_IsBool(v);
    case GD_ARG_OBJECT:
        return cJSON_IsObject(v);
    case GD_ARG_STRING_ARRAY:
        if (!cJSON_IsArray(v)) return 0;
        for (const cJSON *e = v->child; e; e = e->next)
            if (!cJSON_IsString(e)) return 0;
        return 1;
    case GD_ARG_INT_OR_STRING:
        return is_whole_number(v) || cJSON_IsString(v);
    case GD_ARG_ANY:
        return 1;
    }
    return 0;
}

int gd_args_validate(const gd_arg_spec_t *spec, const cJSON *args, char *err, size_t errlen)
{
    for (const cJSON *a = args->child; a; a = a->next) {
        const gd_arg_spec_t *s = spec;
        while (s && s->name && strcmp(s->name, a->string) != 0)
            s++;
        if (!s || !s->name) {
            snprintf(err, errlen, "unknown argument '%s'", a->string);
            return -EINVAL;
        }
        if (!type_matches(s, a)) {
            snprintf(err, errlen, "argument '%s' must be %s", s->name, arg_type_name(s->type));
            return -EINVAL;
        }
        if (s->type == GD_ARG_INT && (s->min || s->max) &&
            (a->valuedouble < (double)s->min || a->valuedouble > (double)s->max)) {
            snprintf(err, errlen, "argument '%s' must be between %lld and %lld", s->name,
                     (long long)s->min, (long long)s->max);
            return -EINVAL;
        }
    }
    for (const gd_arg_spec_t *s = spec; s && s->name; s++) {
        if (s->required && !cJSON_GetObjectItemCaseSensitive(args, s->name)) {
            snprintf(err, errlen, "missing argument '%s'", s->name);
            return -EINVAL;
        }
    }
    return 0;
}

/* Whether the bytes after the parsed value are only JSON whitespace. */
static int only_whitespace(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') return 0;
    return 1;
}

void gd_dispatch_line(gd_dispatch_t *d, uint64_t conn_gen, const char *line, size_t len)
{
    char why[256];
    d->requests++;
    if (memchr(line, '\0', len)) {
        send_error(d, conn_gen, NULL, "parse_error", "the line contains a NUL byte");
        return;
    }
    if (!gd_utf8_valid(line, len)) {
        send_error(d, conn_gen, NULL, "parse_error", "the line is not valid UTF-8");
        return;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!root || !only_whitespace(end, line + len)) {
        cJSON_Delete(root);
        send_error(d, conn_gen, NULL, "parse_error", "the line is not valid JSON");
        return;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        send_error(d, conn_gen, NULL, "parse_error", "the request must be a JSON object");
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "cmd");
    cJSON *args = cJSON_GetObjectItemCaseSensitive(root, "args");
    /* A repeated key ({"cmd":"a","cmd":"b"}) is ambiguous: refused. */
    int keys_oom;
    const char *dup = gd_json_duplicate_key(root, &keys_oom);
    if (id && !cJSON_IsString(id) && !cJSON_IsNumber(id) && !cJSON_IsNull(id)) {
        send_error(d, conn_gen, NULL, "invalid_request", "'id' must be a string or a number");
        goto done;
    }
    if (keys_oom) {
        send_error(d, conn_gen, id, "internal", "out of memory checking the request's keys");
        goto done;
    }
    if (dup) {
        snprintf(why, sizeof(why), "the key '%s' appears twice", dup);
        send_error(d, conn_gen, id, "invalid_request", why);
        goto done;
    }
    /* cJSON cuts "a\u0000b" to "a": a string holding a NUL is refused, here
     * an id, a cmd or a key of the request (inside args: invalid_args below). */
    size_t nul_depth = gd_json_escaped_nul_depth(line, len);
    if (nul_depth == 1) {
        send_error(d, conn_gen, NULL, "invalid_request",
                   "a string of the request holds \\u0000 (a NUL character)");
        goto done;
    }
    if (!cmd) {
        send_error(d, conn_gen, id, "invalid_request", "'cmd' is missing");
        goto done;
    }
    if (!cJSON_IsString(cmd)) {
        send_error(d, conn_gen, id, "invalid_request", "'cmd' must be a string");
        goto done;
    }
    if (args && !cJSON_IsObject(args)) {
        send_error(d, conn_gen, id, "invalid_request", "'args' must be an object");
        goto done;
    }
    for (const cJSON *k = root->child; k; k = k->next) {
        if (strcmp(k->string, "id") && strcmp(k->string, "cmd") && strcmp(k->string, "args")) {
            snprintf(why, sizeof(why), "unknown request field '%.64s'", k->string);
            send_error(d, conn_gen, id, "invalid_request", why);
            goto done;
        }
    }
    const gd_command_t *c = gd_command_find(cmd->valuestring);
    if (!c) {
        snprintf(why, sizeof(why), "no command '%.128s'", cmd->valuestring);
        send_error(d, conn_gen, id, "unknown_command", why);
        goto done;
    }
    if (!gd_dispatch_allowed(d, c->name)) {
        snprintf(why, sizeof(why), "'%s' is disabled by the agent's policy", c->name);
        send_error(d, conn_gen, id, "forbidden", why);
        goto done;
    }
    if (nul_depth > 1) {
        send_error(d, conn_gen, id, "invalid_args",
                   "a string in args holds \\u0000 (a NUL character), which would cut it short");
        goto done;
    }
    /* Nor may an object inside args repeat a key ({"argv":..,"argv":..}). */
    if ((dup = gd_json_duplicate_key_deep(args, &keys_oom)) || keys_oom) {
        if (keys_oom)
            send_error(d, conn_gen, id, "internal", "out of memory checking the request's keys");
        else {
            snprintf(why, sizeof(why), "the key '%.64s' appears twice in args", dup);
            send_error(d, conn_gen, id, "invalid_args", why);
        }
        goto done;
    }
    /* An absent "args" is an empty object: required arguments still count. */
    static const cJSON no_args = {.type = cJSON_Object};
    if (gd_args_validate(c->args, args ? args : &no_args, why, sizeof(why)) != 0) {
        send_error(d, conn_gen, id, "invalid_args", why);
        goto done;
    }
    if ((c->flags & GD_CMD_CONCURRENT) && d->running >= d->max_concurrent) {
        snprintf(why, sizeof(why), "%u commands are already running (commands.max_concurrent)",
                 d->running);
        send_error(d, conn_gen, id, "busy", why);
        goto done;
    }

    gd_request_t *req = calloc(1, sizeof(*req));
    if (!req) {
        send_error(d, conn_gen, id, "internal", "out of memory");
        goto done;
    }
    req->dispatch = d;
    req->env = d->env;
    req->cmd = c;
    req->conn_gen = conn_gen;
    req->started_ns = uv_hrtime();
    req->id = id && !cJSON_IsNull(id) ? cJSON_Duplicate(id, 1) : NULL;
    req->args = args ? cJSON_DetachItemViaPointer(root, args) : cJSON_CreateObject();
    if ((id && !cJSON_IsNull(id) && !req->id) || !req->args) {
        cJSON_Delete(req->id);
        cJSON_Delete(req->args);
        free(req);
        send_error(d, conn_gen, id, "internal", "out of memory");
        goto done;
    }
    req->next = d->inflight;
    if (d->inflight) d->inflight->prev = req;
    d->inflight = req;
    if (c->flags & GD_CMD_CONCURRENT) d->running++;
    cJSON_Delete(root);
    root = NULL;
    c->handler(req, req->args);
    return;
done:
    cJSON_Delete(root);
}

void gd_dispatch_too_large(gd_dispatch_t *d, uint64_t conn_gen, size_t limit)
{
    char why[128];
    d->requests++;
    snprintf(why, sizeof(why), "the line exceeds channel.max_message_bytes (%zu bytes)", limit);
    send_error(d, conn_gen, NULL, "too_large", why);
}

void gd_dispatch_close(gd_dispatch_t *d)
{
    d->closing = 1;
}

void gd_dispatch_free(gd_dispatch_t *d)
{
    gd_buf_free(&d->out);
}

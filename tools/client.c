/* guestctl's side of the wire: connection, lines, call and watch. */
#include "tools/client.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tools/ljson.h"
#include "tools/termesc.h"
#include "tools/timefmt.h"

int64_t gd_client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gd_client_connect(gd_client_t *c, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%s: socket path too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        if (fd >= 0) close(fd);
        return -e;
    }
    c->fd = fd;
    return 0;
}

void gd_client_close(gd_client_t *c)
{
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int gd_client_send(gd_client_t *c, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int gd_client_read_line(gd_client_t *c, int64_t deadline, char **line, size_t *len)
{
    for (;;) {
        char *nl = c->len > c->start ? memchr(c->buf + c->start, '\n', c->len - c->start) : NULL;
        if (nl) {
            *line = c->buf + c->start;
            *len = (size_t)(nl - *line);
            if (*len && (*line)[*len - 1] == '\r') (*len)--;
            (*line)[*len] = '\0';
            c->start = (size_t)(nl - c->buf) + 1;
            return 1;
        }
        if (c->start) {
            memmove(c->buf, c->buf + c->start, c->len - c->start);
            c->len -= c->start;
            c->start = 0;
        }
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 131072;
            char *b = realloc(c->buf, cap);
            if (!b) return -1;
            c->buf = b;
            c->cap = cap;
        }
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - gd_client_now_ms();
            if (left <= 0) return 0;
            wait = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) continue; /* the deadline is checked above */
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return -1;
        c->len += (size_t)n;
    }
}

/* ---- arguments ---- */

cJSON *gd_ctl_value(const char *text)
{
    double d;
    size_t len = strlen(text);
    if (gd_lj_number(text, len, &d) == 0) return cJSON_CreateNumber(d);
    if (strcmp(text, "true") == 0) return cJSON_CreateTrue();
    if (strcmp(text, "false") == 0) return cJSON_CreateFalse();
    if (strcmp(text, "null") == 0) return cJSON_CreateNull();
    if (text[0] == '[' || text[0] == '{' || text[0] == '"') {
        const char *end = NULL;
        cJSON *v = cJSON_ParseWithOpts(text, &end, 1);
        if (v) return v;
    }
    return cJSON_CreateString(text);
}

cJSON *gd_ctl_build_args(const char *args_json, char **kv, int n, char *err, size_t errlen)
{
    cJSON *args;
    if (args_json) {
        args = cJSON_Parse(args_json);
        if (!cJSON_IsObject(args)) {
            cJSON_Delete(args);
            snprintf(err, errlen, "--args: not a JSON object: %s", args_json);
            return NULL;
        }
    } else {
        args = cJSON_CreateObject();
    }
    for (int i = 0; args && i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        if (!eq || eq == kv[i]) {
            snprintf(err, errlen, "'%s': expected key=value", kv[i]);
            cJSON_Delete(args);
            return NULL;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv[i]), kv[i]);
        cJSON_DeleteItemFromObjectCaseSensitive(args, key);
        cJSON_AddItemToObject(args, key, gd_ctl_value(eq + 1));
    }
    return args;
}

static void indent(FILE *out, int depth)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

static void pretty(FILE *out, const cJSON *item, int depth)
{
    if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
        int obj = cJSON_IsObject(item);
        const cJSON *c = item->child;
        if (!c) {
            fputs(obj ? "{}" : "[]", out);
            return;
        }
        fputs(obj ? "{\n" : "[\n", out);
        for (; c; c = c->next) {
            indent(out, depth + 1);
            if (obj) {
                cJSON *k = cJSON_CreateString(c->string);
                char *ks = cJSON_PrintUnformatted(k);
                gd_esc_puts(out, GD_ESC_JSON, ks);
                fputs(": ", out);
                cJSON_free(ks);
                cJSON_Delete(k);
            }
            pretty(out, c, depth + 1);
            fputs(c->next ? ",\n" : "\n", out);
        }
        indent(out, depth);
        fputs(obj ? "}" : "]", out);
        return;
    }
    /* cJSON escapes C0 controls but not DEL or C1 ones. */
    char *s = cJSON_PrintUnformatted(item);
    gd_esc_puts(out, GD_ESC_JSON, s ? s : "null");
    cJSON_free(s);
}

void gd_ctl_print_pretty(FILE *out, const cJSON *item)
{
    pretty(out, item, 0);
    fputc('\n', out);
}

/* ---- call ---- */

int gd_client_send_json(gd_client_t *c, const cJSON *msg)
{
    char *text = cJSON_PrintUnformatted(msg);
    if (text == NULL) return -ENOMEM;
    size_t tlen = strlen(text);
    /* One write of the line and its newline. */
    char *line = malloc(tlen + 2);
    int r = -ENOMEM;
    if (line) {
        memcpy(line, text, tlen);
        line[tlen] = '\n';
        r = gd_client_send(c, line, tlen + 1);
        free(line);
    }
    cJSON_free(text);
    return r;
}

int gd_ctl_call(const gd_ctl_call_opts_t *o, FILE *out, FILE *errs)
{
    gd_client_t c;
    char err[512];
    if (gd_client_connect(&c, o->socket, err, sizeof(err)) < 0) {
        fprintf(errs, "guestctl: cannot connect to %s\n", err);
        return GD_CTL_ERROR;
    }
    char id[48];
    snprintf(id, sizeof(id), "guestctl-%d", (int)getpid());
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "id", id);
    cJSON_AddStringToObject(req, "cmd", o->cmd);
    if (o->args && o->args->child) cJSON_AddItemReferenceToObject(req, "args", o->args);
    if (o->guest) cJSON_AddStringToObject(req, "guest", o->guest);
    int r = gd_client_send_json(&c, req);
    cJSON_Delete(req);
    int status = GD_CTL_ERROR;
    int64_t deadline = o->timeout_ms > 0 ? gd_client_now_ms() + o->timeout_ms : -1;
    if (r < 0) {
        fprintf(errs, "guestctl: cannot send to %s\n", o->socket);
        gd_client_close(&c);
        return GD_CTL_ERROR;
    }
    for (;;) {
        char *line;
        size_t len;
        r = gd_client_read_line(&c, deadline, &line, &len);
        if (r == 0) {
            fprintf(errs, "guestctl: no answer from the guest within %d ms\n", o->timeout_ms);
            status = GD_CTL_TIMEOUT;
            break;
        }
        if (r < 0) {
            fprintf(errs, "guestctl: the guest closed the connection before answering\n");
            break;
        }
        cJSON *msg = cJSON_ParseWithLength(line, len);
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(msg, "id");
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(msg, "ok");
        /* Events, and answers to someone else, are not ours. */
        if (!cJSON_IsBool(ok) || !cJSON_IsString(rid) || strcmp(rid->valuestring, id) != 0) {
            cJSON_Delete(msg);
            continue;
        }
        if (o->raw) {
            gd_esc_write(out, GD_ESC_JSON, line, len);
            fputc('\n', out);
        }
        if (cJSON_IsTrue(ok)) {
            if (!o->raw) gd_ctl_print_pretty(out, cJSON_GetObjectItemCaseSensitive(msg, "result"));
            status = GD_CTL_OK;
        } else {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(msg, "error");
            const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
            fputs("guestctl: ", errs);
            gd_esc_puts(errs, GD_ESC_TEXT, o->cmd);
            fputs(": ", errs);
            gd_esc_puts(errs, GD_ESC_TEXT, cJSON_IsString(code) ? code->valuestring : "error");
            fputs(": ", errs);
            gd_esc_puts(errs, GD_ESC_TEXT, cJSON_IsString(m) ? m->valuestring : "(no message)");
            fputc('\n', errs);
            status = GD_CTL_ERROR;
        }
        cJSON_Delete(msg);
        break;
    }
    gd_client_close(&c);
    return status;
}

/* ---- watch ---- */

void gd_ctl_human_bytes(double v, char *buf, size_t len)
{
    static const char units[] = "KMGTP";
    if (fabs(v) < 1024) {
        snprintf(buf, len, "%.0f", v);
        return;
    }
    int u = -1;
    while (fabs(v) >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, fabs(v) < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static double num_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static double sum_of(const cJSON *data, const char *array, const char *key)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(data, array), *el;
    double s = 0;
    int any = 0;
    cJSON_ArrayForEach(el, arr)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(el, key);
        if (cJSON_IsNumber(v)) {
            s += v->valuedouble;
            any = 1;
        }
    }
    return any ? s : NAN;
}

static void cell_num(char *buf, size_t len, double v, const char *fmt)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, fmt, v);
}

static void cell_bytes(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else
        gd_ctl_human_bytes(v, buf, len);
}

/* An event's "ts" as "HH:MM:SS" UTC, or "-". The guest sends any number:
 * one that is not a time (1e27, -1e300) must not reach the time_t cast. */
static void time_of_day(const cJSON *ts, char *buf, size_t len)
{
    int64_t ms;
    struct tm tm;
    snprintf(buf, len, "-");
    if (!cJSON_IsNumber(ts) || gd_time_ms_from_double(ts->valuedouble, &ms) != 0) return;
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    if (gmtime_r(&secs, &tm)) strftime(buf, len, "%H:%M:%S", &tm);
}

#define TABLE_FMT "%-8s %6s %6s %6s %8s %8s %8s %8s %6s"

void gd_ctl_table_row(const cJSON *event, char *buf, size_t len)
{
    if (!event) {
        snprintf(buf, len, TABLE_FMT, "TIME", "CPU%", "MEM%", "LOAD1", "DISK_R/s", "DISK_W/s",
                 "NET_RX/s", "NET_TX/s", "PROCS");
        return;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(event, "data");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(event, "ts");
    char t[16], cpu[16], mem[16], load[16], dr[16], dw[16], rx[16], tx[16], procs[16];
    time_of_day(ts, t, sizeof(t));
    cell_num(cpu, sizeof(cpu), num_at(data, "cpu", "usage_pct"), "%.1f");
    cell_num(mem, sizeof(mem), num_at(data, "memory", "used_pct"), "%.1f");
    cell_num(load, sizeof(load), num_at(data, "load", "load1"), "%.2f");
    cell_bytes(dr, sizeof(dr), sum_of(data, "disks", "read_bytes_per_s"));
    cell_bytes(dw, sizeof(dw), sum_of(data, "disks", "write_bytes_per_s"));
    cell_bytes(rx, sizeof(rx), sum_of(data, "network", "rx_bytes_per_s"));
    cell_bytes(tx, sizeof(tx), sum_of(data, "network", "tx_bytes_per_s"));
    cell_num(procs, sizeof(procs), num_at(data, "processes", "total"), "%.0f");
    snprintf(buf, len, TABLE_FMT, t, cpu, mem, load, dr, dw, rx, tx, procs);
}

/* Appends text to buf (len bytes, n used), cut to fit; guest text escaped
 * (termesc.h). The new length. */
static size_t add(char *buf, size_t len, size_t n, const char *text, int guest)
{
    if (n + 1 >= len) return n;
    if (guest) return n + gd_esc(GD_ESC_TEXT, text, strlen(text), buf + n, len - n);
    return n + gd_snprintf_len(snprintf(buf + n, len - n, "%s", text), len - n);
}

static const char *str_at(const cJSON *obj, const char *key, const char *absent)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : absent;
}

/* Other events in the table view: time, name, and what matters of them.
 * Every string of the guest's is escaped: a guest user chooses some (a
 * mount point in a health detail). */
static void short_line(const cJSON *msg, const char *name, char *buf, size_t len)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(msg, "data");
    char t[16];
    time_of_day(cJSON_GetObjectItemCaseSensitive(msg, "ts"), t, sizeof(t));
    size_t n = gd_snprintf_len(snprintf(buf, len, "%-8s ", t), len);
    n = add(buf, len, n, name, 1);
    if (strcmp(name, "health") == 0) {
        const cJSON *c;
        n = add(buf, len, n, " ", 0);
        n = add(buf, len, n, str_at(data, "status", "?"), 1);
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(data, "checks"))
        {
            const char *cs = str_at(c, "status", NULL);
            if (!cs || strcmp(cs, "ok") == 0) continue;
            n = add(buf, len, n, "; ", 0);
            n = add(buf, len, n, str_at(c, "name", "?"), 1);
            n = add(buf, len, n, ": ", 0);
            n = add(buf, len, n, str_at(c, "detail", ""), 1);
        }
    } else if (strcmp(name, "hello") == 0) {
        n = add(buf, len, n, " from ", 0);
        n = add(buf, len, n, str_at(data, "hostname", "?"), 1);
        n = add(buf, len, n, " (guestd ", 0);
        n = add(buf, len, n, str_at(data, "version", "?"), 1);
        add(buf, len, n, ")", 0);
    }
}

int gd_ctl_watch(const gd_ctl_watch_opts_t *o, FILE *out, FILE *errs)
{
    gd_client_t c;
    char err[512];
    if (gd_client_connect(&c, o->socket, err, sizeof(err)) < 0) {
        fprintf(errs, "guestctl: cannot connect to %s\n", err);
        return GD_CTL_ERROR;
    }
    long printed = 0;
    int status = GD_CTL_OK;
    char row[2048];
    if (o->guest) {
        /* Through a hub: ask for this guest's events first. */
        cJSON *req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "op", "watch");
        cJSON_AddStringToObject(req, "guest", o->guest);
        cJSON_AddStringToObject(req, "id", "guestctl-watch");
        int r = gd_client_send_json(&c, req);
        cJSON_Delete(req);
        if (r < 0) {
            fprintf(errs, "guestctl: cannot send to %s\n", o->socket);
            gd_client_close(&c);
            return GD_CTL_ERROR;
        }
    }
    int metrics_shown = !o->events;
    for (int i = 0; i < o->n_events; i++)
        metrics_shown |= strcmp(o->events[i], "metrics") == 0;
    if (o->table && metrics_shown) {
        gd_ctl_table_row(NULL, row, sizeof(row));
        fprintf(out, "%s\n", row);
        fflush(out);
    }
    for (;;) {
        char *line;
        size_t len;
        int64_t deadline = o->timeout_ms > 0 ? gd_client_now_ms() + o->timeout_ms : -1;
        int r = gd_client_read_line(&c, deadline, &line, &len);
        if (r == 0) {
            fprintf(errs, "guestctl: no event from the guest within %d ms\n", o->timeout_ms);
            status = GD_CTL_TIMEOUT;
            break;
        }
        if (r < 0) {
            fprintf(errs, "guestctl: the guest closed the connection\n");
            status = GD_CTL_ERROR;
            break;
        }
        cJSON *msg = cJSON_ParseWithLength(line, len);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(msg, "event");
        if (o->guest && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(msg, "ok"))) {
            /* The hub refused the watch (no such guest). */
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(msg, "error");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
            fprintf(errs, "guestctl: %s: ", o->guest);
            gd_esc_write(errs, GD_ESC_TEXT, cJSON_IsString(m) ? m->valuestring : "refused",
                         strlen(cJSON_IsString(m) ? m->valuestring : "refused"));
            fputc('\n', errs);
            cJSON_Delete(msg);
            status = GD_CTL_ERROR;
            break;
        }
        int keep = cJSON_IsString(ev);
        if (keep && o->events) {
            keep = 0;
            for (int i = 0; i < o->n_events; i++)
                if (strcmp(o->events[i], ev->valuestring) == 0) keep = 1;
        }
        if (keep) {
            if (!o->table) {
                gd_esc_write(out, GD_ESC_JSON, line, len);
                fputc('\n', out);
            } else if (strcmp(ev->valuestring, "metrics") == 0) {
                gd_ctl_table_row(msg, row, sizeof(row));
                fprintf(out, "%s\n", row);
            } else {
                short_line(msg, ev->valuestring, row, sizeof(row));
                fprintf(out, "%s\n", row);
            }
            fflush(out);
            printed++;
        }
        cJSON_Delete(msg);
        if (o->count > 0 && printed >= o->count) break;
    }
    gd_client_close(&c);
    return status;
}

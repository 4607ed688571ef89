/* process.list and process.kill. The list reads /proc twice,
 * GD_PROCESS_SAMPLE_MS apart, both times in the thread pool, so cpu_pct is
 * the CPU used now (100 = one CPU), not a lifetime average. */
#include "commands/process.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uv.h>

#include "core/utf8.h"
#include "commands/process_read.h"

/* ---- signals ---- */

static const struct {
    const char *name;
    int signo;
} signal_names[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},   {"IOT", SIGABRT},
    {"POLL", SIGIO},   {"CLD", SIGCHLD},
};

static int parse_number(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 1 || v > SIGRTMAX) return -EINVAL;
    return (int)v;
}

int gd_signal_parse(const cJSON *v)
{
    if (!v) return SIGTERM;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d < 1 || d > SIGRTMAX || (double)(int)d != d) return -EINVAL;
        return (int)d;
    }
    if (!cJSON_IsString(v)) return -EINVAL;
    const char *s = v->valuestring;
    if (*s >= '0' && *s <= '9') return parse_number(s);
    if (strncasecmp(s, "SIG", 3) == 0) s += 3;
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (strcasecmp(s, signal_names[i].name) == 0) return signal_names[i].signo;
    /* Real-time signals: RTMIN, RTMIN+n, RTMAX, RTMAX-n. */
    if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
        int base = strncasecmp(s, "RTMIN", 5) == 0 ? SIGRTMIN : SIGRTMAX;
        const char *rest = s + 5;
        if (!*rest) return base;
        int sign = base == SIGRTMIN ? '+' : '-';
        if (*rest != sign) return -EINVAL;
        int n = parse_number(rest + 1);
        if (n < 0) return -EINVAL;
        int signo = sign == '+' ? base + n : base - n;
        return signo >= SIGRTMIN && signo <= SIGRTMAX ? signo : -EINVAL;
    }
    return -EINVAL;
}

const char *gd_signal_name(int signo, char *buf, size_t len)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
        if (signal_names[i].signo == signo) {
            snprintf(buf, len, "%s", signal_names[i].name);
            return buf;
        }
    }
    if (signo == SIGRTMIN)
        snprintf(buf, len, "RTMIN");
    else if (signo > SIGRTMIN && signo <= SIGRTMAX)
        snprintf(buf, len, "RTMIN+%d", signo - SIGRTMIN);
    else
        return NULL;
    return buf;
}

/* ---- process.list ---- */

typedef enum { SORT_CPU, SORT_RSS } sort_key_t;

typedef struct list_state_s {
    gd_request_t *req;
    uv_work_t work;
    uv_timer_t timer;
    char proc_root[GD_CFG_STR_MAX];
    sort_key_t sort_by;
    size_t limit; /* 0: all */
    int phase;    /* 0: first snapshot, 1: second */
    int error;    /* negative errno from the reader */
    gd_proc_list_t first, second;
    uint64_t first_ns, second_ns;
    /* Filled by the second work: per item of second. */
    double *cpu_pct;
    char (*user)[64];
    size_t *order; /* indexes into second, sorted, at most limit */
    size_t shown;
} list_state_t;

static void list_state_free(uv_handle_t *h)
{
    list_state_t *st = h->data;
    gd_proc_list_free(&st->first);
    gd_proc_list_free(&st->second);
    free(st->cpu_pct);
    free(st->user);
    free(st->order);
    free(st);
}

static int cmp_by_pid(const void *a, const void *b)
{
    const gd_proc_info_t *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* qsort has no context argument: each item carries a pointer to the state. */
typedef struct {
    const list_state_t *st;
    size_t index;
} sort_item_t;

static int cmp_items(const void *a, const void *b)
{
    const sort_item_t *x = a, *y = b;
    const list_state_t *st = x->st;
    const gd_proc_info_t *px = &st->second.items[x->index], *py = &st->second.items[y->index];
    if (st->sort_by == SORT_CPU) {
        double cx = st->cpu_pct[x->index], cy = st->cpu_pct[y->index];
        if (cx != cy) return cx < cy ? 1 : -1;
        if (px->rss_bytes != py->rss_bytes) return px->rss_bytes < py->rss_bytes ? 1 : -1;
    } else {
        if (px->rss_bytes != py->rss_bytes) return px->rss_bytes < py->rss_bytes ? 1 : -1;
        double cx = st->cpu_pct[x->index], cy = st->cpu_pct[y->index];
        if (cx != cy) return cx < cy ? 1 : -1;
    }
    return (px->pid > py->pid) - (px->pid < py->pid);
}

static void user_name(uid_t uid, char *out, size_t len)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found)
        snprintf(out, len, "%s", pw.pw_name);
    else
        snprintf(out, len, "%u", (unsigned)uid);
}

/* The second snapshot's post-processing, still in the pool: CPU rates,
 * user names (NSS may be slow), the sort. */
static int list_compute(list_state_t *st)
{
    size_t n = st->second.count;
    st->cpu_pct = calloc(n ? n : 1, sizeof(*st->cpu_pct));
    st->user = calloc(n ? n : 1, sizeof(*st->user));
    sort_item_t *items = calloc(n ? n : 1, sizeof(*items));
    if (!st->cpu_pct || !st->user || !items) {
        free(items);
        return -ENOMEM;
    }
    qsort(st->first.items, st->first.count, sizeof(gd_proc_info_t), cmp_by_pid);
    long hz = sysconf(_SC_CLK_TCK);
    double dt = (double)(st->second_ns - st->first_ns) / 1e9;
    uid_t last_uid = (uid_t)-1;
    for (size_t i = 0; i < n; i++) {
        const gd_proc_info_t *p = &st->second.items[i];
        const gd_proc_info_t *prev =
            bsearch(p, st->first.items, st->first.count, sizeof(gd_proc_info_t), cmp_by_pid);
        if (prev && prev->start_ticks == p->start_ticks && p->cpu_ticks >= prev->cpu_ticks &&
            dt > 0 && hz > 0)
            st->cpu_pct[i] = (double)(p->cpu_ticks - prev->cpu_ticks) / (double)hz / dt * 100.0;
        /* Consecutive processes often share a user: skip repeated lookups. */
        if (i > 0 && p->uid == last_uid)
            memcpy(st->user[i], st->user[i - 1], sizeof(st->user[i]));
        else
            user_name(p->uid, st->user[i], sizeof(st->user[i]));
        last_uid = p->uid;
        items[i].st = st;
        items[i].index = i;
    }
    qsort(items, n, sizeof(*items), cmp_items);
    st->shown = st->limit && st->limit < n ? st->limit : n;
    st->order = calloc(st->shown ? st->shown : 1, sizeof(*st->order));
    if (!st->order) {
        free(items);
        return -ENOMEM;
    }
    for (size_t i = 0; i < st->shown; i++)
        st->order[i] = items[i].index;
    free(items);
    return 0;
}

static void list_work(uv_work_t *w)
{
    list_state_t *st = w->data;
    if (st->phase == 0) {
        st->first_ns = uv_hrtime();
        st->error = gd_proc_read_all(st->proc_root, &st->first);
    } else {
        st->second_ns = uv_hrtime();
        st->error = gd_proc_read_all(st->proc_root, &st->second);
        if (st->error == 0) st->error = list_compute(st);
    }
}

static cJSON *string_sanitized(const char *s)
{
    gd_buf_t b;
    gd_buf_init(&b);
    cJSON *item = NULL;
    if (gd_utf8_sanitize(&b, s, strlen(s)) == 0) item = cJSON_CreateString(b.data ? b.data : "");
    gd_buf_free(&b);
    return item;
}

static cJSON *list_result(const list_state_t *st)
{
    cJSON *result = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(result, "processes");
    long hz = sysconf(_SC_CLK_TCK);
    for (size_t k = 0; k < st->shown; k++) {
        size_t i = st->order[k];
        const gd_proc_info_t *p = &st->second.items[i];
        cJSON *o = cJSON_CreateObject();
        char state[2] = {p->state, '\0'};
        cJSON_AddNumberToObject(o, "pid", p->pid);
        cJSON_AddNumberToObject(o, "ppid", p->ppid);
        cJSON_AddItemToObject(o, "name", string_sanitized(p->name));
        cJSON_AddItemToObject(o, "user", string_sanitized(st->user[i]));
        cJSON_AddStringToObject(o, "state", state);
        /* Two decimals are what a host can use; more is noise. */
        cJSON_AddNumberToObject(o, "cpu_pct", (double)(int64_t)(st->cpu_pct[i] * 100 + 0.5) / 100);
        cJSON_AddNumberToObject(o, "rss_bytes", (double)p->rss_bytes);
        cJSON_AddItemToObject(o, "cmdline", string_sanitized(p->cmdline));
        if (st->second.btime_s > 0 && hz > 0)
            cJSON_AddNumberToObject(o, "started_at",
                                    (double)(st->second.btime_s * 1000 +
                                             (int64_t)(p->start_ticks * 1000 / (uint64_t)hz)));
        else
            cJSON_AddNullToObject(o, "started_at");
        cJSON_AddItemToArray(arr, o);
    }
    return result;
}

static void list_after_work(uv_work_t *w, int status);

static void list_timer_cb(uv_timer_t *t)
{
    list_state_t *st = t->data;
    st->phase = 1;
    int rc = uv_queue_work(t->loop, &st->work, list_work, list_after_work);
    if (rc != 0) {
        gd_reply_error(st->req, "internal", "cannot queue work: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&st->timer, list_state_free);
    }
}

static void list_after_work(uv_work_t *w, int status)
{
    list_state_t *st = w->data;
    if (status != 0) {
        gd_reply_error(st->req, "internal", "process.list cancelled: %s", uv_strerror(status));
    } else if (st->error != 0) {
        gd_reply_errno(st->req, st->error, "reading processes");
    } else if (st->phase == 0) {
        uv_timer_start(&st->timer, list_timer_cb, GD_PROCESS_SAMPLE_MS, 0);
        return;
    } else {
        gd_reply_ok(st->req, list_result(st));
    }
    uv_close((uv_handle_t *)&st->timer, list_state_free);
}

static void cmd_list(gd_request_t *req, const cJSON *args)
{
    const char *sort_by = gd_arg_string(args, "sort_by", "cpu");
    sort_key_t key;
    if (strcmp(sort_by, "cpu") == 0) {
        key = SORT_CPU;
    } else if (strcmp(sort_by, "rss") == 0) {
        key = SORT_RSS;
    } else {
        gd_reply_error(req, "invalid_args", "sort_by must be \"cpu\" or \"rss\", not \"%.64s\"",
                       sort_by);
        return;
    }
    list_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        gd_reply_error(req, "internal", "out of memory");
        return;
    }
    st->req = req;
    st->sort_by = key;
    st->limit = (size_t)gd_arg_int(args, "limit", 0);
    snprintf(st->proc_root, sizeof(st->proc_root), "%s", req->env->config->agent.proc_root);
    if (!st->proc_root[0]) snprintf(st->proc_root, sizeof(st->proc_root), "/proc");
    gd_proc_list_init(&st->first);
    gd_proc_list_init(&st->second);
    st->work.data = st;
    uv_timer_init(req->env->loop, &st->timer);
    st->timer.data = st;
    int rc = uv_queue_work(req->env->loop, &st->work, list_work, list_after_work);
    if (rc != 0) {
        gd_reply_error(req, "internal", "cannot queue work: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&st->timer, list_state_free);
    }
}

/* ---- process.kill ---- */

static void cmd_kill(gd_request_t *req, const cJSON *args)
{
    int64_t pid64 = gd_arg_int(args, "pid", 0);
    /* pid 0 or -1 would signal a whole group, or everything: never. */
    if (pid64 < 1 || pid64 > INT32_MAX) {
        gd_reply_error(req, "invalid_args", "missing argument 'pid' (a process id, 1 or more)");
        return;
    }
    int pid = (int)pid64;
    const cJSON *sig_arg = cJSON_GetObjectItemCaseSensitive(args, "signal");
    int signo = gd_signal_parse(sig_arg);
    if (signo < 0) {
        char *text = cJSON_PrintUnformatted(sig_arg);
        gd_reply_error(req, "invalid_args",
                       "signal %.64s is not a signal name (\"TERM\", \"KILL\", ...) or a number "
                       "1..%d",
                       text ? text : "?", SIGRTMAX);
        cJSON_free(text);
        return;
    }
    if (pid == (int)getpid()) {
        gd_reply_error(req, "invalid_args", "pid %d is the agent itself", pid);
        return;
    }
    /* kill() of one of the agent's thread ids (libuv's pool, the metrics
     * log's writer) signals the whole agent: tgkill with signal 0 says
     * whether pid is a thread of this process, without /proc. */
    if (syscall(SYS_tgkill, getpid(), pid, 0) == 0) {
        gd_reply_error(req, "invalid_args", "pid %d is a thread of the agent", pid);
        return;
    }
    if (kill((pid_t)pid, signo) != 0) {
        int err = errno;
        if (err == ESRCH) {
            gd_reply_error(req, "not_found", "no process %d", pid);
            return;
        }
        char what[64];
        snprintf(what, sizeof(what), "kill %d", pid);
        gd_reply_errno(req, err, what);
        return;
    }
    cJSON *result = cJSON_CreateObject();
    cJSON_AddBoolToObject(result, "killed", 1);
    gd_reply_ok(req, result);
}

static const gd_arg_spec_t list_args[] = {
    {"sort_by", GD_ARG_STRING, 0, 0, 0, "\"cpu\" (default) or \"rss\", largest first"},
    {"limit", GD_ARG_INT, 0, 1, 1000000, "at most this many processes (default: all)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const gd_arg_spec_t kill_args[] = {
    {"pid", GD_ARG_INT, 1, 1, 2147483647, "the process to signal"},
    {"signal", GD_ARG_INT_OR_STRING, 0, 0, 0,
     "a name (\"TERM\", \"SIGKILL\", \"RTMIN+1\") or a number; default TERM"},
    {NULL, 0, 0, 0, 0, NULL},
};

const gd_command_t gd_commands_process[] = {
    {"process.list", cmd_list, GD_CMD_CONCURRENT,
     "The guest's processes from /proc, largest CPU or memory users first.", list_args,
     "{\"processes\": [{pid, ppid, name, user, state, cpu_pct, rss_bytes, cmdline, "
     "started_at}]}"},
    {"process.kill", cmd_kill, 0, "Sends a signal to one process.", kill_args,
     "{\"killed\": true}"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};

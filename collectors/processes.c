/* The processes collector: totals and the top processes by CPU over the
 * interval, from /proc/<pid>/stat. Each process's stat file stays open
 * between cycles (within an fd budget) and is re-read with one pread; the
 * /proc listing is read with getdents64 on a directory fd kept open, so a
 * cycle allocates nothing. Processes that ended are dropped; one that
 * vanishes mid-read is skipped. */
#include "collectors/processes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "collectors/procfs.h"
#include "collectors/rate.h"

#define PROC_NAME_MAX 64  /* comm is 16 bytes, kernel workers print up to 64 */
#define DENTS_BYTES 32768 /* one getdents64 buffer */

typedef struct proc_s {
    int pid;
    int fd; /* /proc/<pid>/stat kept open, or -1 past the fd budget */
    unsigned gen;
    char state;
    uint64_t start_ticks; /* starttime: tells a reused pid apart */
    uint64_t ticks;       /* utime + stime at the latest read */
    uint64_t delta;       /* ticks over the interval */
    uint64_t rss_bytes;
    char name[PROC_NAME_MAX];
} proc_t;

typedef struct top_entry_s {
    int pid;
    double cpu_pct;
    uint64_t rss_bytes;
    char name[PROC_NAME_MAX];
} top_entry_t;

typedef struct processes_state_s {
    int dirfd;
    gd_procfile_t loadavg; /* its last field is the last pid allocated */
    uint64_t last_pid;     /* as of the latest complete listing */
    int listed;            /* a listing completed */
    char *dents;
    gd_buf_t scratch;
    proc_t *procs; /* sorted by pid */
    size_t count, cap;
    size_t cursor; /* where the next pid of an ascending listing should be */
    unsigned gen;
    uint64_t prev_max_start; /* newest start time seen by the previous cycle */
    uint64_t max_start;
    size_t fds_open, fd_budget;
    long clk_tck;
    uint64_t page_size;
    /* Output. */
    uint64_t total, running;
    top_entry_t *top;
    size_t top_n, top_count;
} processes_state_t;

static void processes_fini(void *state);

static int set_top_n(processes_state_t *s, int n)
{
    size_t want = n > 0 ? (size_t)n : 0;
    if (want > s->top_n) {
        top_entry_t *p = realloc(s->top, want * sizeof(*p));
        if (!p) return -ENOMEM;
        s->top = p;
    }
    s->top_n = want;
    if (s->top_count > want) s->top_count = want;
    return 0;
}

static int processes_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    processes_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    gd_buf_init(&s->scratch);
    s->dirfd = open(env->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        int r = -errno;
        snprintf(err, errlen, "%s", env->proc_root);
        free(s);
        return r;
    }
    /* Without loadavg every cycle lists /proc; that is all it changes. */
    if (gd_procfile_open(&s->loadavg, env->proc_root, "loadavg") < 0) s->loadavg.fd = -1;
    s->dents = malloc(DENTS_BYTES);
    if (!s->dents || gd_buf_reserve(&s->scratch, 511) != 0 ||
        set_top_n(s, env->top_processes) != 0) {
        processes_fini(s);
        return -ENOMEM;
    }
    /* Keep at most half the fd limit for stat files; past it, a process's
     * file is opened and closed each cycle instead. */
    struct rlimit rl;
    s->fd_budget = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        s->fd_budget = rl.rlim_cur / 2;
    if (s->fd_budget > 65536) s->fd_budget = 65536;
    if (env->proc_fd_budget) s->fd_budget = env->proc_fd_budget;
    s->clk_tck = sysconf(_SC_CLK_TCK);
    if (s->clk_tck <= 0) s->clk_tck = 100;
    long ps = sysconf(_SC_PAGESIZE);
    s->page_size = ps > 0 ? (uint64_t)ps : 4096;
    *state = s;
    return 0;
}

static void processes_configure(void *state, const gd_collector_env_t *env)
{
    set_top_n(state, env->top_processes);
}

/* "1234 (name) S 1 ...": fields after the comm, which ends at the last ')'
 * (a comm may hold spaces and parentheses). */
static int parse_stat(processes_state_t *s, const char *text, size_t len, proc_t *p,
                      uint64_t *start)
{
    const char *open = memchr(text, '(', len);
    const char *close = memrchr(text, ')', len);
    if (!open || !close || close < open || close[1] != ' ') return -EINVAL;
    size_t nlen = (size_t)(close - open - 1);
    if (nlen >= PROC_NAME_MAX) nlen = PROC_NAME_MAX - 1;
    /* Field 3 is the state; utime is field 14, stime 15, starttime 22, rss
     * (pages) 24. Scanned in place, not split: this runs per process. */
    const char *f = close + 2;
    char state = *f;
    uint64_t utime, stime, rss;
    if (gd_procfs_skip(&f, 11) < 0 || gd_procfs_next_u64(&f, &utime) < 0 ||
        gd_procfs_next_u64(&f, &stime) < 0 || gd_procfs_skip(&f, 6) < 0 ||
        gd_procfs_next_u64(&f, start) < 0 || gd_procfs_skip(&f, 1) < 0 ||
        gd_procfs_next_u64(&f, &rss) < 0)
        return -EINVAL;
    memcpy(p->name, open + 1, nlen);
    p->name[nlen] = '\0';
    p->state = state;
    p->rss_bytes = rss * s->page_size;
    p->ticks = utime + stime;
    return 0;
}

/* Index of pid, or where it would be inserted (*found = 0). */
static size_t lookup(processes_state_t *s, int pid, int *found)
{
    size_t c = s->cursor;
    if (c < s->count && s->procs[c].pid == pid && (c == 0 || s->procs[c - 1].pid < pid)) {
        *found = 1;
        return c;
    }
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->procs[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->count && s->procs[lo].pid == pid;
    return lo;
}

static int open_stat(processes_state_t *s, int pid)
{
    char rel[32];
    snprintf(rel, sizeof(rel), "%d/stat", pid);
    return openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC);
}

/* Reads pid's stat through its kept fd (opening it if needed), or opens and
 * closes it past the budget. 0, or a negative errno when it is gone. */
static int read_stat(processes_state_t *s, proc_t *p)
{
    if (p->fd < 0 && s->fds_open < s->fd_budget) {
        p->fd = open_stat(s, p->pid);
        if (p->fd < 0) return -errno;
        s->fds_open++;
    }
    if (p->fd >= 0) {
        ssize_t n = gd_procfs_pread(p->fd, &s->scratch);
        return n < 0 ? (int)n : 0;
    }
    int fd = open_stat(s, p->pid);
    if (fd < 0) return -errno;
    ssize_t n = gd_procfs_pread(fd, &s->scratch);
    close(fd);
    return n < 0 ? (int)n : 0;
}

static void close_proc(processes_state_t *s, proc_t *p)
{
    if (p->fd >= 0) {
        close(p->fd);
        s->fds_open--;
    }
    p->fd = -1;
}

static int refresh(processes_state_t *s, proc_t *p, int found, const gd_collect_ctx_t *ctx);

static int visit_pid(processes_state_t *s, int pid, const gd_collect_ctx_t *ctx)
{
    int found;
    size_t idx = lookup(s, pid, &found);
    if (!found) {
        if (s->count == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            proc_t *np = realloc(s->procs, cap * sizeof(*np));
            if (!np) return -ENOMEM;
            s->procs = np;
            s->cap = cap;
        }
        memmove(&s->procs[idx + 1], &s->procs[idx], (s->count - idx) * sizeof(proc_t));
        s->count++;
        proc_t *p = &s->procs[idx];
        memset(p, 0, sizeof(*p));
        p->pid = pid;
        p->fd = -1;
    }
    s->cursor = idx + 1;
    return refresh(s, &s->procs[idx], found, ctx);
}

/* Reads one process and works out its ticks over the interval; marks it
 * seen this cycle unless it is gone. */
static int refresh(processes_state_t *s, proc_t *p, int found, const gd_collect_ctx_t *ctx)
{
    int r = read_stat(s, p);
    if (r < 0 && found) {
        /* The fd belongs to the process we opened it for: after an exit it
         * reads ESRCH even when the pid is already reused. Reopen once. */
        close_proc(s, p);
        r = read_stat(s, p);
    }
    if (r < 0) return 0; /* gone mid-read: skipped, and dropped below */
    uint64_t prev_ticks = p->ticks, start;
    if (parse_stat(s, s->scratch.data, s->scratch.len, p, &start) < 0) return 0;
    if (found && start == p->start_ticks) {
        p->delta = gd_counter_delta(prev_ticks, p->ticks);
    } else if (ctx->elapsed_s > 0 && start > s->prev_max_start) {
        p->delta = p->ticks; /* started during the interval: all its time is in it */
    } else {
        p->delta = 0; /* priming, or a process the previous cycle missed */
    }
    p->start_ticks = start;
    if (start > s->max_start) s->max_start = start;
    p->gen = s->gen;
    return 0;
}

static int busier(const proc_t *a, const top_entry_t *b, double a_pct)
{
    if (a_pct != b->cpu_pct) return a_pct > b->cpu_pct;
    if (a->rss_bytes != b->rss_bytes) return a->rss_bytes > b->rss_bytes;
    return a->pid < b->pid;
}

static void pick_top(processes_state_t *s, double elapsed_s)
{
    double k = elapsed_s > 0 ? 100.0 / ((double)s->clk_tck * elapsed_s) : 0.0;
    s->top_count = 0;
    for (size_t i = 0; i < s->count; i++) {
        const proc_t *p = &s->procs[i];
        double pct = (double)p->delta * k;
        /* Insertion into the short sorted top list. */
        size_t at = s->top_count;
        while (at > 0 && busier(p, &s->top[at - 1], pct))
            at--;
        if (at >= s->top_n) continue;
        size_t last = s->top_count < s->top_n ? s->top_count : s->top_n - 1;
        memmove(&s->top[at + 1], &s->top[at], (last - at) * sizeof(top_entry_t));
        if (s->top_count < s->top_n) s->top_count++;
        top_entry_t *t = &s->top[at];
        t->pid = p->pid;
        t->cpu_pct = pct;
        t->rss_bytes = p->rss_bytes;
        memcpy(t->name, p->name, sizeof(t->name));
    }
}

/* Visits every pid of the /proc listing. */
static int list_and_visit(processes_state_t *s, const gd_collect_ctx_t *ctx)
{
    s->cursor = 0;
    if (lseek(s->dirfd, 0, SEEK_SET) < 0) return -errno;
    for (;;) {
        ssize_t n = getdents64(s->dirfd, s->dents, DENTS_BYTES);
        if (n < 0) return -errno;
        if (n == 0) return 0;
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(s->dents + off);
            off += d->d_reclen;
            if (d->d_name[0] < '1' || d->d_name[0] > '9') continue;
            uint64_t pid;
            if (gd_procfs_u64(d->d_name, &pid) < 0 || pid > 0x7fffffff) continue;
            int r = visit_pid(s, (int)pid, ctx);
            if (r < 0) return r;
        }
    }
}

/* The last pid the kernel allocated (loadavg's fifth field), 0 if unknown. */
static uint64_t last_pid(processes_state_t *s)
{
    char *f[5];
    uint64_t pid;
    if (s->loadavg.fd < 0 || gd_procfile_read(&s->loadavg) < 0 ||
        gd_procfs_split(s->loadavg.buf.data, f, 5) < 5 || gd_procfs_u64(f[4], &pid) < 0)
        return 0;
    return pid;
}

static int processes_collect(void *state, const gd_collect_ctx_t *ctx)
{
    processes_state_t *s = state;
    s->gen++;
    s->max_start = s->prev_max_start;
    /* No pid allocated since the last listing means no new process: the
     * known ones are re-read through their fds and the listing (a fifth of
     * the cycle on an idle guest) is skipped. Ended ones fail to read. */
    uint64_t pid_now = last_pid(s);
    if (s->listed && pid_now && pid_now == s->last_pid) {
        for (size_t i = 0; i < s->count; i++)
            refresh(s, &s->procs[i], 1, ctx);
    } else {
        s->listed = 0;
        int r = list_and_visit(s, ctx);
        if (r < 0) return r;
        s->listed = 1;
        s->last_pid = pid_now;
    }
    /* Drop what ended (or could not be read) this cycle. */
    size_t kept = 0;
    s->running = 0;
    for (size_t i = 0; i < s->count; i++) {
        proc_t *p = &s->procs[i];
        if (p->gen != s->gen) {
            close_proc(s, p);
            continue;
        }
        if (p->state == 'R') s->running++;
        s->procs[kept++] = *p;
    }
    s->count = kept;
    s->total = kept;
    s->prev_max_start = s->max_start;
    pick_top(s, ctx->elapsed_s);
    return 0;
}

static void processes_write(void *state, gd_jw_t *w)
{
    processes_state_t *s = state;
    gd_jw_key(w, "processes");
    gd_jw_obj_begin(w);
    gd_jw_key(w, "total");
    gd_jw_u64(w, s->total);
    gd_jw_key(w, "running");
    gd_jw_u64(w, s->running);
    gd_jw_key(w, "top");
    gd_jw_arr_begin(w);
    for (size_t i = 0; i < s->top_count; i++) {
        const top_entry_t *t = &s->top[i];
        gd_jw_obj_begin(w);
        gd_jw_key(w, "pid");
        gd_jw_i64(w, t->pid);
        gd_jw_key(w, "name");
        gd_jw_str(w, t->name);
        gd_jw_key(w, "cpu_pct");
        gd_jw_num(w, t->cpu_pct);
        gd_jw_key(w, "rss_bytes");
        gd_jw_u64(w, t->rss_bytes);
        gd_jw_obj_end(w);
    }
    gd_jw_arr_end(w);
    gd_jw_obj_end(w);
}

static void processes_fini(void *state)
{
    processes_state_t *s = state;
    for (size_t i = 0; i < s->count; i++)
        close_proc(s, &s->procs[i]);
    if (s->dirfd >= 0) close(s->dirfd);
    gd_procfile_close(&s->loadavg);
    gd_buf_free(&s->scratch);
    free(s->dents);
    free(s->procs);
    free(s->top);
    free(s);
}

const gd_collector_t gd_collector_processes = {
    .name = "processes",
    .flags = GD_COLLECTOR_RATES,
    .init = processes_init,
    .collect = processes_collect,
    .write = processes_write,
    .fini = processes_fini,
    .configure = processes_configure,
};

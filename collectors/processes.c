/* The processes collector: totals and the top processes by CPU over the
 * interval. On the agent's own /proc a process's CPU time (all its threads)
 * comes from the kernel's per-process CPU clock, one clock_gettime with no
 * text to format or parse; /proc/<pid>/stat (name, state, RSS, start time)
 * is read when a process is first seen, when its pid may have been reused,
 * and for the processes about to be reported. Elsewhere (a fixture tree, a
 * /proc of another pid namespace, no CPU clocks) every cycle reads every
 * stat file, as the CPU time source too. Stat files stay open between
 * cycles within the collectors' fd share (env->fd_pool; past it a file is
 * opened and closed at each read); the /proc listing is read with getdents64
 * on a directory fd kept open, so a cycle allocates nothing. Processes that
 * ended are dropped; one that vanishes mid-read is skipped. */
#include "collectors/processes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "collectors/procfs.h"

#define PROC_NAME_MAX 64  /* comm is 16 bytes, kernel workers print up to 64 */
#define DENTS_BYTES 32768 /* one getdents64 buffer */

typedef struct proc_s {
    int pid;
    int fd;            /* /proc/<pid>/stat kept open, or -1 past the fd budget */
    unsigned gen;      /* the latest cycle that found it alive */
    unsigned stat_gen; /* the latest cycle that read its stat file */
    char state;
    uint64_t start_ticks; /* starttime: tells a reused pid apart */
    uint64_t cpu_ns;      /* CPU time of all its threads at the latest read */
    uint64_t delta_ns;    /* CPU time over the interval */
    uint64_t rss_bytes;
    char name[PROC_NAME_MAX];
} proc_t;

typedef struct top_entry_s {
    size_t idx; /* into procs, until the next cycle */
    int pid;
    double cpu_pct;
    uint64_t rss_bytes;
    char name[PROC_NAME_MAX];
} top_entry_t;

typedef struct processes_state_s {
    int dirfd;
    int use_clock;           /* CPU times from the per-process CPU clocks */
    gd_procfile_t loadavg;   /* running/total tasks and the last pid allocated */
    uint64_t listed_pid;     /* the last pid as of the latest complete listing */
    int listed;              /* a listing completed */
    uint64_t prev_pid;       /* the last pid as of the previous cycle; 0: unknown */
    uint64_t new_lo, new_hi; /* this cycle's new pids: (new_lo, new_hi] */
    int new_known;           /* that range is known */
    char *dents;
    gd_buf_t scratch;
    proc_t *procs; /* sorted by pid */
    size_t count, cap;
    size_t cursor; /* where the next pid of an ascending listing should be */
    unsigned gen;
    uint64_t prev_max_start; /* newest start time seen by the previous cycle */
    uint64_t max_start;
    gd_fd_pool_t *fd_pool; /* the collectors' share of the fd budget */
    uint64_t tick_ns;      /* one clock tick (stat's CPU and start times) */
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

/* The kernel's clock id for the CPU time of process pid, all its threads
 * (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) in linux/posix-timers.h, what
 * clock_getcpuclockid(3) returns, without its extra validating syscall). */
static clockid_t cpu_clock_of(int pid)
{
    return (clockid_t)((~(unsigned)pid) << 3) | 2;
}

/* CPU time of process pid in ns. 0, or -EINVAL when no such process. */
static int read_cpu_clock(int pid, uint64_t *ns)
{
    struct timespec ts;
    if (clock_gettime(cpu_clock_of(pid), &ts) != 0) return -errno;
    *ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return 0;
}

/* Reads loadavg ("0.18 0.21 0.09 1/92 7491": runnable/total tasks, the
 * last pid allocated). 0, or -1 when it is missing or malformed. */
static int read_loadavg(processes_state_t *s, uint64_t *running, uint64_t *last_pid)
{
    char *f[5];
    if (s->loadavg.fd < 0 || gd_procfile_read(&s->loadavg) < 0 ||
        gd_procfs_split(s->loadavg.buf.data, f, 5) < 5)
        return -1;
    char *slash = strchr(f[3], '/');
    if (!slash) return -1;
    *slash = '\0';
    if (gd_procfs_u64(f[3], running) < 0 || gd_procfs_u64(f[4], last_pid) < 0) return -1;
    return 0;
}

/* Whether proc_root is this process's own /proc (its "self" names our pid),
 * where pids are the ones clock_gettime understands. */
static int is_own_proc(int dirfd)
{
    char link[32];
    ssize_t n = readlinkat(dirfd, "self", link, sizeof(link) - 1);
    uint64_t pid;
    if (n <= 0) return 0;
    link[n] = '\0';
    return gd_procfs_u64(link, &pid) == 0 && pid == (uint64_t)getpid();
}

/* Chooses the CPU time source: the per-process clocks need the agent's own
 * /proc, clocks that answer, and loadavg's last pid (it tells which pids
 * may have been reused since the previous cycle). */
static void choose_cpu_source(processes_state_t *s)
{
    uint64_t ns, running, last;
    s->use_clock = 0;
    if (!is_own_proc(s->dirfd)) return; /* a fixture tree: its stat files are the truth */
    if (read_cpu_clock(getpid(), &ns) < 0)
        gd_info("metrics: processes: no per-process CPU clocks (%s): reading every "
                "/proc/<pid>/stat each cycle instead",
                strerror(errno));
    else if (read_loadavg(s, &running, &last) < 0)
        gd_info("metrics: processes: no last pid in loadavg: reading every /proc/<pid>/stat "
                "each cycle instead");
    else
        s->use_clock = 1;
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
    /* Without loadavg every cycle lists /proc and reads every stat file. */
    if (gd_procfile_open(&s->loadavg, env->proc_root, "loadavg") < 0) s->loadavg.fd = -1;
    s->dents = malloc(DENTS_BYTES);
    if (!s->dents || gd_buf_reserve(&s->scratch, 511) != 0 ||
        set_top_n(s, env->top_processes) != 0) {
        processes_fini(s);
        return -ENOMEM;
    }
    s->fd_pool = env->fd_pool;
    long tck = sysconf(_SC_CLK_TCK);
    s->tick_ns = 1000000000u / (uint64_t)(tck > 0 ? tck : 100);
    long ps = sysconf(_SC_PAGESIZE);
    s->page_size = ps > 0 ? (uint64_t)ps : 4096;
    choose_cpu_source(s);
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
                      uint64_t *start, uint64_t *ticks)
{
    const char *open = memchr(text, '(', len);
    const char *close = memrchr(text, ')', len);
    if (!open || !close || close < open || close[1] != ' ') return -EINVAL;
    size_t nlen = (size_t)(close - open - 1);
    if (nlen >= PROC_NAME_MAX) nlen = PROC_NAME_MAX - 1;
    /* Field 3 is the state; utime is field 14, stime 15, starttime 22, rss
     * (pages) 24. Scanned in place, not split. */
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
    *ticks = utime + stime;
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
    if (p->fd < 0 && gd_fd_pool_take(s->fd_pool)) {
        p->fd = open_stat(s, p->pid);
        if (p->fd < 0) {
            int r = -errno;
            gd_fd_pool_give(s->fd_pool);
            return r;
        }
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
        gd_fd_pool_give(s->fd_pool);
    }
    p->fd = -1;
}

/* Whether pid was allocated since the previous cycle (or that is unknown):
 * a known process with such a pid may be another one now. Pids are handed
 * out cyclically, so the new ones are (new_lo, new_hi], wrapping. */
static int maybe_reused(const processes_state_t *s, int pid)
{
    uint64_t p = (uint64_t)pid;
    if (!s->new_known) return 1;
    if (s->new_lo == s->new_hi) return 0;
    if (s->new_lo < s->new_hi) return p > s->new_lo && p <= s->new_hi;
    return p > s->new_lo || p <= s->new_hi;
}

/* The CPU time a process used over the interval. CPU time only grows and
 * is 64-bit nanoseconds: a step back is no wrap, it counts as nothing. */
static uint64_t cpu_delta(uint64_t prev, uint64_t now)
{
    return now >= prev ? now - prev : 0;
}

/* Reads a process's stat file: its identity (start time), name, state and
 * RSS, and, without clocks, its CPU time. 1 when it is alive (and marked
 * seen this cycle), 0 when it is gone. */
static int refresh_stat(processes_state_t *s, proc_t *p, int found, const gd_collect_ctx_t *ctx)
{
    int r = read_stat(s, p);
    if (r < 0 && found) {
        /* The fd belongs to the process we opened it for: after an exit it
         * reads ESRCH even when the pid is already reused. Reopen once. */
        close_proc(s, p);
        r = read_stat(s, p);
    }
    if (r < 0) return 0; /* gone mid-read: skipped, and dropped below */
    uint64_t prev_cpu = p->cpu_ns, start, ticks, cpu = 0;
    if (parse_stat(s, s->scratch.data, s->scratch.len, p, &start, &ticks) < 0) return 0;
    int same = found && start == p->start_ticks;
    if (same && p->gen == s->gen) {
        p->stat_gen = s->gen; /* its CPU time was read from its clock this cycle */
        return 1;
    }
    if (s->use_clock) {
        /* Read after the stat file, so both describe the same process. */
        r = read_cpu_clock(p->pid, &cpu);
        if (r == -EINVAL || r == -ESRCH) return 0;
        if (r < 0) {
            gd_info("metrics: processes: CPU clock of pid %d: %s: reading every "
                    "/proc/<pid>/stat each cycle from now on",
                    p->pid, strerror(-r));
            s->use_clock = 0;
        }
    }
    if (!s->use_clock) cpu = ticks * s->tick_ns;
    if (same) {
        p->delta_ns = cpu_delta(prev_cpu, cpu);
    } else if (ctx->elapsed_s > 0 && start > s->prev_max_start) {
        p->delta_ns = cpu; /* started during the interval: all its time is in it */
    } else {
        p->delta_ns = 0; /* priming, or a process the previous cycle missed */
    }
    p->cpu_ns = cpu;
    p->start_ticks = start;
    if (start > s->max_start) s->max_start = start;
    p->gen = p->stat_gen = s->gen;
    return 1;
}

/* Works out one process's CPU time over the interval: from its CPU clock
 * when it is known and its pid cannot have changed hands, else from its
 * stat file. 1 when it is alive, 0 when it is gone. */
static int refresh(processes_state_t *s, proc_t *p, int found, const gd_collect_ctx_t *ctx)
{
    if (s->use_clock && found && !maybe_reused(s, p->pid)) {
        uint64_t cpu = 0;
        int r = read_cpu_clock(p->pid, &cpu);
        if (r == -EINVAL || r == -ESRCH) return 0; /* ended */
        /* A clock that went back belongs to another process: the pid was
         * reused after this cycle read loadavg. The stat file tells. */
        if (r == 0 && cpu >= p->cpu_ns) {
            p->delta_ns = cpu - p->cpu_ns;
            p->cpu_ns = cpu;
            p->gen = s->gen;
            return 1;
        }
    }
    return refresh_stat(s, p, found, ctx);
}

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
    refresh(s, &s->procs[idx], found, ctx);
    return 0;
}

/* Visits every pid of the /proc listing. */
static int list_and_visit(processes_state_t *s, const gd_collect_ctx_t *ctx)
{
    s->cursor = 0;
    if (lseek(s->dirfd, 0, SEEK_SET) < 0) return -errno;
    for (;;) {
        /* void *: glibc declares a void * buffer, musl (the static build) a
         * struct dirent * (laid out as the kernel's linux_dirent64). */
        ssize_t n = getdents64(s->dirfd, (void *)s->dents, DENTS_BYTES);
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

/* Drops the processes not found alive this cycle, closing their files. */
static void drop_gone(processes_state_t *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->count; i++) {
        proc_t *p = &s->procs[i];
        if (p->gen != s->gen) {
            close_proc(s, p);
            continue;
        }
        s->procs[kept++] = *p;
    }
    s->count = kept;
}

static int busier(const proc_t *a, const top_entry_t *b, double a_pct)
{
    if (a_pct != b->cpu_pct) return a_pct > b->cpu_pct;
    if (a->rss_bytes != b->rss_bytes) return a->rss_bytes > b->rss_bytes;
    return a->pid < b->pid;
}

static void pick_top(processes_state_t *s, double elapsed_s)
{
    double k = elapsed_s > 0 ? 100.0 / (1e9 * elapsed_s) : 0.0;
    s->top_count = 0;
    for (size_t i = 0; i < s->count; i++) {
        const proc_t *p = &s->procs[i];
        double pct = (double)p->delta_ns * k;
        /* Insertion into the short sorted top list. */
        size_t at = s->top_count;
        while (at > 0 && busier(p, &s->top[at - 1], pct))
            at--;
        if (at >= s->top_n) continue;
        size_t last = s->top_count < s->top_n ? s->top_count : s->top_n - 1;
        memmove(&s->top[at + 1], &s->top[at], (last - at) * sizeof(top_entry_t));
        if (s->top_count < s->top_n) s->top_count++;
        top_entry_t *t = &s->top[at];
        t->idx = i;
        t->pid = p->pid;
        t->cpu_pct = pct;
        t->rss_bytes = p->rss_bytes;
        memcpy(t->name, p->name, sizeof(t->name));
    }
}

/* Picks the top and makes sure each one reported was read from its stat
 * file this cycle (with clocks, most were not): name, state and RSS are
 * then current. One that ended meanwhile is dropped and the pick is made
 * again; so is one whose fresh RSS may change its place among equals. */
static void report_top(processes_state_t *s, const gd_collect_ctx_t *ctx)
{
    for (;;) {
        pick_top(s, ctx->elapsed_s);
        int again = 0, gone = 0;
        for (size_t i = 0; i < s->top_count; i++) {
            proc_t *p = &s->procs[s->top[i].idx];
            if (p->stat_gen == s->gen) continue;
            again = 1;
            if (!refresh_stat(s, p, 1, ctx)) {
                p->gen = s->gen - 1;
                gone = 1;
            }
        }
        if (gone) drop_gone(s);
        if (!again) return;
    }
}

static int processes_collect(void *state, const gd_collect_ctx_t *ctx)
{
    processes_state_t *s = state;
    s->gen++;
    s->max_start = s->prev_max_start;
    uint64_t running = 0, pid_now = 0;
    int have_loadavg = read_loadavg(s, &running, &pid_now) == 0;
    s->new_known = have_loadavg && s->prev_pid != 0;
    s->new_lo = s->prev_pid;
    s->new_hi = pid_now;
    /* No pid allocated since the last listing means no new process: the
     * known ones are read again and the listing (a fifth of the cycle on
     * an idle guest) is skipped. Ended ones fail to read. */
    if (s->listed && have_loadavg && pid_now == s->listed_pid) {
        for (size_t i = 0; i < s->count; i++)
            refresh(s, &s->procs[i], 1, ctx);
    } else {
        s->listed = 0;
        int r = list_and_visit(s, ctx);
        if (r < 0) return r;
        s->listed = have_loadavg;
        s->listed_pid = pid_now;
    }
    if (have_loadavg) s->prev_pid = pid_now;
    drop_gone(s);
    report_top(s, ctx);
    s->total = s->count;
    /* Runnable tasks from loadavg; without it, the processes in state R
     * (then every stat file was read this cycle). */
    if (have_loadavg) {
        s->running = running;
    } else {
        s->running = 0;
        for (size_t i = 0; i < s->count; i++)
            s->running += s->procs[i].state == 'R';
    }
    s->prev_max_start = s->max_start;
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

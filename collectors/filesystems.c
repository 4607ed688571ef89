/* The filesystems collector: space and inodes of real mounts. The mount
 * table comes from <proc_root>/self/mountinfo, re-read only when the kernel
 * signals a change (POLLPRI); pseudo filesystems are left out. statvfs runs
 * in the libuv thread pool, one request per mount at most, so a hung NFS
 * server cannot stall the loop: a sample carries the latest completed
 * answer, and a mount whose request has been out longer than the bound is
 * reported with status "timeout" instead of being waited for. */
#include "collectors/filesystems.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collectors/procfs.h"

typedef struct fs_mount_s fs_mount_t;

/* One statvfs request. It outlives its mount when the mount goes away (or
 * the collector is freed) while a worker still runs it: it is then
 * orphaned and freed by its after-work callback. */
typedef struct fs_job_s {
    uv_work_t req;
    fs_mount_t *mount; /* NULL once orphaned */
    gd_statvfs_fn statvfs_fn;
    int in_flight;
    atomic_int finished; /* the worker is done, even if the loop has not run since */
    int rc;              /* 0 or a negative errno, set by the worker */
    struct statvfs sv;
    char path[]; /* the mount point */
} fs_job_t;

struct fs_mount_s {
    char *mount, *device, *type; /* one allocation, mount first */
    unsigned gen;
    fs_job_t *job;
    uint64_t queued_ns; /* when the outstanding request was queued */
    int answered;       /* a statvfs has completed at least once */
    int err;            /* errno of the latest answer, 0 when it succeeded */
    uint64_t total, used, avail;
    uint64_t inodes, inodes_free; /* f_files, f_ffree */
    double used_pct, inodes_used_pct;
};

typedef struct fs_state_s {
    uv_loop_t *loop;
    gd_procfile_t mountinfo;
    int stale_table;     /* read the mount table at the next collect */
    fs_mount_t **mounts; /* in mountinfo order */
    size_t count, cap;
    unsigned gen;
    gd_statvfs_fn statvfs_fn;
    uint64_t timeout_ns;
    uint64_t now_ns; /* of the latest collect */
} fs_state_t;

/* Filesystems without storage of their own (protocol.md: "pseudo"). */
static const char *const pseudo_types[] = {
    "autofs",          "binfmt_misc", "bpf",         "cgroup",     "cgroup2",
    "configfs",        "debugfs",     "devpts",      "devtmpfs",   "efivarfs",
    "fuse.gvfsd-fuse", "fuse.lxcfs",  "fuse.portal", "fusectl",    "hugetlbfs",
    "mqueue",          "nfsd",        "nsfs",        "overlay",    "proc",
    "pstore",          "ramfs",       "rpc_pipefs",  "securityfs", "selinuxfs",
    "sysfs",           "tmpfs",       "tracefs",     NULL,
};

static int is_pseudo(const char *type)
{
    for (int i = 0; pseudo_types[i]; i++)
        if (strcmp(type, pseudo_types[i]) == 0) return 1;
    return 0;
}

static int fs_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    fs_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int r = gd_procfile_open(&s->mountinfo, env->proc_root, "self/mountinfo");
    if (r < 0) {
        snprintf(err, errlen, "%s/self/mountinfo", env->proc_root);
        free(s);
        return r;
    }
    s->loop = env->loop;
    s->statvfs_fn = env->statvfs_fn ? env->statvfs_fn : statvfs;
    s->timeout_ns = env->fs_timeout_ns;
    s->stale_table = 1;
    *state = s;
    return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

static void free_mount(fs_mount_t *m)
{
    if (m->job) {
        if (m->job->in_flight) {
            m->job->mount = NULL; /* the after-work callback frees it */
            uv_cancel((uv_req_t *)&m->job->req);
        } else {
            free(m->job);
        }
    }
    free(m->mount);
    free(m);
}

static fs_mount_t *new_mount(fs_state_t *s, const char *mount, const char *device, const char *type)
{
    size_t lm = strlen(mount) + 1, ld = strlen(device) + 1, lt = strlen(type) + 1;
    fs_mount_t *m = calloc(1, sizeof(*m));
    char *strings = malloc(lm + ld + lt);
    fs_job_t *job = calloc(1, sizeof(*job) + lm);
    if (!m || !strings || !job) {
        free(m);
        free(strings);
        free(job);
        return NULL;
    }
    m->mount = memcpy(strings, mount, lm);
    m->device = memcpy(strings + lm, device, ld);
    m->type = memcpy(strings + lm + ld, type, lt);
    memcpy(job->path, mount, lm);
    job->mount = m;
    job->statvfs_fn = s->statvfs_fn;
    m->job = job;
    return m;
}

/* Re-reads the mount table, keeping the entries (and their latest answers)
 * of mounts that are still there. */
static int read_table(fs_state_t *s)
{
    ssize_t n = gd_procfile_read(&s->mountinfo);
    if (n < 0) return (int)n;
    s->gen++;
    char *cursor = s->mountinfo.buf.data, *line, *f[32];
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        /* "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard": id, parent,
         * dev, root, mount point, options, optional fields up to "-", then
         * type, source, super options. */
        int nf = gd_procfs_split(line, f, 32);
        if (nf == 0) continue;
        int sep = 6;
        while (sep < nf && strcmp(f[sep], "-") != 0)
            sep++;
        if (nf < 7 || sep + 2 >= nf) return -EINVAL;
        char *mount = f[4], *type = f[sep + 1], *device = f[sep + 2];
        if (is_pseudo(type)) continue;
        unescape(mount);
        unescape(device);
        /* The last mount on a path hides the earlier ones: same entry. */
        fs_mount_t *m = NULL;
        for (size_t i = 0; i < s->count; i++)
            if (strcmp(s->mounts[i]->mount, mount) == 0) {
                m = s->mounts[i];
                break;
            }
        if (m && (strcmp(m->device, device) != 0 || strcmp(m->type, type) != 0)) {
            fs_mount_t *fresh = new_mount(s, mount, device, type);
            if (!fresh) return -ENOMEM;
            for (size_t i = 0; i < s->count; i++)
                if (s->mounts[i] == m) s->mounts[i] = fresh;
            free_mount(m);
            m = fresh;
        }
        if (!m) {
            if (s->count == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 16;
                fs_mount_t **p = realloc(s->mounts, cap * sizeof(*p));
                if (!p) return -ENOMEM;
                s->mounts = p;
                s->cap = cap;
            }
            m = new_mount(s, mount, device, type);
            if (!m) return -ENOMEM;
            s->mounts[s->count++] = m;
        }
        m->gen = s->gen;
    }
    size_t kept = 0;
    for (size_t i = 0; i < s->count; i++) {
        if (s->mounts[i]->gen == s->gen)
            s->mounts[kept++] = s->mounts[i];
        else
            free_mount(s->mounts[i]);
    }
    s->count = kept;
    return 0;
}

/* The kernel flags a changed mount table with POLLPRI|POLLERR on an open
 * mountinfo (a fixture file never does: it is read once). */
static int table_changed(const fs_state_t *s)
{
    struct pollfd p = {.fd = s->mountinfo.fd, .events = POLLPRI};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR));
}

static void statvfs_work(uv_work_t *req)
{
    fs_job_t *job = req->data;
    job->rc = job->statvfs_fn(job->path, &job->sv) == 0 ? 0 : -errno;
    atomic_store_explicit(&job->finished, 1, memory_order_release);
}

static void statvfs_done(uv_work_t *req, int status)
{
    fs_job_t *job = req->data;
    job->in_flight = 0;
    fs_mount_t *m = job->mount;
    if (!m) {
        free(job);
        return;
    }
    if (status == UV_ECANCELED) return;
    m->answered = 1;
    if (job->rc < 0) {
        m->err = -job->rc;
        return;
    }
    const struct statvfs *v = &job->sv;
    uint64_t frsize = v->f_frsize ? v->f_frsize : v->f_bsize;
    uint64_t bfree = v->f_bfree <= v->f_blocks ? v->f_bfree : v->f_blocks;
    m->err = 0;
    m->total = (uint64_t)v->f_blocks * frsize;
    m->avail = (uint64_t)v->f_bavail * frsize;
    m->used = ((uint64_t)v->f_blocks - bfree) * frsize;
    /* As df(1): the share of what non-root users can have. */
    m->used_pct = m->used + m->avail ? 100.0 * (double)m->used / (double)(m->used + m->avail) : 0;
    m->inodes = v->f_files;
    m->inodes_free = v->f_ffree <= v->f_files ? v->f_ffree : v->f_files;
    m->inodes_used_pct = v->f_files && v->f_ffree <= v->f_files
                             ? 100.0 * (double)(v->f_files - v->f_ffree) / (double)v->f_files
                             : 0.0;
}

static int fs_collect(void *state, const gd_collect_ctx_t *ctx)
{
    fs_state_t *s = state;
    if (s->stale_table || table_changed(s)) {
        int r = read_table(s);
        if (r < 0) {
            s->stale_table = 1;
            return r;
        }
        s->stale_table = 0;
    }
    s->now_ns = ctx->now_ns;
    int failed = 0;
    for (size_t i = 0; i < s->count; i++) {
        fs_mount_t *m = s->mounts[i];
        fs_job_t *job = m->job;
        if (job->in_flight) continue; /* still waiting: never more than one per mount */
        job->req.data = job;
        atomic_store_explicit(&job->finished, 0, memory_order_relaxed);
        m->queued_ns = ctx->now_ns;
        if (uv_queue_work(s->loop, &job->req, statvfs_work, statvfs_done) == 0)
            job->in_flight = 1;
        else
            failed = 1;
    }
    return failed ? -EAGAIN : 0;
}

/* The errno's name ("EACCES") for a failed statvfs. musl (the static build)
 * has no strerrorname_np, so there the errors statvfs and the file systems
 * under it report are named here; another is written as EIO. */
static const char *errno_name(int err)
{
#ifdef __GLIBC__
    return strerrorname_np(err);
#else
    static const struct {
        int err;
        const char *name;
    } names[] = {
        {EACCES, "EACCES"},       {EPERM, "EPERM"},     {ENOENT, "ENOENT"},
        {ENOTDIR, "ENOTDIR"},     {ELOOP, "ELOOP"},     {ENAMETOOLONG, "ENAMETOOLONG"},
        {EOVERFLOW, "EOVERFLOW"}, {ENOSYS, "ENOSYS"},   {EINTR, "EINTR"},
        {ENOMEM, "ENOMEM"},       {EFAULT, "EFAULT"},   {EIO, "EIO"},
        {ENOTCONN, "ENOTCONN"},   {ESTALE, "ESTALE"},   {EHOSTDOWN, "EHOSTDOWN"},
        {ETIMEDOUT, "ETIMEDOUT"}, {ENODEV, "ENODEV"},   {ENXIO, "ENXIO"},
        {EAGAIN, "EAGAIN"},       {EBUSY, "EBUSY"},     {ECONNREFUSED, "ECONNREFUSED"},
        {EINVAL, "EINVAL"},       {ENOLINK, "ENOLINK"}, {EHOSTUNREACH, "EHOSTUNREACH"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].err == err) return names[i].name;
    return NULL;
#endif
}

static void fs_write(void *state, gd_jw_t *w)
{
    fs_state_t *s = state;
    gd_jw_key(w, "filesystems");
    gd_jw_arr_begin(w);
    for (size_t i = 0; i < s->count; i++) {
        const fs_mount_t *m = s->mounts[i];
        const char *status = "ok";
        if (m->job->in_flight && s->now_ns - m->queued_ns > s->timeout_ns &&
            !atomic_load_explicit(&m->job->finished, memory_order_acquire))
            status = "timeout";
        else if (!m->answered)
            status = "pending";
        else if (m->err)
            status = "error";
        gd_jw_obj_begin(w);
        gd_jw_key(w, "mount");
        gd_jw_str(w, m->mount);
        gd_jw_key(w, "device");
        gd_jw_str(w, m->device);
        gd_jw_key(w, "type");
        gd_jw_str(w, m->type);
        gd_jw_key(w, "total_bytes");
        gd_jw_u64(w, m->total);
        gd_jw_key(w, "used_bytes");
        gd_jw_u64(w, m->used);
        gd_jw_key(w, "avail_bytes");
        gd_jw_u64(w, m->avail);
        gd_jw_key(w, "used_pct");
        gd_jw_num(w, m->used_pct);
        gd_jw_key(w, "inodes_used_pct");
        gd_jw_num(w, m->inodes_used_pct);
        gd_jw_key(w, "inodes_total");
        gd_jw_u64(w, m->inodes);
        gd_jw_key(w, "inodes_free");
        gd_jw_u64(w, m->inodes_free);
        gd_jw_key(w, "status");
        gd_jw_str(w, status);
        if (m->err && status[0] == 'e') {
            gd_jw_key(w, "error");
            const char *name = errno_name(m->err);
            gd_jw_str(w, name ? name : "EIO");
        }
        gd_jw_obj_end(w);
    }
    gd_jw_arr_end(w);
}

static void fs_fini(void *state)
{
    fs_state_t *s = state;
    for (size_t i = 0; i < s->count; i++)
        free_mount(s->mounts[i]);
    free(s->mounts);
    gd_procfile_close(&s->mountinfo);
    free(s);
}

const gd_collector_t gd_collector_filesystems = {
    .name = "filesystems",
    .init = fs_init,
    .collect = fs_collect,
    .write = fs_write,
    .fini = fs_fini,
};

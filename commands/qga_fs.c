/* qemu-ga's filesystem commands: guest-get-fsinfo, guest-get-disks,
 * guest-fsfreeze-status/freeze/freeze-list/thaw and guest-fstrim.
 *
 * The mounts are qemu-ga's: those of <proc_root>/self/mountinfo backed by a
 * block device (major != 0, or btrfs and its device). Listing and statvfs,
 * FIFREEZE (which syncs first) and FITRIM run in the thread pool. FITHAW
 * runs on the loop: it does not wait on a frozen filesystem, and pool
 * threads may all be stuck in writes to one until it runs.
 *
 * Freezing is guarded three ways, so a host that goes away cannot leave the
 * guest frozen: commands.fsfreeze_timeout_ms after a freeze the agent thaws
 * by itself; a stopping agent thaws; and a marker file in agent.state_dir,
 * written before freezing and removed after thawing, makes the next start
 * thaw what a crashed run left frozen. While frozen (and while freezing),
 * only qemu-ga's allow-list of commands runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/health.h"
#include "core/log.h"
#include "core/metrics_log.h"
#include "collectors/procfs.h"
#include "commands/qga_internal.h"

/* ---- the mounts ---- */

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

void gd_qga_mounts_free(gd_qga_mount_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(m[i].dir);
        free(m[i].type);
        free(m[i].source);
    }
    free(m);
}

int gd_qga_mounts_parse(const char *text, gd_qga_mount_t **out, size_t *count)
{
    gd_qga_mount_t *m = NULL;
    size_t n = 0, cap = 0;
    char *copy = strdup(text ? text : "");
    if (!copy) return -ENOMEM;
    char *cursor = copy, *line;
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        /* id parent major:minor root mountpoint options [optional...] - type source super */
        char *f[64];
        int nf = gd_procfs_split(line, f, 64);
        int dash = -1;
        for (int i = 6; i < nf; i++) {
            if (strcmp(f[i], "-") == 0) {
                dash = i;
                break;
            }
        }
        unsigned major, minor;
        if (nf < 7 || dash < 0 || dash + 2 >= nf || sscanf(f[2], "%u:%u", &major, &minor) != 2)
            continue;
        unescape(f[4]);
        unescape(f[dash + 2]);
        if (major == 0) {
            /* btrfs reports 0 here: its device is the source's. */
            struct stat st;
            if (strcmp(f[dash + 1], "btrfs") != 0 || stat(f[dash + 2], &st) != 0 ||
                !S_ISBLK(st.st_mode))
                continue;
            major = major(st.st_rdev);
            minor = minor(st.st_rdev);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            gd_qga_mount_t *p = realloc(m, cap * sizeof(*m));
            if (!p) break;
            m = p;
        }
        m[n].dir = strdup(f[4]);
        m[n].type = strdup(f[dash + 1]);
        m[n].source = strdup(f[dash + 2]);
        m[n].major = major;
        m[n].minor = minor;
        n++;
    }
    free(copy);
    *out = m;
    *count = n;
    return 0;
}

static int read_mounts(const char *proc_root, gd_qga_mount_t **m, size_t *n)
{
    gd_buf_t buf;
    gd_buf_init(&buf);
    int r = gd_qga_read_file(proc_root, "self/mountinfo", &buf);
    if (r == 0) r = gd_qga_mounts_parse(buf.data, m, n);
    gd_buf_free(&buf);
    return r;
}

/* ---- freeze and thaw over a mount list ---- */

/* FIFREEZE and FITHAW ignore their argument, but their numbers declare an
 * int behind it, so a memory checker (valgrind) reads one: give it one. */
static int real_ioctl(int fd, unsigned long request, void *arg)
{
    int unused = 0;
    return ioctl(fd, request, arg != NULL ? arg : &unused);
}

static int listed(const cJSON *only, const char *dir)
{
    if (!only) return 1;
    for (const cJSON *e = only->child; e; e = e->next)
        if (cJSON_IsString(e) && strcmp(e->valuestring, dir) == 0) return 1;
    return 0;
}

int gd_qga_thaw_mounts(const gd_qga_mount_t *m, size_t n, gd_qga_ioctl_fn io)
{
    int thawed = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = open(m[i].dir, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        /* Freezes nest: thaw until the kernel says it is not frozen. */
        int counted = 0;
        for (int k = 0; k < 64 && io(fd, FITHAW, NULL) == 0; k++) {
            if (!counted) thawed++;
            counted = 1;
        }
        close(fd);
    }
    return thawed;
}

int gd_qga_freeze_mounts(const gd_qga_mount_t *m, size_t n, const cJSON *only, gd_qga_ioctl_fn io,
                         char *err, size_t errlen)
{
    int frozen = 0;
    /* Reverse order: a filesystem mounted on another freezes first. */
    for (size_t k = n; k-- > 0;) {
        if (!listed(only, m[k].dir)) continue;
        int fd = open(m[k].dir, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            snprintf(err, errlen, "failed to open %s: %s", m[k].dir, strerror(e));
            gd_qga_thaw_mounts(m, n, io);
            return -e;
        }
        /* EOPNOTSUPP: this filesystem cannot freeze, skip it. EBUSY: it is
         * frozen already (a bind mount of one frozen above). */
        if (io(fd, FIFREEZE, NULL) == 0) {
            frozen++;
        } else if (errno != EOPNOTSUPP && errno != EBUSY) {
            int e = errno;
            close(fd);
            snprintf(err, errlen, "failed to freeze %s: %s", m[k].dir, strerror(e));
            gd_qga_thaw_mounts(m, n, io);
            return -e;
        }
        close(fd);
    }
    return frozen;
}

/* ---- the freeze state ---- */

typedef enum { FS_THAWED, FS_FREEZING, FS_FROZEN } freeze_state_t;

struct gd_qga_freeze_s {
    freeze_state_t state;
    uv_timer_t timer; /* the thaw on timeout */
    int timer_open;
    gd_qga_req_t *waiting_thaw; /* a thaw that came while freezing */
    int job_running;
    gd_qga_ioctl_fn io;
};

static struct gd_qga_freeze_s *freeze_of(gd_qga_t *q)
{
    if (!q->freeze) {
        q->freeze = calloc(1, sizeof(*q->freeze));
        if (q->freeze) {
            q->freeze->io = real_ioctl;
            uv_timer_init(q->loop, &q->freeze->timer);
            q->freeze->timer.data = q;
            q->freeze->timer_open = 1;
        }
    }
    return q->freeze;
}

int gd_qga_frozen(const gd_qga_t *q)
{
    return q && q->freeze && q->freeze->state != FS_THAWED;
}

/* agent.state_dir/fsfreeze: there while anything may be frozen. */
static void marker_path(const gd_qga_t *q, char *out, size_t len)
{
    snprintf(out, len, "%s/fsfreeze", q->agent->cfg.agent.state_dir);
}

static void marker_set(gd_qga_t *q, int on)
{
    char path[GD_CFG_STR_MAX + 16];
    marker_path(q, path, sizeof(path));
    if (!on) {
        unlink(path);
        return;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        gd_debug("qga: no freeze marker %s: %s", path, strerror(errno));
        return;
    }
    fsync(fd);
    close(fd);
}

/* From a freeze until the thaw the agent writes to no file of its own: log
 * lines are held and the metrics log waits (a write to a frozen filesystem
 * blocks until the thaw; on the loop it would block the thaw itself), as
 * qemu-ga stops logging while frozen. */
static void quiet(gd_qga_t *q, int on)
{
    gd_metrics_log_pause(gd_health_metrics_log(q->agent), on);
    if (on)
        gd_log_hold();
    else
        gd_log_release();
}

/* Thaws every mount, now, on the loop. Returns how many were thawed. */
static int thaw_now(gd_qga_t *q, const char *why)
{
    gd_qga_mount_t *m = NULL;
    size_t n = 0;
    int thawed = 0;
    if (read_mounts(q->agent->cfg.agent.proc_root, &m, &n) == 0) {
        thawed = gd_qga_thaw_mounts(m, n, q->freeze ? q->freeze->io : real_ioctl);
        gd_qga_mounts_free(m, n);
    }
    quiet(q, 0);
    if (q->freeze) {
        q->freeze->state = FS_THAWED;
        uv_timer_stop(&q->freeze->timer);
    }
    marker_set(q, 0);
    gd_info("qga: thawed %d filesystem(s) (%s)", thawed, why);
    return thawed;
}

static void on_thaw_timer(uv_timer_t *t)
{
    gd_qga_t *q = t->data;
    gd_warn("qga: filesystems frozen for commands.fsfreeze_timeout_ms (%lld ms); thawing",
            (long long)q->agent->cfg.commands.fsfreeze_timeout_ms);
    thaw_now(q, "timeout");
}

typedef struct freeze_job_s {
    uv_work_t work;
    gd_qga_req_t *req;
    char proc_root[GD_CFG_STR_MAX];
    cJSON *only; /* guest-fsfreeze-freeze-list's mountpoints, or NULL */
    gd_qga_ioctl_fn io;
    int result;
    char error[512];
} freeze_job_t;

static void freeze_work(uv_work_t *w)
{
    freeze_job_t *j = w->data;
    gd_qga_mount_t *m = NULL;
    size_t n = 0;
    int r = read_mounts(j->proc_root, &m, &n);
    if (r < 0) {
        j->result = r;
        snprintf(j->error, sizeof(j->error), "cannot read the mount table: %s", strerror(-r));
        return;
    }
    j->result = gd_qga_freeze_mounts(m, n, j->only, j->io, j->error, sizeof(j->error));
    gd_qga_mounts_free(m, n);
}

static void cmd_thaw(gd_qga_req_t *req, const cJSON *args);

static void freeze_after(uv_work_t *w, int status)
{
    freeze_job_t *j = w->data;
    gd_qga_t *q = j->req->qga;
    struct gd_qga_freeze_s *fz = q->freeze;
    fz->job_running = 0;
    if (status == UV_ECANCELED) {
        j->result = -ECANCELED;
        snprintf(j->error, sizeof(j->error), "cancelled");
    }
    if (j->result > 0 && !q->stopping) {
        fz->state = FS_FROZEN;
        uint64_t ms = (uint64_t)q->agent->cfg.commands.fsfreeze_timeout_ms;
        uv_timer_start(&fz->timer, on_thaw_timer, ms, 0);
        gd_info("qga: froze %d filesystem(s); thawing in %llu ms at the latest", j->result,
                (unsigned long long)ms);
        gd_qga_reply(j->req, gd_qga_json_int(j->result));
    } else {
        fz->state = FS_THAWED;
        if (j->result > 0) thaw_now(q, "agent stopping");
        quiet(q, 0);
        marker_set(q, 0);
        if (j->result < 0)
            gd_qga_reply_error(j->req, "GenericError", "%s", j->error);
        else
            gd_qga_reply(j->req, gd_qga_json_int(j->result));
    }
    cJSON_Delete(j->only);
    free(j);
    if (fz->waiting_thaw) {
        gd_qga_req_t *thaw = fz->waiting_thaw;
        fz->waiting_thaw = NULL;
        cmd_thaw(thaw, thaw->args);
    }
}

static void start_freeze(gd_qga_req_t *req, const cJSON *only)
{
    gd_qga_t *q = req->qga;
    struct gd_qga_freeze_s *fz = freeze_of(q);
    if (!fz) {
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    if (fz->state != FS_THAWED) {
        gd_qga_reply_error(req, "GenericError",
                           "The command guest-fsfreeze-freeze has been "
                           "disabled: the agent is in frozen state");
        return;
    }
    freeze_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    j->req = req;
    j->io = fz->io;
    snprintf(j->proc_root, sizeof(j->proc_root), "%s", q->agent->cfg.agent.proc_root);
    j->only = only ? cJSON_Duplicate(only, 1) : NULL;
    j->work.data = j;
    marker_set(q, 1); /* before anything is frozen: a crash now is thawed at the next start */
    fz->state = FS_FREEZING;
    fz->job_running = 1;
    quiet(q, 1);
    if (uv_queue_work(q->loop, &j->work, freeze_work, freeze_after) != 0) {
        quiet(q, 0);
        fz->state = FS_THAWED;
        fz->job_running = 0;
        marker_set(q, 0);
        cJSON_Delete(j->only);
        free(j);
        gd_qga_reply_error(req, "GenericError", "cannot queue the work");
    }
}

static void cmd_freeze(gd_qga_req_t *req, const cJSON *args)
{
    start_freeze(req, NULL);
}

static void cmd_freeze_list(gd_qga_req_t *req, const cJSON *args)
{
    start_freeze(req, cJSON_GetObjectItemCaseSensitive(args, "mountpoints"));
}

static void cmd_thaw(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_t *q = req->qga;
    if (q->freeze && q->freeze->job_running) {
        if (q->freeze->waiting_thaw) {
            gd_qga_reply_error(req, "GenericError", "a thaw is already waiting for the freeze");
            return;
        }
        q->freeze->waiting_thaw = req; /* answered when the freeze is done */
        return;
    }
    gd_qga_reply(req, gd_qga_json_int(thaw_now(q, "guest-fsfreeze-thaw")));
}

static void cmd_status(gd_qga_req_t *req, const cJSON *args)
{
    int frozen = req->qga->freeze && req->qga->freeze->state == FS_FROZEN;
    gd_qga_reply(req, cJSON_CreateString(frozen ? "frozen" : "thawed"));
}

int gd_qga_freeze_start(gd_qga_t *q)
{
    char path[GD_CFG_STR_MAX + 16];
    marker_path(q, path, sizeof(path));
    if (access(path, F_OK) == 0) {
        gd_warn("qga: %s says a previous run froze filesystems; thawing", path);
        thaw_now(q, "left frozen by a previous run");
    }
    return 0;
}

void gd_qga_freeze_stop(gd_qga_t *q)
{
    struct gd_qga_freeze_s *fz = q->freeze;
    if (!fz) return;
    if (fz->state == FS_FROZEN) thaw_now(q, "agent stopping");
    /* A freeze still in the pool is thawed when it comes back (q->stopping). */
    if (fz->timer_open) {
        fz->timer_open = 0;
        uv_close((uv_handle_t *)&fz->timer, NULL);
    }
}

void gd_qga_freeze_free(gd_qga_t *q)
{
    free(q->freeze);
    q->freeze = NULL;
}

/* ---- guest-fstrim ---- */

typedef struct trim_job_s {
    uv_work_t work;
    gd_qga_req_t *req;
    char proc_root[GD_CFG_STR_MAX];
    uint64_t minimum;
    cJSON *result;
} trim_job_t;

static void trim_work(uv_work_t *w)
{
    trim_job_t *j = w->data;
    gd_qga_mount_t *m = NULL;
    size_t n = 0;
    j->result = cJSON_CreateObject();
    cJSON *paths = cJSON_AddArrayToObject(j->result, "paths");
    if (read_mounts(j->proc_root, &m, &n) < 0) return;
    for (size_t i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "path", m[i].dir);
        cJSON_AddItemToArray(paths, r);
        int fd = open(m[i].dir, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            char msg[256];
            snprintf(msg, sizeof(msg), "failed to open: %s", strerror(errno));
            cJSON_AddStringToObject(r, "error", msg);
            continue;
        }
        struct fstrim_range range = {.start = 0, .len = UINT64_MAX, .minlen = j->minimum};
        if (ioctl(fd, FITRIM, &range) != 0) {
            char msg[256];
            if (errno == ENOTTY || errno == EOPNOTSUPP)
                snprintf(msg, sizeof(msg), "trim not supported");
            else
                snprintf(msg, sizeof(msg), "failed to trim: %s", strerror(errno));
            cJSON_AddStringToObject(r, "error", msg);
        } else {
            gd_qga_json_add_int(r, "minimum", (int64_t)range.minlen);
            gd_qga_json_add_int(r, "trimmed", (int64_t)range.len);
        }
        close(fd);
    }
    gd_qga_mounts_free(m, n);
}

static void trim_after(uv_work_t *w, int status)
{
    trim_job_t *j = w->data;
    if (status == UV_ECANCELED) {
        cJSON_Delete(j->result);
        gd_qga_reply_error(j->req, "GenericError", "cancelled");
    } else {
        gd_qga_reply(j->req, j->result);
    }
    free(j);
}

static void cmd_fstrim(gd_qga_req_t *req, const cJSON *args)
{
    int64_t minimum = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, "minimum");
    if (v) gd_qga_json_get_int(v, &minimum);
    if (minimum < 0) {
        gd_qga_reply_error(req, "GenericError", "Parameter 'minimum' must not be negative");
        return;
    }
    trim_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    j->req = req;
    j->minimum = (uint64_t)minimum;
    snprintf(j->proc_root, sizeof(j->proc_root), "%s", req->qga->agent->cfg.agent.proc_root);
    j->work.data = j;
    if (uv_queue_work(req->qga->loop, &j->work, trim_work, trim_after) != 0) {
        free(j);
        gd_qga_reply_error(req, "GenericError", "cannot queue the work");
    }
}

/* ---- the disks behind a block device (sysfs) ---- */

/* The device's sysfs directory: realpath of <sys_root>/dev/block/M:m. */
static int device_syspath(const char *sys_root, unsigned major, unsigned minor, char *out)
{
    char rel[64], path[GD_PROCFS_PATH_MAX];
    snprintf(rel, sizeof(rel), "dev/block/%u:%u", major, minor);
    if (gd_procfs_path(path, sizeof(path), sys_root, rel) < 0) return -ENAMETOOLONG;
    return realpath(path, out) ? 0 : -errno;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The driver of the PCI device at syspath[0..len). */
static void pci_driver(const char *syspath, size_t len, char *out, size_t outlen)
{
    char path[PATH_MAX], target[PATH_MAX];
    out[0] = '\0';
    if (len + 8 >= sizeof(path)) return;
    memcpy(path, syspath, len);
    strcpy(path + len, "/driver");
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0) return;
    target[n] = '\0';
    const char *name = base_name(target);
    size_t n2 = strlen(name);
    if (n2 >= outlen) return; /* no driver name is that long */
    memcpy(out, name, n2 + 1);
}

/* A GuestDiskAddress for the real (non-virtual) block device at syspath. */
static cJSON *disk_address(const char *syspath, const char *dev_name)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *pci = cJSON_AddObjectToObject(d, "pci-controller");
    int addr[4] = {-1, -1, -1, -1};
    const char *bus_type = "unknown";
    int unit = 0, found = 0;
    const char *p = strstr(syspath, "/devices/pci");
    int consumed = 0;
    if (p && sscanf(p + 12, "%*x:%*x/%x:%x:%x.%x%n", &addr[0], &addr[1], &addr[2], &addr[3],
                    &consumed) >= 4) {
        p += 12 + consumed;
        char driver[64];
        /* The first PCI function on the path whose driver is a disk controller. */
        for (;;) {
            pci_driver(syspath, (size_t)(p - syspath), driver, sizeof(driver));
            if (!strcmp(driver, "virtio-pci") || !strcmp(driver, "ahci") ||
                !strcmp(driver, "ata_piix") || !strcmp(driver, "nvme") ||
                !strcmp(driver, "sym53c8xx")) {
                found = 1;
                break;
            }
            int a[4], used = 0;
            if (sscanf(p, "/%x:%x:%x.%x%n", &a[0], &a[1], &a[2], &a[3], &used) != 4) break;
            memcpy(addr, a, sizeof(addr));
            p += used;
        }
        if (found) {
            unsigned tgt[3];
            const char *t = strstr(syspath, "/target");
            int has_tgt =
                t && sscanf(t + 7, "%*u:%*u:%*u/%*u:%u:%u:%u", &tgt[0], &tgt[1], &tgt[2]) == 3;
            if (!strcmp(driver, "virtio-pci")) {
                bus_type = has_tgt ? "scsi" : "virtio";
                unit = has_tgt ? (int)tgt[2] : 0;
            } else if (!strcmp(driver, "nvme")) {
                bus_type = "nvme";
            } else if (!strcmp(driver, "ahci")) {
                bus_type = "sata";
            } else if (!strcmp(driver, "ata_piix")) {
                bus_type = "ide";
                unit = has_tgt ? (int)tgt[1] : 0;
            } else {
                bus_type = "scsi";
                unit = has_tgt ? (int)tgt[1] : 0;
            }
        }
    }
    if (!found) addr[0] = addr[1] = addr[2] = addr[3] = -1;
    gd_qga_json_add_int(pci, "domain", addr[0]);
    gd_qga_json_add_int(pci, "bus", addr[1]);
    gd_qga_json_add_int(pci, "slot", addr[2]);
    gd_qga_json_add_int(pci, "function", addr[3]);
    cJSON_AddStringToObject(d, "bus-type", bus_type);
    gd_qga_json_add_int(d, "bus", 0);
    gd_qga_json_add_int(d, "target", 0);
    gd_qga_json_add_int(d, "unit", unit);
    /* The serial and node of the whole disk (a partition's parent). */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/serial", syspath);
    gd_buf_t buf;
    gd_buf_init(&buf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(path, sizeof(path), "%s/../serial", syspath);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd >= 0) {
        if (gd_procfs_pread(fd, &buf) > 0) {
            buf.data[strcspn(buf.data, "\n")] = '\0';
            if (buf.data[0]) cJSON_AddStringToObject(d, "serial", buf.data);
        }
        close(fd);
    }
    gd_buf_free(&buf);
    char dev[300];
    snprintf(dev, sizeof(dev), "/dev/%s", dev_name);
    cJSON_AddStringToObject(d, "dev", dev);
    return d;
}

/* Adds the disks behind syspath to list: itself when real, else (device
 * mapper, md) those of its slaves; loop devices have none. */
static void add_disks(cJSON *list, const char *syspath, int depth)
{
    if (depth > 8) return;
    if (!strstr(syspath, "/devices/virtual/block/")) {
        cJSON_AddItemToArray(list, disk_address(syspath, base_name(syspath)));
        return;
    }
    char slaves[PATH_MAX];
    snprintf(slaves, sizeof(slaves), "%s/slaves", syspath);
    DIR *d = opendir(slaves);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char link[PATH_MAX + 256], real[PATH_MAX];
        snprintf(link, sizeof(link), "%s/%s", slaves, de->d_name);
        if (realpath(link, real)) add_disks(list, real, depth + 1);
    }
    closedir(d);
}

/* ---- guest-get-fsinfo ---- */

cJSON *gd_qga_fsinfo(const char *proc_root, const char *sys_root)
{
    gd_qga_mount_t *m = NULL;
    size_t n = 0;
    if (read_mounts(proc_root, &m, &n) < 0) return NULL;
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        char syspath[PATH_MAX];
        cJSON *fs = cJSON_CreateObject();
        int have_sys = device_syspath(sys_root, m[i].major, m[i].minor, syspath) == 0;
        char name[64];
        snprintf(name, sizeof(name), "%u:%u", m[i].major, m[i].minor);
        cJSON_AddStringToObject(fs, "name", have_sys ? base_name(syspath) : name);
        cJSON_AddStringToObject(fs, "mountpoint", m[i].dir);
        cJSON_AddStringToObject(fs, "type", m[i].type);
        struct statvfs sv;
        if (statvfs(m[i].dir, &sv) == 0) {
            uint64_t used = (uint64_t)(sv.f_blocks - sv.f_bfree);
            gd_qga_json_add_uint(fs, "used-bytes", used * sv.f_frsize);
            gd_qga_json_add_uint(fs, "total-bytes", (used + sv.f_bavail) * sv.f_frsize);
            gd_qga_json_add_uint(fs, "total-bytes-privileged", (uint64_t)sv.f_blocks * sv.f_frsize);
        }
        cJSON *disks = cJSON_AddArrayToObject(fs, "disk");
        if (have_sys) {
            /* A partition's disk is its parent directory. */
            char part[PATH_MAX + 16];
            snprintf(part, sizeof(part), "%s/partition", syspath);
            if (access(part, F_OK) == 0) {
                char parent[PATH_MAX];
                snprintf(parent, sizeof(parent), "%s", syspath);
                char *slash = strrchr(parent, '/');
                if (slash) *slash = '\0';
                cJSON *d = disk_address(parent, base_name(syspath));
                cJSON_AddItemToArray(disks, d);
            } else {
                add_disks(disks, syspath, 0);
            }
        }
        cJSON_AddItemToArray(list, fs);
    }
    gd_qga_mounts_free(m, n);
    return list;
}

/* ---- guest-get-disks ---- */

static void add_partitions(cJSON *list, const char *disk_dir, const char *disk)
{
    DIR *d = opendir(disk_dir);
    if (!d) return;
    struct dirent *de;
    size_t dlen = strlen(disk);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, disk, dlen) != 0 || !de->d_name[dlen]) continue;
        char part[PATH_MAX + 300];
        snprintf(part, sizeof(part), "%s/%s/partition", disk_dir, de->d_name);
        if (access(part, F_OK) != 0) continue;
        cJSON *p = cJSON_CreateObject();
        char dev[300];
        snprintf(dev, sizeof(dev), "/dev/%s", de->d_name);
        cJSON_AddStringToObject(p, "name", dev);
        cJSON_AddBoolToObject(p, "partition", 1);
        cJSON *deps = cJSON_AddArrayToObject(p, "dependencies");
        snprintf(dev, sizeof(dev), "/dev/%s", disk);
        cJSON_AddItemToArray(deps, cJSON_CreateString(dev));
        cJSON_AddItemToArray(list, p);
    }
    closedir(d);
}

cJSON *gd_qga_disks(const char *sys_root)
{
    char dir[GD_PROCFS_PATH_MAX];
    if (gd_procfs_path(dir, sizeof(dir), sys_root, "block") < 0) return NULL;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    cJSON *list = cJSON_CreateArray();
    gd_buf_t buf;
    gd_buf_init(&buf);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char link[GD_PROCFS_PATH_MAX + 300], disk_dir[PATH_MAX];
        snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
        if (!realpath(link, disk_dir)) continue;
        char rel[300];
        snprintf(rel, sizeof(rel), "block/%s/size", de->d_name);
        /* No size or a zero size (an unused loop device): not a disk. The
         * newline is cut first: "0" alone is zero too. */
        if (gd_qga_read_file(sys_root, rel, &buf) != 0) continue;
        buf.data[strcspn(buf.data, "\r\n")] = '\0';
        if (!buf.data[0] || strcmp(buf.data, "0") == 0) continue;
        cJSON *disk = cJSON_CreateObject();
        char dev[300];
        snprintf(dev, sizeof(dev), "/dev/%s", de->d_name);
        cJSON_AddStringToObject(disk, "name", dev);
        cJSON_AddBoolToObject(disk, "partition", 0);
        cJSON *deps = cJSON_AddArrayToObject(disk, "dependencies");
        char slaves[PATH_MAX + 16];
        snprintf(slaves, sizeof(slaves), "%s/slaves", disk_dir);
        DIR *sd = opendir(slaves);
        struct dirent *se;
        while (sd && (se = readdir(sd)) != NULL) {
            if (se->d_name[0] == '.') continue;
            snprintf(dev, sizeof(dev), "/dev/%s", se->d_name);
            cJSON_AddItemToArray(deps, cJSON_CreateString(dev));
        }
        if (sd) closedir(sd);
        snprintf(rel, sizeof(rel), "block/%s/dm/name", de->d_name);
        if (gd_qga_read_file(sys_root, rel, &buf) == 0) {
            buf.data[strcspn(buf.data, "\n")] = '\0';
            if (buf.data[0]) cJSON_AddStringToObject(disk, "alias", buf.data);
        }
        if (!strstr(disk_dir, "/devices/virtual/"))
            cJSON_AddItemToObject(disk, "address", disk_address(disk_dir, de->d_name));
        cJSON_AddItemToArray(list, disk);
        add_partitions(list, disk_dir, de->d_name);
    }
    closedir(d);
    gd_buf_free(&buf);
    return list;
}

/* ---- fsinfo and disks: the walk runs in the pool ---- */

typedef struct walk_job_s {
    uv_work_t work;
    gd_qga_req_t *req;
    int disks; /* guest-get-disks, else guest-get-fsinfo */
    char proc_root[GD_CFG_STR_MAX], sys_root[GD_CFG_STR_MAX];
    cJSON *result;
} walk_job_t;

static void walk_work(uv_work_t *w)
{
    walk_job_t *j = w->data;
    j->result = j->disks ? gd_qga_disks(j->sys_root) : gd_qga_fsinfo(j->proc_root, j->sys_root);
}

static void walk_after(uv_work_t *w, int status)
{
    walk_job_t *j = w->data;
    if (status == UV_ECANCELED || !j->result) {
        cJSON_Delete(j->result);
        gd_qga_reply_error(j->req, "GenericError", "cannot read %s",
                           j->disks ? "/sys/block" : "the mount table");
    } else {
        gd_qga_reply(j->req, j->result);
    }
    free(j);
}

static void start_walk(gd_qga_req_t *req, int disks)
{
    walk_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        gd_qga_reply_error(req, "GenericError", "out of memory");
        return;
    }
    const gd_config_t *cfg = &req->qga->agent->cfg;
    j->req = req;
    j->disks = disks;
    snprintf(j->proc_root, sizeof(j->proc_root), "%s", cfg->agent.proc_root);
    snprintf(j->sys_root, sizeof(j->sys_root), "%s", cfg->agent.sys_root);
    j->work.data = j;
    if (uv_queue_work(req->qga->loop, &j->work, walk_work, walk_after) != 0) {
        free(j);
        gd_qga_reply_error(req, "GenericError", "cannot queue the work");
    }
}

static void cmd_fsinfo(gd_qga_req_t *req, const cJSON *args)
{
    start_walk(req, 0);
}

static void cmd_disks(gd_qga_req_t *req, const cJSON *args)
{
    start_walk(req, 1);
}

static const gd_qga_arg_t freeze_list_args[] = {{"mountpoints", QGA_ARG_STR_LIST, 0}, {NULL, 0, 0}};
static const gd_qga_arg_t fstrim_args[] = {{"minimum", QGA_ARG_INT, 0}, {NULL, 0, 0}};

const gd_qga_cmd_t gd_qga_cmds_fs[] = {
    {"guest-get-fsinfo", cmd_fsinfo, 0, "metrics.get", NULL},
    {"guest-get-disks", cmd_disks, 0, "metrics.get", NULL},
    {"guest-fsfreeze-status", cmd_status, QGA_FREEZE_SAFE, NULL, NULL},
    {"guest-fsfreeze-freeze", cmd_freeze, 0, NULL, NULL},
    {"guest-fsfreeze-freeze-list", cmd_freeze_list, 0, NULL, freeze_list_args},
    {"guest-fsfreeze-thaw", cmd_thaw, QGA_FREEZE_SAFE, NULL, NULL},
    {"guest-fstrim", cmd_fstrim, 0, NULL, fstrim_args},
    {NULL, NULL, 0, NULL, NULL},
};

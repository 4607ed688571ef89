/* The disks collector: I/O rates and totals of whole disks, from /proc/diskstats.
 * A name is a whole disk when /sys/block has it (partitions live below
 * their disk there); loop, ram and zram devices are left out. */
#include "collectors/disks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectors/procfs.h"
#include "collectors/rate.h"

#define DISK_NAME_MAX 32
#define SECTOR_BYTES 512 /* diskstats counts 512-byte sectors whatever the device */

typedef struct disk_s {
    char name[DISK_NAME_MAX];
    int listed; /* a whole disk we report (decided once per name) */
    unsigned gen;
    gd_rate_t reads, writes, read_sectors, write_sectors, io_ms;
    double reads_per_s, writes_per_s, read_bytes_per_s, write_bytes_per_s, util_pct;
    uint64_t reads_total, writes_total, read_sectors_total, write_sectors_total, io_ms_total;
} disk_t;

typedef struct disks_state_s {
    gd_procfile_t file;
    char sys_block[GD_PROCFS_PATH_MAX];
    int have_sys_block;
    disk_t *disks; /* in diskstats order; grows when a device appears */
    size_t count, cap;
    unsigned gen;
} disks_state_t;

static int disks_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    disks_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int r = gd_procfile_open(&s->file, env->proc_root, "diskstats");
    if (r < 0) {
        snprintf(err, errlen, "%s/diskstats", env->proc_root);
        free(s);
        return r;
    }
    if (gd_procfs_path(s->sys_block, sizeof(s->sys_block), env->sys_root, "block") == 0)
        s->have_sys_block = access(s->sys_block, F_OK) == 0;
    *state = s;
    return 0;
}

static int is_listed(const disks_state_t *s, const char *name)
{
    static const char *const skip[] = {"loop", "ram", "zram", NULL};
    for (int i = 0; skip[i]; i++)
        if (strncmp(name, skip[i], strlen(skip[i])) == 0) return 0;
    if (!s->have_sys_block) return 1; /* no sysfs: every device, partitions included */
    char path[GD_PROCFS_PATH_MAX];
    if (gd_procfs_path(path, sizeof(path), s->sys_block, name) < 0) return 0;
    return access(path, F_OK) == 0;
}

/* The entry for name: where it was last time (the order is stable), else
 * searched, else added. */
static disk_t *find_disk(disks_state_t *s, size_t hint, const char *name)
{
    if (hint < s->count && strcmp(s->disks[hint].name, name) == 0) return &s->disks[hint];
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->disks[i].name, name) == 0) return &s->disks[i];
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        disk_t *p = realloc(s->disks, cap * sizeof(*p));
        if (!p) return NULL;
        s->disks = p;
        s->cap = cap;
    }
    disk_t *d = &s->disks[s->count++];
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->listed = is_listed(s, name);
    return d;
}

static int disks_collect(void *state, const gd_collect_ctx_t *ctx)
{
    disks_state_t *s = state;
    ssize_t n = gd_procfile_read(&s->file);
    if (n < 0) return (int)n;
    s->gen++;
    size_t hint = 0;
    char *cursor = s->file.buf.data, *line, *f[14];
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        /* "254 0 vda 66357 23387 3023866 11213 11065 18911 1663368 2898 0 8324 14928 ...":
         * major minor name, then reads, merged, sectors read, ms reading,
         * writes, merged, sectors written, ms writing, in flight, ms doing
         * I/O, weighted ms (and discard/flush columns on newer kernels). */
        int nf = gd_procfs_split(line, f, 14);
        if (nf == 0) continue;
        if (nf < 14 || strlen(f[2]) >= DISK_NAME_MAX) return -EINVAL;
        disk_t *d = find_disk(s, hint, f[2]);
        if (!d) return -ENOMEM;
        hint = (size_t)(d - s->disks) + 1;
        d->gen = s->gen;
        if (!d->listed) continue;
        uint64_t reads, rsect, writes, wsect, io_ms;
        if (gd_procfs_u64(f[3], &reads) < 0 || gd_procfs_u64(f[5], &rsect) < 0 ||
            gd_procfs_u64(f[7], &writes) < 0 || gd_procfs_u64(f[9], &wsect) < 0 ||
            gd_procfs_u64(f[12], &io_ms) < 0)
            return -EINVAL;
        d->reads_total = reads;
        d->writes_total = writes;
        d->read_sectors_total = rsect;
        d->write_sectors_total = wsect;
        d->io_ms_total = io_ms;
        double dt = ctx->elapsed_s;
        d->reads_per_s = gd_rate_update(&d->reads, reads, dt);
        d->writes_per_s = gd_rate_update(&d->writes, writes, dt);
        d->read_bytes_per_s = gd_rate_update(&d->read_sectors, rsect, dt) * SECTOR_BYTES;
        d->write_bytes_per_s = gd_rate_update(&d->write_sectors, wsect, dt) * SECTOR_BYTES;
        /* Milliseconds busy per second of wall time, as a percentage. */
        d->util_pct = gd_rate_update(&d->io_ms, io_ms, dt) / 10.0;
        if (d->util_pct > 100.0) d->util_pct = 100.0;
    }
    /* Forget devices that went away, keeping the order of the rest. */
    size_t kept = 0;
    for (size_t i = 0; i < s->count; i++)
        if (s->disks[i].gen == s->gen) s->disks[kept++] = s->disks[i];
    s->count = kept;
    return 0;
}

static void disks_write(void *state, gd_jw_t *w)
{
    disks_state_t *s = state;
    gd_jw_key(w, "disks");
    gd_jw_arr_begin(w);
    for (size_t i = 0; i < s->count; i++) {
        const disk_t *d = &s->disks[i];
        if (!d->listed) continue;
        gd_jw_obj_begin(w);
        gd_jw_key(w, "name");
        gd_jw_str(w, d->name);
        gd_jw_key(w, "reads_per_s");
        gd_jw_num(w, d->reads_per_s);
        gd_jw_key(w, "writes_per_s");
        gd_jw_num(w, d->writes_per_s);
        gd_jw_key(w, "read_bytes_per_s");
        gd_jw_num(w, d->read_bytes_per_s);
        gd_jw_key(w, "write_bytes_per_s");
        gd_jw_num(w, d->write_bytes_per_s);
        gd_jw_key(w, "util_pct");
        gd_jw_num(w, d->util_pct);
        gd_jw_key(w, "reads");
        gd_jw_u64(w, d->reads_total);
        gd_jw_key(w, "writes");
        gd_jw_u64(w, d->writes_total);
        gd_jw_key(w, "read_bytes");
        gd_jw_u64(w, d->read_sectors_total * SECTOR_BYTES);
        gd_jw_key(w, "write_bytes");
        gd_jw_u64(w, d->write_sectors_total * SECTOR_BYTES);
        gd_jw_key(w, "io_time_s");
        gd_jw_decimal(w, d->io_ms_total, 3);
        gd_jw_obj_end(w);
    }
    gd_jw_arr_end(w);
}

static void disks_fini(void *state)
{
    disks_state_t *s = state;
    gd_procfile_close(&s->file);
    free(s->disks);
    free(s);
}

const gd_collector_t gd_collector_disks = {
    .name = "disks",
    .flags = GD_COLLECTOR_RATES,
    .init = disks_init,
    .collect = disks_collect,
    .write = disks_write,
    .fini = disks_fini,
};

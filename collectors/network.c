/* The network collector: traffic rates and error counts of every interface
 * but lo, from /proc/net/dev; "up" from /sys/class/net/<if>/operstate (and
 * the IFF_UP flag when the driver reports "unknown", as tun and dummy do).
 * The sysfs files stay open between cycles within the collectors' fd share
 * (env->fd_pool); past it they are opened and closed at each read. */
#include "collectors/network.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collectors/procfs.h"
#include "collectors/rate.h"

#define IF_NAME_MAX 32

typedef struct iface_s {
    char name[IF_NAME_MAX];
    unsigned gen;
    int operstate_fd, flags_fd; /* kept open; -1 when not (missing, or past the share) */
    int up;
    gd_rate_t rx_bytes, tx_bytes, rx_packets, tx_packets;
    double rx_bytes_per_s, tx_bytes_per_s, rx_packets_per_s, tx_packets_per_s;
    uint64_t rx_errors, tx_errors, rx_dropped, tx_dropped;
    uint64_t rx_bytes_total, tx_bytes_total, rx_packets_total, tx_packets_total;
} iface_t;

typedef struct network_state_s {
    gd_procfile_t file;
    char sys_net[GD_PROCFS_PATH_MAX];
    gd_buf_t scratch; /* sysfs reads */
    gd_fd_pool_t *fd_pool;
    iface_t *ifaces; /* in /proc/net/dev order; lo is never added */
    size_t count, cap;
    unsigned gen;
} network_state_t;

static int network_init(void **state, const gd_collector_env_t *env, char *err, size_t errlen)
{
    network_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int r = gd_procfile_open(&s->file, env->proc_root, "net/dev");
    if (r < 0) {
        snprintf(err, errlen, "%s/net/dev", env->proc_root);
        free(s);
        return r;
    }
    if (gd_procfs_path(s->sys_net, sizeof(s->sys_net), env->sys_root, "class/net") < 0)
        s->sys_net[0] = '\0'; /* no operstate: every interface reads as down */
    s->fd_pool = env->fd_pool;
    gd_buf_init(&s->scratch);
    if (gd_buf_reserve(&s->scratch, 255) != 0) {
        gd_procfile_close(&s->file);
        free(s);
        return -ENOMEM;
    }
    *state = s;
    return 0;
}

static int open_attr(const network_state_t *s, const char *ifname, const char *attr)
{
    char rel[IF_NAME_MAX + 32], path[GD_PROCFS_PATH_MAX];
    if (!s->sys_net[0]) return -1;
    snprintf(rel, sizeof(rel), "%s/%s", ifname, attr);
    if (gd_procfs_path(path, sizeof(path), s->sys_net, rel) < 0) return -1;
    return open(path, O_RDONLY | O_CLOEXEC);
}

static void close_kept(network_state_t *s, int *fd)
{
    if (*fd < 0) return;
    close(*fd);
    gd_fd_pool_give(s->fd_pool);
    *fd = -1;
}

static void close_iface(network_state_t *s, iface_t *i)
{
    close_kept(s, &i->operstate_fd);
    close_kept(s, &i->flags_fd);
}

/* Reads an attribute of i into scratch through its kept fd, else opens it
 * (and keeps it when the share allows). The interface may have been
 * deleted and made again under the same name: a kept file that no longer
 * reads is dead, and is reopened once. 0, or -1 when it cannot be read. */
static int read_attr(network_state_t *s, const iface_t *i, int *kept, const char *attr)
{
    if (*kept >= 0) {
        if (gd_procfs_pread(*kept, &s->scratch) >= 0) return 0;
        close_kept(s, kept);
    }
    int fd = open_attr(s, i->name, attr);
    if (fd < 0) return -1;
    if (gd_procfs_pread(fd, &s->scratch) < 0) {
        close(fd);
        return -1;
    }
    if (gd_fd_pool_take(s->fd_pool))
        *kept = fd;
    else
        close(fd);
    return 0;
}

static iface_t *find_iface(network_state_t *s, size_t hint, const char *name)
{
    if (hint < s->count && strcmp(s->ifaces[hint].name, name) == 0) return &s->ifaces[hint];
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->ifaces[i].name, name) == 0) return &s->ifaces[i];
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        iface_t *p = realloc(s->ifaces, cap * sizeof(*p));
        if (!p) return NULL;
        s->ifaces = p;
        s->cap = cap;
    }
    iface_t *i = &s->ifaces[s->count++];
    memset(i, 0, sizeof(*i));
    snprintf(i->name, sizeof(i->name), "%s", name);
    i->operstate_fd = i->flags_fd = -1; /* opened at the first read */
    return i;
}

/* operstate "up"; or "unknown" (no carrier reporting) with IFF_UP set. */
static int read_up(network_state_t *s, iface_t *i)
{
    if (read_attr(s, i, &i->operstate_fd, "operstate") < 0) return 0;
    const char *st = s->scratch.data;
    if (strncmp(st, "up", 2) == 0 && (st[2] == '\n' || st[2] == '\0')) return 1;
    if (strncmp(st, "unknown", 7) != 0 || read_attr(s, i, &i->flags_fd, "flags") < 0) return 0;
    unsigned long flags = strtoul(s->scratch.data, NULL, 16);
    return (flags & 0x1) != 0; /* IFF_UP */
}

static int network_collect(void *state, const gd_collect_ctx_t *ctx)
{
    network_state_t *s = state;
    ssize_t n = gd_procfile_read(&s->file);
    if (n < 0) return (int)n;
    s->gen++;
    size_t hint = 0;
    char *cursor = s->file.buf.data, *line, *f[17];
    /* Two header lines, then "  eth0: 90154946 2547 0 0 0 0 0 0 127204 1831 0 ...":
     * rx bytes packets errs drop fifo frame compressed multicast, then tx
     * bytes packets errs drop fifo colls carrier compressed. */
    for (int skip = 0; skip < 2; skip++)
        if (!gd_procfs_line(&cursor)) return -EINVAL;
    while ((line = gd_procfs_line(&cursor)) != NULL) {
        char *colon = strchr(line, ':'); /* "eth0:123" when the number is wide */
        if (!colon) continue;
        *colon = '\0';
        while (*line == ' ')
            line++;
        if (strcmp(line, "lo") == 0) continue;
        if (strlen(line) >= IF_NAME_MAX || gd_procfs_split(colon + 1, f + 1, 16) < 16)
            return -EINVAL;
        uint64_t v[17];
        for (int k = 1; k <= 16; k++)
            if (gd_procfs_u64(f[k], &v[k]) < 0) return -EINVAL;
        iface_t *i = find_iface(s, hint, line);
        if (!i) return -ENOMEM;
        hint = (size_t)(i - s->ifaces) + 1;
        i->gen = s->gen;
        i->rx_bytes_total = v[1];
        i->rx_packets_total = v[2];
        i->tx_bytes_total = v[9];
        i->tx_packets_total = v[10];
        double dt = ctx->elapsed_s;
        i->rx_bytes_per_s = gd_rate_update(&i->rx_bytes, v[1], dt);
        i->rx_packets_per_s = gd_rate_update(&i->rx_packets, v[2], dt);
        i->rx_errors = v[3];
        i->rx_dropped = v[4];
        i->tx_bytes_per_s = gd_rate_update(&i->tx_bytes, v[9], dt);
        i->tx_packets_per_s = gd_rate_update(&i->tx_packets, v[10], dt);
        i->tx_errors = v[11];
        i->tx_dropped = v[12];
        i->up = read_up(s, i);
    }
    size_t kept = 0;
    for (size_t k = 0; k < s->count; k++) {
        if (s->ifaces[k].gen == s->gen)
            s->ifaces[kept++] = s->ifaces[k];
        else
            close_iface(s, &s->ifaces[k]);
    }
    s->count = kept;
    return 0;
}

static void network_write(void *state, gd_jw_t *w)
{
    network_state_t *s = state;
    gd_jw_key(w, "network");
    gd_jw_arr_begin(w);
    for (size_t k = 0; k < s->count; k++) {
        const iface_t *i = &s->ifaces[k];
        gd_jw_obj_begin(w);
        gd_jw_key(w, "name");
        gd_jw_str(w, i->name);
        gd_jw_key(w, "up");
        gd_jw_bool(w, i->up);
        gd_jw_key(w, "rx_bytes_per_s");
        gd_jw_num(w, i->rx_bytes_per_s);
        gd_jw_key(w, "tx_bytes_per_s");
        gd_jw_num(w, i->tx_bytes_per_s);
        gd_jw_key(w, "rx_packets_per_s");
        gd_jw_num(w, i->rx_packets_per_s);
        gd_jw_key(w, "tx_packets_per_s");
        gd_jw_num(w, i->tx_packets_per_s);
        gd_jw_key(w, "rx_errors");
        gd_jw_u64(w, i->rx_errors);
        gd_jw_key(w, "tx_errors");
        gd_jw_u64(w, i->tx_errors);
        gd_jw_key(w, "rx_dropped");
        gd_jw_u64(w, i->rx_dropped);
        gd_jw_key(w, "tx_dropped");
        gd_jw_u64(w, i->tx_dropped);
        gd_jw_key(w, "rx_bytes");
        gd_jw_u64(w, i->rx_bytes_total);
        gd_jw_key(w, "tx_bytes");
        gd_jw_u64(w, i->tx_bytes_total);
        gd_jw_key(w, "rx_packets");
        gd_jw_u64(w, i->rx_packets_total);
        gd_jw_key(w, "tx_packets");
        gd_jw_u64(w, i->tx_packets_total);
        gd_jw_obj_end(w);
    }
    gd_jw_arr_end(w);
}

static void network_fini(void *state)
{
    network_state_t *s = state;
    for (size_t k = 0; k < s->count; k++)
        close_iface(s, &s->ifaces[k]);
    gd_procfile_close(&s->file);
    gd_buf_free(&s->scratch);
    free(s->ifaces);
    free(s);
}

const gd_collector_t gd_collector_network = {
    .name = "network",
    .flags = GD_COLLECTOR_RATES,
    .init = network_init,
    .collect = network_collect,
    .write = network_write,
    .fini = network_fini,
};

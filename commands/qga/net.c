/* guest-network-get-interfaces: getifaddrs(3) (netlink, in the kernel: it
 * does not wait on anything) and the counters of /proc/net/dev. As
 * qemu-ga: every interface with its hardware address; addresses and
 * statistics for those that have an IP address. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "collectors/procfs.h"
#include "commands/qga/internal.h"

/* The counters of one interface from /proc/net/dev text; 0 or -ENOENT. */
static int net_stats(const char *dev_text, const char *name, cJSON *out)
{
    static const struct {
        const char *key;
        int field;
    } fields[] = {
        {"rx-bytes", 0}, {"rx-packets", 1}, {"rx-errs", 2},  {"rx-dropped", 3},
        {"tx-bytes", 8}, {"tx-packets", 9}, {"tx-errs", 10}, {"tx-dropped", 11},
    };
    size_t nlen = strlen(name);
    for (const char *line = dev_text; line && *line;) {
        const char *nl = strchr(line, '\n');
        const char *p = line;
        while (*p == ' ')
            p++;
        if (strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
            char copy[512];
            size_t n = (size_t)((nl ? nl : p + strlen(p)) - (p + nlen + 1));
            if (n >= sizeof(copy)) n = sizeof(copy) - 1;
            memcpy(copy, p + nlen + 1, n);
            copy[n] = '\0';
            char *f[16];
            if (gd_procfs_split(copy, f, 16) < 12) return -ENOENT;
            for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                uint64_t v = 0;
                gd_procfs_u64(f[fields[i].field], &v);
                gd_qga_json_add_uint(out, fields[i].key, v);
            }
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

static int prefix_len(const struct sockaddr *mask)
{
    if (!mask) return 0;
    const unsigned char *b;
    size_t n;
    if (mask->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)mask)->sin_addr;
        n = 4;
    } else {
        b = (const unsigned char *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
        n = 16;
    }
    int bits = 0;
    for (size_t i = 0; i < n; i++)
        bits += __builtin_popcount(b[i]);
    return bits;
}

static cJSON *find_iface(cJSON *list, const char *name)
{
    for (cJSON *e = list->child; e; e = e->next)
        if (strcmp(cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring, name) == 0) return e;
    return NULL;
}

cJSON *gd_qga_interfaces(const char *proc_root, int *err)
{
    struct ifaddrs *ifap;
    if (getifaddrs(&ifap) != 0) {
        *err = -errno;
        return NULL;
    }
    gd_buf_t dev;
    gd_buf_init(&dev);
    int have_dev = gd_qga_read_file(proc_root, "net/dev", &dev) == 0;
    cJSON *list = cJSON_CreateArray();
    for (struct ifaddrs *ifa = ifap; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_name) continue;
        cJSON *info = find_iface(list, ifa->ifa_name);
        if (!info) {
            info = cJSON_CreateObject();
            cJSON_AddStringToObject(info, "name", ifa->ifa_name);
            cJSON_AddItemToArray(list, info);
        }
        if (!ifa->ifa_addr) continue;
        int family = ifa->ifa_addr->sa_family;
        if (family == AF_PACKET) {
            const struct sockaddr_ll *ll = (const struct sockaddr_ll *)ifa->ifa_addr;
            if (ll->sll_halen == 6 && !cJSON_GetObjectItemCaseSensitive(info, "hardware-address")) {
                char mac[18];
                snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", ll->sll_addr[0],
                         ll->sll_addr[1], ll->sll_addr[2], ll->sll_addr[3], ll->sll_addr[4],
                         ll->sll_addr[5]);
                cJSON_AddStringToObject(info, "hardware-address", mac);
            }
            continue;
        }
        if (family != AF_INET && family != AF_INET6) continue;
        char text[INET6_ADDRSTRLEN];
        const void *addr = family == AF_INET
                               ? (const void *)&((struct sockaddr_in *)ifa->ifa_addr)->sin_addr
                               : (const void *)&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
        if (!inet_ntop(family, addr, text, sizeof(text))) continue;
        cJSON *addrs = cJSON_GetObjectItemCaseSensitive(info, "ip-addresses");
        if (!addrs) addrs = cJSON_AddArrayToObject(info, "ip-addresses");
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "ip-address-type", family == AF_INET ? "ipv4" : "ipv6");
        cJSON_AddStringToObject(a, "ip-address", text);
        gd_qga_json_add_int(a, "prefix", prefix_len(ifa->ifa_netmask));
        cJSON_AddItemToArray(addrs, a);
        if (have_dev && !cJSON_GetObjectItemCaseSensitive(info, "statistics")) {
            cJSON *st = cJSON_CreateObject();
            if (net_stats(dev.data, ifa->ifa_name, st) == 0)
                cJSON_AddItemToObject(info, "statistics", st);
            else
                cJSON_Delete(st);
        }
    }
    freeifaddrs(ifap);
    gd_buf_free(&dev);
    return list;
}

static void cmd_interfaces(gd_qga_req_t *req, const cJSON *args)
{
    int err = 0;
    cJSON *r = gd_qga_interfaces(req->qga->env->config->agent.proc_root, &err);
    if (!r) {
        gd_qga_reply_errno(req, err, "getifaddrs failed");
        return;
    }
    gd_qga_reply(req, r);
}

const gd_qga_cmd_t gd_qga_cmds_net[] = {
    {"guest-network-get-interfaces", cmd_interfaces, 0, "metrics.get", NULL},
    {NULL, NULL, 0, NULL, NULL},
};

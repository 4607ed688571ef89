/* system.info: what the guest is. Small local files only (procfs, /etc), so
 * it answers on the loop without the thread pool. */
#include "commands/system.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/utf8.h"
#include "collectors/procfs.h"

/* Adds text as a string with every sequence that is not UTF-8 replaced by
 * U+FFFD: files and the host name hold whatever bytes root wrote, and a
 * reply line must be UTF-8 (protocol.md). */
static void add_text(cJSON *obj, const char *name, const char *text)
{
    size_t len = strlen(text);
    if (gd_utf8_valid(text, len)) {
        cJSON_AddStringToObject(obj, name, text);
        return;
    }
    gd_buf_t clean;
    gd_buf_init(&clean);
    if (gd_utf8_sanitize(&clean, text, len) == 0)
        cJSON_AddStringToObject(obj, name, clean.data);
    else
        cJSON_AddNullToObject(obj, name);
    gd_buf_free(&clean);
}

/* Reads a whole small file into buf (reset first). 0 or a negative errno. */
static int read_file(const char *root, const char *rel, gd_buf_t *buf)
{
    char path[GD_PROCFS_PATH_MAX];
    int r = gd_procfs_path(path, sizeof(path), root, rel);
    if (r < 0) return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = gd_procfs_pread(fd, buf);
    close(fd);
    return n < 0 ? (int)n : 0;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    size_t lead = strspn(s, " \t");
    if (lead) memmove(s, s + lead, n - lead + 1);
}

static const char *next_line(const char *line)
{
    const char *nl = strchr(line, '\n');
    return nl ? nl + 1 : NULL;
}

int gd_os_release_value(const char *text, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line; line = next_line(line)) {
        if (strncmp(line, key, klen) != 0 || line[klen] != '=') continue;
        const char *v = line + klen + 1;
        char quote = (*v == '"' || *v == '\'') ? *v++ : 0;
        size_t o = 0;
        for (; *v && *v != '\n'; v++) {
            if (quote && *v == quote) break;
            if (quote == '"' && *v == '\\' && v[1] && v[1] != '\n') v++;
            if (o + 1 < len) out[o++] = *v;
        }
        out[o] = '\0';
        return 0;
    }
    return -ENOENT;
}

static void add_os(cJSON *result, const char *etc_dir, gd_buf_t *buf)
{
    cJSON *os = cJSON_AddObjectToObject(result, "os");
    /* os-release(5): /etc/os-release, else /usr/lib/os-release. */
    int r = read_file(etc_dir, "os-release", buf);
    if (r < 0 && strcmp(etc_dir, "/etc") == 0) r = read_file("/usr/lib", "os-release", buf);
    static const struct {
        const char *field, *key, *fallback;
    } keys[] = {
        {"id", "ID", "linux"},
        {"name", "NAME", "Linux"},
        {"version", "VERSION", NULL},
        {"version_id", "VERSION_ID", NULL},
        {"pretty_name", "PRETTY_NAME", "Linux"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char value[256];
        if (r == 0 && gd_os_release_value(buf->data, keys[i].key, value, sizeof(value)) == 0)
            add_text(os, keys[i].field, value);
        else if (keys[i].fallback)
            cJSON_AddStringToObject(os, keys[i].field, keys[i].fallback);
        else
            cJSON_AddNullToObject(os, keys[i].field);
    }
}

/* The CPU model: "model name" on x86, other names elsewhere. */
static void add_cpu(cJSON *result, const char *proc_root, gd_buf_t *buf)
{
    static const char *const model_keys[] = {"model name", "Model",     "cpu model", "uarch",
                                             "cpu",        "Processor", NULL};
    cJSON *cpu = cJSON_AddObjectToObject(result, "cpu");
    char model[256] = "";
    if (read_file(proc_root, "cpuinfo", buf) == 0) {
        for (int k = 0; model_keys[k] && !model[0]; k++) {
            size_t klen = strlen(model_keys[k]);
            for (const char *line = buf->data; line && *line; line = next_line(line)) {
                if (strncmp(line, model_keys[k], klen) != 0) continue;
                const char *p = line + klen;
                while (*p == ' ' || *p == '\t')
                    p++;
                if (*p != ':') continue;
                p++;
                size_t n = strcspn(p, "\n");
                if (n >= sizeof(model)) n = sizeof(model) - 1;
                memcpy(model, p, n);
                model[n] = '\0';
                trim(model);
                break;
            }
        }
    }
    if (model[0])
        add_text(cpu, "model", model);
    else
        cJSON_AddNullToObject(cpu, "model");
    /* Online CPUs: the cpuN lines of /proc/stat, as the cpu collector. */
    long count = 0;
    if (read_file(proc_root, "stat", buf) == 0) {
        char *cursor = buf->data, *line;
        while ((line = gd_procfs_line(&cursor)) != NULL && strncmp(line, "cpu", 3) == 0)
            if (line[3] >= '0' && line[3] <= '9') count++;
    }
    if (count == 0) count = sysconf(_SC_NPROCESSORS_ONLN);
    cJSON_AddNumberToObject(cpu, "count", (double)count);
}

static void add_memory(cJSON *result, const char *proc_root, gd_buf_t *buf)
{
    double total = 0;
    if (read_file(proc_root, "meminfo", buf) == 0) {
        char *cursor = buf->data, *line, *f[3];
        while ((line = gd_procfs_line(&cursor)) != NULL) {
            uint64_t kb;
            if (strncmp(line, "MemTotal:", 9) == 0 && gd_procfs_split(line, f, 3) >= 2 &&
                gd_procfs_u64(f[1], &kb) == 0) {
                total = (double)kb * 1024.0;
                break;
            }
        }
    }
    cJSON_AddNumberToObject(result, "memory_total_bytes", total);
}

/* A one-line file, trimmed, or NULL into the result. */
static void add_line_file(cJSON *obj, const char *name, const char *root, const char *rel,
                          gd_buf_t *buf)
{
    if (read_file(root, rel, buf) == 0) {
        trim(buf->data);
        if (buf->data[0]) {
            add_text(obj, name, buf->data);
            return;
        }
    }
    cJSON_AddNullToObject(obj, name);
}

/* /etc/timezone (Debian), else the zone /etc/localtime links to, else UTC
 * (what glibc assumes without /etc/localtime). */
static void add_timezone(cJSON *result, const char *etc_dir, gd_buf_t *buf)
{
    if (read_file(etc_dir, "timezone", buf) == 0) {
        trim(buf->data);
        if (buf->data[0]) {
            add_text(result, "timezone", buf->data);
            return;
        }
    }
    char path[GD_PROCFS_PATH_MAX], target[PATH_MAX];
    if (gd_procfs_path(path, sizeof(path), etc_dir, "localtime") == 0) {
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            const char *zone = strstr(target, "zoneinfo/");
            if (zone) {
                add_text(result, "timezone", zone + 9);
                return;
            }
        }
    }
    cJSON_AddStringToObject(result, "timezone", "UTC");
}

cJSON *gd_system_info(const char *proc_root, const char *etc_dir, const char *hostname,
                      const char *boot_id)
{
    cJSON *result = cJSON_CreateObject();
    gd_buf_t buf;
    struct utsname u;
    if (!result) return NULL;
    gd_buf_init(&buf);
    if (uname(&u) != 0) memset(&u, 0, sizeof(u));

    add_text(result, "hostname", hostname && hostname[0] ? hostname : u.nodename);
    add_os(result, etc_dir, &buf);
    cJSON *kernel = cJSON_AddObjectToObject(result, "kernel");
    add_text(kernel, "release", u.release);
    add_text(kernel, "version", u.version);
    add_text(result, "arch", u.machine);
    add_cpu(result, proc_root, &buf);
    add_memory(result, proc_root, &buf);
    if (boot_id && boot_id[0])
        add_text(result, "boot_id", boot_id);
    else
        add_line_file(result, "boot_id", proc_root, "sys/kernel/random/boot_id", &buf);
    add_line_file(result, "machine_id", etc_dir, "machine-id", &buf);
    add_timezone(result, etc_dir, &buf);
    double uptime = 0;
    if (read_file(proc_root, "uptime", &buf) == 0) {
        char *f[2];
        if (gd_procfs_split(buf.data, f, 2) >= 1) gd_procfs_decimal(f[0], &uptime);
    }
    cJSON_AddNumberToObject(result, "uptime_s", uptime);
    gd_buf_free(&buf);
    return result;
}

static void cmd_system_info(gd_request_t *req, const cJSON *args)
{
    const gd_cmd_env_t *env = req->env;
    cJSON *result =
        gd_system_info(env->config->agent.proc_root, "/etc", env->hostname, env->boot_id);
    if (!result) {
        gd_reply_error(req, "internal", "out of memory");
        return;
    }
    gd_reply_ok(req, result);
}

const gd_command_t gd_commands_system[] = {
    {"system.info", cmd_system_info, 0,
     "What the guest is: OS, kernel, architecture, CPU, memory, identity, time zone.", NULL,
     "hostname, os {id, name, version, version_id, pretty_name}, kernel {release, version}, "
     "arch, cpu {model, count}, memory_total_bytes, boot_id, machine_id, timezone, uptime_s"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};

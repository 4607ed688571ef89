/* The configuration table and the loops over it: defaults, INI and --set
 * parsing, range checks, --dump-config and JSON values. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <ini.h>

#define RUNTIME 1 /* applied on reload (SIGHUP, config.set) */
#define RESTART 0 /* read once at startup */

/* Longest INI line we ask libinih to accept: room for the longest key name
 * and a GD_CFG_STR_MAX value, with slack for comments and spacing. */
#define GD_INI_MAX_LINE 1024

/* offsetof, plus a compile-time check that the field is as large as its
 * type expects: a string key pointed at an int64_t does not build. */
#define FIELD(path, size)                                                                          \
    (offsetof(gd_config_t, path) +                                                                 \
     0 * sizeof(char[1 - 2 * (sizeof(((gd_config_t *)0)->path) != (size))]))

/* clang-format off */
#define INT_KEY(sec, key, def, lo, hi, rt, help_text)                                      \
    { .section = #sec, .name = #key, .type = GD_CFG_INT,                                   \
      .offset = FIELD(sec.key, sizeof(int64_t)), .default_value = def,                     \
      .min = lo, .max = hi, .runtime = rt, .help = help_text }
/* An integer whose max is a ceiling on memory or concurrency a host could
 * otherwise raise without bound (config.set): why is given with a refusal. */
#define CAPPED_KEY(sec, key, def, lo, hi, rt, help_text, why)                             \
    { .section = #sec, .name = #key, .type = GD_CFG_INT,                                   \
      .offset = FIELD(sec.key, sizeof(int64_t)), .default_value = def,                     \
      .min = lo, .max = hi, .runtime = rt, .help = help_text, .ceiling = why }
#define ENUM_KEY(sec, key, def, names, rt, help_text)                                      \
    { .section = #sec, .name = #key, .type = GD_CFG_ENUM,                                  \
      .offset = FIELD(sec.key, sizeof(int64_t)), .default_value = def,                     \
      .choices = names, .runtime = rt, .help = help_text }
#define STR_KEY(sec, key, def, min_len, rt, help_text)                                     \
    { .section = #sec, .name = #key, .type = GD_CFG_STRING,                                \
      .offset = FIELD(sec.key, GD_CFG_STR_MAX), .default_value = def,                      \
      .min = min_len, .max = GD_CFG_STR_MAX - 1, .runtime = rt, .help = help_text }
/* clang-format on */

/* Same order as gd_log_level_t and gd_fsync_mode_t: the value is the index. */
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const fsync_modes[] = {"never", "rotate", "always", NULL};
/* Same order as gd_dialect_t (transport/qga_link.h). */
static const char *const dialects[] = {"auto", "guestd", "qemu-ga", NULL};

const gd_cfg_key_t gd_config_keys[] = {
    ENUM_KEY(agent, log_level, "info", log_levels, RUNTIME, "Least severe messages logged"),
    STR_KEY(agent, proc_root, "/proc", 1, RESTART, "Where procfs is mounted"),
    STR_KEY(agent, sys_root, "/sys", 1, RESTART, "Where sysfs is mounted"),
    STR_KEY(agent, state_dir, "/var/lib/guestd", 1, RESTART, "State kept across restarts"),

    STR_KEY(channel, spec, "virtio-serial:/dev/virtio-ports/org.guestd.agent.0", 1, RESTART,
            "Host channel: virtio-serial:PATH, unix-listen:PATH, unix-connect:PATH, "
            "vsock-listen:PORT or stdio"),
    INT_KEY(channel, poll_ms, "100", 10, 60000, RUNTIME,
            "First retry delay while the channel is absent"),
    INT_KEY(channel, poll_max_ms, "5000", 10, 600000, RUNTIME,
            "Longest retry delay; the delay doubles up to it"),
    /* The framer's buffer, and the request parsed from it. */
    CAPPED_KEY(channel, max_message_bytes, "1048576", 1024, 67108864, RESTART,
               "Longest message accepted from the host",
               "qemu's own JSON parser limit, room for a 48 MiB guest-file-write in base64"),
    /* Must hold the largest reply: a commands.file_max_bytes read in base64
     * (64 MiB at its ceiling), twice. */
    CAPPED_KEY(channel, out_queue_bytes, "4194304", 65536, 134217728, RESTART,
               "Bytes queued for the host before messages are dropped",
               "twice the largest reply, a 48 MiB read in base64"),
    /* qemu-ga's protocol beside guestd's (commands/qga.h, docs/qemu-ga.md) */
    ENUM_KEY(channel, dialect, "auto", dialects, RESTART,
             "Protocol of channel.spec: guestd, qemu-ga, or auto (each connection's first "
             "message decides)"),
    STR_KEY(channel, qga_spec, "", 0, RESTART,
            "A second channel, e.g. virtio-serial:/dev/virtio-ports/org.qemu.guest_agent.0; "
            "empty for none"),
    ENUM_KEY(channel, qga_dialect, "qemu-ga", dialects, RESTART,
             "Protocol of channel.qga_spec: qemu-ga, guestd or auto"),

    INT_KEY(metrics, interval_ms, "30000", 100, 86400000, RUNTIME, "Time between metric samples"),
    STR_KEY(metrics, collectors, "all", 0, RESTART, "Comma-separated collector names, or all"),
    /* Each is a top-N slot filled per sample. */
    CAPPED_KEY(metrics, top_processes, "5", 0, 100, RUNTIME, "Busiest processes listed per sample",
               "a list one sample can still carry"),
    /* A sample is 2 to 4 KiB (more with many mounts and interfaces), and
     * metrics.history answers the whole ring in one reply. */
    CAPPED_KEY(metrics, history, "120", 0, 2880, RESTART, "Samples kept in memory",
               "a day of samples at the default interval, about 10 MiB"),
    STR_KEY(metrics, log_path, "/var/log/guestd/metrics.ndjson", 1, RESTART,
            "Local metrics log, or none to turn it off"),
    INT_KEY(metrics, log_max_bytes, "10485760", 4096, INT64_C(1099511627776), RESTART,
            "Size at which the metrics log is rotated"),
    INT_KEY(metrics, log_keep, "5", 0, 100, RESTART, "Rotated metrics logs kept"),
    ENUM_KEY(metrics, log_fsync, "rotate", fsync_modes, RUNTIME,
             "When the metrics log is fsynced: never, on rotation, or after every line"),

    INT_KEY(health, interval_ms, "60000", 100, 86400000, RUNTIME, "Time between self-checks"),
    INT_KEY(health, max_rss_bytes, "67108864", 1048576, INT64_C(17179869184), RUNTIME,
            "Agent resident memory above which health is reported bad"),
    INT_KEY(health, min_free_bytes, "67108864", 0, INT64_C(1099511627776), RUNTIME,
            "Free space on the metrics log's filesystem below which health is degraded"),
    INT_KEY(health, max_loop_lag_ms, "500", 1, 600000, RUNTIME,
            "Event-loop lag above which health is reported bad"),

    STR_KEY(commands, allow, "*", 0, RUNTIME,
            "Comma-separated fnmatch patterns of allowed commands"),
    STR_KEY(commands, deny, "", 0, RUNTIME,
            "Comma-separated fnmatch patterns; deny wins over allow"),
    /* Each running command may hold a child, its pipes and its output:
     * the fd budget's commands share is sized for this ceiling
     * (core/fd_budget.h, GD_FD_COMMANDS_MAX). */
    CAPPED_KEY(commands, max_concurrent, "8", 1, 64, RUNTIME, "Commands running at the same time",
               "what the agent's open-file budget holds for commands"),
    INT_KEY(commands, exec_timeout_ms, "30000", 1, 86400000, RUNTIME,
            "exec timeout when the request gives none"),
    INT_KEY(commands, exec_max_timeout_ms, "3600000", 1, 86400000, RUNTIME,
            "Longest exec timeout a request may ask for"),
    INT_KEY(commands, exec_kill_grace_ms, "2000", 0, 600000, RUNTIME,
            "Time between SIGTERM and SIGKILL for a timed-out exec"),
    /* Per stream, per running exec or guest-exec. */
    CAPPED_KEY(commands, exec_max_output_bytes, "1048576", 0, 16777216, RUNTIME,
               "Output kept from one exec", "per stream, qemu-ga's own guest-exec limit"),
    /* One read's buffer, then its base64 in the reply (4/3 of it). */
    CAPPED_KEY(commands, file_max_bytes, "16777216", 0, 50331648, RUNTIME,
               "Largest file the file commands read or write",
               "qemu-ga's own guest-file-read limit, 64 MiB in base64"),
    STR_KEY(commands, poweroff_argv, "systemctl poweroff", 1, RESTART,
            "Command run for poweroff, split on spaces"),
    STR_KEY(commands, reboot_argv, "systemctl reboot", 1, RESTART,
            "Command run for reboot, split on spaces"),
    INT_KEY(commands, fsfreeze_timeout_ms, "300000", 1000, 86400000, RUNTIME,
            "Filesystems frozen by guest-fsfreeze-freeze are thawed after this"),

    {.name = NULL},
};

static int64_t *int_field(void *base, const gd_cfg_key_t *key)
{
    return (int64_t *)((char *)base + key->offset);
}

static int64_t int_value(const void *base, const gd_cfg_key_t *key)
{
    return *(const int64_t *)((const char *)base + key->offset);
}

static const char *str_value(const void *base, const gd_cfg_key_t *key)
{
    return (const char *)base + key->offset;
}

static size_t field_size(const gd_cfg_key_t *key)
{
    return key->type == GD_CFG_STRING ? GD_CFG_STR_MAX : sizeof(int64_t);
}

static const char *enum_name(const gd_cfg_key_t *key, int64_t index)
{
    for (int64_t i = 0; key->choices[i] != NULL; i++)
        if (i == index) return key->choices[i];
    return NULL;
}

const gd_cfg_key_t *gd_cfg_find(const gd_cfg_key_t *table, const char *section, size_t section_len,
                                const char *name, size_t name_len)
{
    for (const gd_cfg_key_t *k = table; k->name != NULL; k++) {
        if (strlen(k->section) == section_len && memcmp(k->section, section, section_len) == 0 &&
            strlen(k->name) == name_len && memcmp(k->name, name, name_len) == 0)
            return k;
    }
    return NULL;
}

static const gd_cfg_key_t *find_key(const char *section, size_t section_len, const char *name,
                                    size_t name_len)
{
    return gd_cfg_find(gd_config_keys, section, section_len, name, name_len);
}

const gd_cfg_key_t *gd_config_find(const char *dotted)
{
    const char *dot = strchr(dotted, '.');
    if (dot == NULL) return NULL;
    return find_key(dotted, (size_t)(dot - dotted), dot + 1, strlen(dot + 1));
}

void gd_config_defaults(gd_config_t *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof(*cfg));
    for (const gd_cfg_key_t *k = gd_config_keys; k->name != NULL; k++) {
        if (gd_config_set_value(cfg, k, k->default_value, err, sizeof(err)) != 0) {
            fprintf(stderr, "guestd: bad built-in default: %s\n", err);
            abort();
        }
    }
}

/* Writes "section.key: WHY" into err and returns -EINVAL. */
__attribute__((format(printf, 4, 5))) static int
key_error(char *err, size_t errlen, const gd_cfg_key_t *key, const char *fmt, ...)
{
    char why[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s.%s: %s", key->section, key->name, why);
    return -EINVAL;
}

/* Decimal only, the whole text: no blanks, no trailing junk, no empty. */
static int parse_int(const char *text, int64_t *out)
{
    char *end;

    if (!isdigit((unsigned char)text[0]) && text[0] != '-' && text[0] != '+') return -EINVAL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0') return -EINVAL;
    if (errno == ERANGE) return -ERANGE;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, int64_t *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(text, no[i]) == 0) return *out = 0, 0;
    }
    return -EINVAL;
}

/* A string is stored only if a dump writes it as "name = value" and libinih
 * reads the same bytes back: inih trims blanks at both ends, cuts a value at
 * ';' after a blank (an inline comment), and a line cannot hold a newline. */
static int check_string(const gd_cfg_key_t *key, const char *value, size_t len, char *err,
                        size_t errlen)
{
    if ((int64_t)len > key->max)
        return key_error(err, errlen, key, "value is longer than %" PRId64 " bytes", key->max);
    if ((int64_t)len < key->min) {
        if (key->min == 1) return key_error(err, errlen, key, "value must not be empty");
        return key_error(err, errlen, key, "value is shorter than %" PRId64 " bytes", key->min);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f)
            return key_error(err, errlen, key, "value contains a control character");
        if (c == ';' && (i == 0 || value[i - 1] == ' '))
            return key_error(err, errlen, key,
                             "value has ';' at the start or after a space, "
                             "which a config file reads as a comment");
    }
    if (len > 0 && (value[0] == ' ' || value[len - 1] == ' '))
        return key_error(err, errlen, key, "value starts or ends with a space");
    return 0;
}

int gd_config_set_value(gd_config_t *cfg, const gd_cfg_key_t *key, const char *value, char *err,
                        size_t errlen)
{
    return gd_cfg_set_value(cfg, key, value, err, errlen);
}

int gd_cfg_set_value(void *base, const gd_cfg_key_t *key, const char *value, char *err,
                     size_t errlen)
{
    char range[256];
    int64_t v = 0;

    gd_config_describe_range(key, range, sizeof(range));
    switch (key->type) {
    case GD_CFG_INT: {
        int rc = parse_int(value, &v);
        if (rc == -EINVAL)
            return key_error(err, errlen, key, "'%s' is not an integer (allowed: %s)", value,
                             range);
        if (rc == 0 && v > key->max && key->ceiling)
            return key_error(err, errlen, key,
                             "%s is above the ceiling of %" PRId64 ", %s (allowed: %s)", value,
                             key->max, key->ceiling, range);
        if (rc == -ERANGE || v < key->min || v > key->max)
            return key_error(err, errlen, key, "%s is out of range (allowed: %s)", value, range);
        break;
    }
    case GD_CFG_BOOL:
        if (parse_bool(value, &v) != 0)
            return key_error(err, errlen, key, "'%s' is not a boolean (allowed: %s)", value, range);
        break;
    case GD_CFG_ENUM:
        for (v = 0; key->choices[v] != NULL; v++)
            if (strcmp(key->choices[v], value) == 0) break;
        if (key->choices[v] == NULL)
            return key_error(err, errlen, key, "'%s' is not one of %s", value, range);
        break;
    case GD_CFG_STRING: {
        size_t len = strlen(value);
        int rc = check_string(key, value, len, err, errlen);
        if (rc != 0) return rc;
        /* NUL-padded, so equal configurations are equal bytes (memcmp). */
        char *dst = (char *)base + key->offset;
        memset(dst, 0, GD_CFG_STR_MAX);
        memcpy(dst, value, len);
        return 0;
    }
    }
    *int_field(base, key) = v;
    return 0;
}

int gd_config_set_dotted(gd_config_t *cfg, const char *assignment, char *err, size_t errlen)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    char why[1024];

    if (dot == NULL) {
        snprintf(err, errlen, "--set %s: expected section.key=value", assignment);
        return -EINVAL;
    }
    const gd_cfg_key_t *key =
        find_key(assignment, (size_t)(dot - assignment), dot + 1, (size_t)(eq - dot - 1));
    if (key == NULL) {
        snprintf(err, errlen, "--set %s: unknown key '%.*s'", assignment, (int)(eq - assignment),
                 assignment);
        return -EINVAL;
    }
    if (gd_config_set_value(cfg, key, eq + 1, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--set %s: %s", assignment, why);
        return -EINVAL;
    }
    return 0;
}

/* Debian's libinih ("Add runtime options to the library") turns its
 * compile-time line limit (200 bytes, too short for a 255-byte value) into
 * variables. Other builds lack them; weak references keep both linking, and
 * there lines stay limited to what the library was built with. */
extern bool ini_use_stack __attribute__((weak));
extern int ini_max_line __attribute__((weak));
extern int ini_initial_alloc __attribute__((weak));

static void raise_ini_line_limit(void)
{
    if (&ini_use_stack == NULL || &ini_max_line == NULL || &ini_initial_alloc == NULL) return;
    ini_use_stack = false; /* the stack buffer's size is fixed at build time */
    ini_max_line = GD_INI_MAX_LINE;
    ini_initial_alloc = GD_INI_MAX_LINE;
}

typedef struct load_s {
    FILE *file;
    char *line; /* getline buffer */
    size_t line_cap;
    int lineno;
    int read_errno;
    int too_long_line; /* number of a line longer than inih's buffer */
    int too_long_max;
    gd_cfg_ini_cb cb;
    void *ctx;
    int err_line; /* first line a value was refused on */
    char why[1024];
} load_t;

/* libinih's reader, one whole line per call so the line count is ours.
 * Leading blanks are dropped: inih would read an indented line as the
 * continuation of the previous value, which a user never means here. */
static char *read_line(char *str, int num, void *stream)
{
    load_t *ld = stream;

    errno = 0;
    ssize_t n = getline(&ld->line, &ld->line_cap, ld->file);
    if (n < 0) {
        if (ferror(ld->file)) ld->read_errno = errno ? errno : EIO;
        return NULL;
    }
    ld->lineno++;
    const char *start = ld->line;
    while (*start != '\n' && isspace((unsigned char)*start))
        start++;
    size_t len = (size_t)n - (size_t)(start - ld->line);
    size_t content = len - (len > 0 && start[len - 1] == '\n');
    if (content + 2 > (size_t)num) { /* + newline + NUL */
        ld->too_long_line = ld->lineno;
        ld->too_long_max = num - 2;
        return NULL;
    }
    memcpy(str, start, len + 1);
    return str;
}

static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
    load_t *ld = user;

    if (ld->err_line != 0) return 0;
    if (ld->cb(ld->ctx, section, name, value, ld->why, sizeof(ld->why)) != 0) {
        ld->err_line = ld->lineno;
        return 0;
    }
    return 1;
}

int gd_cfg_load_ini(const char *path, int missing_ok, gd_cfg_ini_cb cb, void *ctx, char *err,
                    size_t errlen)
{
    load_t *ld;
    int rc;

    FILE *file = fopen(path, "re");
    if (file == NULL) {
        rc = errno;
        if (rc == ENOENT && missing_ok) return 0;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(rc));
        return -rc;
    }
    ld = calloc(1, sizeof(*ld));
    if (ld == NULL) {
        fclose(file);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    ld->file = file;
    ld->cb = cb;
    ld->ctx = ctx;
    raise_ini_line_limit();
    int line = ini_parse_stream(read_line, ld, on_ini_value, ld);

    /* Errors in file order: inih reports the first bad line, whether a
     * syntax error or a value the callback refused; reading stops at a line
     * too long or a read error, so those come after it. */
    if (line > 0 && line == ld->err_line) {
        snprintf(err, errlen, "%s:%d: %s", path, line, ld->why);
        rc = -EINVAL;
    } else if (line > 0) {
        snprintf(err, errlen, "%s:%d: syntax error", path, line);
        rc = -EINVAL;
    } else if (line < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
    } else if (ld->read_errno != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(ld->read_errno));
        rc = -ld->read_errno;
    } else if (ld->too_long_line != 0) {
        snprintf(err, errlen, "%s:%d: line is longer than %d bytes", path, ld->too_long_line,
                 ld->too_long_max);
        rc = -EINVAL;
    } else {
        rc = 0;
    }
    free(ld->line);
    free(ld);
    fclose(file);
    return rc;
}

int gd_cfg_unknown_key(const char *section, const char *name, char *why, size_t whylen)
{
    if (section[0] == '\0')
        snprintf(why, whylen, "unknown key '%s' (outside any [section])", name);
    else
        snprintf(why, whylen, "unknown key '%s.%s'", section, name);
    return -EINVAL;
}

/* The agent's keys, into the copy being filled. */
static int agent_ini_value(void *ctx, const char *section, const char *name, const char *value,
                           char *why, size_t whylen)
{
    const gd_cfg_key_t *key = find_key(section, strlen(section), name, strlen(name));
    if (key == NULL) return gd_cfg_unknown_key(section, name, why, whylen);
    return gd_cfg_set_value(ctx, key, value, why, whylen);
}

int gd_cfg_load_over(void *cfg, size_t size, const char *path, int missing_ok, gd_cfg_ini_cb cb,
                     char *err, size_t errlen)
{
    void *copy = malloc(size);
    if (copy == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    memcpy(copy, cfg, size); /* cfg is only changed when the whole file is good */
    int rc = gd_cfg_load_ini(path, missing_ok, cb, copy, err, errlen);
    if (rc == 0) memcpy(cfg, copy, size);
    free(copy);
    return rc;
}

int gd_config_load_file(gd_config_t *cfg, const char *path, int missing_ok, char *err,
                        size_t errlen)
{
    return gd_cfg_load_over(cfg, sizeof(*cfg), path, missing_ok, agent_ini_value, err, errlen);
}

int gd_config_validate(const gd_config_t *cfg, char *err, size_t errlen)
{
    static const char *const ordered[][2] = {
        {"channel.poll_ms", "channel.poll_max_ms"},
        {"commands.exec_timeout_ms", "commands.exec_max_timeout_ms"},
    };

    for (size_t i = 0; i < sizeof(ordered) / sizeof(ordered[0]); i++) {
        int64_t lo = int_value(cfg, gd_config_find(ordered[i][0]));
        int64_t hi = int_value(cfg, gd_config_find(ordered[i][1]));
        if (lo > hi) {
            snprintf(err, errlen, "%s (%" PRId64 ") must not be greater than %s (%" PRId64 ")",
                     ordered[i][0], lo, ordered[i][1], hi);
            return -EINVAL;
        }
    }
    return 0;
}

int gd_config_key_differs(const gd_config_t *a, const gd_config_t *b, const gd_cfg_key_t *key)
{
    return memcmp((const char *)a + key->offset, (const char *)b + key->offset, field_size(key)) !=
           0;
}

void gd_config_format_value(const gd_config_t *cfg, const gd_cfg_key_t *key, char *buf, size_t len)
{
    gd_cfg_format_value(cfg, key, buf, len);
}

void gd_cfg_format_value(const void *cfg, const gd_cfg_key_t *key, char *buf, size_t len)
{
    int64_t v = key->type == GD_CFG_STRING ? 0 : int_value(cfg, key);
    const char *name;

    switch (key->type) {
    case GD_CFG_INT:
        snprintf(buf, len, "%" PRId64, v);
        break;
    case GD_CFG_BOOL:
        snprintf(buf, len, "%s", v ? "true" : "false");
        break;
    case GD_CFG_ENUM:
        name = enum_name(key, v);
        if (name != NULL)
            snprintf(buf, len, "%s", name);
        else
            snprintf(buf, len, "%" PRId64, v);
        break;
    case GD_CFG_STRING:
        snprintf(buf, len, "%s", str_value(cfg, key));
        break;
    }
}

void gd_config_dump(const gd_config_t *cfg, FILE *out)
{
    fputs("; guestd configuration (guestd --dump-config).\n"
          "; runtime: applied on reload (SIGHUP, config.set); restart: read at startup.\n",
          out);
    gd_cfg_dump_table(cfg, gd_config_keys, out);
}

void gd_cfg_dump_table(const void *base, const gd_cfg_key_t *table, FILE *out)
{
    const char *section = NULL;
    char value[GD_CFG_STR_MAX + 32];
    char range[256];

    for (const gd_cfg_key_t *k = table; k->name != NULL; k++) {
        if (section == NULL || strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(out, "\n[%s]\n", section);
        }
        gd_config_describe_range(k, range, sizeof(range));
        const char *def = k->default_value;
        fprintf(out, "; %s (default: %s; allowed: %s; %s)\n", k->help,
                def[0] != '\0' ? def : "\"\"", range, k->runtime ? "runtime" : "restart");
        gd_cfg_format_value(base, k, value, sizeof(value));
        if (value[0] == '\0')
            fprintf(out, "%s =\n", k->name);
        else
            fprintf(out, "%s = %s\n", k->name, value);
    }
}

cJSON *gd_config_value_json(const gd_config_t *cfg, const gd_cfg_key_t *key)
{
    const char *name;

    switch (key->type) {
    case GD_CFG_INT:
        return cJSON_CreateNumber((double)int_value(cfg, key));
    case GD_CFG_BOOL:
        return cJSON_CreateBool(int_value(cfg, key) != 0);
    case GD_CFG_ENUM:
        name = enum_name(key, int_value(cfg, key));
        if (name == NULL) return cJSON_CreateNumber((double)int_value(cfg, key));
        return cJSON_CreateString(name);
    case GD_CFG_STRING:
        return cJSON_CreateString(str_value(cfg, key));
    }
    return NULL;
}

void gd_config_describe_range(const gd_cfg_key_t *key, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0) return;
    buf[0] = '\0';
    switch (key->type) {
    case GD_CFG_INT:
        snprintf(buf, len, "%" PRId64 "..%" PRId64, key->min, key->max);
        break;
    case GD_CFG_BOOL:
        snprintf(buf, len, "true|false");
        break;
    case GD_CFG_ENUM:
        for (size_t i = 0; key->choices[i] != NULL && used < len; i++) {
            int n = snprintf(buf + used, len - used, "%s%s", i ? "|" : "", key->choices[i]);
            used += n > 0 ? (size_t)n : 0;
        }
        break;
    case GD_CFG_STRING:
        if (key->min > 0)
            snprintf(buf, len, "%" PRId64 "..%" PRId64 " bytes", key->min, key->max);
        else
            snprintf(buf, len, "up to %" PRId64 " bytes", key->max);
        break;
    }
}

/* The agent's configuration: one table of every key, with type, default,
 * range and whether it may change at runtime. Parsing (INI and --set),
 * defaults, range checks, --dump-config and config.get/set loop over it. */
#ifndef GUESTD_CONFIG_H
#define GUESTD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define GD_CONFIG_DEFAULT_PATH "/etc/guestd/guestd.conf"
#define GD_CFG_STR_MAX 256 /* longest string value, including the NUL */

typedef enum { GD_FSYNC_NEVER = 0, GD_FSYNC_ROTATE = 1, GD_FSYNC_ALWAYS = 2 } gd_fsync_mode_t;

/* Plain data: a configuration is copied by value (a reload parses into a
 * fresh copy and swaps it in only when the whole file is valid). */
typedef struct gd_config_s {
    struct {
        int64_t log_level; /* gd_log_level_t */
        char proc_root[GD_CFG_STR_MAX];
        char sys_root[GD_CFG_STR_MAX];
        char state_dir[GD_CFG_STR_MAX];
    } agent;
    struct {
        char spec[GD_CFG_STR_MAX];
        int64_t poll_ms;
        int64_t poll_max_ms;
        int64_t max_message_bytes;
        int64_t out_queue_bytes;
        /* qemu-ga's protocol (commands/qga.h): gd_dialect_t values */
        int64_t dialect;
        char qga_spec[GD_CFG_STR_MAX]; /* a second channel; "" for none */
        int64_t qga_dialect;
    } channel;
    struct {
        int64_t interval_ms;
        char collectors[GD_CFG_STR_MAX]; /* comma-separated names, or "all" */
        int64_t top_processes;
        int64_t history;
        char log_path[GD_CFG_STR_MAX]; /* "none" turns the log off */
        int64_t log_max_bytes;
        int64_t log_keep;
        int64_t log_fsync; /* gd_fsync_mode_t */
    } metrics;
    struct {
        int64_t interval_ms;
        int64_t max_rss_bytes;
        int64_t min_free_bytes;
        int64_t max_loop_lag_ms;
    } health;
    struct {
        char allow[GD_CFG_STR_MAX]; /* comma-separated fnmatch patterns */
        char deny[GD_CFG_STR_MAX];  /* deny wins over allow */
        int64_t max_concurrent;
        int64_t exec_timeout_ms;
        int64_t exec_max_timeout_ms;
        int64_t exec_kill_grace_ms;
        int64_t exec_max_output_bytes;
        int64_t file_max_bytes;
        char poweroff_argv[GD_CFG_STR_MAX]; /* split on spaces */
        char reboot_argv[GD_CFG_STR_MAX];
        int64_t fsfreeze_timeout_ms; /* guest-fsfreeze-freeze thaws by itself after it */
    } commands;
} gd_config_t;

/* INT, BOOL (0 or 1) and ENUM (index into choices) values land in an
 * int64_t; STRING values in a char[GD_CFG_STR_MAX], NUL-padded so that equal
 * configurations compare equal with memcmp. */
typedef enum { GD_CFG_INT, GD_CFG_BOOL, GD_CFG_STRING, GD_CFG_ENUM } gd_cfg_type_t;

typedef struct gd_cfg_key_s {
    const char *section;
    const char *name;
    gd_cfg_type_t type;
    size_t offset;              /* into gd_config_t */
    const char *default_value;  /* parsed by the same code as user input */
    int64_t min, max;           /* GD_CFG_INT range; GD_CFG_STRING length range */
    const char *const *choices; /* GD_CFG_ENUM names, NULL-terminated; value = index */
    int runtime;                /* may change while running (SIGHUP, config.set) */
    const char *help;
    /* Why max is where it is, for a key that sizes memory or concurrency:
     * a value above it is refused with this reason. NULL: a plain range. */
    const char *ceiling;
} gd_cfg_key_t;

/* The table, NULL-name terminated, in dump order. */
extern const gd_cfg_key_t gd_config_keys[];

/* Finds "section.key"; NULL when there is no such key. */
const gd_cfg_key_t *gd_config_find(const char *dotted);

/* Fills every key with its default. */
void gd_config_defaults(gd_config_t *cfg);

/* Sets one key from text, checking type and range. On error returns
 * -EINVAL and writes "KEY: why (allowed: RANGE)" into err. A string a
 * config file could not hold (control characters, a space at either end,
 * ';' at the start or after a space) is refused, so a dump always loads back. */
int gd_config_set_value(gd_config_t *cfg, const gd_cfg_key_t *key, const char *value, char *err,
                        size_t errlen);

/* Applies "section.key=value" (the --set flag). */
int gd_config_set_dotted(gd_config_t *cfg, const char *assignment, char *err, size_t errlen);

/* Loads an INI file over cfg. missing_ok: a file that does not exist leaves
 * cfg alone and returns 0 (the default path); otherwise it is an error.
 * Errors name "FILE:LINE: ..." in err. cfg is only changed on success. */
int gd_config_load_file(gd_config_t *cfg, const char *path, int missing_ok, char *err,
                        size_t errlen);

/* Cross-key checks (poll_ms <= poll_max_ms, timeout <= max timeout...). */
int gd_config_validate(const gd_config_t *cfg, char *err, size_t errlen);

/* Nonzero when a and b hold different values for key (reload decides what
 * changed with it). */
int gd_config_key_differs(const gd_config_t *a, const gd_config_t *b, const gd_cfg_key_t *key);

/* Formats one key's value as text (what --dump-config prints). */
void gd_config_format_value(const gd_config_t *cfg, const gd_cfg_key_t *key, char *buf, size_t len);

/* Writes the whole configuration as INI that loads back unchanged. */
void gd_config_dump(const gd_config_t *cfg, FILE *out);

/* One key's value as JSON (numbers, booleans, strings as they are typed). */
cJSON *gd_config_value_json(const gd_config_t *cfg, const gd_cfg_key_t *key);

/* Describes the allowed values of a key ("100..86400000", "error|warn|...").*/
void gd_config_describe_range(const gd_cfg_key_t *key, char *buf, size_t len);

/* The same loops over any table of gd_cfg_key_t whose offsets point into
 * base (guestd-hub's configuration uses them with its own table). */
const gd_cfg_key_t *gd_cfg_find(const gd_cfg_key_t *table, const char *section, size_t section_len,
                                const char *name, size_t name_len);
int gd_cfg_set_value(void *base, const gd_cfg_key_t *key, const char *value, char *err,
                     size_t errlen);
void gd_cfg_format_value(const void *base, const gd_cfg_key_t *key, char *buf, size_t len);
/* Called for every name = value of an INI file: 0 takes it, a negative
 * errno refuses it with why ("FILE:LINE: why" is then the load's error). */
typedef int (*gd_cfg_ini_cb)(void *ctx, const char *section, const char *name, const char *value,
                             char *why, size_t whylen);
/* Reads an INI file with libinih, line limits and error texts as
 * gd_config_load_file (which is this with the agent's table). */
int gd_cfg_load_ini(const char *path, int missing_ok, gd_cfg_ini_cb cb, void *ctx, char *err,
                    size_t errlen);
/* Every key of table as gd_config_dump writes them ([section], a comment
 * with help and range, name = value). */
void gd_cfg_dump_table(const void *base, const gd_cfg_key_t *table, FILE *out);
/* gd_cfg_load_ini into a copy of the size bytes at cfg, copied back only
 * when the whole file is good (the callback gets the copy as ctx). */
int gd_cfg_load_over(void *cfg, size_t size, const char *path, int missing_ok, gd_cfg_ini_cb cb,
                     char *err, size_t errlen);
/* Writes "unknown key 'SECTION.NAME'" into why; returns -EINVAL. */
int gd_cfg_unknown_key(const char *section, const char *name, char *why, size_t whylen);

#endif

/* Leveled logging to stderr, with journald priority prefixes under systemd. */
#ifndef GUESTD_LOG_H
#define GUESTD_LOG_H

#include <stdarg.h>

typedef enum {
    GD_LOG_ERROR = 0,
    GD_LOG_WARN = 1,
    GD_LOG_INFO = 2,
    GD_LOG_DEBUG = 3,
} gd_log_level_t;

/* Reads JOURNAL_STREAM once: under systemd each line starts with "<N>" and
 * carries no timestamp (journald adds its own). */
void gd_log_init(void);
void gd_log_set_level(gd_log_level_t level);
gd_log_level_t gd_log_get_level(void);
/* Returns 0 and sets *out for "error", "warn", "info", "debug"; -EINVAL else. */
int gd_log_level_parse(const char *name, gd_log_level_t *out);
const char *gd_log_level_name(gd_log_level_t level);

void gd_log(gd_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gd_logv(gd_log_level_t level, const char *fmt, va_list ap);

#define gd_error(...) gd_log(GD_LOG_ERROR, __VA_ARGS__)
#define gd_warn(...) gd_log(GD_LOG_WARN, __VA_ARGS__)
#define gd_info(...) gd_log(GD_LOG_INFO, __VA_ARGS__)
#define gd_debug(...) gd_log(GD_LOG_DEBUG, __VA_ARGS__)

#endif

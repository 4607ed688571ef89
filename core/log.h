/* Leveled logging to stderr, with journald priority prefixes under systemd. */
#ifndef GUESTD_LOG_H
#define GUESTD_LOG_H

#include <stdarg.h>
#include <stdint.h>

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
/* The name each line carries (default "guestd"); a string that lives on. */
void gd_log_set_name(const char *name);
gd_log_level_t gd_log_get_level(void);
/* Returns 0 and sets *out for "error", "warn", "info", "debug"; -EINVAL else. */
int gd_log_level_parse(const char *name, gd_log_level_t *out);
const char *gd_log_level_name(gd_log_level_t level);

void gd_log(gd_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gd_logv(gd_log_level_t level, const char *fmt, va_list ap);

/* While filesystems are frozen no line is written: stderr may be a file, or
 * journald's socket with journald itself stuck on a frozen disk, and a
 * write(2) that blocks would stop the loop (the thaw included). Lines are
 * kept, up to GD_LOG_HOLD_BYTES, and written when the hold ends; the rest
 * are counted, and said in one line then. Safe from any thread. */
#define GD_LOG_HOLD_BYTES 16384
void gd_log_hold(void);
/* Ends the hold: writes what was kept. Returns how many lines were dropped
 * (0 when nothing was held). */
uint64_t gd_log_release(void);

#define gd_error(...) gd_log(GD_LOG_ERROR, __VA_ARGS__)
#define gd_warn(...) gd_log(GD_LOG_WARN, __VA_ARGS__)
#define gd_info(...) gd_log(GD_LOG_INFO, __VA_ARGS__)
#define gd_debug(...) gd_log(GD_LOG_DEBUG, __VA_ARGS__)

#endif

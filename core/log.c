/* Leveled logging to stderr, with journald priority prefixes under systemd. */
#include "core/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static gd_log_level_t current_level = GD_LOG_INFO;
static int under_journald;

/* The hold while filesystems are frozen (gd_log_hold). */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static int holding;
static char held[GD_LOG_HOLD_BYTES];
static size_t held_len;
static uint64_t held_dropped;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities: err=3, warning=4, info=6, debug=7. */
static const int level_priority[] = {3, 4, 6, 7};

void gd_log_init(void)
{
    under_journald = getenv("JOURNAL_STREAM") != NULL;
}

/* The program's name in each line ("guestd", "guestd-hub"). */
static const char *log_name = "guestd";

void gd_log_set_name(const char *name)
{
    log_name = name;
}

void gd_log_set_level(gd_log_level_t level)
{
    current_level = level;
}

gd_log_level_t gd_log_get_level(void)
{
    return current_level;
}

int gd_log_level_parse(const char *name, gd_log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (gd_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *gd_log_level_name(gd_log_level_t level)
{
    if ((int)level < 0 || level > GD_LOG_DEBUG) return "?";
    return level_names[level];
}

void gd_logv(gd_log_level_t level, const char *fmt, va_list ap)
{
    if (level > current_level) return;
    /* One buffer, one write: lines from the agent never interleave. */
    char line[2048];
    size_t n = 0;
    if (under_journald) {
        n = (size_t)snprintf(line, sizeof(line), "<%d>", level_priority[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n,
                              ".%03ldZ %s[%d] %s: ", ts.tv_nsec / 1000000, log_name, (int)getpid(),
                              level_names[level]);
    }
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (m < 0) m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2) n = sizeof(line) - 2;
    line[n++] = '\n';
    pthread_mutex_lock(&hold_lock);
    if (holding) {
        if (held_len + n <= sizeof(held)) {
            memcpy(held + held_len, line, n);
            held_len += n;
        } else {
            held_dropped++;
        }
        pthread_mutex_unlock(&hold_lock);
        return;
    }
    pthread_mutex_unlock(&hold_lock);
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void gd_log_hold(void)
{
    pthread_mutex_lock(&hold_lock);
    holding = 1;
    pthread_mutex_unlock(&hold_lock);
}

uint64_t gd_log_release(void)
{
    pthread_mutex_lock(&hold_lock);
    int was = holding;
    holding = 0;
    uint64_t dropped = held_dropped;
    size_t len = held_len;
    held_dropped = 0;
    held_len = 0;
    /* Written under the lock so that a line logged meanwhile by another
     * thread comes after the kept ones. */
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, held + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    pthread_mutex_unlock(&hold_lock);
    if (was && dropped)
        gd_warn("log: %" PRIu64 " line(s) dropped while filesystems were frozen (%d bytes kept)",
                dropped, GD_LOG_HOLD_BYTES);
    return dropped;
}

void gd_log(gd_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gd_logv(level, fmt, ap);
    va_end(ap);
}

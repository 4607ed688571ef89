/* Times for guestctl: ISO 8601 and relative times, UTC ISO 8601 out. */
#include "tools/timefmt.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t gd_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's days_from_civil. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int gd_time_ms_from_double(double ms, int64_t *out_ms)
{
    /* The negated test also refuses NaN; in range, the cast is defined. */
    if (!(ms >= (double)GD_TIME_MS_MIN && ms < (double)GD_TIME_MS_MAX + 1.0)) return -1;
    *out_ms = (int64_t)ms;
    return 0;
}

static int parse_relative(const char *text, int64_t now_ms, int64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)text[0])) return -1;
    double v = strtod(text, &end);
    int64_t unit;
    if (strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "m") == 0)
        unit = 60000;
    else if (strcmp(end, "h") == 0)
        unit = 3600000;
    else if (strcmp(end, "d") == 0)
        unit = 86400000;
    else
        return -1;
    /* In doubles: "1e50d" is far past any int64. Exact to the millisecond
     * for every time in range (they are below 2^53). */
    return gd_time_ms_from_double((double)now_ms - v * (double)unit, out);
}

int gd_time_parse(const char *text, int64_t now_ms, int64_t *out_ms)
{
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
    if (parse_relative(text, now_ms, out_ms) == 0) return 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return -1;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &s)) return -1;
            if (*p == '.') {
                p++;
                int scale = 100;
                if (!isdigit((unsigned char)*p)) return -1;
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (h > 23 || mi > 59 || s > 60) return -1;
    }
    int64_t offset_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (digits(&p, 2, &oh)) return -1;
        if (*p == ':') p++;
        if (*p && digits(&p, 2, &om)) return -1;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p) return -1;
    int64_t days = gd_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t t = ((days * 86400 + h * 3600 + mi * 60 + s) - offset_min * 60) * 1000 + ms;
    /* A zone offset can move year 0000 or 9999 out of the range. */
    if (t < GD_TIME_MS_MIN || t > GD_TIME_MS_MAX) return -1;
    *out_ms = t;
    return 0;
}

void gd_time_format(int64_t ms, int with_millis, char *buf, size_t len)
{
    struct tm tm;
    if (ms < GD_TIME_MS_MIN || ms > GD_TIME_MS_MAX) {
        snprintf(buf, len, "?");
        return;
    }
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int millis = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (with_millis)
        snprintf(buf + n, len - n, ".%03dZ", millis);
    else
        snprintf(buf + n, len - n, "Z");
}

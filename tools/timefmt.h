/* Times for guestctl: ISO 8601 and relative ("10m", "2h", "3d") times in,
 * UTC ISO 8601 out; everything in Unix milliseconds, as the agent's `ts`. */
#ifndef GUESTD_TIMEFMT_H
#define GUESTD_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* The times guestctl takes, in Unix milliseconds: years 0000 to 9999, what
 * the four-digit years of ISO 8601 write. A guest's "ts" is any JSON number
 * the guest sent; outside this range it is not a time (and would overflow
 * the casts and differences the readers and charts do with it). */
#define GD_TIME_MS_MIN (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define GD_TIME_MS_MAX (253402300799999LL) /* 9999-12-31T23:59:59.999Z */

/* ms as an int64 when it is a number in [GD_TIME_MS_MIN, GD_TIME_MS_MAX]
 * (fractions dropped): 0, or -1 for NaN, infinities and out-of-range. */
int gd_time_ms_from_double(double ms, int64_t *out_ms);
/* "2025-06-01", "2025-06-01T12:00", "2025-06-01T12:00:05.250Z",
 * "2025-06-01 12:00:05+02:00" (no zone means UTC), or a relative time before
 * now_ms: a number and a unit, s, m, h or d ("90s", "10m", "2h", "3d").
 * 0, or -1 when text is neither or names a time out of the range above. */
int gd_time_parse(const char *text, int64_t now_ms, int64_t *out_ms);
/* "2025-06-01T12:00:05Z", or with millis "2025-06-01T12:00:05.250Z"; "?"
 * for a time out of range. */
void gd_time_format(int64_t ms, int with_millis, char *buf, size_t len);
/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone). */
int64_t gd_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif

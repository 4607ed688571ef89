/* Charts of metrics-log fields over time: sparklines and SVG. */
#include "tools/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/logcmd.h"
#include "tools/termesc.h"
#include "tools/timefmt.h"

int gd_plot_add(gd_plot_series_t *s, int64_t t_ms, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        int64_t *t = realloc(s->t, cap * sizeof(*t));
        if (!t) return -1;
        s->t = t;
        double *vv = realloc(s->v, cap * sizeof(*vv));
        if (!vv) return -1;
        s->v = vv;
        s->cap = cap;
    }
    s->t[s->n] = t_ms;
    s->v[s->n] = v;
    s->n++;
    return 0;
}

void gd_plot_series_free(gd_plot_series_t *s)
{
    free(s->t);
    free(s->v);
    s->t = NULL;
    s->v = NULL;
    s->n = s->cap = 0;
}

static void time_range(const gd_plot_series_t *s, int n, int64_t *t0, int64_t *t1)
{
    int first = 1;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < s[i].n; k++) {
            if (first || s[i].t[k] < *t0) *t0 = s[i].t[k];
            if (first || s[i].t[k] > *t1) *t1 = s[i].t[k];
            first = 0;
        }
    if (first) *t0 = *t1 = 0;
}

static void value_range(const gd_plot_series_t *s, double *lo, double *hi)
{
    *lo = *hi = s->n ? s->v[0] : 0;
    for (size_t k = 1; k < s->n; k++) {
        if (s->v[k] < *lo) *lo = s->v[k];
        if (s->v[k] > *hi) *hi = s->v[k];
    }
}

/* Which of width slices of [t0, t1] t falls in. */
static int slice_of(int64_t t, int64_t t0, int64_t t1, int width)
{
    if (t1 <= t0) return 0;
    int c = (int)((double)(t - t0) / (double)(t1 - t0) * width);
    return c >= width ? width - 1 : c < 0 ? 0 : c;
}

static int64_t gap_limit(const gd_plot_series_t *s);

void gd_plot_sparklines(const gd_plot_series_t *s, int n, int width, FILE *out)
{
    static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    int64_t t0, t1;
    if (width < 8) width = 8;
    time_range(s, n, &t0, &t1);
    double *sum = calloc((size_t)width, sizeof(double));
    size_t *cnt = calloc((size_t)width, sizeof(size_t));
    int64_t *first = calloc((size_t)width, sizeof(int64_t));
    int64_t *last = calloc((size_t)width, sizeof(int64_t));
    if (!sum || !cnt || !first || !last) goto out;
    for (int i = 0; i < n; i++) {
        double lo, hi;
        char a[40], b[40];
        value_range(&s[i], &lo, &hi);
        gd_log_format_number(lo, a, sizeof(a));
        gd_log_format_number(hi, b, sizeof(b));
        gd_esc_puts(out, GD_ESC_TEXT, s[i].name);
        fprintf(out, "  min %s  max %s  (%zu samples)\n", a, b, s[i].n);
        memset(sum, 0, (size_t)width * sizeof(double));
        memset(cnt, 0, (size_t)width * sizeof(size_t));
        for (size_t k = 0; k < s[i].n; k++) {
            int c = slice_of(s[i].t[k], t0, t1, width);
            if (!cnt[c]) first[c] = s[i].t[k];
            last[c] = s[i].t[k];
            sum[c] += s[i].v[k];
            cnt[c]++;
        }
        /* A column between two samples no farther apart than the usual gap
         * repeats the one before: fewer samples than columns is not missing
         * data. Longer gaps stay blank. */
        int64_t gap = gap_limit(&s[i]);
        int prev = -1;
        for (int c = 0; c < width; c++) {
            if (cnt[c]) {
                double m = sum[c] / (double)cnt[c];
                int level = hi > lo ? (int)lround((m - lo) / (hi - lo) * 7.0) : 0;
                fputs(bars[level < 0 ? 0 : level > 7 ? 7 : level], out);
                prev = c;
                continue;
            }
            int next = c + 1;
            while (next < width && !cnt[next])
                next++;
            if (prev >= 0 && next < width && first[next] - last[prev] <= gap) {
                double m = sum[prev] / (double)cnt[prev];
                int level = hi > lo ? (int)lround((m - lo) / (hi - lo) * 7.0) : 0;
                fputs(bars[level < 0 ? 0 : level > 7 ? 7 : level], out);
            } else {
                fputc(' ', out);
            }
        }
        fputc('\n', out);
    }
    char a[40], b[40];
    gd_time_format(t0, 0, a, sizeof(a));
    gd_time_format(t1, 0, b, sizeof(b));
    int pad = width - (int)strlen(a) - (int)strlen(b);
    if (pad >= 2)
        fprintf(out, "%s%*s%s\n", a, pad, "", b);
    else
        fprintf(out, "%s .. %s\n", a, b);
out:
    free(sum);
    free(cnt);
    free(first);
    free(last);
}

double gd_plot_nice_step(double range, int target)
{
    if (!(range > 0) || target < 1) return 1;
    double raw = range / target;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nice * mag;
}

int64_t gd_plot_time_step(int64_t span_ms, int target)
{
    static const int64_t steps[] = {
        1000,     2000,     5000,     10000,    15000,     30000,     60000,
        120000,   300000,   600000,   900000,   1800000,   3600000,   7200000,
        10800000, 21600000, 43200000, 86400000, 172800000, 604800000,
    };
    size_t n = sizeof(steps) / sizeof(steps[0]);
    for (size_t i = 0; i < n; i++)
        if (span_ms / steps[i] <= target) return steps[i];
    return steps[n - 1];
}

static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            /* XML 1.0 has no C0 controls but tab and newline. */
            if ((unsigned char)*s < 0x20)
                fputs("\xef\xbf\xbd", out);
            else
                fputc(*s, out);
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Twice the median gap between samples; farther apart, the line breaks. */
static int64_t gap_limit(const gd_plot_series_t *s)
{
    if (s->n < 3) return INT64_MAX;
    int64_t *d = malloc((s->n - 1) * sizeof(*d));
    if (!d) return INT64_MAX;
    for (size_t k = 1; k < s->n; k++)
        d[k - 1] = s->t[k] - s->t[k - 1];
    qsort(d, s->n - 1, sizeof(*d), cmp_i64);
    int64_t med = d[(s->n - 1) / 2];
    free(d);
    return med > 0 ? med * 5 : INT64_MAX;
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c",
                                      "#9467bd", "#ff7f0e", "#17becf"};

void gd_plot_svg(const gd_plot_series_t *s, int n, int width, int height, FILE *out)
{
    if (width < 200) width = 200;
    if (height < 120) height = 120;
    const double left = 80, right = 20, top = 40, bottom = 50;
    double pw = width - left - right, ph = height - top - bottom;
    int64_t t0, t1;
    time_range(s, n, &t0, &t1);
    if (t1 <= t0) t1 = t0 + 1000;
    double lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        double a, b;
        if (!s[i].n) continue;
        value_range(&s[i], &a, &b);
        if (i == 0 || a < lo) lo = a;
        if (i == 0 || b > hi) hi = b;
    }
    if (hi <= lo) {
        hi = lo + 1;
        lo = lo - 1;
    }
    double ystep = gd_plot_nice_step(hi - lo, 5);
    double y0 = floor(lo / ystep) * ystep, y1 = ceil(hi / ystep) * ystep;
#define X(t) (left + (double)((t)-t0) / (double)(t1 - t0) * pw)
#define Y(v) (top + ph - ((v)-y0) / (y1 - y0) * ph)

    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            width, height, width, height, width, height);
    /* Title: the fields, in their colours. */
    fprintf(out, "<text x=\"%.0f\" y=\"22\" font-size=\"14\">", left);
    for (int i = 0; i < n; i++) {
        fprintf(out, "%s<tspan fill=\"%s\">", i ? "<tspan fill=\"#444\">,&#160;</tspan>" : "",
                palette[i % 6]);
        xml_text(out, s[i].name);
        fputs("</tspan>", out);
    }
    fputs("</text>\n", out);

    /* Horizontal grid and value labels. */
    char label[64];
    for (double v = y0; v <= y1 + ystep / 2; v += ystep) {
        double y = Y(v);
        gd_log_format_number(fabs(v) < ystep / 1e6 ? 0 : v, label, sizeof(label));
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#444\">%s</text>\n",
                left, y, left + pw, y, left - 6, y + 4, label);
    }
    /* Vertical grid and time labels, on round UTC times. */
    int64_t span = t1 - t0, tstep = gd_plot_time_step(span, 6);
    int64_t first = (t0 / tstep) * tstep;
    if (first < t0) first += tstep;
    for (int64_t t = first; t <= t1; t += tstep) {
        double x = X(t);
        time_t secs = (time_t)(t / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(label, sizeof(label),
                 span > 86400000 ? "%m-%d %H:%M"
                 : tstep < 60000 ? "%H:%M:%S"
                                 : "%H:%M",
                 &tm);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">%s</text>\n",
                x, top, x, top + ph, x, top + ph + 16, label);
    }
    char a[40], b[40];
    gd_time_format(t0, 0, a, sizeof(a));
    gd_time_format(t1, 0, b, sizeof(b));
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#444\">time (UTC), %s to "
            "%s</text>\n",
            left + pw / 2, top + ph + 36, a, b);
    /* Axes. */
    fprintf(out, "<path d=\"M%.1f %.1f V%.1f H%.1f\" fill=\"none\" stroke=\"#444\"/>\n", left, top,
            top + ph, left + pw);

    /* The series: one point per pixel column (the mean of its samples), the
     * line broken where samples are missing. */
    int cols = (int)pw;
    for (int i = 0; i < n; i++) {
        const gd_plot_series_t *se = &s[i];
        if (!se->n) continue;
        int64_t gap = gap_limit(se);
        fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"", palette[i % 6]);
        size_t k = 0;
        int pen_down = 0;
        int64_t prev_t = se->t[0];
        while (k < se->n) {
            int c = slice_of(se->t[k], t0, t1, cols);
            double sum = 0;
            size_t cnt = 0;
            int64_t tsum = 0;
            int broke = se->t[k] - prev_t > gap;
            while (k < se->n && slice_of(se->t[k], t0, t1, cols) == c &&
                   (cnt == 0 || se->t[k] - prev_t <= gap)) {
                sum += se->v[k];
                tsum += se->t[k] - t0;
                prev_t = se->t[k];
                cnt++;
                k++;
            }
            double x = left + (double)tsum / (double)cnt / (double)(t1 - t0) * pw;
            fprintf(out, "%s%.1f %.1f", pen_down && !broke ? " L" : (pen_down ? " M" : "M"), x,
                    Y(sum / (double)cnt));
            pen_down = 1;
        }
        fputs("\"/>\n", out);
        if (se->n == 1)
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"/>\n", X(se->t[0]),
                    Y(se->v[0]), palette[i % 6]);
    }
    fputs("</svg>\n", out);
#undef X
#undef Y
}

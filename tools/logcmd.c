/* guestctl log show|summary|export|plot. */
#include "tools/logcmd.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tools/fields.h"
#include "tools/plot.h"
#include "tools/termesc.h"
#include "tools/timefmt.h"

static void report_bad(FILE *errs, const gd_logread_stats_t *st)
{
    if (st->bad)
        fprintf(errs, "guestctl: skipped %llu bad line%s\n", (unsigned long long)st->bad,
                st->bad == 1 ? "" : "s");
}

static int read_all(char **files, int n, const gd_logcmd_opts_t *o, gd_logread_cb cb, void *ctx,
                    gd_logread_stats_t *st, FILE *errs)
{
    char err[512];
    int rc = gd_logread_run(files, n, &o->read, cb, ctx, st, err, sizeof(err));
    if (rc < 0) {
        fprintf(errs, "guestctl: %s\n", err);
        return 1;
    }
    report_bad(errs, st);
    return 0;
}

/* A node's value as text: numbers as written, strings decoded, containers
 * as their JSON. */
static void value_text(const gd_lj_node_t *v, char *buf, size_t len)
{
    switch (v->type) {
    case GD_LJ_NULL:
        snprintf(buf, len, "null");
        break;
    case GD_LJ_TRUE:
        snprintf(buf, len, "true");
        break;
    case GD_LJ_FALSE:
        snprintf(buf, len, "false");
        break;
    case GD_LJ_STRING:
        gd_lj_string(v, 0, buf, len);
        break;
    default:
        snprintf(buf, len, "%.*s", (int)v->text_len, v->text);
    }
}

/* ---- show ---- */

typedef struct show_s {
    const gd_logcmd_opts_t *o;
    FILE *out;
} show_t;

static int show_line(void *ctx, const gd_logrec_t *rec)
{
    show_t *s = ctx;
    if (s->o->n_fields == 0) {
        gd_esc_write(s->out, GD_ESC_JSON, rec->line, rec->len);
        fputc('\n', s->out);
        return 0;
    }
    const gd_lj_node_t *vals[64];
    int any = 0, nf = s->o->n_fields < 64 ? s->o->n_fields : 64;
    for (int i = 0; i < nf; i++) {
        vals[i] = gd_fields_lookup(rec->doc, rec->data, s->o->fields[i]);
        any |= vals[i] != NULL;
    }
    if (!any) return 0;
    char t[40], v[4096];
    gd_time_format(rec->ts_ms, 1, t, sizeof(t));
    fprintf(s->out, "%s ", t);
    gd_esc_puts(s->out, GD_ESC_TEXT, rec->event);
    for (int i = 0; i < nf; i++) {
        if (vals[i])
            value_text(vals[i], v, sizeof(v));
        else
            snprintf(v, sizeof(v), "-");
        fputc(' ', s->out);
        gd_esc_puts(s->out, GD_ESC_TEXT, s->o->fields[i]);
        fputc('=', s->out);
        gd_esc_puts(s->out, GD_ESC_TEXT, v);
    }
    fputc('\n', s->out);
    return 0;
}

int gd_log_show(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs)
{
    show_t s = {.o = o, .out = out};
    gd_logread_stats_t st;
    return read_all(files, n, o, show_line, &s, &st, errs);
}

/* ---- summary ---- */

typedef struct series_s {
    double *v;
    size_t n, cap;
    double min, max, sum;
} series_t;

typedef struct summary_s {
    const gd_logcmd_opts_t *o;
    gd_fieldset_t set;
    int oom;
} summary_t;

static void add_value(summary_t *s, const char *path, size_t len, double x)
{
    int32_t f = gd_fieldset_intern(&s->set, path, len);
    if (f < 0) {
        s->oom = 1;
        return;
    }
    series_t *ser = s->set.fields[f].user;
    if (!ser) {
        ser = calloc(1, sizeof(*ser));
        if (!ser) {
            s->oom = 1;
            return;
        }
        ser->min = ser->max = x;
        s->set.fields[f].user = ser;
    }
    if (ser->n == ser->cap) {
        size_t cap = ser->cap ? ser->cap * 2 : 1024;
        double *v = realloc(ser->v, cap * sizeof(*v));
        if (!v) {
            s->oom = 1;
            return;
        }
        ser->v = v;
        ser->cap = cap;
    }
    ser->v[ser->n++] = x;
    if (x < ser->min) ser->min = x;
    if (x > ser->max) ser->max = x;
    ser->sum += x;
}

static void summary_leaf(void *ctx, const char *path, size_t len, const gd_lj_node_t *leaf)
{
    add_value(ctx, path, len, leaf->num);
}

static int summary_line(void *ctx, const gd_logrec_t *rec)
{
    summary_t *s = ctx;
    if (s->o->n_fields == 0) {
        gd_fields_flatten(rec->doc, rec->data, summary_leaf, s);
    } else {
        for (int i = 0; i < s->o->n_fields; i++) {
            const gd_lj_node_t *v = gd_fields_lookup(rec->doc, rec->data, s->o->fields[i]);
            if (v && v->type == GD_LJ_NUMBER)
                add_value(s, s->o->fields[i], strlen(s->o->fields[i]), v->num);
        }
    }
    return s->oom ? -1 : 0;
}

void gd_log_format_number(double v, char *buf, size_t len)
{
    if (fabs(v) >= 1e15)
        snprintf(buf, len, "%.6g", v);
    else if (v == floor(v))
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.2f", v);
}

static void swap(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* Quickselect (Hoare partition): afterwards v[k] is the k-th smallest. */
static double select_kth(double *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, want = (ptrdiff_t)k;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                swap(&v[i], &v[j]);
                i++;
                j--;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

double gd_log_percentile(double *v, size_t n, double p)
{
    if (!n) return NAN;
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return select_kth(v, n, rank - 1);
}

void gd_log_summary_free(gd_log_summary_t *sum)
{
    for (size_t i = 0; sum->fields && i < sum->n_fields; i++)
        free(sum->fields[i].name);
    free(sum->fields);
    sum->fields = NULL;
    sum->n_fields = 0;
}

static void series_free(gd_fieldset_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        series_t *ser = set->fields[i].user;
        if (ser) free(ser->v);
        free(ser);
    }
    gd_fieldset_free(set);
}

int gd_log_summary_compute(char **files, int n, const gd_logcmd_opts_t *o, gd_log_summary_t *sum,
                           char *err, size_t errlen)
{
    summary_t s = {.o = o};
    memset(sum, 0, sizeof(*sum));
    sum->files = n;
    gd_fieldset_init(&s.set);
    int rc = gd_logread_run(files, n, &o->read, summary_line, &s, &sum->read, err, errlen);
    if (s.oom) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 0 && s.set.n) {
        sum->fields = calloc(s.set.n, sizeof(*sum->fields));
        if (!sum->fields) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    for (size_t r = 0; rc == 0 && r < s.set.n; r++) {
        gd_field_t *f = &s.set.fields[r];
        series_t *ser = f->user;
        gd_log_field_stats_t *fs = &sum->fields[r];
        fs->name = malloc(f->len + 1);
        if (!fs->name) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        memcpy(fs->name, f->name, f->len);
        fs->name[f->len] = '\0';
        fs->len = f->len;
        fs->count = ser->n;
        fs->min = ser->min;
        fs->max = ser->max;
        fs->mean = ser->sum / (double)ser->n;
        fs->p50 = gd_log_percentile(ser->v, ser->n, 50);
        fs->p95 = gd_log_percentile(ser->v, ser->n, 95);
        sum->n_fields = r + 1;
    }
    series_free(&s.set);
    if (rc != 0) gd_log_summary_free(sum);
    return rc < 0 ? -1 : 0;
}

const gd_log_field_stats_t *gd_log_summary_field(const gd_log_summary_t *sum, const char *name)
{
    for (size_t i = 0; i < sum->n_fields; i++)
        if (strcmp(sum->fields[i].name, name) == 0) return &sum->fields[i];
    return NULL;
}

int gd_log_table(FILE *out, int ncols, const char *const *cells, size_t rows)
{
    size_t *width = calloc((size_t)ncols, sizeof(*width));
    if (!width) return -1;
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < ncols; c++) {
            size_t w = strlen(cells[r * (size_t)ncols + (size_t)c]);
            if (w > width[c]) width[c] = w;
        }
    for (size_t r = 0; r < rows; r++) {
        for (int c = 0; c < ncols; c++) {
            const char *cell = cells[r * (size_t)ncols + (size_t)c];
            if (c == 0)
                fprintf(out, "%-*s", ncols > 1 ? (int)width[0] : 0, cell);
            else
                fprintf(out, "  %*s", (int)width[c], cell);
        }
        fputc('\n', out);
    }
    free(width);
    return 0;
}

char *gd_log_esc_dup(const char *s, size_t len)
{
    size_t cap = len * 6 + 1;
    char *buf = malloc(cap);
    if (buf) gd_esc(GD_ESC_TEXT, s, len, buf, cap);
    return buf;
}

int gd_log_summary(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs)
{
    gd_log_summary_t sum;
    char err[512];
    if (gd_log_summary_compute(files, n, o, &sum, err, sizeof(err)) < 0) {
        fprintf(errs, "guestctl: %s\n", err);
        return 1;
    }
    report_bad(errs, &sum.read);
    const gd_logread_stats_t *st = &sum.read;
    char a[40], b[40];
    gd_time_format(st->first_ts, 0, a, sizeof(a));
    gd_time_format(st->last_ts, 0, b, sizeof(b));
    if (st->matched)
        fprintf(out, "%llu samples from %s to %s (%d file%s, %llu bad line%s)\n",
                (unsigned long long)st->matched, a, b, n, n == 1 ? "" : "s",
                (unsigned long long)st->bad, st->bad == 1 ? "" : "s");
    else
        fprintf(out, "no samples (%d file%s, %llu bad line%s)\n", n, n == 1 ? "" : "s",
                (unsigned long long)st->bad, st->bad == 1 ? "" : "s");
    /* Rows as text first, to size the columns; row 0 is the heading. */
    static const char *const head[] = {"field", "count", "min", "mean", "p50", "p95", "max"};
    size_t rows = sum.n_fields + 1;
    char(*nums)[6][40] = calloc(rows, sizeof(*nums));
    const char **cells = calloc(rows * 7, sizeof(*cells));
    /* Field names carry guest text (process names, mount points). */
    char **names = calloc(rows, sizeof(*names));
    int rc = nums && cells && names ? 0 : 1;
    for (int c = 0; rc == 0 && c < 7; c++)
        cells[c] = head[c];
    for (size_t r = 1; rc == 0 && r < rows; r++) {
        const gd_log_field_stats_t *f = &sum.fields[r - 1];
        names[r] = gd_log_esc_dup(f->name, f->len);
        if (!names[r]) rc = 1;
        snprintf(nums[r][0], 40, "%zu", f->count);
        gd_log_format_number(f->min, nums[r][1], 40);
        gd_log_format_number(f->mean, nums[r][2], 40);
        gd_log_format_number(f->p50, nums[r][3], 40);
        gd_log_format_number(f->p95, nums[r][4], 40);
        gd_log_format_number(f->max, nums[r][5], 40);
        cells[r * 7] = names[r];
        for (int c = 1; c < 7; c++)
            cells[r * 7 + (size_t)c] = nums[r][c - 1];
    }
    if (rc == 0 && rows > 1 && gd_log_table(out, 7, cells, rows) < 0) rc = 1;
    if (rc) fprintf(errs, "guestctl: out of memory\n");
    for (size_t r = 0; names && r < rows; r++)
        free(names[r]);
    free(names);
    free(cells);
    free(nums);
    gd_log_summary_free(&sum);
    return rc;
}

/* ---- export --csv ---- */

typedef struct export_s {
    const gd_logcmd_opts_t *o;
    gd_fieldset_t set;
    const char **cols;
    int ncols;
    const gd_lj_node_t **row;
    FILE *out;
    int oom;
} export_t;

static void collect_leaf(void *ctx, const char *path, size_t len, const gd_lj_node_t *leaf)
{
    export_t *e = ctx;
    if (gd_fieldset_intern(&e->set, path, len) < 0) e->oom = 1;
}

static int collect_line(void *ctx, const gd_logrec_t *rec)
{
    export_t *e = ctx;
    gd_fields_flatten(rec->doc, rec->data, collect_leaf, e);
    return e->oom ? -1 : 0;
}

static void row_leaf(void *ctx, const char *path, size_t len, const gd_lj_node_t *leaf)
{
    export_t *e = ctx;
    int32_t f = gd_fieldset_find(&e->set, path, len);
    if (f >= 0 && !e->row[f]) e->row[f] = leaf;
}

/* One CSV cell: guest text escaped (termesc.h; so no newline is left),
 * then quoted when it holds a comma or a quote. */
static void csv_cell(FILE *out, const char *s)
{
    size_t len = strlen(s), cap = len * 6 + 1;
    char small[1024];
    char *esc = cap <= sizeof(small) ? small : malloc(cap);
    if (!esc) return;
    gd_esc(GD_ESC_TEXT, s, len, esc, cap);
    if (!strpbrk(esc, ",\"")) {
        fputs(esc, out);
    } else {
        fputc('"', out);
        for (const char *p = esc; *p; p++) {
            if (*p == '"') fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    }
    if (esc != small) free(esc);
}

static int export_line(void *ctx, const gd_logrec_t *rec)
{
    export_t *e = ctx;
    char t[40], v[4096];
    if (e->o->n_fields == 0) {
        memset(e->row, 0, (size_t)e->ncols * sizeof(*e->row));
        gd_fields_flatten(rec->doc, rec->data, row_leaf, e);
    } else {
        for (int i = 0; i < e->ncols; i++)
            e->row[i] = gd_fields_lookup(rec->doc, rec->data, e->cols[i]);
    }
    gd_time_format(rec->ts_ms, 1, t, sizeof(t));
    fprintf(e->out, "%lld,%s,", (long long)rec->ts_ms, t);
    csv_cell(e->out, rec->event);
    for (int i = 0; i < e->ncols; i++) {
        fputc(',', e->out);
        if (!e->row[i]) continue;
        value_text(e->row[i], v, sizeof(v));
        csv_cell(e->out, v);
    }
    fputc('\n', e->out);
    return 0;
}

int gd_log_export_csv(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs)
{
    export_t e = {.o = o, .out = out};
    gd_logread_stats_t st;
    int rc = 0;
    gd_fieldset_init(&e.set);
    if (o->n_fields == 0) {
        /* Every numeric field seen anywhere: a first pass finds them. */
        gd_logcmd_opts_t quiet = *o;
        char err[512];
        if (gd_logread_run(files, n, &quiet.read, collect_line, &e, &st, err, sizeof(err)) < 0) {
            fprintf(errs, "guestctl: %s\n", err);
            gd_fieldset_free(&e.set);
            return 1;
        }
        e.ncols = (int)e.set.n;
        e.cols = calloc(e.set.n ? e.set.n : 1, sizeof(*e.cols));
        for (size_t i = 0; e.cols && i < e.set.n; i++)
            e.cols[i] = e.set.fields[i].name;
    } else {
        e.ncols = o->n_fields;
        e.cols = calloc((size_t)o->n_fields, sizeof(*e.cols));
        for (int i = 0; e.cols && i < o->n_fields; i++)
            e.cols[i] = o->fields[i];
    }
    e.row = calloc(e.ncols ? (size_t)e.ncols : 1, sizeof(*e.row));
    if (!e.cols || !e.row || e.oom) {
        fprintf(errs, "guestctl: out of memory\n");
        rc = 1;
    } else {
        fputs("ts,time,event", out);
        for (int i = 0; i < e.ncols; i++) {
            fputc(',', out);
            csv_cell(out, e.cols[i]);
        }
        fputc('\n', out);
        rc = read_all(files, n, o, export_line, &e, &st, errs);
    }
    free(e.cols);
    free(e.row);
    gd_fieldset_free(&e.set);
    return rc;
}

/* ---- plot ---- */

typedef struct plot_s {
    const gd_logcmd_opts_t *o;
    gd_plot_series_t *series;
    int oom;
} plot_t;

static int plot_line(void *ctx, const gd_logrec_t *rec)
{
    plot_t *p = ctx;
    for (int i = 0; i < p->o->n_fields; i++) {
        const gd_lj_node_t *v = gd_fields_lookup(rec->doc, rec->data, p->o->fields[i]);
        if (v && v->type == GD_LJ_NUMBER && gd_plot_add(&p->series[i], rec->ts_ms, v->num) < 0)
            p->oom = 1;
    }
    return p->oom ? -1 : 0;
}

int gd_log_plot(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs)
{
    plot_t p = {.o = o};
    gd_logread_stats_t st;
    if (o->n_fields == 0) {
        fprintf(errs, "guestctl: log plot needs --field\n");
        return 2;
    }
    p.series = calloc((size_t)o->n_fields, sizeof(*p.series));
    if (!p.series) return 1;
    for (int i = 0; i < o->n_fields; i++)
        p.series[i].name = o->fields[i];
    int rc = read_all(files, n, o, plot_line, &p, &st, errs);
    size_t points = 0;
    for (int i = 0; i < o->n_fields; i++)
        points += p.series[i].n;
    if (rc == 0 && p.oom) {
        fprintf(errs, "guestctl: out of memory\n");
        rc = 1;
    }
    if (rc == 0 && points == 0) {
        fprintf(errs, "guestctl: no value of %s%s in the log\n", o->fields[0],
                o->n_fields > 1 ? " (or the other fields)" : "");
        rc = 1;
    }
    if (rc == 0) {
        if (o->svg_out) {
            FILE *f = fopen(o->svg_out, "w");
            if (!f) {
                fprintf(errs, "guestctl: %s: cannot write\n", o->svg_out);
                rc = 1;
            } else {
                gd_plot_svg(p.series, o->n_fields, o->svg_width, o->svg_height, f);
                if (fclose(f) != 0) {
                    fprintf(errs, "guestctl: %s: write failed\n", o->svg_out);
                    rc = 1;
                }
            }
        } else {
            gd_plot_sparklines(p.series, o->n_fields, o->width, out);
        }
    }
    for (int i = 0; i < o->n_fields; i++)
        gd_plot_series_free(&p.series[i]);
    free(p.series);
    return rc;
}

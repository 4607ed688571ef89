/* guestctl log show|summary|export|plot: what each prints, from a set of
 * metrics-log files. Each returns guestctl's exit status (0, or 1 when a
 * file cannot be read or there is nothing to plot); bad lines are counted on
 * errs. */
#ifndef GUESTD_LOGCMD_H
#define GUESTD_LOGCMD_H

#include <stdio.h>

#include "tools/logread.h"

typedef struct gd_logcmd_opts_s {
    gd_logread_opts_t read;
    const char **fields; /* --field, dotted paths */
    int n_fields;
    int width;           /* plot: sparkline columns */
    const char *svg_out; /* plot --out FILE.svg */
    int svg_width, svg_height;
} gd_logcmd_opts_t;

/* What log summary prints for one guest's set of files, for the table of
 * one guest and the row of each guest in --by-domain alike. */
typedef struct gd_log_field_stats_s {
    char *name; /* the dotted path, as read (guest text: escape it) */
    size_t len;
    size_t count;
    double min, mean, p50, p95, max;
} gd_log_field_stats_t;

typedef struct gd_log_summary_s {
    gd_logread_stats_t read; /* samples (matched), bad lines, first and last ts */
    int files;
    gd_log_field_stats_t *fields; /* in the order first seen */
    size_t n_fields;
} gd_log_summary_t;

/* Reads files (in the order given) into sum: 0, or -1 with err set (a file
 * that cannot be read, out of memory; sum is then empty). */
int gd_log_summary_compute(char **files, int n, const gd_logcmd_opts_t *o, gd_log_summary_t *sum,
                           char *err, size_t errlen);
void gd_log_summary_free(gd_log_summary_t *sum);
/* The figures of one field, or NULL when it had no number. */
const gd_log_field_stats_t *gd_log_summary_field(const gd_log_summary_t *sum, const char *name);
/* Prints rows of ncols cells (cells[row * ncols + col]): the first column
 * left-aligned, the others right-aligned, each as wide as its widest cell.
 * -1 when out of memory. */
int gd_log_table(FILE *out, int ncols, const char *const *cells, size_t rows);
/* s[0..len) escaped for the terminal (termesc.h) in a new string; NULL when
 * out of memory. */
char *gd_log_esc_dup(const char *s, size_t len);

int gd_log_show(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);
int gd_log_summary(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);
int gd_log_export_csv(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);
int gd_log_plot(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);
/* log summary --by-domain DIR: a row per DIR/DOMAIN/metrics.ndjson set
 * (rotated files with it), sorted by name. 1 when DIR cannot be read or
 * holds no guest's log, or when a guest's files cannot be read (the other
 * rows are still printed). */
int gd_log_summary_by_domain(const char *dir, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);

/* Numbers as the summary prints them: integers whole, others with two
 * decimals, huge ones in %g. */
void gd_log_format_number(double v, char *buf, size_t len);
/* Nearest-rank percentile p (0..100] of v[0..n), reordering v. */
double gd_log_percentile(double *v, size_t n, double p);

#endif

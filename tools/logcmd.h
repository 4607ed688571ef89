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

int gd_log_show(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);
int gd_log_summary(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);
int gd_log_export_csv(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);
int gd_log_plot(char **files, int n, const gd_logcmd_opts_t *o, FILE *out, FILE *errs);

/* Numbers as the summary prints them: integers whole, others with two
 * decimals, huge ones in %g. */
void gd_log_format_number(double v, char *buf, size_t len);
/* Nearest-rank percentile p (0..100] of v[0..n), reordering v. */
double gd_log_percentile(double *v, size_t n, double p);

#endif

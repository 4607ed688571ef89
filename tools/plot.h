/* Charts of metrics-log fields over time: terminal sparklines, and SVG with
 * axes, grid, time labels and a legend. */
#ifndef GUESTD_PLOT_H
#define GUESTD_PLOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct gd_plot_series_s {
    const char *name;
    int64_t *t; /* ms, ascending as read */
    double *v;
    size_t n, cap;
} gd_plot_series_t;

int gd_plot_add(gd_plot_series_t *s, int64_t t_ms, double v);
void gd_plot_series_free(gd_plot_series_t *s);

/* Per series: a heading with min and max, a sparkline of width columns
 * (each the mean of its time slice; blank where there is no sample), and the
 * time range under it. All series share one time axis. */
void gd_plot_sparklines(const gd_plot_series_t *s, int n, int width, FILE *out);
/* One SVG document of width x height pixels. */
void gd_plot_svg(const gd_plot_series_t *s, int n, int width, int height, FILE *out);

/* A 1, 2 or 5 times a power of ten step that cuts range into about target parts. */
double gd_plot_nice_step(double range, int target);
/* A round time step (1 s ... 7 d) that cuts span_ms into about target parts. */
int64_t gd_plot_time_step(int64_t span_ms, int target);

#endif

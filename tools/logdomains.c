/* guestctl log summary --by-domain: guestd-hub's per-guest logs side by side. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/fields.h"
#include "tools/logcmd.h"
#include "tools/termesc.h"
#include "tools/timefmt.h"

#define LOG_NAME "metrics.ndjson"

/* The key figures of a guest when no --field is given: what `watch --table`
 * leads with. */
static const char *const default_fields[] = {"cpu.usage_pct", "memory.used_pct", "load.load1"};
static const char *const default_labels[] = {"cpu%", "mem%", "load1"};

typedef struct names_s {
    char **v;
    size_t n, cap;
} names_t;

static int names_add(names_t *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

static void names_free(names_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* metrics.ndjson and metrics.ndjson.N: the hub's log and its rotations. */
static int is_log_name(const char *name)
{
    size_t n = strlen(LOG_NAME);
    if (strncmp(name, LOG_NAME, n) != 0) return 0;
    if (!name[n]) return 1;
    if (name[n] != '.' || !name[n + 1]) return 0;
    for (const char *p = name + n + 1; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

/* DIR's entries (dot files left out), sorted; -errno when DIR cannot be
 * listed. */
static int list_dir(const char *dir, names_t *out)
{
    DIR *d = opendir(dir);
    if (!d) return -errno;
    struct dirent *e;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (e = readdir(d)))
        if (e->d_name[0] != '.' && names_add(out, e->d_name) < 0) rc = -ENOMEM;
    if (rc == 0 && errno) rc = -errno;
    closedir(d);
    if (out->n) qsort(out->v, out->n, sizeof(*out->v), by_name);
    return rc;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

typedef struct table_s {
    const char **cells; /* rows * ncols, pointing into text or constants */
    char **owned;       /* what cells point to that is freed */
    size_t rows, cap, n_owned, owned_cap;
    int ncols;
} table_t;

static const char *own(table_t *t, char *s)
{
    if (!s) return NULL;
    if (t->n_owned == t->owned_cap) {
        size_t cap = t->owned_cap ? t->owned_cap * 2 : 64;
        char **v = realloc(t->owned, cap * sizeof(*v));
        if (!v) {
            free(s);
            return NULL;
        }
        t->owned = v;
        t->owned_cap = cap;
    }
    return t->owned[t->n_owned++] = s;
}

static const char *own_text(table_t *t, const char *s)
{
    return own(t, strdup(s));
}

/* A new row of ncols cells, all "-". */
static const char **new_row(table_t *t)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        const char **v = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*v));
        if (!v) return NULL;
        t->cells = v;
        t->cap = cap;
    }
    const char **row = t->cells + t->rows++ * (size_t)t->ncols;
    for (int c = 0; c < t->ncols; c++)
        row[c] = "-";
    return row;
}

static void table_free(table_t *t)
{
    for (size_t i = 0; i < t->n_owned; i++)
        free(t->owned[i]);
    free(t->owned);
    free(t->cells);
}

static const char *number_cell(table_t *t, double v)
{
    char buf[40];
    gd_log_format_number(v, buf, sizeof(buf));
    return own_text(t, buf);
}

/* The row of one guest's summary: domain, samples, from, to, avg and max of
 * each key field, (health, filled by the caller), bad lines. 0 or -1 when out of memory. */
static int fill_row(table_t *t, const char **row, const gd_log_summary_t *sum,
                    const char *const *fields, int nf)
{
    char buf[40];
    int c = 1;
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)sum->read.matched);
    if (!(row[c++] = own_text(t, buf))) return -1;
    if (sum->read.matched) {
        gd_time_format(sum->read.first_ts, 0, buf, sizeof(buf));
        if (!(row[c] = own_text(t, buf))) return -1;
        gd_time_format(sum->read.last_ts, 0, buf, sizeof(buf));
        if (!(row[c + 1] = own_text(t, buf))) return -1;
    }
    c += 2;
    for (int i = 0; i < nf; i++, c += 2) {
        const gd_log_field_stats_t *f = gd_log_summary_field(sum, fields[i]);
        if (!f) continue;
        if (!(row[c] = number_cell(t, f->mean)) || !(row[c + 1] = number_cell(t, f->max)))
            return -1;
    }
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)sum->read.bad);
    return (row[c + 1] = own_text(t, buf)) ? 0 : -1; /* after the health column */
}

/* The last health status in a guest's files (the hub logs health lines
 * beside the samples), read in a pass of its own: the summary's counts are
 * of the samples alone. */
static int last_health(void *ctx, const gd_logrec_t *rec)
{
    const gd_lj_node_t *v = gd_fields_lookup(rec->doc, rec->data, "status");
    if (v && v->type == GD_LJ_STRING) gd_lj_string(v, 0, ctx, 32);
    return 0;
}

static const char *health_cell(table_t *t, char **files, int n, const gd_logcmd_opts_t *o)
{
    static const char *const health[] = {"health"};
    gd_logread_opts_t ro = o->read;
    ro.events = health;
    ro.n_events = 1;
    gd_logread_stats_t st;
    char status[32] = "", err[512];
    if (gd_logread_run(files, n, &ro, last_health, status, &st, err, sizeof(err)) < 0 || !status[0])
        return "-";
    return own(t, gd_log_esc_dup(status, strlen(status)));
}

static int heading(table_t *t, const char *const *labels, int nf)
{
    const char **row = new_row(t);
    if (!row) return -1;
    row[0] = "domain";
    row[1] = "samples";
    row[2] = "from";
    row[3] = "to";
    for (int i = 0; i < nf; i++) {
        char *esc = gd_log_esc_dup(labels[i], strlen(labels[i]));
        size_t n = (esc ? strlen(esc) : 0) + 5;
        char *avg = esc ? malloc(n) : NULL, *max = esc ? malloc(n) : NULL;
        if (avg) snprintf(avg, n, "%s avg", esc);
        if (max) snprintf(max, n, "%s max", esc);
        free(esc);
        if (!(row[4 + 2 * i] = own(t, avg))) {
            free(max);
            return -1;
        }
        if (!(row[5 + 2 * i] = own(t, max))) return -1;
    }
    row[4 + 2 * nf] = "health";
    row[5 + 2 * nf] = "bad";
    return 0;
}

/* One guest's directory: its row, or a message on errs (1). 0 when it
 * holds no metrics log (not a guest's directory: no row), -1 when out of
 * memory. */
static int one_domain(table_t *t, const char *dir, const char *name, const gd_logcmd_opts_t *o,
                      const char *const *fields, int nf, FILE *errs)
{
    char *path = join(dir, name);
    if (!path) return -1;
    struct stat sb;
    names_t entries = {0}, files = {0};
    int rc = 0;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) goto out; /* a file beside the guests */
    int r = list_dir(path, &entries);
    if (r == -ENOMEM) {
        rc = -1;
        goto out;
    }
    if (r < 0) {
        fputs("guestctl: ", errs);
        gd_esc_puts(errs, GD_ESC_TEXT, path);
        fprintf(errs, ": %s\n", strerror(-r));
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < entries.n && rc == 0; i++)
        if (is_log_name(entries.v[i])) {
            char *f = join(path, entries.v[i]);
            if (!f || names_add(&files, f) < 0) rc = -1;
            free(f);
        }
    if (rc || !files.n) goto out;
    gd_logread_order(files.v, (int)files.n);
    gd_log_summary_t sum;
    char err[512];
    if (gd_log_summary_compute(files.v, (int)files.n, o, &sum, err, sizeof(err)) < 0) {
        fputs("guestctl: ", errs);
        gd_esc_puts(errs, GD_ESC_TEXT, err);
        fputc('\n', errs);
        rc = strcmp(err, "out of memory") == 0 ? -1 : 1;
        goto out;
    }
    const char **row = new_row(t);
    if (!row || !(row[0] = own(t, gd_log_esc_dup(name, strlen(name)))) ||
        fill_row(t, row, &sum, fields, nf) < 0 ||
        !(row[4 + 2 * nf] = health_cell(t, files.v, (int)files.n, o)))
        rc = -1;
    gd_log_summary_free(&sum);
out:
    names_free(&entries);
    names_free(&files);
    free(path);
    return rc;
}

int gd_log_summary_by_domain(const char *dir, const gd_logcmd_opts_t *o, FILE *out, FILE *errs)
{
    gd_logcmd_opts_t mine = *o;
    const char *const *fields = o->fields, *const *labels = o->fields;
    int nf = o->n_fields;
    if (nf == 0) {
        /* Only the key figures are kept: reading is then cheaper, too. */
        mine.fields = (const char **)default_fields;
        mine.n_fields = nf = 3;
        fields = default_fields;
        labels = default_labels;
    }
    names_t domains = {0};
    table_t t = {.ncols = 6 + 2 * nf};
    int status = 0, r = list_dir(dir, &domains);
    if (r < 0 && r != -ENOMEM) {
        fputs("guestctl: ", errs);
        gd_esc_puts(errs, GD_ESC_TEXT, dir);
        fprintf(errs, ": %s\n", strerror(-r));
        names_free(&domains);
        return 1;
    }
    if (r < 0 || heading(&t, labels, nf) < 0) status = -1;
    for (size_t i = 0; status >= 0 && i < domains.n; i++) {
        r = one_domain(&t, dir, domains.v[i], &mine, fields, nf, errs);
        if (r) status = r;
    }
    if (status < 0) {
        fprintf(errs, "guestctl: out of memory\n");
    } else if (t.rows > 1) {
        if (gd_log_table(out, t.ncols, t.cells, t.rows) < 0) status = -1;
    } else if (status == 0) {
        fputs("guestctl: ", errs);
        gd_esc_puts(errs, GD_ESC_TEXT, dir);
        fprintf(errs, ": no guest's log (DOMAIN/" LOG_NAME ") in it\n");
        status = 1;
    }
    table_free(&t);
    names_free(&domains);
    return status ? 1 : 0;
}

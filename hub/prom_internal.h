/* What hub/prom.c and hub/prom_sample.c share: the metric families, a
 * guest's fragment cache and the sample-line writer. */
#ifndef GUESTD_HUB_PROM_INTERNAL_H
#define GUESTD_HUB_PROM_INTERNAL_H

#include <stdint.h>

#include <libdeflate.h>

#include "core/buf.h"
#include "hub/prom.h"

/* The guests' families, in exposition order. */
typedef enum {
    F_UP,
    F_CONNECTED,
    F_LAST_SAMPLE,
    F_INFO,
    F_BOOT_TIME,
    F_CPU_SECONDS,
    F_MEM_TOTAL,
    F_MEM_AVAILABLE,
    F_SWAP_TOTAL,
    F_SWAP_FREE,
    F_LOAD1,
    F_LOAD5,
    F_LOAD15,
    F_PROCS_RUNNING,
    F_THREADS,
    F_PSI_CPU_WAITING,
    F_PSI_MEM_WAITING,
    F_PSI_MEM_STALLED,
    F_PSI_IO_WAITING,
    F_PSI_IO_STALLED,
    F_DISK_READS,
    F_DISK_WRITES,
    F_DISK_READ_BYTES,
    F_DISK_WRITTEN_BYTES,
    F_DISK_IO_TIME,
    F_FS_SIZE,
    F_FS_FREE,
    F_FS_AVAIL,
    F_FS_FILES,
    F_FS_FILES_FREE,
    F_FS_ERROR,
    F_NET_UP,
    F_NET_RX_BYTES,
    F_NET_TX_BYTES,
    F_NET_RX_PACKETS,
    F_NET_TX_PACKETS,
    F_NET_RX_ERRS,
    F_NET_TX_ERRS,
    F_NET_RX_DROP,
    F_NET_TX_DROP,
    F_TOP_CPU,
    F_TOP_RSS,
    F_HEALTH,
    F_HEALTH_CHECK,
    F_AGENT_RSS,
    F_AGENT_CPU,
    F_AGENT_DROPPED,
    F_COUNT
} gd_prom_family_t;

typedef struct gd_prom_family_s {
    const char *name, *type, *help;
} gd_prom_family_desc_t;

extern const gd_prom_family_desc_t gd_prom_families[F_COUNT];

/* One guest's lines of one family. */
typedef struct gd_prom_frag_s {
    gd_buf_t text;
} gd_prom_frag_t;

struct gd_prom_guest_s {
    char *domain;
    gd_buf_t label; /* domain="..." escaped */
    gd_prom_frag_t frag[F_COUNT];
    gd_prom_frag_t up[2];   /* guestd_up 0 and 1, made once */
    gd_prom_frag_t conn[2]; /* guestd_guest_connected 0 and 1 */
    int connected, have_sample;
    int interval_known; /* interval_ms measured between two samples */
    int64_t rx_ms, interval_ms;
};

struct gd_prom_s {
    int top_processes;
    struct libdeflate_compressor *gz; /* level 1, reused by every scrape */
    gd_prom_frag_t header[F_COUNT];   /* # HELP and # TYPE of each family */
    gd_buf_t scratch;
    gd_buf_t text; /* a gzip scrape's text, kept for the next one */
};

/* Writes `name{domain="x"` (then labels, then the value with gd_prom_end). */
void gd_prom_begin(gd_buf_t *b, gd_prom_family_t fam, const gd_prom_guest_t *g);
/* Writes `,key="value"` with the value escaped. */
void gd_prom_label(gd_buf_t *b, const char *key, const char *value);
/* Writes `} value\n`. */
void gd_prom_end(gd_buf_t *b, double v);
/* A whole line with the domain label only. */
void gd_prom_line(gd_buf_t *b, gd_prom_family_t fam, const gd_prom_guest_t *g, double v);
/* Escapes a label value (backslash, double quote, newline). */
void gd_prom_escape(gd_buf_t *b, const char *s);
/* A number as the text format wants it: integers plainly, others %.15g. */
void gd_prom_number(gd_buf_t *b, double v);

/* Renders the sample's families into g->frag (hub/prom_sample.c). */
int gd_prom_render_sample(gd_prom_t *p, gd_prom_guest_t *g, const cJSON *data, int64_t ts_ms);

#endif

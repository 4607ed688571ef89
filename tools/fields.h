/* Fields of a metrics sample by dotted path: "cpu.usage_pct",
 * "network.eth0.rx_bytes_per_s", "filesystems./.used_pct",
 * "cpu.per_cpu.1.usage_pct". An array element is named by its "name",
 * "mount", "cpu" or "pid" member (the first present), else by its index; the
 * naming member itself, and "cpu"/"pid" numbers inside elements, are labels,
 * not fields. */
#ifndef GUESTD_FIELDS_H
#define GUESTD_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "tools/ljson.h"

/* Called once per numeric leaf, in document order, with its path. */
typedef void (*gd_leaf_cb)(void *ctx, const char *path, size_t len, const gd_lj_node_t *leaf);
void gd_fields_flatten(const gd_lj_doc_t *doc, const gd_lj_node_t *data, gd_leaf_cb cb, void *ctx);
/* The node at path under data (NULL when absent). */
const gd_lj_node_t *gd_fields_lookup(const gd_lj_doc_t *doc, const gd_lj_node_t *data,
                                     const char *path);

/* A set of field names, in first-seen order, found by name through a hash. */
typedef struct gd_field_s {
    char *name;
    size_t len;
    uint64_t hash;
    void *user; /* what the caller keeps per field */
} gd_field_t;

typedef struct gd_fieldset_s {
    gd_field_t *fields;
    size_t n, cap;
    int32_t *slots; /* open addressing: index into fields, -1 empty */
    size_t nslots;
} gd_fieldset_t;

void gd_fieldset_init(gd_fieldset_t *s);
void gd_fieldset_free(gd_fieldset_t *s);
/* The index of name, added when new; -1 when out of memory. */
int32_t gd_fieldset_intern(gd_fieldset_t *s, const char *name, size_t len);
/* The index of name, or -1. */
int32_t gd_fieldset_find(const gd_fieldset_t *s, const char *name, size_t len);

#endif

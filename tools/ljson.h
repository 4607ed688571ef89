/* A small, fast JSON reader for metrics-log lines: parses one line into a
 * tree of nodes held in a reusable arena (no allocation per node, none at
 * all once the arena has grown), keeping strings and numbers as pointers into
 * the line. guestctl's log commands read hundreds of MB with it. */
#ifndef GUESTD_LJSON_H
#define GUESTD_LJSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    GD_LJ_NULL,
    GD_LJ_FALSE,
    GD_LJ_TRUE,
    GD_LJ_NUMBER,
    GD_LJ_STRING,
    GD_LJ_ARRAY,
    GD_LJ_OBJECT,
} gd_lj_type_t;

typedef struct gd_lj_node_s {
    gd_lj_type_t type;
    int escaped; /* a string (or key) with backslash escapes left in text */
    int key_escaped;
    const char *key; /* an object member's key, raw (NULL in arrays) */
    size_t key_len;
    const char *text; /* a number's text, a string's raw content, a container's JSON */
    size_t text_len;
    double num;    /* a number's value */
    int32_t child; /* first child (arrays, objects), -1 if none */
    int32_t next;  /* next sibling, -1 if last */
} gd_lj_node_t;

typedef struct gd_lj_doc_s {
    gd_lj_node_t *nodes; /* nodes[0] is the root after a successful parse */
    size_t n, cap;
} gd_lj_doc_t;

void gd_lj_init(gd_lj_doc_t *doc);
void gd_lj_free(gd_lj_doc_t *doc);
/* Parses exactly one JSON value spanning s[0..len) (surrounding whitespace
 * allowed). Returns 0, or -1 for invalid JSON, -2 out of memory. The nodes
 * point into s, which must stay alive while they are used. */
int gd_lj_parse(gd_lj_doc_t *doc, const char *s, size_t len);

static inline const gd_lj_node_t *gd_lj_root(const gd_lj_doc_t *doc)
{
    return doc->n ? &doc->nodes[0] : NULL;
}
static inline const gd_lj_node_t *gd_lj_child(const gd_lj_doc_t *doc, const gd_lj_node_t *n)
{
    return n->child >= 0 ? &doc->nodes[n->child] : NULL;
}
static inline const gd_lj_node_t *gd_lj_next(const gd_lj_doc_t *doc, const gd_lj_node_t *n)
{
    return n->next >= 0 ? &doc->nodes[n->next] : NULL;
}
/* The member of object obj whose raw key is key (NULL when absent). */
const gd_lj_node_t *gd_lj_get(const gd_lj_doc_t *doc, const gd_lj_node_t *obj, const char *key);
/* Decodes a string node's text (or its key, with key set) into buf as UTF-8,
 * NUL-terminated, cut to len-1 bytes. Returns the length written. */
size_t gd_lj_string(const gd_lj_node_t *n, int key, char *buf, size_t len);
/* Parses a JSON number token (exactly len bytes, strict grammar) into *out.
 * 0, or -1 when it is not one. Exact: correctly rounded. */
int gd_lj_number(const char *s, size_t len, double *out);

#endif

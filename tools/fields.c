/* Fields of a metrics sample by dotted path, and a set of field names. */
#include "tools/fields.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/termesc.h"

#define PATH_MAX_LEN 512

/* The element's label member ("name", "mount", "cpu", "pid"), or NULL. */
static const gd_lj_node_t *label_of(const gd_lj_doc_t *doc, const gd_lj_node_t *el)
{
    static const char *const keys[] = {"name", "mount", "cpu", "pid"};
    if (el->type != GD_LJ_OBJECT) return NULL;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const gd_lj_node_t *n = gd_lj_get(doc, el, keys[i]);
        if (n && (n->type == GD_LJ_STRING || n->type == GD_LJ_NUMBER)) return n;
    }
    return NULL;
}

static int is_label_key(const gd_lj_node_t *n)
{
    return (n->key_len == 3 && memcmp(n->key, "cpu", 3) == 0) ||
           (n->key_len == 3 && memcmp(n->key, "pid", 3) == 0);
}

typedef struct walk_s {
    const gd_lj_doc_t *doc;
    gd_leaf_cb cb;
    void *ctx;
    char path[PATH_MAX_LEN];
} walk_t;

static size_t append(char *path, size_t at, const char *s, size_t len)
{
    if (at && at < PATH_MAX_LEN - 1) path[at++] = '.';
    if (at + len >= PATH_MAX_LEN) len = PATH_MAX_LEN - 1 - at;
    memcpy(path + at, s, len);
    return at + len;
}

static void walk(walk_t *w, const gd_lj_node_t *n, size_t at, int in_element);

static void walk_children(walk_t *w, const gd_lj_node_t *n, size_t at, int in_element,
                          const gd_lj_node_t *skip)
{
    const gd_lj_doc_t *doc = w->doc;
    for (const gd_lj_node_t *c = gd_lj_child(doc, n); c; c = gd_lj_next(doc, c)) {
        if (c == skip || (in_element && c->type == GD_LJ_NUMBER && is_label_key(c))) continue;
        size_t end;
        if (c->key_escaped) {
            char key[128];
            size_t kl = gd_lj_string(c, 1, key, sizeof(key));
            end = append(w->path, at, key, kl);
        } else {
            end = append(w->path, at, c->key, c->key_len);
        }
        walk(w, c, end, in_element);
    }
}

static void walk(walk_t *w, const gd_lj_node_t *n, size_t at, int in_element)
{
    const gd_lj_doc_t *doc = w->doc;
    switch (n->type) {
    case GD_LJ_NUMBER:
        w->path[at] = '\0';
        w->cb(w->ctx, w->path, at, n);
        break;
    case GD_LJ_OBJECT:
        walk_children(w, n, at, in_element, NULL);
        break;
    case GD_LJ_ARRAY: {
        int i = 0;
        for (const gd_lj_node_t *el = gd_lj_child(doc, n); el; el = gd_lj_next(doc, el), i++) {
            const gd_lj_node_t *label = label_of(doc, el);
            char name[128];
            size_t nl;
            if (label && label->type == GD_LJ_STRING)
                nl = gd_lj_string(label, 0, name, sizeof(name));
            else if (label)
                nl = gd_snprintf_len(
                    snprintf(name, sizeof(name), "%.*s", (int)label->text_len, label->text),
                    sizeof(name));
            else
                nl = gd_snprintf_len(snprintf(name, sizeof(name), "%d", i), sizeof(name));
            size_t end = append(w->path, at, name, nl);
            if (el->type == GD_LJ_OBJECT)
                walk_children(w, el, end, 1, label);
            else
                walk(w, el, end, 1);
        }
        break;
    }
    default:
        break;
    }
}

void gd_fields_flatten(const gd_lj_doc_t *doc, const gd_lj_node_t *data, gd_leaf_cb cb, void *ctx)
{
    walk_t w = {.doc = doc, .cb = cb, .ctx = ctx};
    if (data) walk(&w, data, 0, 0);
}

/* Does path start with the segment s (followed by '.' or its end)? Returns
 * the rest after the dot, "" at the end, or NULL. */
static const char *match_segment(const char *path, const char *s, size_t len)
{
    if (strncmp(path, s, len) != 0) return NULL;
    if (path[len] == '\0') return path + len;
    if (path[len] == '.') return path + len + 1;
    return NULL;
}

const gd_lj_node_t *gd_fields_lookup(const gd_lj_doc_t *doc, const gd_lj_node_t *data,
                                     const char *path)
{
    const gd_lj_node_t *n = data;
    while (n && *path) {
        /* The longest name that matches: "eth0.100" before "eth0". */
        const gd_lj_node_t *found = NULL;
        const char *rest = NULL;
        size_t best = 0;
        char name[128];
        if (n->type == GD_LJ_OBJECT) {
            for (const gd_lj_node_t *c = gd_lj_child(doc, n); c; c = gd_lj_next(doc, c)) {
                size_t kl = gd_lj_string(c, 1, name, sizeof(name));
                const char *r = match_segment(path, name, kl);
                if (r && (!found || kl > best)) {
                    found = c;
                    rest = r;
                    best = kl;
                }
            }
        } else if (n->type == GD_LJ_ARRAY) {
            int i = 0;
            for (const gd_lj_node_t *el = gd_lj_child(doc, n); el; el = gd_lj_next(doc, el), i++) {
                const gd_lj_node_t *label = label_of(doc, el);
                size_t nl;
                if (label && label->type == GD_LJ_STRING)
                    nl = gd_lj_string(label, 0, name, sizeof(name));
                else if (label)
                    nl = gd_snprintf_len(
                        snprintf(name, sizeof(name), "%.*s", (int)label->text_len, label->text),
                        sizeof(name));
                else
                    nl = gd_snprintf_len(snprintf(name, sizeof(name), "%d", i), sizeof(name));
                const char *r = match_segment(path, name, nl);
                if (r && (!found || nl > best)) {
                    found = el;
                    rest = r;
                    best = nl;
                }
            }
        }
        n = found;
        path = rest ? rest : "";
    }
    return n;
}

/* ---- the set ---- */

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

void gd_fieldset_init(gd_fieldset_t *s)
{
    memset(s, 0, sizeof(*s));
}

void gd_fieldset_free(gd_fieldset_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->fields[i].name);
    free(s->fields);
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

static int32_t lookup(const gd_fieldset_t *s, const char *name, size_t len, uint64_t h,
                      size_t *slot)
{
    if (!s->nslots) return -1;
    size_t mask = s->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        int32_t f = s->slots[i];
        if (f < 0) {
            if (slot) *slot = i;
            return -1;
        }
        const gd_field_t *fd = &s->fields[f];
        if (fd->hash == h && fd->len == len && memcmp(fd->name, name, len) == 0) return f;
    }
}

static int grow(gd_fieldset_t *s)
{
    size_t nslots = s->nslots ? s->nslots * 2 : 256;
    int32_t *slots = malloc(nslots * sizeof(*slots));
    if (!slots) return -1;
    memset(slots, 0xff, nslots * sizeof(*slots));
    for (size_t f = 0; f < s->n; f++) {
        size_t i = (size_t)s->fields[f].hash & (nslots - 1);
        while (slots[i] >= 0)
            i = (i + 1) & (nslots - 1);
        slots[i] = (int32_t)f;
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = nslots;
    return 0;
}

int32_t gd_fieldset_find(const gd_fieldset_t *s, const char *name, size_t len)
{
    return lookup(s, name, len, hash(name, len), NULL);
}

int32_t gd_fieldset_intern(gd_fieldset_t *s, const char *name, size_t len)
{
    uint64_t h = hash(name, len);
    size_t slot;
    int32_t f = lookup(s, name, len, h, &slot);
    if (f >= 0) return f;
    if ((s->n + 1) * 2 > s->nslots) {
        if (grow(s) < 0) return -1;
        lookup(s, name, len, h, &slot);
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        gd_field_t *fields = realloc(s->fields, cap * sizeof(*fields));
        if (!fields) return -1;
        s->fields = fields;
        s->cap = cap;
    }
    gd_field_t *fd = &s->fields[s->n];
    fd->name = malloc(len + 1);
    if (!fd->name) return -1;
    memcpy(fd->name, name, len);
    fd->name[len] = '\0';
    fd->len = len;
    fd->hash = h;
    fd->user = NULL;
    s->slots[slot] = (int32_t)s->n;
    return (int32_t)s->n++;
}

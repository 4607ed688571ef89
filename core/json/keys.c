/* Duplicate keys and escaped NULs: see json_keys.h. */
#include "core/json/keys.h"

#include <stdlib.h>
#include <string.h>

/* Up to this many members the pairwise check is cheaper than sorting. */
#define PAIRWISE_MAX 16

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *gd_json_duplicate_key(const cJSON *obj, int *oom)
{
    if (oom) *oom = 0;
    if (!cJSON_IsObject(obj)) return NULL;
    size_t n = 0;
    for (const cJSON *m = obj->child; m; m = m->next)
        n++;
    if (n <= PAIRWISE_MAX) {
        for (const cJSON *a = obj->child; a; a = a->next)
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) return a->string;
        return NULL;
    }
    /* Sorted, equal keys are neighbours: O(n log n) instead of O(n^2),
     * which held the loop for 25 s on a 1 MiB object of distinct keys. */
    const char **keys = malloc(n * sizeof(*keys));
    if (!keys) {
        if (oom) *oom = 1;
        return NULL;
    }
    size_t i = 0;
    for (const cJSON *m = obj->child; m; m = m->next)
        keys[i++] = m->string;
    qsort(keys, n, sizeof(*keys), cmp_keys);
    const char *dup = NULL;
    for (i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
}

const char *gd_json_duplicate_key_deep(const cJSON *obj, int *oom)
{
    const char *dup = gd_json_duplicate_key(obj, oom);
    if (dup || (oom && *oom)) return dup;
    /* Recursion is bounded by cJSON's nesting limit (1000). */
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
        if (cJSON_IsObject(c) || cJSON_IsArray(c))
            if ((dup = gd_json_duplicate_key_deep(c, oom)) || (oom && *oom)) return dup;
    return NULL;
}

size_t gd_json_escaped_nul_depth(const char *text, size_t len)
{
    static const char esc[] = "\\u0000";
    /* The common case, no such six bytes anywhere, costs one memmem. */
    if (!memmem(text, len, esc, sizeof(esc) - 1)) return 0;
    size_t depth = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '"') {
                in_string = 0;
            } else if (c == '\\') {
                /* An escape: "\\u0000" is a backslash and "u0000", not a NUL. */
                if (len - i >= 6 && memcmp(text + i, esc, 6) == 0) return depth ? depth : 1;
                i++;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && depth) {
            depth--;
        }
    }
    return 0;
}

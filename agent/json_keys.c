/* Duplicate keys: see json_keys.h. */
#include "agent/json_keys.h"

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

/* The per-thread block cache behind cJSON's allocation hooks (alloc.h). */
#include "core/json/alloc.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

/* Every block carries a header in front of what the caller gets: the
 * thread cache it was allocated by (NULL for a block too large to cache)
 * and its class. 16 bytes keep the caller's pointer aligned for any type. */
typedef struct cache cache_t;
typedef struct header {
    cache_t *owner;
    uint32_t cls;
    uint32_t pad;
} header_t;
_Static_assert(sizeof(header_t) == 16, "the header keeps 16-byte alignment");

/* A freed block, kept on its class's list; the header stays in front. */
typedef struct free_block {
    struct free_block *next;
} free_block_t;

struct cache {
    free_block_t *head[GD_JSON_CACHE_CLASSES];
    unsigned count[GD_JSON_CACHE_CLASSES];
};

static _Thread_local cache_t thread_cache;

static const size_t class_size[GD_JSON_CACHE_CLASSES] = {32, 64, 128, 256};

static int class_of(size_t size)
{
    for (int c = 0; c < GD_JSON_CACHE_CLASSES; c++)
        if (size <= class_size[c]) return c;
    return -1;
}

void *gd_json_alloc(size_t size)
{
    int c = class_of(size);
    if (c < 0) {
        if (size > SIZE_MAX - sizeof(header_t)) return NULL;
        header_t *h = malloc(sizeof(header_t) + size);
        if (!h) return NULL;
        h->owner = NULL;
        h->cls = 0;
        return h + 1;
    }
    cache_t *tc = &thread_cache;
    free_block_t *b = tc->head[c];
    if (b) {
        tc->head[c] = b->next;
        tc->count[c]--;
        return b;
    }
    header_t *h = malloc(sizeof(header_t) + class_size[c]);
    if (!h) return NULL;
    h->owner = tc;
    h->cls = (uint32_t)c;
    return h + 1;
}

void gd_json_free(void *p)
{
    if (!p) return;
    header_t *h = (header_t *)p - 1;
    cache_t *tc = &thread_cache;
    /* Only the allocating thread's cache takes a block back: a block freed
     * by a worker thread would otherwise sit in a cache nothing allocates
     * from. */
    if (h->owner != tc || tc->count[h->cls] >= GD_JSON_CACHE_PER_CLASS) {
        free(h);
        return;
    }
    free_block_t *b = p;
    b->next = tc->head[h->cls];
    tc->head[h->cls] = b;
    tc->count[h->cls]++;
}

size_t gd_json_cache_blocks(void)
{
    size_t n = 0;
    for (int c = 0; c < GD_JSON_CACHE_CLASSES; c++)
        n += thread_cache.count[c];
    return n;
}

void gd_json_cache_drain(void)
{
    cache_t *tc = &thread_cache;
    for (int c = 0; c < GD_JSON_CACHE_CLASSES; c++) {
        while (tc->head[c]) {
            free_block_t *b = tc->head[c];
            tc->head[c] = b->next;
            free((header_t *)b - 1);
        }
        tc->count[c] = 0;
    }
}

int gd_json_alloc_install(void)
{
#ifdef GUESTD_JSON_BLOCK_CACHE
    cJSON_Hooks hooks = {.malloc_fn = gd_json_alloc, .free_fn = gd_json_free};
    cJSON_InitHooks(&hooks);
    return 1;
#else
    return 0;
#endif
}

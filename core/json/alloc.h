/* A per-thread cache of the small blocks cJSON allocates: its nodes, keys
 * and short strings. A trivial request costs about twenty of them (parse,
 * reply tree, print), each a malloc and a free. glibc's per-thread tcache
 * makes that cheap; musl's mallocng takes a lock on every call once libuv's
 * thread pool exists and hands emptied pages back to the kernel at once,
 * which made the static build's pipelined throughput half the glibc
 * build's (docs/performance.md). The cache keeps up to
 * GD_JSON_CACHE_PER_CLASS freed blocks of each size class on the thread
 * that allocated them; larger blocks, and blocks freed on another thread,
 * go straight to the C library. */
#ifndef GUESTD_JSON_ALLOC_H
#define GUESTD_JSON_ALLOC_H

#include <stddef.h>

/* Size classes: blocks of up to 32, 64, 128 and 256 bytes are cached. */
#define GD_JSON_CACHE_CLASSES 4
#define GD_JSON_CACHE_MAX_BLOCK 256
/* Bounds what one thread keeps: 32 * (48 + 80 + 144 + 272) = 17 KiB. */
#define GD_JSON_CACHE_PER_CLASS 32

void *gd_json_alloc(size_t size);
void gd_json_free(void *p);

/* Blocks the calling thread's cache holds now, across all classes. */
size_t gd_json_cache_blocks(void);
/* Frees every block the calling thread's cache holds. */
void gd_json_cache_drain(void);

/* Makes cJSON allocate through the cache. Called once by main() of the
 * static build, before any cJSON call (packaging/static.sh turns it on with
 * GUESTD_JSON_BLOCK_CACHE); a no-op elsewhere, where glibc's tcache does the
 * same job and ASan and valgrind must see every block. Returns 1 if the
 * cache is in use. */
int gd_json_alloc_install(void);

#endif

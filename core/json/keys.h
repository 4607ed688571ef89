/* What cJSON accepts but a request must not hold: duplicate keys and an
 * escaped NUL. cJSON keeps every member of {"cmd":"a","cmd":"b"} and its
 * lookups return the first, so a request with a repeated key is ambiguous
 * and is refused; the check must stay cheap for an object of any size the
 * line limit allows (a 1 MiB line holds about 90,000 keys). cJSON decodes
 * "a\u0000b" into a C string that ends at the NUL ("a"), so a string
 * holding one would be silently cut: the raw text is scanned for it. */
#ifndef GUESTD_JSON_KEYS_H
#define GUESTD_JSON_KEYS_H

#include <cjson/cJSON.h>

/* The first key (in sorted order) that appears twice among obj's own
 * members, or NULL (also for a non-object, or when memory for a large
 * object runs out: then *oom is set to 1 if oom is not NULL). */
const char *gd_json_duplicate_key(const cJSON *obj, int *oom);

/* The same for obj and every object nested in it, at any depth (arrays
 * included). */
const char *gd_json_duplicate_key_deep(const cJSON *obj, int *oom);

/* Whether text (len bytes, JSON that cJSON parsed) holds the escape
 * \u0000 inside a string (key or value): 0 when not, else the nesting depth
 * at that point (1: a key or value of the outermost object or array, 2 and
 * more: inside a value nested in it). */
size_t gd_json_escaped_nul_depth(const char *text, size_t len);

#endif

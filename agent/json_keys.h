/* Duplicate keys in a parsed JSON object. cJSON keeps every member of
 * {"cmd":"a","cmd":"b"} and its lookups return the first, so a request with
 * a repeated key is ambiguous and is refused; the check must stay cheap
 * for an object of any size the line limit allows (a 1 MiB line holds
 * about 90,000 keys). */
#ifndef GUESTD_JSON_KEYS_H
#define GUESTD_JSON_KEYS_H

#include <cjson/cJSON.h>

/* The first key (in sorted order) that appears twice among obj's own
 * members, or NULL (also for a non-object, or when memory for a large
 * object runs out: then *oom is set to 1 if oom is not NULL). */
const char *gd_json_duplicate_key(const cJSON *obj, int *oom);

#endif

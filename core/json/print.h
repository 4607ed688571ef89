/* Serialising a cJSON tree into a reused buffer. cJSON_PrintUnformatted
 * allocates a buffer, grows it by doubling and shrinks it to the exact
 * length: one allocation and one free of a new size for every reply, and
 * the copy into the line buffer after it. Printing straight into a buffer
 * that keeps its capacity allocates nothing once the buffer has grown to
 * the usual reply. */
#ifndef GUESTD_JSON_PRINT_H
#define GUESTD_JSON_PRINT_H

#include <cjson/cJSON.h>

#include "core/buf.h"

/* Replaces b's contents with item printed unformatted. A line larger than
 * b's capacity is printed a second time by cJSON's allocating printer, and
 * b grows to hold it. 0, or -ENOMEM (b is then empty). */
int gd_json_print(gd_buf_t *b, const cJSON *item);

#endif

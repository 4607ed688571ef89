/* Serialising a cJSON tree into a reused buffer (see json_print.h). */
#include "core/json/print.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int gd_json_print(gd_buf_t *b, const cJSON *item)
{
    gd_buf_reset(b);
    /* cJSON checks every write against the length it is given, so a line
     * that does not fit fails cleanly and leaves nothing half-done. */
    if (b->data && b->cap > 1 && b->cap <= INT_MAX &&
        cJSON_PrintPreallocated((cJSON *)item, b->data, (int)b->cap, 0)) {
        b->len = strlen(b->data);
        return 0;
    }
    char *text = cJSON_PrintUnformatted(item);
    int r = text ? gd_buf_puts(b, text) : -ENOMEM;
    cJSON_free(text);
    /* The failed attempt may have left a partial line in the buffer. */
    if (r != 0) gd_buf_reset(b);
    return r;
}

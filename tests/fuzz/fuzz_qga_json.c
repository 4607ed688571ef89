/* Fuzzes the qemu-ga dialect's JSON (commands/qga/json.c): the parser that
 * keeps integers exact, and QEMU-style printing. Checked: what parses prints
 * as pure ASCII (every non-ASCII character escaped), and the printed text
 * parses again and prints to the same bytes; integer reads never see more
 * than the literal held.
 *
 * Input: the text of one request, as the dialect's framers hand it over
 * (text[len] is NUL there, so it is here). */
// fuzz-needs: commands/qga/json.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "commands/qga/json.h"
#include "fuzz_common.h"

static void each_int(const cJSON *v, int depth)
{
    for (; v; v = v->next) {
        int64_t x;
        if (gd_qga_json_get_int(v, &x) == 0)
            FUZZ_CHECK(cJSON_IsNumber(v), "an integer read from a non-number");
        if (depth < 200) each_int(v->child, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    /* As both framers hand a message over: exact length, text[len] NUL. */
    char *text = fuzz_strndup(data, size);
    cJSON *v = gd_qga_json_parse(text, size, err, sizeof(err));
    if (!v) {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "err not terminated");
        free(text);
        return 0;
    }
    each_int(v, 0);
    gd_buf_t a, b;
    gd_buf_init(&a);
    gd_buf_init(&b);
    FUZZ_CHECK(gd_qga_json_print(&a, v) == 0, "print failed");
    for (size_t i = 0; i < a.len; i++)
        FUZZ_CHECK((unsigned char)a.data[i] < 0x80 && a.data[i] != '\n',
                   "byte %zu of the printed text is 0x%02x", i, (unsigned char)a.data[i]);
    cJSON *again = gd_qga_json_parse(a.data, a.len, err, sizeof(err));
    FUZZ_CHECK(again != NULL, "printed text does not parse: %s (%s)", a.data, err);
    FUZZ_CHECK(gd_qga_json_print(&b, again) == 0, "second print failed");
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0, "print is not stable:\n%s\n%s",
               a.data, b.data);
    cJSON_Delete(again);
    cJSON_Delete(v);
    gd_buf_free(&a);
    gd_buf_free(&b);
    free(text);
    return 0;
}

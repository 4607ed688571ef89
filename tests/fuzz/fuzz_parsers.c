/* Fuzzes the small parsers and encoders the commands share: systemctl's
 * output (gd_service_parse_list, gd_service_parse_show), unit names
 * (gd_unit_name_normalize), file modes (gd_file_parse_mode), base64 and
 * UTF-8 (core/base64.c, core/utf8.c), the collector list
 * (gd_metrics_mask_from_list) and the JSON writer's strings (gd_jw_str).
 *
 * Checked: what they produce is valid UTF-8 JSON; output buffers hold what
 * they promise; base64 decoding is canonical (decode then encode gives the
 * input back); sanitising leaves valid UTF-8 alone and makes anything else
 * valid.
 *
 * Input: a target byte, then the text. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/utf8.h"
#include "core/json/writer.h"
#include "collectors/metrics.h"
#include "commands/file.h"
#include "commands/service.h"
#include "fuzz_common.h"

static void check_json(const cJSON *v)
{
    char *text = cJSON_PrintUnformatted(v);
    FUZZ_CHECK(text != NULL, "does not print");
    FUZZ_CHECK(gd_utf8_valid(text, strlen(text)), "not valid UTF-8: %s", text);
    free(text);
}

static void service_list(const char *text)
{
    cJSON *arr = cJSON_CreateArray();
    int n = gd_service_parse_list(text, arr);
    FUZZ_CHECK(n < 0 || n == cJSON_GetArraySize(arr), "%d added, %d in the array", n,
               cJSON_GetArraySize(arr));
    check_json(arr);
    cJSON_Delete(arr);
}

static void service_show(const char *text)
{
    gd_unit_status_t st;
    memset(&st, 0x5a, sizeof(st));
    if (gd_service_parse_show(text, &st) != 0) return;
    FUZZ_CHECK(memchr(st.name, '\0', sizeof(st.name)), "name not terminated");
    FUZZ_CHECK(memchr(st.load, '\0', sizeof(st.load)), "load not terminated");
    FUZZ_CHECK(memchr(st.active, '\0', sizeof(st.active)), "active not terminated");
    FUZZ_CHECK(memchr(st.sub, '\0', sizeof(st.sub)), "sub not terminated");
    FUZZ_CHECK(memchr(st.enabled, '\0', sizeof(st.enabled)), "enabled not terminated");
    FUZZ_CHECK(memchr(st.description, '\0', sizeof(st.description)), "description not terminated");
}

static void unit_name(const char *text, uint8_t opt)
{
    size_t outlen = (opt & 1) ? 1 + opt % 64 : GD_UNIT_NAME_MAX;
    char *out = malloc(outlen), err[64];
    if (!out) abort();
    if (gd_unit_name_normalize(text, out, outlen, err, sizeof(err)) == 0) {
        size_t n = strnlen(out, outlen);
        FUZZ_CHECK(n < outlen && n < GD_UNIT_NAME_MAX, "name of %zu bytes", n);
        FUZZ_CHECK(strncmp(out, text, strlen(text) < n ? strlen(text) : n) == 0,
                   "'%s' normalised to '%s'", text, out);
        /* What passed contains no path or shell syntax. */
        FUZZ_CHECK(!strpbrk(out, "/ \t\n'\"$;|&"), "unit name '%s' accepted", out);
    }
    free(out);
}

static void file_mode(const char *text)
{
    int m = gd_file_parse_mode(text);
    FUZZ_CHECK(m == -EINVAL || (m >= 0 && m <= 07777), "mode %d from '%s'", m, text);
}

static void base64(const uint8_t *p, size_t n)
{
    gd_buf_t dec, enc;
    gd_buf_init(&dec);
    gd_buf_init(&enc);
    if (gd_base64_decode(&dec, (const char *)p, n) == 0) {
        FUZZ_CHECK(dec.len <= gd_base64_decoded_max(n), "decoded %zu from %zu", dec.len, n);
        FUZZ_CHECK(gd_base64_encode(&enc, dec.data, dec.len) == 0, "encode failed");
        /* Canonical input: padding complete or absent, so compare without it. */
        size_t a = n, b = enc.len;
        while (a && p[a - 1] == '=')
            a--;
        while (b && enc.data[b - 1] == '=')
            b--;
        FUZZ_CHECK(a == b && memcmp(p, enc.data, a) == 0, "base64 is not canonical");
    }
    gd_buf_reset(&enc);
    FUZZ_CHECK(gd_base64_encode(&enc, p, n) == 0, "encode failed");
    FUZZ_CHECK(enc.len == gd_base64_encoded_len(n), "encoded length");
    gd_buf_reset(&dec);
    FUZZ_CHECK(gd_base64_decode(&dec, enc.data, enc.len) == 0, "own encoding rejected");
    FUZZ_CHECK(dec.len == n && (n == 0 || memcmp(dec.data, p, n) == 0), "round trip differs");
    gd_buf_free(&dec);
    gd_buf_free(&enc);
}

static void utf8(const uint8_t *p, size_t n)
{
    gd_buf_t out;
    gd_buf_init(&out);
    FUZZ_CHECK(gd_utf8_sanitize(&out, (const char *)p, n) == 0, "sanitize failed");
    FUZZ_CHECK(gd_utf8_valid(out.data ? out.data : "", out.len), "sanitized text is not UTF-8");
    if (gd_utf8_valid((const char *)p, n))
        FUZZ_CHECK(out.len == n && (n == 0 || memcmp(out.data, p, n) == 0),
                   "valid UTF-8 was changed");
    for (size_t i = 0; i < n;) {
        size_t k = gd_utf8_seq_len(p + i, n - i);
        FUZZ_CHECK(k <= 4 && k <= n - i, "sequence of %zu at %zu", k, i);
        i += k ? k : 1;
    }
    gd_buf_free(&out);
}

static void jw_string(const char *text)
{
    gd_buf_t out;
    gd_buf_init(&out);
    gd_jw_t w;
    gd_jw_init(&w, &out);
    gd_jw_obj_begin(&w);
    gd_jw_key(&w, "s");
    gd_jw_str(&w, text);
    gd_jw_obj_end(&w);
    FUZZ_CHECK(gd_jw_error(&w) == 0, "writer error");
    FUZZ_CHECK(gd_utf8_valid(out.data, out.len), "not UTF-8: %s", out.data);
    cJSON *v = cJSON_ParseWithLength(out.data, out.len);
    FUZZ_CHECK(cJSON_IsObject(v), "not JSON: %s", out.data);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "s");
    FUZZ_CHECK(cJSON_IsString(s), "no string: %s", out.data);
    if (gd_utf8_valid(text, strlen(text)))
        FUZZ_CHECK(strcmp(s->valuestring, text) == 0, "'%s' read back as '%s'", text,
                   s->valuestring);
    cJSON_Delete(v);
    gd_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint8_t target = fuzz_u8(&in);
    char *text = fuzz_strndup(in.p, in.n);
    uint32_t mask;
    char err[128];
    switch (target % 8) {
    case 0:
        service_list(text);
        break;
    case 1:
        service_show(text);
        break;
    case 2:
        unit_name(text, target);
        break;
    case 3:
        file_mode(text);
        break;
    case 4:
        base64(in.p, in.n);
        break;
    case 5:
        utf8(in.p, in.n);
        break;
    case 6:
        jw_string(text);
        break;
    default:
        if (gd_metrics_mask_from_list(text, &mask, err, sizeof(err)) != 0)
            FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "err not terminated");
        break;
    }
    free(text);
    return 0;
}

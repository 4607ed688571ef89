/* Fuzzes core/config.c: gd_config_load_file on arbitrary files and
 * gd_config_set_dotted on arbitrary --set assignments. Checked: a failed
 * load or set leaves the configuration untouched; a configuration that
 * loaded dumps (gd_config_dump) to a file that loads back to the same bytes,
 * as config.h promises; every key formats and converts to JSON.
 *
 * Input: a mode byte, then either the file's bytes, or assignments separated
 * by NUL bytes (set one after another). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/config.h"
#include "fuzz_common.h"

/* A file in memory with a path that fopen can open. */
static int memfile(const void *data, size_t len, char *path, size_t pathlen)
{
    int fd = memfd_create("guestd-fuzz-config", MFD_CLOEXEC);
    if (fd < 0) abort();
    if (len && write(fd, data, len) != (ssize_t)len) abort();
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

/* Dumps cfg, loads the dump over defaults: the same configuration. */
static void check_round_trip(const gd_config_t *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) abort();
    gd_config_dump(cfg, out);
    fclose(out);

    char path[64], err[1024];
    int fd = memfile(text, len, path, sizeof(path));
    gd_config_t back;
    gd_config_defaults(&back);
    int rc = gd_config_load_file(&back, path, 0, err, sizeof(err));
    FUZZ_CHECK(rc == 0, "the dump does not load back: %s\n%s", err, text);
    for (const gd_cfg_key_t *k = gd_config_keys; k->name; k++) {
        char a[512], b[512];
        gd_config_format_value(cfg, k, a, sizeof(a));
        gd_config_format_value(&back, k, b, sizeof(b));
        FUZZ_CHECK(!gd_config_key_differs(cfg, &back, k), "%s.%s: '%s' dumped, '%s' loaded back",
                   k->section, k->name, a, b);
    }
    FUZZ_CHECK(memcmp(cfg, &back, sizeof(back)) == 0, "the dump loads back to other bytes");
    close(fd);
    free(text);
}

/* Every key formats, describes its range and becomes JSON. */
static void check_keys(const gd_config_t *cfg)
{
    for (const gd_cfg_key_t *k = gd_config_keys; k->name; k++) {
        char buf[16], dotted[128];
        gd_config_format_value(cfg, k, buf, sizeof(buf)); /* truncating on purpose */
        gd_config_describe_range(k, buf, sizeof(buf));
        snprintf(dotted, sizeof(dotted), "%s.%s", k->section, k->name);
        FUZZ_CHECK(gd_config_find(dotted) == k, "%s is not found by name", dotted);
        cJSON *v = gd_config_value_json(cfg, k);
        FUZZ_CHECK(v != NULL, "%s has no JSON value", dotted);
        char *s = cJSON_PrintUnformatted(v);
        FUZZ_CHECK(s != NULL, "%s does not print", dotted);
        free(s);
        cJSON_Delete(v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    char err[1024];
    /* Small error buffers too: messages must truncate, not overflow. */
    size_t errlen = (mode & 0x80) ? 1 + (mode & 0x1f) : sizeof(err);
    gd_config_t cfg, before;
    gd_config_defaults(&cfg);

    if ((mode & 1) == 0) {
        char path[64];
        int fd = memfile(in.p, in.n, path, sizeof(path));
        before = cfg;
        int rc = gd_config_load_file(&cfg, path, mode & 2, err, errlen);
        close(fd);
        if (rc != 0) {
            FUZZ_CHECK(memcmp(&cfg, &before, sizeof(cfg)) == 0, "a failed load changed cfg");
            FUZZ_CHECK(strnlen(err, errlen) < errlen, "err is not terminated");
        } else {
            gd_config_validate(&cfg, err, errlen);
        }
    } else {
        while (in.n > 0) {
            fuzz_in_t part = fuzz_until(&in, "", 1);
            char *assignment = fuzz_strndup(part.p, part.n);
            before = cfg;
            if (gd_config_set_dotted(&cfg, assignment, err, errlen) != 0)
                FUZZ_CHECK(memcmp(&cfg, &before, sizeof(cfg)) == 0, "a failed set changed cfg");
            free(assignment);
        }
        gd_config_validate(&cfg, err, errlen);
    }
    check_keys(&cfg);
    check_round_trip(&cfg);
    return 0;
}

/* Fuzzes guestctl's metrics-log reader: the line JSON parser (tools/ljson.c),
 * the reader (tools/logread.c) and what the log commands do with what it
 * reads (tools/logcmd.c, fields.c, plot.c: show, summary, export, plot with
 * sparklines and SVG), on an arbitrary log file. A metrics log is written
 * by the guest: guestctl on the host must survive whatever it holds. The
 * same lines go through `watch`'s table row (tools/client.c), which formats
 * what a guest sends, and the time parser of --since/--until.
 *
 * Input: a mode byte (command, fields, plot size), then the file. */
// fuzz-needs: tools/logread.c tools/logcmd.c tools/ljson.c tools/client.c tools/timefmt.c
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "tools/client.h"
#include "tools/ljson.h"
#include "tools/logcmd.h"
#include "tools/logread.h"
#include "tools/timefmt.h"

static FILE *devnull;

static const char *const field_sets[4][3] = {
    {"cpu.usage_pct", "memory.used_pct", "load.load1"},
    {"network.eth0.rx_bytes_per_s", "filesystems./.used_pct", "cpu.per_cpu.1.usage_pct"},
    {"disks.vda.util_pct", "processes.top.0.cpu_pct", "a"},
    {"", ".", "x..y"},
};

/* Every string and key of the tree, decoded into buffers of every size. */
static void walk(const gd_lj_doc_t *doc, const gd_lj_node_t *n, int depth)
{
    for (; n; n = gd_lj_next(doc, n)) {
        char small[4], big[256];
        if (n->key) {
            gd_lj_string(n, 1, small, sizeof(small));
            FUZZ_CHECK(memchr(small, '\0', sizeof(small)), "key not terminated");
        }
        if (n->type == GD_LJ_STRING) {
            size_t len = gd_lj_string(n, 0, big, sizeof(big));
            FUZZ_CHECK(len < sizeof(big) && big[len] == '\0', "string not terminated");
            gd_lj_string(n, 0, small, 1);
            FUZZ_CHECK(small[0] == '\0', "a 1-byte buffer holds more than the NUL");
        }
        if (n->type == GD_LJ_NUMBER) {
            double d;
            FUZZ_CHECK(gd_lj_number(n->text, n->text_len, &d) == 0, "a parsed number rereads bad");
        }
        if (depth < 64) walk(doc, gd_lj_child(doc, n), depth + 1);
    }
}

static void each_line(const uint8_t *p, size_t n)
{
    gd_lj_doc_t doc;
    gd_lj_init(&doc);
    const uint8_t *end = p + n;
    int lines = 0;
    while (p < end && lines++ < 64) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        /* An exact copy: a read past the line is a read past the buffer. */
        char *line = malloc(len ? len : 1);
        if (!line) abort();
        memcpy(line, p, len);
        if (gd_lj_parse(&doc, line, len) == 0) walk(&doc, gd_lj_root(&doc), 0);
        cJSON *ev = cJSON_ParseWithLength(line, len);
        if (cJSON_IsObject(ev)) {
            char row[64];
            gd_ctl_table_row(ev, row, sizeof(row));
            FUZZ_CHECK(memchr(row, '\0', sizeof(row)), "table row not terminated");
            gd_ctl_print_pretty(devnull, ev);
        }
        cJSON_Delete(ev);
        char *text = fuzz_strndup((const uint8_t *)line, len < 64 ? len : 64);
        int64_t ms;
        gd_time_parse(text, 1750000000000, &ms);
        free(text);
        free(line);
        p = nl ? nl + 1 : end;
    }
    gd_lj_free(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull && !(devnull = fopen("/dev/null", "w"))) abort();
    fuzz_in_t in = {data, size};
    uint8_t mode = fuzz_u8(&in);

    each_line(in.p, in.n);

    int fd = memfd_create("guestd-fuzz-log", MFD_CLOEXEC);
    if (fd < 0) abort();
    if (in.n && write(fd, in.p, in.n) != (ssize_t)in.n) abort();
    /* Mostly a file that ends in a newline, as the agent writes it: a last
     * line without one makes the reader grow its 4 MiB buffer by copying
     * it, which under ASan costs 30 ms a run. One input in eight keeps the
     * unterminated last line. */
    if (in.n % 8 != 0 && write(fd, "\n", 1) != 1) abort();
    char path[64], rotated[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    /* The same file twice, as NAME and NAME.1 would be. */
    snprintf(rotated, sizeof(rotated), "/proc/self/fd/%d", fd);
    char *files[2] = {path, rotated};
    int nfiles = (mode & 0x40) ? 2 : 1;
    gd_logread_order(files, nfiles);

    gd_logcmd_opts_t o;
    memset(&o, 0, sizeof(o));
    o.fields = (const char **)field_sets[(mode >> 2) & 3];
    o.n_fields = (mode & 0x80) ? 3 : 1;
    o.width = (mode & 0x20) ? 3 : 60;
    o.svg_width = (mode & 0x20) ? 1 : 640;
    o.svg_height = (mode & 0x20) ? 1 : 240;
    if (mode & 0x10) {
        o.read.has_since = 1;
        o.read.since_ms = 1000;
    }
    switch (mode & 3) {
    case 0:
        gd_log_show(files, nfiles, &o, devnull, devnull);
        break;
    case 1:
        gd_log_summary(files, nfiles, &o, devnull, devnull);
        break;
    case 2:
        gd_log_export_csv(files, nfiles, &o, devnull, devnull);
        break;
    default:
        o.svg_out = (mode & 0x08) ? "/dev/null" : NULL;
        gd_log_plot(files, nfiles, &o, devnull, devnull);
        break;
    }
    close(fd);
    return 0;
}

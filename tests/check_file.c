/* Check suite for commands/file.c: file.read, file.write and file.stat
 * through a real dispatcher and loop, on files in a temporary directory. */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "agent/agent.h"
#include "core/base64.h"
#include "core/config.h"
#include "core/log.h"
#include "commands/dispatch.h"
#include "commands/file.h"

#include "cmd_harness.h"

static char dir[64];

static void setup(void)
{
    harness_setup();
    snprintf(dir, sizeof(dir), "/tmp/check_file.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    harness_teardown();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void put_file(const char *name, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* The whole content of dir/name, NUL-terminated, length in *len. */
static char *get_file(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static char *b64(const void *data, size_t len)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_base64_encode(&b, data, len), 0);
    char *s = strdup(b.data ? b.data : "");
    gd_buf_free(&b);
    return s;
}

/* Decodes the data_b64 of a file.read result into a malloc'd buffer. */
static char *read_data(const cJSON *result, size_t *len)
{
    const char *text = str_field(result, "data_b64");
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(gd_base64_decode(&b, text, strlen(text)), 0);
    *len = b.len;
    char *out = malloc(b.len + 1);
    memcpy(out, b.data ? b.data : "", b.len);
    out[b.len] = '\0';
    gd_buf_free(&b);
    return out;
}

static mode_t mode_of(const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* ---- file.read ---- */

START_TEST(test_read_offset_max_bytes_eof)
{
    put_file("digits", "0123456789", 10);
    static const struct {
        int offset, max_bytes;
        const char *data;
        int eof;
    } cases[] = {
        {0, 100, "0123456789", 1}, {2, 3, "234", 0}, {7, 3, "789", 1}, {0, 10, "0123456789", 1},
        {0, 9, "012345678", 0},    {10, 5, "", 1},   {20, 5, "", 1},   {0, 0, "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *reply = call("{\"id\":1,\"cmd\":\"file.read\",\"args\":{\"path\":\"%s/digits\","
                            "\"offset\":%d,\"max_bytes\":%d}}",
                            dir, cases[i].offset, cases[i].max_bytes);
        const cJSON *r = result_of(reply);
        size_t len;
        char *data = read_data(r, &len);
        ck_assert_str_eq(data, cases[i].data);
        ck_assert_int_eq((int)num_field(r, "size"), 10);
        ck_assert_msg(cJSON_IsBool(cJSON_GetObjectItem(r, "eof")) &&
                          cJSON_IsTrue(cJSON_GetObjectItem(r, "eof")) == cases[i].eof,
                      "case %zu: eof", i);
        free(data);
        cJSON_Delete(reply);
    }
}
END_TEST

START_TEST(test_read_binary_and_pseudo_files)
{
    const char bin[] = {'\0', '\xff', '\x80', 'a', '\n', '\0'};
    put_file("bin", bin, sizeof(bin));
    cJSON *reply = call("{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s/bin\"}}", dir);
    size_t len;
    char *data = read_data(result_of(reply), &len);
    ck_assert_uint_eq(len, sizeof(bin));
    ck_assert_int_eq(memcmp(data, bin, len), 0);
    free(data);
    cJSON_Delete(reply);

    /* /proc files have size 0 but content; the read still ends with eof. */
    reply = call("{\"cmd\":\"file.read\",\"args\":{\"path\":\"/proc/self/status\"}}");
    const cJSON *r = result_of(reply);
    data = read_data(r, &len);
    ck_assert_ptr_nonnull(strstr(data, "Name:"));
    ck_assert_int_eq((int)num_field(r, "size"), 0);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "eof")));
    free(data);
    cJSON_Delete(reply);
}
END_TEST

START_TEST(test_read_capped_by_file_max_bytes)
{
    agent.cfg.commands.file_max_bytes = 4;
    put_file("digits", "0123456789", 10);
    cJSON *reply = call("{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s/digits\"}}", dir);
    const cJSON *r = result_of(reply);
    size_t len;
    char *data = read_data(r, &len);
    ck_assert_str_eq(data, "0123");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "eof")));
    free(data);
    cJSON_Delete(reply);

    char req[256];
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s/digits\",\"max_bytes\":5}}", dir);
    expect_error("invalid_args", "commands.file_max_bytes", req);
}
END_TEST

START_TEST(test_read_errors)
{
    char req[256];
    snprintf(req, sizeof(req), "{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s/missing\"}}", dir);
    expect_error("not_found", "No such file or directory", req);
    snprintf(req, sizeof(req), "{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s\"}}", dir);
    expect_error("failed", "Is a directory", req);
    put_file("plain", "x", 1);
    snprintf(req, sizeof(req), "{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s/plain/x\"}}", dir);
    expect_error("failed", "Not a directory", req);
    char fifo[128];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    snprintf(req, sizeof(req), "{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s\"}}", fifo);
    expect_error("failed", "not a regular file (a fifo)", req);
    expect_error("invalid_args", "absolute",
                 "{\"cmd\":\"file.read\",\"args\":{\"path\":\"etc/x\"}}");
    expect_error("invalid_args", "missing argument 'path'", "{\"cmd\":\"file.read\",\"args\":{}}");
    expect_error("invalid_args", "offset",
                 "{\"cmd\":\"file.read\",\"args\":{\"path\":\"/x\",\"offset\":-1}}");
    if (geteuid() != 0) {
        put_file("secret", "x", 1);
        snprintf(req, sizeof(req), "%s/secret", dir);
        chmod(req, 0);
        snprintf(req, sizeof(req), "{\"cmd\":\"file.read\",\"args\":{\"path\":\"%s/secret\"}}",
                 dir);
        expect_error("failed", "Permission denied", req);
    }
}
END_TEST

/* ---- file.write ---- */

START_TEST(test_write_replace_and_read_back)
{
    const char bin[] = {'h', 'i', '\0', '\xfe', '\n'};
    char *data = b64(bin, sizeof(bin));
    cJSON *reply = call(
        "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/new\",\"data_b64\":\"%s\"}}", dir, data);
    ck_assert_int_eq((int)num_field(result_of(reply), "written"), 5);
    cJSON_Delete(reply);
    size_t len;
    char *back = get_file("new", &len);
    ck_assert_uint_eq(len, sizeof(bin));
    ck_assert_int_eq(memcmp(back, bin, len), 0);
    free(back);
    ck_assert_int_eq(mode_of("new"), 0644); /* a new file without mode */

    /* Replacing keeps the old file's mode. */
    char path[256];
    snprintf(path, sizeof(path), "%s/new", dir);
    ck_assert_int_eq(chmod(path, 0640), 0);
    reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"eHl6\"}}", path);
    ck_assert_int_eq((int)num_field(result_of(reply), "written"), 3);
    cJSON_Delete(reply);
    back = get_file("new", &len);
    ck_assert_str_eq(back, "xyz");
    free(back);
    ck_assert_int_eq(mode_of("new"), 0640);

    /* An empty write makes an empty file. */
    reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"\"}}", path);
    ck_assert_int_eq((int)num_field(result_of(reply), "written"), 0);
    cJSON_Delete(reply);
    back = get_file("new", &len);
    ck_assert_uint_eq(len, 0);
    free(back);
    free(data);
}
END_TEST

START_TEST(test_write_mode)
{
    cJSON *reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/m\",\"data_b64\":\"eA==\","
                        "\"mode\":\"0600\"}}",
                        dir);
    result_of(reply);
    cJSON_Delete(reply);
    ck_assert_int_eq(mode_of("m"), 0600);
    /* Exactly the mode asked for: the umask does not apply. */
    umask(077);
    reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/m\",\"data_b64\":\"eA==\","
                 "\"mode\":\"755\"}}",
                 dir);
    result_of(reply);
    cJSON_Delete(reply);
    ck_assert_int_eq(mode_of("m"), 0755);
    reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/m\",\"data_b64\":\"eA==\","
                 "\"mode\":\"0664\",\"append\":true}}",
                 dir);
    result_of(reply);
    cJSON_Delete(reply);
    ck_assert_int_eq(mode_of("m"), 0664);

    static const char *const bad[] = {"999", "0o644", "", "10000", "rw-r--r--", "-644"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req),
                 "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/m\",\"data_b64\":\"eA==\","
                 "\"mode\":\"%s\"}}",
                 dir, bad[i]);
        expect_error("invalid_args", "octal", req);
    }
    ck_assert_int_eq(gd_file_parse_mode("4755"), 04755);
    ck_assert_int_eq(gd_file_parse_mode("07777"), 07777);
    ck_assert_int_eq(gd_file_parse_mode("0"), 0);
}
END_TEST

/* A replaced setuid or setgid file keeps those bits, also when its owner is
 * not the agent's (the owner is given back before the mode: a chown after
 * the chmod would clear them). */
START_TEST(test_write_keeps_setuid_setgid)
{
    static const int modes[] = {04755, 02755, 06750};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        for (int other_owner = 0; other_owner <= (geteuid() == 0); other_owner++) {
            put_file("suid", "old", 3);
            char path[256];
            snprintf(path, sizeof(path), "%s/suid", dir);
            if (other_owner) ck_assert_int_eq(chown(path, 65534, 65534), 0);
            ck_assert_int_eq(chmod(path, (mode_t)modes[i]), 0);
            cJSON *reply = call(
                "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"eHl6\"}}", path);
            ck_assert_int_eq((int)num_field(result_of(reply), "written"), 3);
            cJSON_Delete(reply);
            struct stat st;
            ck_assert_int_eq(stat(path, &st), 0);
            ck_assert_msg((int)(st.st_mode & 07777) == modes[i], "mode %04o became %04o (owner %d)",
                          modes[i], (unsigned)(st.st_mode & 07777), (int)st.st_uid);
            ck_assert_int_eq((int)st.st_uid, other_owner ? 65534 : (int)geteuid());
            ck_assert_int_eq((int)st.st_gid, other_owner ? 65534 : (int)getegid());
            /* The mode given is applied exactly, after the owner too. */
            reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":"
                         "\"eHl6\",\"mode\":\"%04o\"}}",
                         path, modes[i]);
            result_of(reply);
            cJSON_Delete(reply);
            ck_assert_int_eq(stat(path, &st), 0);
            ck_assert_int_eq((int)(st.st_mode & 07777), modes[i]);
            unlink(path);
        }
    }
}
END_TEST

/* A path with an escaped NUL is refused whole: cJSON would have cut
 * "DIR/a\u0000b" to "DIR/a" and written that file. */
START_TEST(test_write_path_with_nul_refused)
{
    char req[512];
    snprintf(req, sizeof(req),
             "{\"id\":7,\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/a\\u0000b\","
             "\"data_b64\":\"eA==\"}}",
             dir);
    cJSON *reply = call("%s", req);
    ck_assert_str_eq(error_of(reply, "invalid_args"),
                     "a string in args holds \\u0000 (a NUL character), which would cut it short");
    ck_assert_int_eq((int)num_field(reply, "id"), 7);
    cJSON_Delete(reply);
    char path[256];
    snprintf(path, sizeof(path), "%s/a", dir);
    ck_assert_int_eq(access(path, F_OK), -1);
    /* A backslash followed by "u0000" is an ordinary name. */
    snprintf(
        req, sizeof(req),
        "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/a\\\\u0000b\",\"data_b64\":\"eA==\"}}",
        dir);
    reply = call("%s", req);
    ck_assert_int_eq((int)num_field(result_of(reply), "written"), 1);
    cJSON_Delete(reply);
    snprintf(path, sizeof(path), "%s/a\\u0000b", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    /* Nor in the request's own strings: a cut cmd would run another command. */
    expect_error("invalid_request", "\\u0000", "{\"cmd\":\"file.stat\\u0000x\",\"args\":{}}");
    expect_error("invalid_request", "\\u0000", "{\"id\":\"a\\u0000b\",\"cmd\":\"ping\"}");
}
END_TEST

START_TEST(test_write_append)
{
    put_file("log", "ab", 2);
    cJSON *reply =
        call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/log\",\"data_b64\":\"Y2Q=\","
             "\"append\":true}}",
             dir);
    ck_assert_int_eq((int)num_field(result_of(reply), "written"), 2);
    cJSON_Delete(reply);
    size_t len;
    char *back = get_file("log", &len);
    ck_assert_str_eq(back, "abcd");
    free(back);
    /* Appending to a file that does not exist creates it. */
    reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/fresh\",\"data_b64\":\"Y2Q=\","
                 "\"append\":true}}",
                 dir);
    result_of(reply);
    cJSON_Delete(reply);
    back = get_file("fresh", &len);
    ck_assert_str_eq(back, "cd");
    free(back);
    /* append: false is a replace. */
    reply = call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/log\",\"data_b64\":\"Y2Q=\","
                 "\"append\":false}}",
                 dir);
    result_of(reply);
    cJSON_Delete(reply);
    back = get_file("log", &len);
    ck_assert_str_eq(back, "cd");
    free(back);
}
END_TEST

START_TEST(test_write_follows_symlink)
{
    put_file("real", "old", 3);
    char link[128], target[128];
    snprintf(link, sizeof(link), "%s/link", dir);
    snprintf(target, sizeof(target), "%s/real", dir);
    ck_assert_int_eq(symlink("real", link), 0);
    cJSON *reply =
        call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"bmV3\"}}", link);
    result_of(reply);
    cJSON_Delete(reply);
    struct stat st;
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    size_t len;
    char *back = get_file("real", &len);
    ck_assert_str_eq(back, "new");
    free(back);
}
END_TEST

START_TEST(test_write_errors)
{
    char req[512];
    snprintf(
        req, sizeof(req),
        "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/no/such/dir/f\",\"data_b64\":\"eA==\"}}",
        dir);
    expect_error("not_found", "No such file or directory", req);
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"eA==\"}}", dir);
    expect_error("failed", "Is a directory", req);
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/f\",\"data_b64\":\"e===\"}}", dir);
    expect_error("invalid_args", "base64", req);
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/f\",\"data_b64\":\"eA\\n==\"}}", dir);
    expect_error("invalid_args", "base64", req);
    expect_error("invalid_args", "absolute",
                 "{\"cmd\":\"file.write\",\"args\":{\"path\":\"f\",\"data_b64\":\"eA==\"}}");
    expect_error("invalid_args", "missing argument 'data_b64'",
                 "{\"cmd\":\"file.write\",\"args\":{\"path\":\"/tmp/f\"}}");
    expect_error("invalid_args", "append",
                 "{\"cmd\":\"file.write\",\"args\":{\"path\":\"/tmp/f\",\"data_b64\":\"\","
                 "\"append\":1}}");
    char fifo[128];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"eA==\"}}", fifo);
    expect_error("failed", "not a regular file (a fifo)", req);
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"eA==\","
             "\"append\":true}}",
             fifo);
    expect_error("failed", "not a regular file (a fifo)", req);

    /* Over commands.file_max_bytes: refused, nothing written. */
    agent.cfg.commands.file_max_bytes = 4;
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/big\",\"data_b64\":\"MTIzNDU=\"}}",
             dir);
    expect_error("invalid_args", "commands.file_max_bytes", req);
    snprintf(req, sizeof(req), "%s/big", dir);
    ck_assert_int_eq(access(req, F_OK), -1);
    snprintf(req, sizeof(req),
             "{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s/big\",\"data_b64\":\"MTIzNA==\"}}",
             dir);
    cJSON *reply = call("%s", req);
    ck_assert_int_eq((int)num_field(result_of(reply), "written"), 4);
    cJSON_Delete(reply);

    /* No temporary file is left behind by any of it. */
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        ck_assert_msg(!strstr(de->d_name, ".guestd-"), "left behind: %s", de->d_name);
    closedir(d);
}
END_TEST

/* A reader that keeps opening and reading the file while it is replaced:
 * every read must see one whole version, never a mix or a short file. */
#define VERSION_A 65536
#define VERSION_B 98304

typedef struct {
    char path[128];
    volatile int stop;
    int reads, bad;
    char detail[128];
} reader_t;

static void reader_main(void *arg)
{
    reader_t *r = arg;
    char *buf = malloc(VERSION_B + 16);
    while (!r->stop) {
        int fd = open(r->path, O_RDONLY);
        if (fd < 0) {
            r->bad++;
            snprintf(r->detail, sizeof(r->detail), "open: %s", strerror(errno));
            continue;
        }
        size_t got = 0;
        ssize_t n;
        while ((n = read(fd, buf + got, VERSION_B + 16 - got)) > 0)
            got += (size_t)n;
        close(fd);
        r->reads++;
        char c = buf[0];
        int whole = (got == VERSION_A && c == 'a') || (got == VERSION_B && c == 'b');
        for (size_t i = 0; whole && i < got; i++)
            whole = buf[i] == c;
        if (!whole) {
            r->bad++;
            snprintf(r->detail, sizeof(r->detail), "read %zu bytes starting '%c'", got, c);
        }
    }
    free(buf);
}

START_TEST(test_write_is_atomic)
{
    char *a = malloc(VERSION_A), *b = malloc(VERSION_B);
    memset(a, 'a', VERSION_A);
    memset(b, 'b', VERSION_B);
    char *a64 = b64(a, VERSION_A), *b64b = b64(b, VERSION_B);
    put_file("target", a, VERSION_A);
    reader_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.path, sizeof(r.path), "%s/target", dir);
    uv_thread_t tid;
    ck_assert_int_eq(uv_thread_create(&tid, reader_main, &r), 0);
    for (int i = 0; i < 200; i++) {
        cJSON *reply =
            call("{\"cmd\":\"file.write\",\"args\":{\"path\":\"%s\",\"data_b64\":\"%s\"}}", r.path,
                 i % 2 ? a64 : b64b);
        result_of(reply);
        cJSON_Delete(reply);
    }
    r.stop = 1;
    uv_thread_join(&tid);
    ck_assert_msg(r.bad == 0, "%d of %d reads saw a partial file (%s)", r.bad, r.reads, r.detail);
    ck_assert_int_gt(r.reads, 0);
    free(a);
    free(b);
    free(a64);
    free(b64b);
}
END_TEST

/* ---- file.stat ---- */

START_TEST(test_stat_fields)
{
    put_file("f", "hello", 5);
    char path[128];
    snprintf(path, sizeof(path), "%s/f", dir);
    ck_assert_int_eq(chmod(path, 0751), 0);
    struct timespec times[2] = {{1700000000, 123456789}, {1700000000, 123456789}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    cJSON *reply = call("{\"cmd\":\"file.stat\",\"args\":{\"path\":\"%s\"}}", path);
    const cJSON *r = result_of(reply);
    ck_assert_str_eq(str_field(r, "type"), "file");
    ck_assert_int_eq((int)num_field(r, "size"), 5);
    ck_assert_str_eq(str_field(r, "mode"), "0751");
    ck_assert_int_eq((int)num_field(r, "uid"), (int)geteuid());
    ck_assert_int_eq((int)num_field(r, "gid"), (int)getegid());
    ck_assert(num_field(r, "mtime_ms") == 1700000000123.0);
    ck_assert_ptr_null(cJSON_GetObjectItem(r, "target"));
    cJSON_Delete(reply);

    reply = call("{\"cmd\":\"file.stat\",\"args\":{\"path\":\"%s\"}}", dir);
    ck_assert_str_eq(str_field(result_of(reply), "type"), "directory");
    ck_assert_str_eq(str_field(result_of(reply), "mode"), "0700"); /* mkdtemp's */
    cJSON_Delete(reply);

    char link[128];
    snprintf(link, sizeof(link), "%s/l", dir);
    ck_assert_int_eq(symlink("f", link), 0);
    reply = call("{\"cmd\":\"file.stat\",\"args\":{\"path\":\"%s\"}}", link);
    ck_assert_str_eq(str_field(result_of(reply), "type"), "symlink");
    ck_assert_str_eq(str_field(result_of(reply), "target"), "f");
    cJSON_Delete(reply);

    reply = call("{\"cmd\":\"file.stat\",\"args\":{\"path\":\"/dev/null\"}}");
    ck_assert_str_eq(str_field(result_of(reply), "type"), "char_device");
    cJSON_Delete(reply);
}
END_TEST

START_TEST(test_stat_errors)
{
    char req[256];
    snprintf(req, sizeof(req), "{\"cmd\":\"file.stat\",\"args\":{\"path\":\"%s/none\"}}", dir);
    expect_error("not_found", "No such file or directory", req);
    put_file("plain", "x", 1);
    snprintf(req, sizeof(req), "{\"cmd\":\"file.stat\",\"args\":{\"path\":\"%s/plain/x\"}}", dir);
    expect_error("failed", "Not a directory", req);
    expect_error("invalid_args", "absolute", "{\"cmd\":\"file.stat\",\"args\":{\"path\":\"\"}}");
    expect_error("invalid_args", "unknown argument 'follow'",
                 "{\"cmd\":\"file.stat\",\"args\":{\"path\":\"/\",\"follow\":true}}");
}
END_TEST

static Suite *file_suite(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("read");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_read_offset_max_bytes_eof);
    tcase_add_test(tc, test_read_binary_and_pseudo_files);
    tcase_add_test(tc, test_read_capped_by_file_max_bytes);
    tcase_add_test(tc, test_read_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("write");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_write_replace_and_read_back);
    tcase_add_test(tc, test_write_mode);
    tcase_add_test(tc, test_write_keeps_setuid_setgid);
    tcase_add_test(tc, test_write_path_with_nul_refused);
    tcase_add_test(tc, test_write_append);
    tcase_add_test(tc, test_write_follows_symlink);
    tcase_add_test(tc, test_write_errors);
    tcase_add_test(tc, test_write_is_atomic);
    suite_add_tcase(s, tc);

    tc = tcase_create("stat");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_stat_fields);
    tcase_add_test(tc, test_stat_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(file_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

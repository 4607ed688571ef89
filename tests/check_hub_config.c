/* Tests for hub/config (guestd-hub's keys, [guests] lines, --set, INI files,
 * dumps that load back) and hub/discovery's name rule and glob checks. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/config.h"
#include "hub/discovery.h"

static char err[2048];
static gd_hub_config_t cfg;

static void setup(void)
{
    gd_hub_config_defaults(&cfg);
    err[0] = '\0';
}

/* text written to a temporary file, whose path is left in path. */
static void write_conf(char *path, size_t len, const char *text)
{
    snprintf(path, len, "%s/guestd-hub-conf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(defaults)
{
    ck_assert_str_eq(cfg.http.listen, "127.0.0.1:9709");
    ck_assert_str_eq(cfg.hub.socket, "/run/guestd-hub/hub.sock");
    ck_assert_str_eq(cfg.discovery.libvirt_uri, "");
    ck_assert_str_eq(cfg.discovery.globs, "");
    ck_assert_str_eq(cfg.log.dir, "");
    ck_assert_int_eq(cfg.hub.max_pending, 256);
    ck_assert_int_eq(cfg.n_static, 0);
    ck_assert_int_eq(gd_hub_config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

START_TEST(set_guests_add_and_replace)
{
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "guests.vm1=/run/vm1.sock", err, sizeof(err)),
                     0);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "guests.vm2=/run/vm2.sock", err, sizeof(err)),
                     0);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "guests.vm1=/run/other.sock", err, sizeof(err)),
                     0);
    ck_assert_int_eq(cfg.n_static, 2);
    ck_assert_str_eq(cfg.statics[0].name, "vm1");
    ck_assert_str_eq(cfg.statics[0].path, "/run/other.sock");
    ck_assert_str_eq(cfg.statics[1].name, "vm2");
}
END_TEST

START_TEST(set_errors)
{
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "guests.-x=/a.sock", err, sizeof(err)),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--set guests.-x=/a.sock: guests.-x: a guest's name is"));
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "guests.a/b=/a.sock", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "guests.vm=a.sock", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "--set guests.vm=a.sock: guests.vm: 'a.sock' is not an absolute "
                          "socket path (up to 255 bytes)");
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "hub.nope=1", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "--set hub.nope=1: unknown key 'hub.nope'");
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "hub.max_pending=0", err, sizeof(err)),
                     -EINVAL);
    ck_assert_str_eq(err, "--set hub.max_pending=0: hub.max_pending: 0 is out of range "
                          "(allowed: 1..65536)");
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "novalue", err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(cfg.n_static, 0);
}
END_TEST

START_TEST(file_with_guests)
{
    char path[512];
    write_conf(path, sizeof(path),
               "[hub]\nsocket = /tmp/h.sock\n[guests]\nweb-1 = /run/web-1.sock\n"
               "db.2 = /run/db.sock\n[http]\nlisten = none\n");
    ck_assert_int_eq(gd_hub_config_load_file(&cfg, path, 0, err, sizeof(err)), 0);
    unlink(path);
    ck_assert_str_eq(cfg.hub.socket, "/tmp/h.sock");
    ck_assert_int_eq(cfg.n_static, 2);
    ck_assert_str_eq(cfg.statics[1].name, "db.2");
    ck_assert_str_eq(cfg.statics[1].path, "/run/db.sock");
    ck_assert_str_eq(cfg.http.listen, "none");
    ck_assert_int_eq(gd_hub_config_validate(&cfg, err, sizeof(err)), 0);
}
END_TEST

START_TEST(file_errors_name_the_line_and_change_nothing)
{
    char path[512], want[1024];
    gd_hub_config_t before = cfg;
    write_conf(path, sizeof(path), "[guests]\nok = /run/ok.sock\n[discovery]\nglob = x\n");
    ck_assert_int_eq(gd_hub_config_load_file(&cfg, path, 0, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:4: unknown key 'discovery.glob'", path);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(memcmp(&cfg, &before, sizeof(cfg)), 0);
    unlink(path);
    ck_assert_int_eq(gd_hub_config_load_file(&cfg, "/nonexistent/x.conf", 1, err, sizeof(err)), 0);
    ck_assert_int_eq(gd_hub_config_load_file(&cfg, "/nonexistent/x.conf", 0, err, sizeof(err)),
                     -ENOENT);
}
END_TEST

START_TEST(dump_loads_back)
{
    char path[512];
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "guests.a=/run/a.sock", err, sizeof(err)), 0);
    ck_assert_int_eq(
        gd_hub_config_set_dotted(&cfg, "discovery.globs=/run/g/*.sock, /x/*.s", err, sizeof(err)),
        0);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "hub.max_clients=7", err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/guestd-hub-dump-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    gd_hub_config_dump(&cfg, f);
    fclose(f);
    gd_hub_config_t again;
    gd_hub_config_defaults(&again);
    ck_assert_int_eq(gd_hub_config_load_file(&again, path, 0, err, sizeof(err)), 0);
    unlink(path);
    ck_assert_int_eq(memcmp(&cfg, &again, sizeof(cfg)), 0);
}
END_TEST

START_TEST(listen_forms)
{
    char host[64];
    unsigned port = 0;
    ck_assert_int_eq(gd_hub_parse_listen("127.0.0.1:9709", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 9709);
    ck_assert_int_eq(gd_hub_parse_listen("[::1]:80", host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(gd_hub_parse_listen("none", host, sizeof(host), &port), -ENOENT);
    ck_assert_int_eq(gd_hub_parse_listen("host", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(gd_hub_parse_listen(":80", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(gd_hub_parse_listen("h:0", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(gd_hub_parse_listen("h:65536", host, sizeof(host), &port), -EINVAL);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "http.listen=h:x", err, sizeof(err)), 0);
    ck_assert_int_eq(gd_hub_config_validate(&cfg, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "http.listen: 'h:x' is not HOST:PORT or none");
}
END_TEST

START_TEST(top_processes_key)
{
    /* Off unless asked; a boolean in every spelling; --dump-config shows it. */
    ck_assert_int_eq(cfg.http.top_processes, 0);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "http.top_processes=yes", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.http.top_processes, 1);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "http.top_processes=off", err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.http.top_processes, 0);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "http.top_processes=5", err, sizeof(err)),
                     -EINVAL);
    ck_assert_int_eq(cfg.http.top_processes, 0);
    char path[512];
    write_conf(path, sizeof(path), "[http]\ntop_processes = true\n");
    ck_assert_int_eq(gd_hub_config_load_file(&cfg, path, 0, err, sizeof(err)), 0);
    unlink(path);
    ck_assert_int_eq(cfg.http.top_processes, 1);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    gd_hub_config_dump(&cfg, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "\n[http]\n"));
    ck_assert_ptr_nonnull(strstr(text, "\ntop_processes = true\n"));
    free(text);
}
END_TEST

START_TEST(reconnect_order)
{
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "hub.reconnect_min_ms=500", err, sizeof(err)),
                     0);
    ck_assert_int_eq(gd_hub_config_set_dotted(&cfg, "hub.reconnect_max_ms=100", err, sizeof(err)),
                     0);
    ck_assert_int_eq(gd_hub_config_validate(&cfg, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(glob_name_rule)
{
    char name[GD_HUB_NAME_MAX];
    ck_assert_int_eq(gd_glob_name("/run/guestd/web-1.sock", name, sizeof(name)), 0);
    ck_assert_str_eq(name, "web-1");
    ck_assert_int_eq(gd_glob_name("/run/guestd/db.prod.sock", name, sizeof(name)), 0);
    ck_assert_str_eq(name, "db.prod");
    ck_assert_int_eq(gd_glob_name("/run/guestd/plain", name, sizeof(name)), 0);
    ck_assert_str_eq(name, "plain");
    ck_assert_int_eq(gd_glob_name("/run/guestd/.hidden.sock", name, sizeof(name)), -EINVAL);
    ck_assert_int_eq(gd_glob_name("/run/guestd/sp ace.sock", name, sizeof(name)), -EINVAL);
}
END_TEST

START_TEST(glob_split_checks)
{
    char pats[4][GD_CFG_STR_MAX], dirs[4][GD_CFG_STR_MAX];
    size_t n = 9;
    ck_assert_int_eq(gd_glob_split("", pats, dirs, 4, &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(gd_glob_split(" /run/a/*.sock ,/b/vm?.s", pats, dirs, 4, &n, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(pats[0], "/run/a/*.sock");
    ck_assert_str_eq(dirs[0], "/run/a");
    ck_assert_str_eq(dirs[1], "/b");
    ck_assert_int_eq(gd_glob_split("/run/*/x.sock", pats, dirs, 4, &n, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "discovery.globs: '/run/*/x.sock': only the file name may hold "
                          "wildcards");
    ck_assert_int_eq(gd_glob_split("x.sock", pats, dirs, 4, &n, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(gd_glob_split("/a,/b,/c,/d,/e", pats, dirs, 4, &n, err, sizeof(err)), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hub_config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, set_guests_add_and_replace);
    tcase_add_test(tc, set_errors);
    tcase_add_test(tc, file_with_guests);
    tcase_add_test(tc, file_errors_name_the_line_and_change_nothing);
    tcase_add_test(tc, dump_loads_back);
    tcase_add_test(tc, listen_forms);
    tcase_add_test(tc, reconnect_order);
    tcase_add_test(tc, top_processes_key);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("globs");
    tcase_add_checked_fixture(tg, setup, NULL);
    tcase_add_test(tg, glob_name_rule);
    tcase_add_test(tg, glob_split_checks);
    suite_add_tcase(s, tg);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

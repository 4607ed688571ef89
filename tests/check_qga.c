/* Tests for the qemu-ga commands' parts that read the guest (fixture trees
 * under tests/fixtures: proc-snap1, sysinfo-etc, qga/{proc,sys}) and that
 * freeze, thaw and edit authorized_keys (with a stand-in ioctl and files in
 * a temporary directory). The dispatcher, replies and framing end to end
 * are tests/integration/test_qga.py's. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <utmpx.h>

#include "commands/qga/internal.h"

static char fixtures[1024];

static void fixture(char *out, size_t len, const char *rel)
{
    const char *root = getenv("GUESTD_FIXTURES");
    snprintf(out, len, "%s/%s", root ? root : "tests/fixtures", rel);
}

static void setup(void)
{
    fixture(fixtures, sizeof(fixtures), "");
}

/* The printed form of v (consumed): what a host would read. */
static char *printed(cJSON *v)
{
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(gd_qga_json_print(&b, v), 0);
    cJSON_Delete(v);
    return b.data;
}

static void expect(cJSON *v, const char *want)
{
    char *got = printed(v);
    ck_assert_str_eq(got, want);
    free(got);
}

static cJSON *by_name(cJSON *list, const char *key, const char *name)
{
    for (cJSON *e = list->child; e; e = e->next) {
        const cJSON *n = cJSON_GetObjectItem(e, key);
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) return e;
    }
    return NULL;
}

/* ---- counters ---- */

START_TEST(cpustats_in_milliseconds_per_cpu)
{
    char root[1100];
    fixture(root, sizeof(root), "proc-snap1");
    expect(gd_qga_cpustats(root, 100),
           "[{\"type\": \"linux\", \"cpu\": 0, \"user\": 49640, \"nice\": 0, \"system\": 38730, "
           "\"idle\": 1347390, \"iowait\": 770, \"irq\": 0, \"softirq\": 810, \"steal\": 0, "
           "\"guest\": 0, \"guestnice\": 0}, "
           "{\"type\": \"linux\", \"cpu\": 1, \"user\": 61910, \"nice\": 0, \"system\": 49960, "
           "\"idle\": 1318070, \"iowait\": 5750, \"irq\": 0, \"softirq\": 1890, \"steal\": 0, "
           "\"guest\": 0, \"guestnice\": 0}]");
}
END_TEST

START_TEST(diskstats_every_device_with_qemu_ga_names)
{
    char root[1100];
    fixture(root, sizeof(root), "proc-snap1");
    cJSON *list = gd_qga_diskstats(root);
    ck_assert_int_eq(cJSON_GetArraySize(list), 10);
    cJSON *vda = cJSON_Duplicate(by_name(list, "name", "vda"), 1);
    cJSON_Delete(list);
    expect(vda, "{\"name\": \"vda\", \"major\": 254, \"minor\": 0, \"stats\": {"
                "\"read-ios\": 128580, \"read-merges\": 27745, \"read-sectors\": 4379178, "
                "\"read-ticks\": 18822, \"write-ios\": 15106, \"write-merges\": 19776, "
                "\"write-sectors\": 1952264, \"write-ticks\": 4313, \"ios-pgr\": 0, "
                "\"total-ticks\": 13884, \"weight-ticks\": 24245, \"discard-ios\": 5789, "
                "\"discard-merges\": 49, \"discard-sectors\": 436600, \"discard-ticks\": 749, "
                "\"flush-ios\": 1912, \"flush-ticks\": 359}}");
}
END_TEST

START_TEST(load_from_loadavg)
{
    char root[1100];
    fixture(root, sizeof(root), "proc-snap1");
    expect(gd_qga_load(root), "{\"load1m\": 2.02, \"load5m\": 0.67, \"load15m\": 0.27}");
    ck_assert_ptr_null(gd_qga_load("/nonexistent-guestd"));
}
END_TEST

START_TEST(vcpus_online_and_offlinable)
{
    char root[1100];
    fixture(root, sizeof(root), "qga/sys");
    expect(gd_qga_vcpus(root), "[{\"online\": true, \"can-offline\": false, \"logical-id\": 0}, "
                               "{\"online\": true, \"can-offline\": true, \"logical-id\": 1}, "
                               "{\"online\": false, \"can-offline\": true, \"logical-id\": 2}]");
}
END_TEST

/* ---- identity ---- */

START_TEST(osinfo_from_os_release_leaves_out_what_is_missing)
{
    char etc[1100];
    fixture(etc, sizeof(etc), "sysinfo-etc");
    cJSON *r = gd_qga_osinfo(etc);
    ck_assert_str_eq(cJSON_GetObjectItem(r, "id")->valuestring, "debian");
    ck_assert_str_eq(cJSON_GetObjectItem(r, "name")->valuestring, "Debian GNU/Linux");
    ck_assert_str_eq(cJSON_GetObjectItem(r, "pretty-name")->valuestring,
                     "Debian GNU/Linux 12 (bookworm)");
    ck_assert_str_eq(cJSON_GetObjectItem(r, "version")->valuestring, "12 (bookworm)");
    ck_assert_str_eq(cJSON_GetObjectItem(r, "version-id")->valuestring, "12");
    ck_assert_ptr_null(cJSON_GetObjectItem(r, "variant"));
    ck_assert_ptr_null(cJSON_GetObjectItem(r, "variant-id"));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(r, "kernel-release")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(r, "machine")));
    cJSON_Delete(r);
}
END_TEST

START_TEST(timezone_abbreviation_and_offset)
{
    /* With its rules spelled out: musl (the static build) reads a bare
     * "EST5EDT" as daylight time all year, glibc applies US rules. */
    setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
    expect(gd_qga_timezone(1704067200), "{\"zone\": \"EST\", \"offset\": -18000}"); /* January */
    expect(gd_qga_timezone(1719792000), "{\"zone\": \"EDT\", \"offset\": -14400}"); /* July */
    setenv("TZ", "UTC0", 1);
    expect(gd_qga_timezone(1704067200), "{\"zone\": \"UTC\", \"offset\": 0}");
    unsetenv("TZ");
}
END_TEST

START_TEST(users_once_each_with_the_earliest_login)
{
    char path[] = "/tmp/guestd-utmp-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct {
        const char *user;
        short type;
        long sec, usec;
    } rows[] = {
        {"alice", USER_PROCESS, 1700000100, 0},      {"bob", USER_PROCESS, 1700000050, 250000},
        {"alice", USER_PROCESS, 1700000000, 500000}, {"LOGIN", LOGIN_PROCESS, 1700000000, 0},
        {"gone", DEAD_PROCESS, 1700000000, 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
#ifdef __GLIBC__
        struct utmpx u;
        memset(&u, 0, sizeof(u));
        u.ut_type = rows[i].type;
        u.ut_pid = (pid_t)(100 + i);
        snprintf(u.ut_line, sizeof(u.ut_line), "pts/%zu", i);
        snprintf(u.ut_user, sizeof(u.ut_user), "%s", rows[i].user);
        u.ut_tv.tv_sec = (int32_t)rows[i].sec;
        u.ut_tv.tv_usec = (int32_t)rows[i].usec;
        updwtmpx(path, &u);
#else
        /* musl's updwtmpx does nothing: the record glibc would write
         * (x86_64: type at 0, pid 4, line 8, user 44, tv 340, 384 bytes). */
        unsigned char rec[384] = {0};
        int16_t type = rows[i].type;
        int32_t pid = (int32_t)(100 + i), sec = (int32_t)rows[i].sec, usec = (int32_t)rows[i].usec;
        memcpy(rec, &type, 2);
        memcpy(rec + 4, &pid, 4);
        snprintf((char *)rec + 8, 32, "pts/%zu", i);
        snprintf((char *)rec + 44, 32, "%s", rows[i].user);
        memcpy(rec + 340, &sec, 4);
        memcpy(rec + 344, &usec, 4);
        FILE *f = fopen(path, "ab");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fwrite(rec, sizeof(rec), 1, f), 1);
        fclose(f);
#endif
    }
    expect(gd_qga_users(path), "[{\"user\": \"alice\", \"login-time\": 1700000000.5}, "
                               "{\"user\": \"bob\", \"login-time\": 1700000050.25}]");
    unlink(path);
}
END_TEST

/* ---- network ---- */

START_TEST(interfaces_list_loopback_with_its_address)
{
    char root[1100];
    int err = 0;
    fixture(root, sizeof(root), "proc-snap1");
    cJSON *list = gd_qga_interfaces(root, &err);
    ck_assert_ptr_nonnull(list);
    cJSON *lo = by_name(list, "name", "lo");
    ck_assert_ptr_nonnull(lo);
    ck_assert_str_eq(cJSON_GetObjectItem(lo, "hardware-address")->valuestring, "00:00:00:00:00:00");
    cJSON *v4 = by_name(cJSON_GetObjectItem(lo, "ip-addresses"), "ip-address", "127.0.0.1");
    ck_assert_ptr_nonnull(v4);
    ck_assert_str_eq(cJSON_GetObjectItem(v4, "ip-address-type")->valuestring, "ipv4");
    ck_assert_int_eq(cJSON_GetObjectItem(v4, "prefix")->valueint, 8);
    /* Counters from the fixture's /proc/net/dev. */
    cJSON *st = cJSON_GetObjectItem(lo, "statistics");
    ck_assert_int_eq((int)cJSON_GetObjectItem(st, "rx-bytes")->valuedouble, 3267);
    ck_assert_int_eq((int)cJSON_GetObjectItem(st, "tx-packets")->valuedouble, 29);
    cJSON_Delete(list);
}
END_TEST

/* ---- filesystems and disks ---- */

START_TEST(mounts_are_those_on_block_devices)
{
    char path[1100];
    fixture(path, sizeof(path), "proc-snap1/self/mountinfo");
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    gd_qga_mount_t *m;
    size_t count;
    ck_assert_int_eq(gd_qga_mounts_parse(text, &m, &count), 0);
    ck_assert_uint_eq(count, 1);
    ck_assert_str_eq(m[0].dir, "/");
    ck_assert_str_eq(m[0].type, "ext4");
    ck_assert_str_eq(m[0].source, "/dev/vda");
    ck_assert_uint_eq(m[0].major, 254);
    gd_qga_mounts_free(m, count);

    ck_assert_int_eq(gd_qga_mounts_parse("26 1 8:1 / /a\\040b rw - xfs /dev/sda1 rw\n"
                                         "27 1 0:5 / /n rw - nfs4 s:/e rw\n"
                                         "broken line\n",
                                         &m, &count),
                     0);
    ck_assert_uint_eq(count, 1);
    ck_assert_str_eq(m[0].dir, "/a b");
    gd_qga_mounts_free(m, count);
}
END_TEST

START_TEST(fsinfo_names_disks_behind_partitions_and_device_mapper)
{
    char proc[1100], sys[1100];
    fixture(proc, sizeof(proc), "qga/proc");
    fixture(sys, sizeof(sys), "qga/sys");
    cJSON *list = gd_qga_fsinfo(proc, sys);
    ck_assert_int_eq(cJSON_GetArraySize(list), 3);
    cJSON *root = by_name(list, "mountpoint", "/");
    ck_assert_str_eq(cJSON_GetObjectItem(root, "name")->valuestring, "dm-0");
    ck_assert_str_eq(cJSON_GetObjectItem(root, "type")->valuestring, "ext4");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(root, "total-bytes")));
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(root, "used-bytes")));
    const char *want_disk =
        "[{\"pci-controller\": {\"domain\": 0, \"bus\": 0, \"slot\": 4, "
        "\"function\": 0}, \"bus-type\": \"virtio\", \"bus\": 0, \"target\": 0, "
        "\"unit\": 0, \"serial\": \"disk-serial-1\", \"dev\": \"/dev/vda1\"}]";
    expect(cJSON_Duplicate(cJSON_GetObjectItem(root, "disk"), 1), want_disk);
    cJSON *boot = by_name(list, "mountpoint", "/nonexistent-guestd-fixture/boot");
    ck_assert_str_eq(cJSON_GetObjectItem(boot, "name")->valuestring, "vda1");
    ck_assert_ptr_null(cJSON_GetObjectItem(boot, "total-bytes")); /* statvfs failed */
    expect(cJSON_Duplicate(cJSON_GetObjectItem(boot, "disk"), 1), want_disk);
    ck_assert_ptr_nonnull(by_name(list, "mountpoint", "/nonexistent-guestd-fixture/with space"));
    cJSON_Delete(list);
}
END_TEST

START_TEST(disks_with_partitions_aliases_and_dependencies)
{
    char sys[1100];
    fixture(sys, sizeof(sys), "qga/sys");
    cJSON *list = gd_qga_disks(sys);
    ck_assert_int_eq(cJSON_GetArraySize(list), 3); /* loop0 has no size */
    expect(cJSON_Duplicate(by_name(list, "name", "/dev/dm-0"), 1),
           "{\"name\": \"/dev/dm-0\", \"partition\": false, \"dependencies\": [\"/dev/vda1\"], "
           "\"alias\": \"vg-root\"}");
    expect(cJSON_Duplicate(by_name(list, "name", "/dev/vda"), 1),
           "{\"name\": \"/dev/vda\", \"partition\": false, \"dependencies\": [], \"address\": "
           "{\"pci-controller\": {\"domain\": 0, \"bus\": 0, \"slot\": 4, \"function\": 0}, "
           "\"bus-type\": \"virtio\", \"bus\": 0, \"target\": 0, \"unit\": 0, \"serial\": "
           "\"disk-serial-1\", \"dev\": \"/dev/vda\"}}");
    expect(cJSON_Duplicate(by_name(list, "name", "/dev/vda1"), 1),
           "{\"name\": \"/dev/vda1\", \"partition\": true, \"dependencies\": [\"/dev/vda\"]}");
    cJSON_Delete(list);
}
END_TEST

/* ---- freeze and thaw, with a stand-in for ioctl ---- */

#define MAX_CALLS 64
static struct {
    char path[256];
    unsigned long req;
} calls[MAX_CALLS];
static int n_calls;
static char fail_path[256];
static int fail_errno;
static int frozen_depth[8]; /* per mount index: FITHAW succeeds while > 0 */
static char tmpdirs[4][64];

/* Which of tmpdirs fd is. */
static int dir_index(int fd)
{
    struct stat a, b;
    fstat(fd, &a);
    for (int i = 0; i < 4; i++)
        if (stat(tmpdirs[i], &b) == 0 && a.st_ino == b.st_ino) return i;
    return -1;
}

static int fake_ioctl(int fd, unsigned long req, void *arg)
{
    int i = dir_index(fd);
    ck_assert_int_ge(i, 0);
    ck_assert_int_lt(n_calls, MAX_CALLS);
    snprintf(calls[n_calls].path, sizeof(calls[n_calls].path), "%s", tmpdirs[i]);
    calls[n_calls++].req = req;
    if (req == FIFREEZE) {
        if (strcmp(tmpdirs[i], fail_path) == 0) {
            errno = fail_errno;
            return -1;
        }
        frozen_depth[i]++;
        return 0;
    }
    if (frozen_depth[i] > 0) {
        frozen_depth[i]--;
        return 0;
    }
    errno = EINVAL;
    return -1;
}

static gd_qga_mount_t mounts[4];

static void freeze_setup(void)
{
    n_calls = 0;
    fail_path[0] = '\0';
    memset(frozen_depth, 0, sizeof(frozen_depth));
    for (int i = 0; i < 4; i++) {
        snprintf(tmpdirs[i], sizeof(tmpdirs[i]), "/tmp/guestd-fz-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdirs[i]));
        mounts[i].dir = tmpdirs[i];
        mounts[i].type = "ext4";
        mounts[i].source = "/dev/x";
        mounts[i].major = 8;
        mounts[i].minor = (unsigned)i;
    }
}

static void freeze_teardown(void)
{
    for (int i = 0; i < 4; i++)
        rmdir(tmpdirs[i]);
}

START_TEST(freeze_goes_in_reverse_mount_order)
{
    char why[256] = "";
    ck_assert_int_eq(gd_qga_freeze_mounts(mounts, 3, NULL, fake_ioctl, why, sizeof(why)), 3);
    ck_assert_int_eq(n_calls, 3);
    for (int k = 0; k < 3; k++) {
        ck_assert_str_eq(calls[k].path, tmpdirs[2 - k]);
        ck_assert(calls[k].req == FIFREEZE);
    }
    n_calls = 0;
    ck_assert_int_eq(gd_qga_thaw_mounts(mounts, 3, fake_ioctl), 3);
    /* One FITHAW that works and one that says "not frozen", per mount. */
    ck_assert_int_eq(n_calls, 6);
    ck_assert_str_eq(calls[0].path, tmpdirs[0]);
}
END_TEST

START_TEST(freeze_skips_what_cannot_freeze)
{
    char why[256] = "";
    snprintf(fail_path, sizeof(fail_path), "%s", tmpdirs[1]);
    fail_errno = EOPNOTSUPP;
    ck_assert_int_eq(gd_qga_freeze_mounts(mounts, 3, NULL, fake_ioctl, why, sizeof(why)), 2);
    fail_errno = EBUSY; /* frozen already: a bind mount of a frozen one */
    memset(frozen_depth, 0, sizeof(frozen_depth));
    ck_assert_int_eq(gd_qga_freeze_mounts(mounts, 3, NULL, fake_ioctl, why, sizeof(why)), 2);
}
END_TEST

START_TEST(freeze_failure_thaws_everything)
{
    char why[256] = "";
    snprintf(fail_path, sizeof(fail_path), "%s", tmpdirs[0]);
    fail_errno = EIO;
    ck_assert_int_eq(gd_qga_freeze_mounts(mounts, 3, NULL, fake_ioctl, why, sizeof(why)), -EIO);
    ck_assert_ptr_nonnull(strstr(why, "failed to freeze"));
    ck_assert_ptr_nonnull(strstr(why, tmpdirs[0]));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(frozen_depth[i], 0);
}
END_TEST

START_TEST(freeze_list_freezes_only_the_named)
{
    char why[256] = "";
    cJSON *only = cJSON_CreateArray();
    cJSON_AddItemToArray(only, cJSON_CreateString(tmpdirs[2]));
    cJSON_AddItemToArray(only, cJSON_CreateString("/not/a/mount"));
    ck_assert_int_eq(gd_qga_freeze_mounts(mounts, 3, only, fake_ioctl, why, sizeof(why)), 1);
    ck_assert_int_eq(n_calls, 1);
    ck_assert_str_eq(calls[0].path, tmpdirs[2]);
    cJSON_Delete(only);
}
END_TEST

START_TEST(thaw_undoes_nested_freezes)
{
    frozen_depth[1] = 3;
    ck_assert_int_eq(gd_qga_thaw_mounts(mounts, 3, fake_ioctl), 1);
    ck_assert_int_eq(frozen_depth[1], 0);
}
END_TEST

/* ---- authorized_keys ---- */

static cJSON *keys(const char *a, const char *b)
{
    cJSON *k = cJSON_CreateArray();
    if (a) cJSON_AddItemToArray(k, cJSON_CreateString(a));
    if (b) cJSON_AddItemToArray(k, cJSON_CreateString(b));
    return k;
}

START_TEST(authkeys_add_skips_keys_already_there)
{
    gd_buf_t out;
    gd_buf_init(&out);
    cJSON *k = keys("algo key2 comments", NULL);
    gd_qga_authkeys_add(NULL, k, &out);
    ck_assert_str_eq(out.data, "algo key2 comments\n");
    cJSON_Delete(k);
    k = keys("algo key1 comments", "algo key2 comments");
    gd_qga_authkeys_add("algo key2 comments", k, &out);
    ck_assert_str_eq(out.data, "algo key2 comments\nalgo key1 comments\n");
    cJSON_Delete(k);
    gd_buf_free(&out);
}
END_TEST

START_TEST(authkeys_remove_keeps_comments_and_others)
{
    gd_buf_t out;
    gd_buf_init(&out);
    cJSON *k = keys("algo key1 comments", "algo key2 comments");
    gd_qga_authkeys_remove("algo key1 comments\nalgo key1 comments\n# a commented line\n"
                           "algo some-key another\n",
                           k, &out);
    ck_assert_str_eq(out.data, "# a commented line\nalgo some-key another\n");
    cJSON_Delete(k);
    gd_buf_free(&out);
}
END_TEST

START_TEST(authkeys_list_leaves_out_comments_and_blanks)
{
    expect(gd_qga_authkeys_list("algo key1 c\n\n# comment\n  algo some-key another  \n"),
           "[\"algo key1 c\", \"algo some-key another\"]");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("qga");
    TCase *tc = tcase_create("counters");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, cpustats_in_milliseconds_per_cpu);
    tcase_add_test(tc, diskstats_every_device_with_qemu_ga_names);
    tcase_add_test(tc, load_from_loadavg);
    tcase_add_test(tc, vcpus_online_and_offlinable);
    suite_add_tcase(s, tc);

    tc = tcase_create("identity");
    tcase_add_test(tc, osinfo_from_os_release_leaves_out_what_is_missing);
    tcase_add_test(tc, timezone_abbreviation_and_offset);
    tcase_add_test(tc, users_once_each_with_the_earliest_login);
    tcase_add_test(tc, interfaces_list_loopback_with_its_address);
    suite_add_tcase(s, tc);

    tc = tcase_create("filesystems");
    tcase_add_test(tc, mounts_are_those_on_block_devices);
    tcase_add_test(tc, fsinfo_names_disks_behind_partitions_and_device_mapper);
    tcase_add_test(tc, disks_with_partitions_aliases_and_dependencies);
    suite_add_tcase(s, tc);

    tc = tcase_create("freeze");
    tcase_add_checked_fixture(tc, freeze_setup, freeze_teardown);
    tcase_add_test(tc, freeze_goes_in_reverse_mount_order);
    tcase_add_test(tc, freeze_skips_what_cannot_freeze);
    tcase_add_test(tc, freeze_failure_thaws_everything);
    tcase_add_test(tc, freeze_list_freezes_only_the_named);
    tcase_add_test(tc, thaw_undoes_nested_freezes);
    suite_add_tcase(s, tc);

    tc = tcase_create("authorized_keys");
    tcase_add_test(tc, authkeys_add_skips_keys_already_there);
    tcase_add_test(tc, authkeys_remove_keeps_comments_and_others);
    tcase_add_test(tc, authkeys_list_leaves_out_comments_and_blanks);
    suite_add_tcase(s, tc);
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

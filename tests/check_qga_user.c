/* Tests for the files of a guest user's home as guest-ssh-*-authorized-keys
 * reach them (commands/userfile.c): a home of uid 4242 in a temporary
 * directory, and the attacks a user of that home can set up there (links to
 * root's directory and files, hard links, a FIFO, a sparse 1 GiB file).
 * They chown files to uid 4242, so they need root: as another user they
 * pass without checking anything (the integration suite
 * tests/integration/test_hostile_user.py runs the same attacks with a real
 * user against the agent). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "commands/qga/internal.h"
#include "commands/userfile.h"

#define UID 4242
#define GID 4243

static char tmp[64], home[128], rootdir[128], victim[192], ssh[192], keys[256];
static char err[512];
static const char victim_text[] = "* * * * * root echo pwned\n";

static void put(const char *path, const char *text, uid_t uid)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(fchown(fd, uid, uid == 0 ? 0 : GID), 0);
    close(fd);
}

static int is_root(void)
{
    return geteuid() == 0;
}

static void setup(void)
{
    if (!is_root()) return;
    snprintf(tmp, sizeof(tmp), "/tmp/gd-userfile-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    chmod(tmp, 0755);
    snprintf(home, sizeof(home), "%s/home", tmp);
    snprintf(rootdir, sizeof(rootdir), "%s/cron.d", tmp);
    snprintf(victim, sizeof(victim), "%s/job", rootdir);
    snprintf(ssh, sizeof(ssh), "%s/.ssh", home);
    snprintf(keys, sizeof(keys), "%s/authorized_keys", ssh);
    ck_assert_int_eq(mkdir(home, 0755), 0);
    ck_assert_int_eq(chown(home, UID, GID), 0);
    ck_assert_int_eq(mkdir(rootdir, 0755), 0);
    put(victim, victim_text, 0);
}

static void teardown(void)
{
    if (!is_root()) return;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    ck_assert_int_eq(system(cmd), 0);
}

static int open_home(void)
{
    int fd = gd_userfile_open_home(home, UID, err, sizeof(err));
    ck_assert_msg(fd >= 0, "%s", err);
    return fd;
}

/* root's directory holds only its file, unchanged. */
static void root_untouched(void)
{
    char buf[256] = "";
    int fd = open(victim, O_RDONLY);
    ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1) >= 0, 1);
    close(fd);
    ck_assert_str_eq(buf, victim_text);
    struct stat st;
    ck_assert_int_eq(stat(rootdir, &st), 0);
    ck_assert_int_eq(st.st_nlink, 2);
    char probe[256];
    snprintf(probe, sizeof(probe), "%s/authorized_keys", rootdir);
    ck_assert_int_eq(access(probe, F_OK), -1);
    ck_assert_int_eq(stat(victim, &st), 0);
    ck_assert_int_eq(st.st_uid, 0);
}

START_TEST(home_must_be_the_users_and_absolute)
{
    if (!is_root()) return;
    close(open_home());
    ck_assert_int_eq(gd_userfile_open_home(home, UID + 1, err, sizeof(err)), -EPERM);
    ck_assert_msg(strstr(err, "is not owned by the user"), "%s", err);
    ck_assert_int_eq(gd_userfile_open_home("home", UID, err, sizeof(err)), -EINVAL);
    /* A link above the home (/home -> /var/home) is resolved. */
    char link[160];
    snprintf(link, sizeof(link), "%s/homes", tmp);
    ck_assert_int_eq(symlink(tmp, link), 0);
    strcat(link, "/home");
    int fd = gd_userfile_open_home(link, UID, err, sizeof(err));
    ck_assert_msg(fd >= 0, "%s", err);
    close(fd);
    /* A home that is a link to root's directory is root's directory. */
    char evil[160];
    snprintf(evil, sizeof(evil), "%s/evil", tmp);
    ck_assert_int_eq(symlink(rootdir, evil), 0);
    ck_assert_int_eq(gd_userfile_open_home(evil, UID, err, sizeof(err)), -EPERM);
}
END_TEST

START_TEST(ssh_dir_link_to_roots_directory_is_refused)
{
    if (!is_root()) return;
    ck_assert_int_eq(symlink(rootdir, ssh), 0);
    int h = open_home();
    for (int create = 0; create < 2; create++) {
        ck_assert_int_eq(gd_userfile_open_dir(h, ".ssh", UID, GID, create, ssh, err, sizeof(err)),
                         -ELOOP);
        ck_assert_msg(strstr(err, "a symbolic link or not a directory"), "%s", err);
    }
    close(h);
    root_untouched();
}
END_TEST

START_TEST(ssh_dir_of_another_owner_is_refused)
{
    if (!is_root()) return;
    ck_assert_int_eq(mkdir(ssh, 0700), 0); /* root's */
    int h = open_home();
    ck_assert_int_eq(gd_userfile_open_dir(h, ".ssh", UID, GID, 1, ssh, err, sizeof(err)), -EPERM);
    ck_assert_msg(strstr(err, "is not owned by the user"), "%s", err);
    close(h);
}
END_TEST

START_TEST(missing_ssh_dir_is_made_the_users)
{
    if (!is_root()) return;
    int h = open_home();
    ck_assert_int_eq(gd_userfile_open_dir(h, ".ssh", UID, GID, 0, ssh, err, sizeof(err)), -ENOENT);
    int d = gd_userfile_open_dir(h, ".ssh", UID, GID, 1, ssh, err, sizeof(err));
    ck_assert_msg(d >= 0, "%s", err);
    struct stat st;
    ck_assert_int_eq(lstat(ssh, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(st.st_uid, UID);
    ck_assert_int_eq(st.st_gid, GID);
    ck_assert_int_eq(st.st_mode & 07777, 0700);
    close(d);
    close(h);
}
END_TEST

static int open_ssh(void)
{
    int h = open_home();
    int d = gd_userfile_open_dir(h, ".ssh", UID, GID, 1, ssh, err, sizeof(err));
    ck_assert_msg(d >= 0, "%s", err);
    close(h);
    return d;
}

static int read_keys(int d, gd_buf_t *b)
{
    return gd_userfile_read(d, "authorized_keys", UID, b, keys, err, sizeof(err));
}

START_TEST(links_fifos_and_big_files_are_refused)
{
    if (!is_root()) return;
    int d = open_ssh();
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(read_keys(d, &b), -ENOENT);
    /* A symbolic link to root's file. */
    ck_assert_int_eq(symlink(victim, keys), 0);
    ck_assert_int_eq(read_keys(d, &b), -ELOOP);
    ck_assert_msg(strstr(err, "a symbolic link"), "%s", err);
    unlink(keys);
    /* A hard link to root's file, and to one of the user's own. */
    ck_assert_int_eq(link(victim, keys), 0);
    ck_assert_int_eq(read_keys(d, &b), -EPERM);
    ck_assert_msg(strstr(err, "not owned by the user"), "%s", err);
    unlink(keys);
    char other[256];
    snprintf(other, sizeof(other), "%s/other", home);
    put(other, "k\n", UID);
    ck_assert_int_eq(link(other, keys), 0);
    ck_assert_int_eq(read_keys(d, &b), -EPERM);
    ck_assert_msg(strstr(err, "other hard links"), "%s", err);
    unlink(keys);
    /* A FIFO nobody writes to: refused at once, not waited on. */
    ck_assert_int_eq(mkfifo(keys, 0600), 0);
    ck_assert_int_eq(chown(keys, UID, GID), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(read_keys(d, &b), -EINVAL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2);
    ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
    unlink(keys);
    /* A sparse 1 GiB file, and one just past the cap. */
    put(keys, "", UID);
    ck_assert_int_eq(truncate(keys, 1L << 30), 0);
    ck_assert_int_eq(read_keys(d, &b), -EFBIG);
    ck_assert_msg(strstr(err, "larger than 1 MiB"), "%s", err);
    ck_assert_int_eq(truncate(keys, GD_USERFILE_MAX_BYTES + 1), 0);
    ck_assert_int_eq(read_keys(d, &b), -EFBIG);
    ck_assert_int_eq(truncate(keys, GD_USERFILE_MAX_BYTES), 0);
    ck_assert_int_eq(read_keys(d, &b), 0);
    ck_assert_uint_eq(b.len, GD_USERFILE_MAX_BYTES);
    /* root's file in the user's directory. */
    put(keys, "k\n", 0);
    ck_assert_int_eq(read_keys(d, &b), -EPERM);
    gd_buf_free(&b);
    close(d);
    root_untouched();
}
END_TEST

START_TEST(empty_file_reads_as_empty_text)
{
    if (!is_root()) return;
    int d = open_ssh();
    put(keys, "", UID);
    gd_buf_t b;
    gd_buf_init(&b); /* fresh: the first allocation must be terminated too */
    ck_assert_int_eq(read_keys(d, &b), 0);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_str_eq(b.data, "");
    cJSON *list = gd_qga_authkeys_list(b.data);
    ck_assert_int_eq(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    /* Dirty the buffer, then read a file without a final newline. */
    gd_buf_puts(&b, "stale heap bytes, stale heap bytes");
    put(keys, "ssh-ed25519 AAAA one", UID);
    ck_assert_int_eq(read_keys(d, &b), 0);
    ck_assert_str_eq(b.data, "ssh-ed25519 AAAA one");
    cJSON *k = cJSON_CreateStringArray((const char *[]){"ssh-ed25519 BBBB two"}, 1);
    gd_buf_t next;
    gd_buf_init(&next);
    gd_qga_authkeys_add(b.data, k, &next);
    ck_assert_str_eq(next.data, "ssh-ed25519 AAAA one\nssh-ed25519 BBBB two\n");
    put(keys, "", UID);
    ck_assert_int_eq(read_keys(d, &b), 0);
    gd_qga_authkeys_add(b.data, k, &next);
    ck_assert_str_eq(next.data, "ssh-ed25519 BBBB two\n");
    cJSON_Delete(k);
    gd_buf_free(&next);
    gd_buf_free(&b);
    close(d);
    /* The buffer's own promise: NUL-terminated from its first allocation. */
    gd_buf_t fresh;
    gd_buf_init(&fresh);
    ck_assert_int_eq(gd_buf_reserve(&fresh, 4096), 0);
    ck_assert_str_eq(fresh.data, "");
    gd_buf_free(&fresh);
}
END_TEST

START_TEST(replace_writes_the_users_file_in_place_of_a_link)
{
    if (!is_root()) return;
    int d = open_ssh();
    ck_assert_int_eq(symlink(victim, keys), 0);
    ck_assert_int_eq(
        gd_userfile_replace(d, "authorized_keys", UID, GID, "k1\n", 3, keys, err, sizeof(err)), 0);
    struct stat st;
    ck_assert_int_eq(lstat(keys, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_uid, UID);
    ck_assert_int_eq(st.st_gid, GID);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_size, 3);
    gd_buf_t b;
    gd_buf_init(&b);
    ck_assert_int_eq(read_keys(d, &b), 0);
    ck_assert_str_eq(b.data, "k1\n");
    gd_buf_free(&b);
    /* Nothing but the file is left in ~/.ssh (no temporary file). */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = authorized_keys", ssh);
    ck_assert_int_eq(system(cmd), 0);
    close(d);
    root_untouched();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qga_user");
    TCase *tc = tcase_create("home_walk");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, home_must_be_the_users_and_absolute);
    tcase_add_test(tc, ssh_dir_link_to_roots_directory_is_refused);
    tcase_add_test(tc, ssh_dir_of_another_owner_is_refused);
    tcase_add_test(tc, missing_ssh_dir_is_made_the_users);
    suite_add_tcase(s, tc);
    tc = tcase_create("authorized_keys");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, links_fifos_and_big_files_are_refused);
    tcase_add_test(tc, empty_file_reads_as_empty_text);
    tcase_add_test(tc, replace_writes_the_users_file_in_place_of_a_link);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

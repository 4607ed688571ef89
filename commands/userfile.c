/* Files in a guest user's home, opened by root only where that user could
 * (see userfile.h). The agent runs as root and a user owns their home, so
 * every step checks what a path names before trusting it: directories are
 * opened with O_NOFOLLOW from the fd of the one before, and owners and file
 * types come from fstat of the open fd, never from a second lookup. */
#include "commands/userfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Why openat of a directory without following links failed, in words. */
static const char *dir_error(int e)
{
    if (e == ELOOP || e == ENOTDIR) return "a symbolic link or not a directory";
    return strerror(e);
}

int gd_userfile_open_home(const char *home, uid_t uid, char *err, size_t errlen)
{
    if (!home || home[0] != '/') {
        snprintf(err, errlen, "home directory '%.400s' is not an absolute path", home ? home : "");
        return -EINVAL;
    }
    char *real = realpath(home, NULL);
    if (!real) {
        int e = errno;
        snprintf(err, errlen, "failed to open home directory '%.400s': %s", home, strerror(e));
        return -e;
    }
    int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char *save = NULL;
    for (char *name = strtok_r(real, "/", &save); fd >= 0 && name;
         name = strtok_r(NULL, "/", &save)) {
        int next = openat(fd, name, DIR_FLAGS);
        int e = errno;
        close(fd);
        fd = next < 0 ? -e : next;
    }
    free(real);
    if (fd < 0) {
        /* A directory of the path changed after realpath: someone is racing. */
        snprintf(err, errlen, "failed to open home directory '%.400s': %s", home, dir_error(-fd));
        return fd == -ENOTDIR ? -ELOOP : fd;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_uid != uid) {
        close(fd);
        snprintf(err, errlen, "home directory '%.400s' is not owned by the user", home);
        return -EPERM;
    }
    return fd;
}

int gd_userfile_open_dir(int dirfd, const char *name, uid_t uid, gid_t gid, int create,
                         const char *shown, char *err, size_t errlen)
{
    int made = 0;
    int fd = openat(dirfd, name, DIR_FLAGS);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dirfd, name, 0700) == 0)
            made = 1;
        else if (errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "failed to create directory '%.400s': %s", shown, strerror(e));
            return -e;
        }
        fd = openat(dirfd, name, DIR_FLAGS);
    }
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "failed to open directory '%.400s': %s", shown, dir_error(e));
        return e == ENOTDIR ? -ELOOP : -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "failed to open directory '%.400s': %s", shown, strerror(e));
        return -e;
    }
    /* What mkdirat made is root's until given away through the fd; the user
     * may have swapped in a directory of their own meanwhile, which is fine. */
    if (made && st.st_uid == 0 && uid != 0) {
        if (fchown(fd, uid, gid) != 0 || fchmod(fd, 0700) != 0) {
            int e = errno;
            close(fd);
            snprintf(err, errlen, "failed to create directory '%.400s': %s", shown, strerror(e));
            return -e;
        }
        st.st_uid = uid;
    } else if (made && fchmod(fd, 0700) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "failed to create directory '%.400s': %s", shown, strerror(e));
        return -e;
    }
    if (st.st_uid != uid) {
        close(fd);
        snprintf(err, errlen, "directory '%.400s' is not owned by the user", shown);
        return -EPERM;
    }
    return fd;
}

int gd_userfile_read(int dirfd, const char *name, uid_t uid, gd_buf_t *out, const char *shown,
                     char *err, size_t errlen)
{
    gd_buf_reset(out);
    if (gd_buf_reserve(out, 0) != 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    out->data[0] = '\0';
    /* O_NONBLOCK: a FIFO opens at once instead of waiting for a writer, and
     * fstat below refuses it before any read. */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "failed to read '%.400s': %s", shown,
                 e == ELOOP ? "a symbolic link" : strerror(e));
        return -e;
    }
    struct stat st;
    const char *why = NULL;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        why = strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        why = "not a regular file";
    } else if (st.st_uid != uid || st.st_nlink != 1) {
        rc = -EPERM;
        why = st.st_uid != uid ? "not owned by the user" : "a file with other hard links";
    } else if (st.st_size > GD_USERFILE_MAX_BYTES) {
        rc = -EFBIG;
        why = "larger than 1 MiB";
    }
    /* At most one byte past the cap is read, in case the file grew. */
    while (!rc) {
        if (gd_buf_reserve(out, 4096) != 0) {
            rc = -ENOMEM;
            why = "out of memory";
            break;
        }
        size_t room = out->cap - out->len - 1;
        if (room > GD_USERFILE_MAX_BYTES + 1 - out->len)
            room = GD_USERFILE_MAX_BYTES + 1 - out->len;
        ssize_t n = read(fd, out->data + out->len, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = -errno;
            why = strerror(errno);
            break;
        }
        if (n == 0) break;
        out->len += (size_t)n;
        out->data[out->len] = '\0';
        if (out->len > GD_USERFILE_MAX_BYTES) {
            rc = -EFBIG;
            why = "larger than 1 MiB";
        }
    }
    close(fd);
    if (rc) {
        gd_buf_reset(out);
        snprintf(err, errlen, "failed to read '%.400s': %s", shown, why);
    }
    return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A new file "name.guestd-XXXXXX" in dirfd, created exclusively. */
static int create_temp(int dirfd, const char *name, char *tmp, size_t tmplen)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16);
    for (int attempt = 0; attempt < 100; attempt++) {
        char suffix[7];
        for (int i = 0; i < 6; i++) {
            x = x * 6364136223846793005ul + 1442695040888963407ul;
            suffix[i] = chars[(x >> 33) % (sizeof(chars) - 1)];
        }
        suffix[6] = '\0';
        if ((size_t)snprintf(tmp, tmplen, "%s.guestd-%s", name, suffix) >= tmplen)
            return -ENAMETOOLONG;
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST) return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

int gd_userfile_replace(int dirfd, const char *name, uid_t uid, gid_t gid, const char *data,
                        size_t len, const char *shown, char *err, size_t errlen)
{
    char tmp[NAME_MAX + 1];
    int fd = create_temp(dirfd, name, tmp, sizeof(tmp));
    if (fd < 0) {
        snprintf(err, errlen, "failed to write to '%.400s': %s", shown, strerror(-fd));
        return fd;
    }
    int rc = write_all(fd, data, len);
    if (!rc && fchown(fd, uid, gid) != 0) rc = -errno;
    if (!rc && fchmod(fd, 0600) != 0) rc = -errno;
    if (!rc && fsync(fd) != 0) rc = -errno;
    close(fd);
    if (!rc && renameat(dirfd, tmp, dirfd, name) != 0) rc = -errno;
    if (rc) {
        unlinkat(dirfd, tmp, 0);
        snprintf(err, errlen, "failed to write to '%.400s': %s", shown, strerror(-rc));
        return rc;
    }
    fsync(dirfd); /* the rename itself survives a crash */
    return 0;
}

/* Files in a guest user's home, opened by root only where that user could
 * open them: every directory is reached with openat from the one before,
 * never through a symbolic link, and must be owned by the user, so a user
 * cannot steer the agent into a directory of root's (a ~/.ssh symlink to
 * /etc/cron.d) or at a file of root's (a hard link, a FIFO, a 1 GiB file). */
#ifndef GUESTD_USERFILE_H
#define GUESTD_USERFILE_H

#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"

/* The largest file gd_userfile_read reads (authorized_keys of thousands of
 * keys is well below): larger ones are refused, never read into memory. */
#define GD_USERFILE_MAX_BYTES (1024 * 1024)

/* Opens the home directory home (an absolute path from the password
 * database) as a directory fd. Symbolic links in home are resolved first
 * (/home may be a link to /var/home); the resolved path is then walked from
 * "/" without following any link, and its last directory must be owned by
 * uid. The fd, or -errno with err set. */
int gd_userfile_open_home(const char *home, uid_t uid, char *err, size_t errlen);

/* Opens directory name inside dirfd (not through a link; owned by uid).
 * With create, a missing one is made mode 0700 and given to uid:gid through
 * its fd. shown names it in err. The fd, or -errno with err set. */
int gd_userfile_open_dir(int dirfd, const char *name, uid_t uid, gid_t gid, int create,
                         const char *shown, char *err, size_t errlen);

/* Reads file name inside dirfd into out, always NUL-terminated (also when
 * empty). Refused: a symbolic link (-ELOOP), not a regular file, such as a
 * FIFO or device (-EINVAL; opened non-blocking, so nothing waits for a
 * writer), not owned by uid or with other hard links (-EPERM), larger than
 * GD_USERFILE_MAX_BYTES (-EFBIG). -ENOENT when there is none. 0 or -errno
 * with err set (shown names the file). */
int gd_userfile_read(int dirfd, const char *name, uid_t uid, gd_buf_t *out, const char *shown,
                     char *err, size_t errlen);

/* Replaces file name inside dirfd with data: a new file beside it (O_EXCL,
 * never through a link), owned by uid:gid, mode 0600, synced, then renamed
 * over name inside the same directory. 0 or -errno with err set. */
int gd_userfile_replace(int dirfd, const char *name, uid_t uid, gid_t gid, const char *data,
                        size_t len, const char *shown, char *err, size_t errlen);

#endif

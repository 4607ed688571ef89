/* The filesystems: space and inodes of real mounts, from mountinfo and statvfs in the thread pool.
 */
#ifndef GUESTD_COLLECTOR_FILESYSTEMS_H
#define GUESTD_COLLECTOR_FILESYSTEMS_H

#include "collectors/collector.h"

extern const gd_collector_t gd_collector_filesystems;

#endif

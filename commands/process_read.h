/* A reader of /proc/<pid>/{stat,status,cmdline} for process.list: one
 * snapshot of every process under a procfs root (tests point it at fixtures).
 * Blocking file work: call it from the thread pool, never from the loop. */
#ifndef GUESTD_PROCESS_READ_H
#define GUESTD_PROCESS_READ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#define GD_PROC_CMDLINE_MAX 4096 /* longest cmdline kept, in bytes */

typedef struct gd_proc_info_s {
    int pid;
    int ppid;
    char name[64];        /* comm, as the kernel keeps it (at most 15 bytes) */
    char state;           /* R, S, D, Z, T, t, I, X... */
    uid_t uid;            /* real uid, from status */
    uint64_t cpu_ticks;   /* utime + stime, in clock ticks */
    uint64_t start_ticks; /* starttime: ticks after boot */
    uint64_t rss_bytes;   /* resident set size */
    char *cmdline;        /* arguments joined by spaces; "" for kernel threads */
} gd_proc_info_t;

typedef struct gd_proc_list_s {
    gd_proc_info_t *items;
    size_t count, cap;
    int64_t btime_s; /* boot time (Unix seconds), from stat's btime line */
} gd_proc_list_t;

void gd_proc_list_init(gd_proc_list_t *l);
void gd_proc_list_free(gd_proc_list_t *l);

/* Parses the text of /proc/<pid>/stat (the comm may hold spaces and
 * parentheses: it ends at the last ')'). 0 or -EINVAL. */
int gd_proc_parse_stat(const char *text, gd_proc_info_t *out);

/* Reads one process; scratch is a reused buffer. 0, -ENOENT when the
 * process is gone, or another negative errno. */
int gd_proc_read_one(const char *proc_root, int pid, gd_proc_info_t *out, gd_buf_t *scratch);

/* Reads every numeric directory of proc_root into l (reset first).
 * Processes that vanish while being read are skipped. 0 or negative errno. */
int gd_proc_read_all(const char *proc_root, gd_proc_list_t *l);

#endif

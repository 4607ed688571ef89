/* Private to the exec family (exec.c: the request and its life; exec_output.c:
 * what the child writes, as JSON): the state of one running exec. */
#ifndef GUESTD_EXEC_INTERNAL_H
#define GUESTD_EXEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "core/buf.h"
#include "commands/child.h"
#include "commands/command.h"

#define GD_EXEC_CHUNK_TEXT 16384 /* most output bytes in one exec.output event */
#define GD_EXEC_CHUNK_B64 12288  /* raw bytes per base64 event (16 KiB encoded) */

typedef struct gd_exec_s gd_exec_t;

struct gd_exec_s {
    gd_request_t *req;
    uv_loop_t *loop;
    gd_child_t child; /* the process, its pipes, limits and results */
    uv_idle_t idle;   /* streaming: the reply waits for the bus */
    int aborting;     /* the agent is stopping */
    int idle_active;

    int stream;
    int base64;
    /* Streaming text, per stream: the first bytes of a UTF-8 sequence that
     * the last read cut, sent with the next chunk. */
    unsigned char carry[2][4];
    size_t carry_len[2];
    char *id_json; /* the request id as JSON (NULL: none), for exec.output events */
    gd_buf_t ev;   /* reused for event data */
};

/* exec_output.c */

/* The child runner's output callback when streaming: n bytes of stream
 * which go out as exec.output events; data NULL: the stream ended, what
 * was held back goes out. */
void gd_exec_stream_output(gd_child_t *c, int which, const char *data, size_t n);
/* Adds stdout/stderr (or *_b64) and *_truncated to result, and drops the
 * kept bytes. 0 or -ENOMEM. */
int gd_exec_add_output(gd_exec_t *e, cJSON *result);

/* A finished exec's output, taken from it so that a pool thread can print
 * the response (a large one is never printed on the loop). */
typedef struct gd_exec_output_s {
    char *kept[2]; /* stdout, stderr: malloc'd, or NULL */
    size_t n[2];
    int truncated[2];
    int base64;
} gd_exec_output_t;

/* Moves the kept bytes of e's child's streams into o. */
void gd_exec_output_take(gd_exec_t *e, gd_exec_output_t *o);
/* At least the length gd_exec_output_print writes (exact for base64; for
 * text, 6 bytes per byte, what escaping a control byte costs). */
size_t gd_exec_output_bound(const gd_exec_output_t *o);
/* Writes "stdout":..,"stderr":..,"stdout_truncated":..,"stderr_truncated":..
 * as gd_exec_add_output's members print, to dst; returns the length. */
size_t gd_exec_output_print(const gd_exec_output_t *o, char *dst);
void gd_exec_output_free(gd_exec_output_t *o);

#endif

/* Fuzzes request parsing and dispatch (commands/dispatch.c and every
 * command's argument handling) through gd_dispatch_line, as the channel
 * calls it, on a real agent whose reply path is a fake send callback.
 *
 * Each input is up to 32 request lines (split at '\n'). After they are
 * dispatched the loop runs until every handler has answered; then the
 * harness checks protocol.md's promises: exactly one reply per line, each
 * one line of valid UTF-8 holding a JSON object with "id" and "ok", a
 * "result" or an "error" whose code is one of the table's, and a non-null
 * id only when the request carried that id.
 *
 * What acts on the system is kept off at the policy seam, not in the code
 * under test: commands.deny holds exec, power.*, process.kill, file.write
 * and file.read (which opens any path, devices included); service.* run a
 * systemctl that does not exist (gd_service_set_paths), so they fail at
 * the spawn; process.list (250 ms per call) is denied for speed, its reader
 * is fuzzed by fuzz_procfs. /proc and /sys are the fixture trees. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/log.h"
#include "core/utf8.h"
#include "collectors/metrics.h"
#include "commands/dispatch.h"
#include "commands/service.h"
#include "fuzz_common.h"

#define MAX_LINES 32
#define DENY "exec,power.*,process.kill,process.list,file.write,file.read"

static uv_loop_t loop;
static gd_agent_t agent;
static gd_config_t base;
static int ready;

typedef struct reply_s {
    char *line;
    size_t len;
} reply_t;

static reply_t replies[MAX_LINES * 2];
static size_t n_replies;

static void capture(void *ctx, uint64_t conn_gen, const char *line, size_t len)
{
    FUZZ_CHECK(conn_gen == 1, "a reply for connection %llu", (unsigned long long)conn_gen);
    FUZZ_CHECK(n_replies < MAX_LINES * 2, "more replies than requests");
    replies[n_replies].line = fuzz_strndup((const uint8_t *)line, len);
    replies[n_replies].len = len;
    n_replies++;
}

static void setup(void)
{
    char err[512];
    gd_log_set_level(GD_LOG_ERROR);
    if (uv_loop_init(&loop) != 0) abort();
    gd_config_defaults(&base);
    const char *sets[] = {
        "agent.log_level=error",
        ("agent.proc_root=" GUESTD_FIXTURES "/proc-snap1"),
        ("agent.sys_root=" GUESTD_FIXTURES "/sys-snap"),
        "channel.spec=unix-listen:/nonexistent/guestd-fuzz.sock",
        "metrics.log_path=none",
        "metrics.history=16",
        ("commands.deny=" DENY),
        "commands.max_concurrent=4",
        "commands.file_max_bytes=65536",
    };
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
        if (gd_config_set_dotted(&base, sets[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "fuzz_dispatch: %s\n", err);
            abort();
        }
    if (gd_agent_init(&agent, &loop, &base, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_dispatch: agent: %s\n", err);
        abort();
    }
    agent.dispatch->send = capture;
    agent.dispatch->send_owned = NULL; /* lines built in the pool come to capture too */
    agent.dispatch->owed_of = NULL;    /* no channel: nothing is reserved */
    agent.dispatch->send_ctx = NULL;
    /* An existing "systemd" directory, and a systemctl that cannot run. */
    gd_service_set_paths(GUESTD_FIXTURES, "/nonexistent/guestd-fuzz-systemctl", 2000);
    /* A few samples in the history, for metrics.history. */
    for (int i = 0; i < 3; i++) {
        if (agent.metrics && gd_metrics_collect(agent.metrics, GD_METRICS_ALL, &agent.sample) == 0)
            gd_bus_publish_raw(&agent.bus, "metrics", agent.sample.data, agent.sample.len);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    ready = 1;
}

static const char *const codes[] = {
    "parse_error", "too_large", "invalid_request", "unknown_command", "invalid_args", "forbidden",
    "busy",        "not_found", "timeout",         "unsupported",     "failed",       "internal",
    NULL,
};

static int known_code(const char *code)
{
    for (int i = 0; codes[i]; i++)
        if (strcmp(codes[i], code) == 0) return 1;
    return 0;
}

/* The request's own "id" as the dispatcher reads it (first key), or NULL. */
static cJSON *request_id(const char *line, size_t len, cJSON **root)
{
    *root = cJSON_ParseWithLength(line, len);
    return cJSON_IsObject(*root) ? cJSON_GetObjectItemCaseSensitive(*root, "id") : NULL;
}

static void check_reply(const reply_t *r, const char *const *lines, const size_t *lens,
                        size_t n_lines)
{
    FUZZ_CHECK(r->len > 0 && r->line[r->len - 1] == '\n', "a reply does not end in a newline");
    FUZZ_CHECK(memchr(r->line, '\n', r->len - 1) == NULL, "a reply holds a newline: %s", r->line);
    FUZZ_CHECK(gd_utf8_valid(r->line, r->len), "a reply is not valid UTF-8: %s", r->line);
    cJSON *obj = cJSON_ParseWithLength(r->line, r->len);
    FUZZ_CHECK(cJSON_IsObject(obj), "a reply is not a JSON object: %s", r->line);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(obj, "ok");
    FUZZ_CHECK(id && (cJSON_IsNull(id) || cJSON_IsString(id) || cJSON_IsNumber(id)), "bad id: %s",
               r->line);
    FUZZ_CHECK(cJSON_IsBool(ok), "no ok: %s", r->line);
    if (cJSON_IsTrue(ok)) {
        FUZZ_CHECK(cJSON_GetObjectItemCaseSensitive(obj, "result"), "no result: %s", r->line);
    } else {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        FUZZ_CHECK(cJSON_IsString(code) && known_code(code->valuestring), "bad code: %s", r->line);
        FUZZ_CHECK(cJSON_IsString(msg), "no message: %s", r->line);
    }
    if (!cJSON_IsNull(id)) {
        /* Some request line carried exactly this id. */
        int found = 0;
        for (size_t i = 0; i < n_lines && !found; i++) {
            cJSON *root;
            const cJSON *rid = request_id(lines[i], lens[i], &root);
            found = rid && cJSON_Compare(rid, id, 1);
            cJSON_Delete(root);
        }
        FUZZ_CHECK(found, "reply id not from any request: %s", r->line);
    }
    cJSON_Delete(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) setup();
    fuzz_in_t in = {data, size};
    char *lines[MAX_LINES];
    size_t lens[MAX_LINES], n_lines = 0;
    n_replies = 0;

    while (in.n > 0 && n_lines < MAX_LINES) {
        fuzz_in_t part = fuzz_until(&in, "\n", 1);
        if (part.n == 0) continue; /* the framer skips empty lines */
        /* As the framer hands it over: exact length, NUL after it. */
        lines[n_lines] = fuzz_strndup(part.p, part.n);
        lens[n_lines] = part.n;
        gd_dispatch_line(agent.dispatch, 1, lines[n_lines], part.n);
        n_lines++;
    }
    /* config.set may have restarted the timers: this agent never ticks. */
    uv_timer_stop(&agent.metrics_timer);
    uv_timer_stop(&agent.health_timer);
    uv_run(&loop, UV_RUN_DEFAULT);
    FUZZ_CHECK(agent.dispatch->inflight == NULL, "a request is still in flight");
    FUZZ_CHECK(agent.dispatch->running == 0, "running is %u with nothing in flight",
               agent.dispatch->running);
    FUZZ_CHECK(n_replies == n_lines, "%zu request lines, %zu replies", n_lines, n_replies);

    for (size_t i = 0; i < n_replies; i++) {
        check_reply(&replies[i], (const char *const *)lines, lens, n_lines);
        free(replies[i].line);
    }
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i]);

    /* What config.set changed goes back to the base configuration. */
    char err[512];
    gd_agent_apply_config(&agent, &base, err, sizeof(err));
    uv_timer_stop(&agent.metrics_timer);
    uv_timer_stop(&agent.health_timer);
    return 0;
}

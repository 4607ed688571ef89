/* metrics.get and metrics.history: a sample collected now (optionally of
 * some collectors only), and the samples kept since a given seq. */
#include "commands/metrics.h"

#include <stdint.h>

#include "core/history.h"
#include "collectors/metrics.h"

static void cmd_metrics_get(gd_request_t *req, const cJSON *args)
{
    const gd_cmd_env_t *a = req->env;
    uint32_t mask = GD_METRICS_ALL;
    char err[256];
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(args, "collectors");
    if (names && gd_metrics_mask_from_json(names, &mask, err, sizeof(err)) < 0) {
        gd_reply_error(req, "invalid_args", "collectors: %s", err);
        return;
    }
    if (!a->metrics) {
        gd_reply_error(req, "unsupported", "metrics are not running");
        return;
    }
    gd_buf_t buf;
    gd_buf_init(&buf);
    cJSON *sample = NULL;
    /* Raw: the sample goes out as written (no parse and reprint, and floats
     * keep their decimal point). */
    if (gd_metrics_collect_now(a->metrics, mask, &buf) == 0) sample = cJSON_CreateRaw(buf.data);
    gd_buf_free(&buf);
    if (!sample) {
        gd_reply_error(req, "internal", "could not build the sample");
        return;
    }
    gd_reply_ok(req, sample);
}

static void cmd_metrics_history(gd_request_t *req, const cJSON *args)
{
    const gd_cmd_env_t *a = req->env;
    int64_t since = gd_arg_int(args, "since_seq", 0);
    int64_t limit = gd_arg_int(args, "limit", 0);
    cJSON *result;
    if (a->history) {
        result = gd_history_query(a->history, (uint64_t)since, (size_t)limit);
    } else { /* metrics.history = 0 */
        result = cJSON_CreateObject();
        if (result && !cJSON_AddArrayToObject(result, "samples")) {
            cJSON_Delete(result);
            result = NULL;
        }
    }
    if (!result) {
        gd_reply_error(req, "internal", "out of memory");
        return;
    }
    gd_reply_ok(req, result);
}

static const gd_arg_spec_t metrics_get_args[] = {
    {"collectors", GD_ARG_STRING_ARRAY, 0, 0, 0,
     "collector names (cpu, memory, load, pressure, disks, filesystems, network, uptime, "
     "processes); all enabled ones when absent"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const gd_arg_spec_t metrics_history_args[] = {
    {"since_seq", GD_ARG_INT, 0, 0, INT64_C(9007199254740992),
     "only samples with a greater seq (default 0)"},
    {"limit", GD_ARG_INT, 0, 0, 1000000, "at most this many, the oldest first (default 0: all)"},
    {NULL, 0, 0, 0, 0, NULL},
};

const gd_command_t gd_commands_metrics[] = {
    {"metrics.get", cmd_metrics_get, 0,
     "A metrics sample collected now, of every enabled collector or those named.", metrics_get_args,
     "a metrics sample (protocol.md, \"Metrics sample\")"},
    {"metrics.history", cmd_metrics_history, 0,
     "The metrics samples kept in memory after since_seq, oldest first.", metrics_history_args,
     "{\"samples\": [{\"seq\", \"ts\", \"data\"}]}"},
    {NULL, NULL, 0, NULL, NULL, NULL},
};

/* guestctl list: asks a guestd-hub for its guests and prints name, state,
 * agent version, age of the last sample and health, one row each. */
#include "tools/hublist.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "tools/client.h"
#include "tools/termesc.h"

/* A guest's own words (version, health) cut and made printable: a table
 * cell, never a terminal escape. */
static void cell(const cJSON *v, char *buf, size_t len)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : "-";
    size_t n = 0;
    for (; s[n] != '\0' && n + 1 < len; n++)
        buf[n] = (s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    buf[n] = '\0';
}

static void age(const cJSON *v, char *buf, size_t len)
{
    if (!cJSON_IsNumber(v))
        snprintf(buf, len, "-");
    else if (v->valuedouble < 60000)
        snprintf(buf, len, "%.1fs", v->valuedouble / 1000.0);
    else
        snprintf(buf, len, "%.0fm", v->valuedouble / 60000.0);
}

int gd_ctl_list(const char *socket, int timeout_ms, int raw, FILE *out, FILE *errs)
{
    gd_client_t c;
    char err[512];
    if (gd_client_connect(&c, socket, err, sizeof(err)) < 0) {
        fprintf(errs, "guestctl: cannot connect to %s\n", err);
        return GD_CTL_ERROR;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "list");
    cJSON_AddStringToObject(req, "id", "guestctl-list");
    int r = gd_client_send_json(&c, req);
    cJSON_Delete(req);
    int status = GD_CTL_ERROR;
    int64_t deadline = gd_client_now_ms() + timeout_ms;
    char *line;
    size_t len;
    while (r == 0) {
        r = gd_client_read_line(&c, deadline, &line, &len);
        if (r == 0) {
            fprintf(errs, "guestctl: no answer from the hub within %d ms\n", timeout_ms);
            status = GD_CTL_TIMEOUT;
            break;
        }
        if (r < 0) {
            fprintf(errs, "guestctl: the hub closed the connection before answering\n");
            break;
        }
        cJSON *msg = cJSON_ParseWithLength(line, len);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, "guestctl-list") != 0) {
            cJSON_Delete(msg);
            r = 0;
            continue;
        }
        const cJSON *guests = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(msg, "result"), "guests");
        if (!cJSON_IsArray(guests)) {
            fprintf(errs, "guestctl: %s is not a guestd-hub (no guest list)\n", socket);
        } else if (raw) {
            gd_esc_write(out, GD_ESC_JSON, line, len);
            fputc('\n', out);
            status = GD_CTL_OK;
        } else {
            char name[64], state[16], version[24], health[16], source[16], sample[16];
            fprintf(out, "%-20s %-10s %-10s %-10s %-9s %s\n", "NAME", "STATE", "VERSION", "SAMPLE",
                    "HEALTH", "SOURCE");
            const cJSON *g;
            cJSON_ArrayForEach(g, guests)
            {
                cell(cJSON_GetObjectItemCaseSensitive(g, "name"), name, sizeof(name));
                cell(cJSON_GetObjectItemCaseSensitive(g, "state"), state, sizeof(state));
                cell(cJSON_GetObjectItemCaseSensitive(g, "version"), version, sizeof(version));
                cell(cJSON_GetObjectItemCaseSensitive(g, "health"), health, sizeof(health));
                cell(cJSON_GetObjectItemCaseSensitive(g, "source"), source, sizeof(source));
                age(cJSON_GetObjectItemCaseSensitive(g, "last_sample_age_ms"), sample,
                    sizeof(sample));
                fprintf(out, "%-20s %-10s %-10s %-10s %-9s %s\n", name, state, version, sample,
                        health, source);
            }
            status = GD_CTL_OK;
        }
        cJSON_Delete(msg);
        break;
    }
    gd_client_close(&c);
    return status;
}

/* qemu-ga's commands about the agent and the guest as a whole: guest-ping,
 * guest-info, guest-get-time, guest-set-time, guest-get-osinfo,
 * guest-get-host-name, guest-get-timezone, guest-get-users and
 * guest-shutdown (through guestd's power.shutdown / power.reboot). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <utmpx.h>

#include "core/log.h"
#include "commands/dispatch.h"
#include "commands/qga/internal.h"
#include "commands/system.h"

static void cmd_ping(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_reply(req, NULL);
}

static void cmd_info(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_t *q = req->qga;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "version", GUESTD_VERSION);
    cJSON *list = cJSON_AddArrayToObject(r, "supported_commands");
    int frozen = gd_qga_frozen(q);
    for (const gd_qga_cmd_t *const *fam = gd_qga_families; *fam; fam++) {
        for (const gd_qga_cmd_t *c = *fam; c->name; c++) {
            int enabled = gd_qga_allowed(q, c->name) &&
                          (!c->native || gd_qga_allowed(q, c->native)) &&
                          (!frozen || (c->flags & QGA_FREEZE_SAFE));
            cJSON *e = cJSON_CreateObject();
            cJSON_AddBoolToObject(e, "enabled", enabled);
            cJSON_AddStringToObject(e, "name", c->name);
            cJSON_AddBoolToObject(e, "success-response", !(c->flags & QGA_NO_SUCCESS_RESPONSE));
            cJSON_AddItemToArray(list, e);
        }
    }
    gd_qga_reply(req, r);
}

static void cmd_get_time(gd_qga_req_t *req, const cJSON *args)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gd_qga_reply(req, gd_qga_json_int((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec));
}

/* ---- guest-set-time: the system clock, then the RTC (hwclock -w); with no
 * time, the system clock from the RTC (hwclock -s) ---- */

static void hwclock_done(gd_qga_req_t *req, const gd_qga_child_result_t *res)
{
    if (res->spawn_error)
        gd_qga_reply_error(req, "GenericError", "cannot run hwclock: %s",
                           strerror(-res->spawn_error));
    else if (res->term_signal)
        gd_qga_reply_error(req, "GenericError", "child process has terminated abnormally");
    else if (res->exit_status != 0)
        gd_qga_reply_error(req, "GenericError", "hwclock failed to set %s",
                           cJSON_GetObjectItemCaseSensitive(req->args, "time")
                               ? "hardware clock to system time"
                               : "system time from hardware clock");
    else
        gd_qga_reply(req, NULL);
}

static void cmd_set_time(gd_qga_req_t *req, const cJSON *args)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(args, "time");
    if (t) {
        int64_t ns = 0;
        gd_qga_json_get_int(t, &ns);
        /* qemu-ga's bounds: years 1970 to 2069. */
        if (ns < 0 || ns / 1000000000 >= INT64_C(3155760000)) {
            gd_qga_reply_error(req, "GenericError", "Invalid time: %lld", (long long)ns);
            return;
        }
        struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000),
                              .tv_nsec = (long)(ns % 1000000000)};
        if (clock_settime(CLOCK_REALTIME, &ts) != 0) {
            gd_qga_reply_errno(req, errno, "Failed to set time to guest");
            return;
        }
    }
    static char *const set_rtc[] = {"hwclock", "-w", NULL};
    static char *const from_rtc[] = {"hwclock", "-s", NULL};
    if (gd_qga_run_child(req, t ? set_rtc : from_rtc, NULL, 0, hwclock_done) != 0)
        gd_qga_reply_error(req, "GenericError", "out of memory");
}

/* ---- guest-get-osinfo ---- */

cJSON *gd_qga_osinfo(const char *etc_dir)
{
    cJSON *r = cJSON_CreateObject();
    struct utsname u;
    if (uname(&u) == 0) {
        cJSON_AddStringToObject(r, "kernel-release", u.release);
        cJSON_AddStringToObject(r, "kernel-version", u.version);
        cJSON_AddStringToObject(r, "machine", u.machine);
    }
    /* os-release(5): /etc/os-release, else /usr/lib/os-release; a field
     * that is not there is left out. */
    gd_buf_t buf;
    gd_buf_init(&buf);
    int rc = gd_qga_read_file(etc_dir, "os-release", &buf);
    if (rc < 0 && strcmp(etc_dir, "/etc") == 0)
        rc = gd_qga_read_file("/usr/lib", "os-release", &buf);
    static const char *const keys[][2] = {
        {"id", "ID"},
        {"name", "NAME"},
        {"pretty-name", "PRETTY_NAME"},
        {"version", "VERSION"},
        {"version-id", "VERSION_ID"},
        {"variant", "VARIANT"},
        {"variant-id", "VARIANT_ID"},
    };
    for (size_t i = 0; rc == 0 && i < sizeof(keys) / sizeof(keys[0]); i++) {
        char value[256];
        if (gd_os_release_value(buf.data, keys[i][1], value, sizeof(value)) == 0)
            cJSON_AddStringToObject(r, keys[i][0], value);
    }
    gd_buf_free(&buf);
    return r;
}

static void cmd_osinfo(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_reply(req, gd_qga_osinfo("/etc"));
}

static void cmd_host_name(gd_qga_req_t *req, const cJSON *args)
{
    char name[256];
    if (gethostname(name, sizeof(name)) != 0) {
        gd_qga_reply_errno(req, errno, "cannot get the host name");
        return;
    }
    name[sizeof(name) - 1] = '\0';
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "host-name", name);
    gd_qga_reply(req, r);
}

cJSON *gd_qga_timezone(time_t now)
{
    struct tm tm;
    cJSON *r = cJSON_CreateObject();
    tzset();
    if (localtime_r(&now, &tm) == NULL) {
        gd_qga_json_add_int(r, "offset", 0);
        return r;
    }
    if (tm.tm_zone && tm.tm_zone[0]) cJSON_AddStringToObject(r, "zone", tm.tm_zone);
    gd_qga_json_add_int(r, "offset", (int64_t)tm.tm_gmtoff);
    return r;
}

static void cmd_timezone(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_reply(req, gd_qga_timezone(time(NULL)));
}

/* ---- guest-get-users: the logged-in users of utmp, each once, with the
 * earliest login time ---- */

/* One USER_PROCESS record: a user met again keeps the earlier login. */
static void add_login(cJSON *list, const char *user, double t)
{
    for (cJSON *e = list->child; e; e = e->next) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(e, "user")->valuestring, user) == 0) {
            cJSON *lt = cJSON_GetObjectItemCaseSensitive(e, "login-time");
            if (t < lt->valuedouble) cJSON_SetNumberValue(lt, t);
            return;
        }
    }
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "user", user);
    cJSON_AddNumberToObject(e, "login-time", t);
    cJSON_AddItemToArray(list, e);
}

#ifdef __GLIBC__
cJSON *gd_qga_users(const char *utmp_path)
{
    cJSON *list = cJSON_CreateArray();
    if (utmp_path && utmpxname(utmp_path) != 0) return list;
    setutxent();
    struct utmpx *u;
    while ((u = getutxent()) != NULL) {
        if (u->ut_type != USER_PROCESS) continue;
        char user[sizeof(u->ut_user) + 1];
        memcpy(user, u->ut_user, sizeof(u->ut_user));
        user[sizeof(u->ut_user)] = '\0';
        if (!user[0]) continue;
        add_login(list, user, (double)u->ut_tv.tv_sec + (double)u->ut_tv.tv_usec / 1e6);
    }
    endutxent();
    if (utmp_path) utmpxname(_PATH_UTMPX);
    return list;
}
#else
/* musl (the static build) has no utmp database: its utmpx functions do
 * nothing. The file is read here instead, as glibc writes it on x86_64
 * (every login, getty and logind on a glibc guest): 384-byte records. */
enum {
    UTMP_RECORD = 384,
    UTMP_TYPE = 0,     /* int16 */
    UTMP_USER = 44,    /* char[32], not always terminated */
    UTMP_TV_SEC = 340, /* int32 */
    UTMP_TV_USEC = 344 /* int32 */
};

cJSON *gd_qga_users(const char *utmp_path)
{
    cJSON *list = cJSON_CreateArray();
    FILE *f = fopen(utmp_path ? utmp_path : "/var/run/utmp", "re");
    if (!f) return list;
    unsigned char rec[UTMP_RECORD];
    while (fread(rec, sizeof(rec), 1, f) == 1) {
        int16_t type;
        int32_t sec, usec;
        char user[32 + 1];
        memcpy(&type, rec + UTMP_TYPE, sizeof(type));
        if (type != USER_PROCESS) continue;
        memcpy(user, rec + UTMP_USER, 32);
        user[32] = '\0';
        if (!user[0]) continue;
        memcpy(&sec, rec + UTMP_TV_SEC, sizeof(sec));
        memcpy(&usec, rec + UTMP_TV_USEC, sizeof(usec));
        add_login(list, user, (double)sec + (double)usec / 1e6);
    }
    fclose(f);
    return list;
}
#endif

static void cmd_users(gd_qga_req_t *req, const cJSON *args)
{
    gd_qga_reply(req, gd_qga_users(NULL));
}

/* ---- guest-shutdown ---- */

static void shutdown_done(gd_qga_req_t *req, int ok, const cJSON *body)
{
    if (ok) {
        gd_info("qga: guest-shutdown accepted");
        gd_qga_reply_nothing(req); /* qemu-ga answers only failures */
        return;
    }
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(body, "message");
    gd_qga_reply_error(req, "GenericError", "%s",
                       cJSON_IsString(msg) ? msg->valuestring : "shutdown failed");
}

static void cmd_shutdown(gd_qga_req_t *req, const cJSON *args)
{
    const char *mode = gd_arg_string(args, "mode", "powerdown");
    const char *native;
    if (strcmp(mode, "powerdown") == 0 || strcmp(mode, "halt") == 0) {
        native = "power.shutdown";
    } else if (strcmp(mode, "reboot") == 0) {
        native = "power.reboot";
    } else {
        gd_qga_reply_error(req, "GenericError",
                           "mode is invalid (valid values are: halt|powerdown|reboot");
        return;
    }
    if (gd_qga_call_native(req, native, NULL, shutdown_done) != 0)
        gd_qga_reply_error(req, "GenericError", "out of memory");
}

static const gd_qga_arg_t set_time_args[] = {{"time", QGA_ARG_INT, 0}, {NULL, 0, 0}};
static const gd_qga_arg_t shutdown_args[] = {{"mode", QGA_ARG_STR, 0}, {NULL, 0, 0}};

const gd_qga_cmd_t gd_qga_cmds_system[] = {
    {"guest-ping", cmd_ping, QGA_FREEZE_SAFE, NULL, NULL},
    {"guest-info", cmd_info, QGA_FREEZE_SAFE, NULL, NULL},
    {"guest-get-time", cmd_get_time, 0, NULL, NULL},
    {"guest-set-time", cmd_set_time, QGA_CONCURRENT, NULL, set_time_args},
    {"guest-get-osinfo", cmd_osinfo, 0, "system.info", NULL},
    {"guest-get-host-name", cmd_host_name, 0, "system.info", NULL},
    {"guest-get-timezone", cmd_timezone, 0, "system.info", NULL},
    {"guest-get-users", cmd_users, 0, NULL, NULL},
    {"guest-shutdown", cmd_shutdown, QGA_NO_SUCCESS_RESPONSE, NULL, shutdown_args},
    {NULL, NULL, 0, NULL, NULL},
};

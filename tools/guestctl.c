/* guestctl: talks to a guest's guestd (call, watch) and reads its metrics
 * logs (log show|summary|export|plot). main() parses flags and dispatches. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "tools/client.h"
#include "tools/hublist.h"
#include "tools/logcmd.h"
#include "tools/timefmt.h"

static void usage(FILE *out)
{
    fputs("Usage: guestctl [-s SOCKET] [--timeout SEC] call CMD [KEY=VALUE]... [--args JSON] "
          "[--raw]\n"
          "       guestctl [-s SOCKET] watch [--event NAME]... [--table] [--count N]\n"
          "       guestctl --hub SOCKET -d NAME call|watch ...\n"
          "       guestctl --hub SOCKET list [--raw]\n"
          "       guestctl log show|summary|export|plot [OPTION]... FILE...\n"
          "       guestctl log summary --by-domain [OPTION]... DIR\n"
          "The host-side client of guestd, and the reader of its metrics logs.\n"
          "\n"
          "  -s, --socket PATH    the guest's unix socket (default $GUESTCTL_SOCKET)\n"
          "      --hub PATH       a guestd-hub's client socket instead (default\n"
          "                       $GUESTCTL_HUB); call and watch then name the guest\n"
          "  -d, --domain NAME    the guest, as the hub names it (guestctl --hub ... list)\n"
          "      --timeout SEC    call: wait this long for the answer (default 30);\n"
          "                       watch: give up when no event comes for this long\n"
          "  -h, --help           print this help and exit\n"
          "      --version        print the version and exit\n"
          "\n"
          "call CMD [KEY=VALUE]...  sends one request and prints its result as JSON.\n"
          "  VALUE is JSON where it parses as a number, true, false, null, an array, an\n"
          "  object or a \"quoted string\"; anything else is a string.\n"
          "      --args JSON      the arguments as one JSON object (KEY=VALUE wins)\n"
          "      --raw            print the response line as the guest sent it (control\n"
          "                       characters escaped, as in all output)\n"
          "watch                  prints events as they come, one line each.\n"
          "list                   the hub's guests: name, state, agent version, age of the\n"
          "                       last sample, health and how it was found (--raw: JSON)\n"
          "      --event NAME     only these events (repeatable)\n"
          "      --table          metrics as a table, other events as one short line\n"
          "      --count N        exit after N events\n"
          "log SUBCOMMAND FILE... reads metrics logs; rotated files (FILE.N) are read\n"
          "  oldest first; bad lines are skipped and counted on stderr.\n"
          "  show                 the event lines (or --field values, one line each)\n"
          "  summary              count, min, mean, p50, p95 and max of each numeric field\n"
          "      --by-domain DIR  summary: a row per guestd-hub guest log\n"
          "                       DIR/DOMAIN/metrics.ndjson: samples, time span, avg and\n"
          "                       max of CPU%, memory% and load1 (or of each --field),\n"
          "                       the last health status\n"
          "  export --csv         one CSV row per event\n"
          "  plot --field F       a sparkline per field, or an SVG chart with --out\n"
          "      --since TIME     from TIME: ISO 8601 (UTC unless it says) or 10m, 2h, 3d ago\n"
          "      --until TIME     up to (not including) TIME\n"
          "      --field PATH     a dotted field path, e.g. cpu.usage_pct,\n"
          "                       network.eth0.rx_bytes_per_s (repeatable)\n"
          "      --event NAME     only these events (default: all for show, else metrics)\n"
          "      --csv            export as CSV (the default and only format)\n"
          "      --out FILE.svg   plot: write an SVG chart\n"
          "      --width N        plot: sparkline columns (60) or SVG pixels (900)\n"
          "      --height N       plot: SVG pixels (360)\n"
          "\n"
          "Exit status: 0 ok, 1 error (an error response, the guest unreachable, a file\n"
          "unreadable), 2 usage, 3 no answer within --timeout.\n",
          out);
}

static int usage_error(const char *fmt, const char *what)
{
    fputs("guestctl: ", stderr);
    fprintf(stderr, fmt, what);
    fputs("\nTry 'guestctl --help'.\n", stderr);
    return GD_CTL_USAGE;
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

enum {
    OPT_TIMEOUT = 256,
    OPT_VERSION,
    OPT_ARGS,
    OPT_RAW,
    OPT_EVENT,
    OPT_TABLE,
    OPT_COUNT,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_FIELD,
    OPT_CSV,
    OPT_OUT,
    OPT_WIDTH,
    OPT_HEIGHT,
    OPT_HUB,
    OPT_BY_DOMAIN,
};

static const struct option options[] = {
    {"socket", required_argument, NULL, 's'},
    {"hub", required_argument, NULL, OPT_HUB},
    {"domain", required_argument, NULL, 'd'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"args", required_argument, NULL, OPT_ARGS},
    {"raw", no_argument, NULL, OPT_RAW},
    {"event", required_argument, NULL, OPT_EVENT},
    {"table", no_argument, NULL, OPT_TABLE},
    {"count", required_argument, NULL, OPT_COUNT},
    {"since", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"field", required_argument, NULL, OPT_FIELD},
    {"csv", no_argument, NULL, OPT_CSV},
    {"out", required_argument, NULL, OPT_OUT},
    {"width", required_argument, NULL, OPT_WIDTH},
    {"height", required_argument, NULL, OPT_HEIGHT},
    {"by-domain", no_argument, NULL, OPT_BY_DOMAIN},
    {NULL, 0, NULL, 0},
};

/* Which options each subcommand takes (the global ones go everywhere). */
static int allowed(const char *sub, int opt)
{
    if (opt == 's' || opt == OPT_TIMEOUT || opt == 'h' || opt == OPT_VERSION || opt == OPT_HUB)
        return 1;
    if (strcmp(sub, "call") == 0) return opt == OPT_ARGS || opt == OPT_RAW || opt == 'd';
    if (strcmp(sub, "watch") == 0)
        return opt == OPT_EVENT || opt == OPT_TABLE || opt == OPT_COUNT || opt == 'd';
    if (strcmp(sub, "list") == 0) return opt == OPT_RAW;
    if (strcmp(sub, "log") == 0)
        return opt == OPT_SINCE || opt == OPT_UNTIL || opt == OPT_FIELD || opt == OPT_EVENT ||
               opt == OPT_CSV || opt == OPT_OUT || opt == OPT_WIDTH || opt == OPT_HEIGHT ||
               opt == OPT_BY_DOMAIN;
    return 0;
}

int main(int argc, char **argv)
{
    const char *socket_path = getenv("GUESTCTL_SOCKET");
    const char *hub_path = getenv("GUESTCTL_HUB");
    const char *domain = NULL;
    int hub_given = 0;
    const char *args_json = NULL, *svg_out = NULL;
    double timeout_s = -1;
    int raw = 0, table = 0, csv = 0, by_domain = 0, status = GD_CTL_OK;
    long count = 0, width = 0, height = 360;
    const char **events = calloc((size_t)argc + 1, sizeof(char *));
    const char **fields = calloc((size_t)argc + 1, sizeof(char *));
    char **words = calloc((size_t)argc + 1, sizeof(char *));
    int n_events = 0, n_fields = 0, n_words = 0;
    gd_logcmd_opts_t lo;
    memset(&lo, 0, sizeof(lo));
    if (!events || !fields || !words) return GD_CTL_ERROR;
    signal(SIGPIPE, SIG_IGN);

    /* The subcommand is the first word that is not an option or its value;
     * options may come before or after it. */
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "-s:d:h", options, NULL)) != -1) {
        const char *sub = n_words ? words[0] : NULL;
        if (opt == '?') {
            status = usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
            goto out;
        }
        if (opt != 1 && sub && !allowed(sub, opt)) {
            status = usage_error("option '%s' does not go with this command", argv[optind - 1]);
            goto out;
        }
        switch (opt) {
        case 1:
            words[n_words++] = optarg;
            break;
        case 's':
            socket_path = optarg;
            break;
        case OPT_HUB:
            hub_path = optarg;
            hub_given = 1;
            break;
        case 'd':
            domain = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end;
            timeout_s = strtod(optarg, &end);
            if (*end || !(timeout_s > 0) || timeout_s > 86400) {
                status = usage_error("--timeout '%s': seconds, more than 0", optarg);
                goto out;
            }
            break;
        }
        case 'h':
            usage(stdout);
            goto out;
        case OPT_VERSION:
            printf("guestctl %s\n", GUESTD_VERSION);
            goto out;
        case OPT_ARGS:
            args_json = optarg;
            break;
        case OPT_RAW:
            raw = 1;
            break;
        case OPT_EVENT:
            events[n_events++] = optarg;
            break;
        case OPT_TABLE:
            table = 1;
            break;
        case OPT_COUNT:
            if (parse_int(optarg, 1, 1000000000, &count) < 0) {
                status = usage_error("--count '%s': a number of events", optarg);
                goto out;
            }
            break;
        case OPT_SINCE:
        case OPT_UNTIL: {
            int64_t t;
            if (gd_time_parse(optarg, wall_ms(), &t) < 0) {
                status = usage_error("'%s' is not a time (ISO 8601, or 10m, 2h, 3d)", optarg);
                goto out;
            }
            if (opt == OPT_SINCE) {
                lo.read.has_since = 1;
                lo.read.since_ms = t;
            } else {
                lo.read.has_until = 1;
                lo.read.until_ms = t;
            }
            break;
        }
        case OPT_FIELD:
            fields[n_fields++] = optarg;
            break;
        case OPT_BY_DOMAIN:
            by_domain = 1;
            break;
        case OPT_CSV:
            csv = 1;
            break;
        case OPT_OUT:
            svg_out = optarg;
            break;
        case OPT_WIDTH:
            if (parse_int(optarg, 8, 100000, &width) < 0) {
                status = usage_error("--width '%s': a number from 8", optarg);
                goto out;
            }
            break;
        case OPT_HEIGHT:
            if (parse_int(optarg, 120, 100000, &height) < 0) {
                status = usage_error("--height '%s': a number from 120", optarg);
                goto out;
            }
            break;
        }
    }
    if (n_words == 0) {
        usage(stderr);
        status = GD_CTL_USAGE;
        goto out;
    }
    const char *sub = words[0];
    int timeout_ms = timeout_s > 0 ? (int)(timeout_s * 1000) : 0;

    /* Through a hub: --hub (or $GUESTCTL_HUB with -d) and -d name the guest. */
    int via_hub = hub_given || (domain && hub_path && *hub_path) || strcmp(sub, "list") == 0;
    if (via_hub &&
        (strcmp(sub, "call") == 0 || strcmp(sub, "watch") == 0 || strcmp(sub, "list") == 0)) {
        if (!hub_path || !*hub_path) {
            status = usage_error("%s needs --hub SOCKET (or GUESTCTL_HUB)", sub);
            goto out;
        }
        if (strcmp(sub, "list") != 0 && (!domain || !*domain)) {
            status = usage_error("%s through a hub needs -d NAME", sub);
            goto out;
        }
        socket_path = hub_path;
    } else if (domain) {
        status = usage_error("%s", "-d NAME goes with --hub SOCKET");
        goto out;
    }
    if (strcmp(sub, "call") == 0 || strcmp(sub, "watch") == 0) {
        if (!socket_path || !*socket_path) {
            status = usage_error("%s needs -s SOCKET (or GUESTCTL_SOCKET)", sub);
            goto out;
        }
    }
    if (strcmp(sub, "list") == 0) {
        if (n_words > 1) {
            status = usage_error("list takes no argument ('%s')", words[1]);
            goto out;
        }
        status = gd_ctl_list(socket_path, timeout_ms ? timeout_ms : 10000, raw, stdout, stderr);
    } else if (strcmp(sub, "call") == 0) {
        if (n_words < 2) {
            status = usage_error("%s", "call needs a command name");
            goto out;
        }
        char err[512];
        cJSON *args = gd_ctl_build_args(args_json, words + 2, n_words - 2, err, sizeof(err));
        if (!args) {
            status = usage_error("%s", err);
            goto out;
        }
        gd_ctl_call_opts_t co = {.socket = socket_path,
                                 .guest = via_hub ? domain : NULL,
                                 .cmd = words[1],
                                 .args = args,
                                 .timeout_ms = timeout_ms ? timeout_ms : 30000,
                                 .raw = raw};
        status = gd_ctl_call(&co, stdout, stderr);
        cJSON_Delete(args);
    } else if (strcmp(sub, "watch") == 0) {
        if (n_words > 1) {
            status = usage_error("watch takes no argument ('%s')", words[1]);
            goto out;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        gd_ctl_watch_opts_t wo = {.socket = socket_path,
                                  .guest = via_hub ? domain : NULL,
                                  .events = n_events ? events : NULL,
                                  .n_events = n_events,
                                  .table = table,
                                  .count = count,
                                  .timeout_ms = timeout_ms};
        status = gd_ctl_watch(&wo, stdout, stderr);
    } else if (strcmp(sub, "log") == 0) {
        if (n_words < 2) {
            status = usage_error("%s", "log needs show, summary, export or plot");
            goto out;
        }
        const char *what = words[1];
        if (n_words < 3) {
            status = usage_error("log %s needs at least one FILE", what);
            goto out;
        }
        static const char *const metrics_only[] = {"metrics"};
        int is_show = strcmp(what, "show") == 0;
        lo.read.events = n_events ? events : is_show ? NULL : metrics_only;
        lo.read.n_events = n_events ? n_events : is_show ? 0 : 1;
        lo.fields = fields;
        lo.n_fields = n_fields;
        lo.svg_out = svg_out;
        lo.width = width ? (int)width : 60;
        lo.svg_width = width ? (int)width : 900;
        lo.svg_height = (int)height;
        char **files = words + 2;
        int nfiles = n_words - 2;
        if (by_domain && strcmp(what, "summary") != 0) {
            status = usage_error("%s", "--by-domain goes with log summary");
            goto out;
        }
        if (by_domain && nfiles != 1) {
            status = usage_error("%s", "log summary --by-domain takes one DIR");
            goto out;
        }
        if ((csv && strcmp(what, "export") != 0) || (svg_out && strcmp(what, "plot") != 0)) {
            status =
                usage_error("%s", csv ? "--csv goes with log export" : "--out goes with log plot");
            goto out;
        }
        gd_logread_order(files, nfiles);
        if (by_domain)
            status = gd_log_summary_by_domain(files[0], &lo, stdout, stderr);
        else if (is_show)
            status = gd_log_show(files, nfiles, &lo, stdout, stderr);
        else if (strcmp(what, "summary") == 0)
            status = gd_log_summary(files, nfiles, &lo, stdout, stderr);
        else if (strcmp(what, "export") == 0)
            status = gd_log_export_csv(files, nfiles, &lo, stdout, stderr);
        else if (strcmp(what, "plot") == 0)
            status = n_fields ? gd_log_plot(files, nfiles, &lo, stdout, stderr)
                              : usage_error("%s", "log plot needs --field");
        else
            status = usage_error("unknown log subcommand '%s'", what);
    } else {
        status = usage_error("unknown command '%s'", sub);
    }
    if (fflush(stdout) != 0 && status == GD_CTL_OK) status = GD_CTL_ERROR;
out:
    free(events);
    free(fields);
    free(words);
    return status;
}

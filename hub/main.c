/* guestd-hub: parses flags and the configuration, then runs the hub's loop
 * (guests, clients, discovery, and the Prometheus endpoint). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/log.h"
#include "hub/config.h"
#include "hub/discovery.h"
#include "hub/hub.h"
#include "hub/prom_hub.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: guestd-hub [OPTION]...\n"
            "The host side of guestd: holds every guest's port, keeps each guest's latest\n"
            "sample and health, and shares the ports with any number of clients\n"
            "(guestctl --hub) on a local socket.\n"
            "\n"
            "  -c, --config FILE        configuration file (default %s;\n"
            "                           a missing default file means defaults)\n"
            "      --set SECTION.KEY=VALUE  override one key; may be repeated\n"
            "                           (--set guests.NAME=PATH adds a guest)\n"
            "      --dump-config        print the effective configuration as INI and exit\n"
            "      --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n"
            "\n"
            "Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n",
            GD_HUB_CONFIG_DEFAULT_PATH);
}

typedef struct hub_main_s {
    gd_hub_t hub;
    gd_discovery_t disc;
    gd_prom_hub_t *prom;
    uv_signal_t sigterm, sigint;
} hub_main_t;

static void on_signal(uv_signal_t *s, int signum)
{
    hub_main_t *m = s->data;
    gd_info("signal %d: stopping", signum);
    gd_prom_stop(m->prom);
    m->prom = NULL;
    gd_discovery_stop(&m->disc);
    gd_hub_stop(&m->hub);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
}

static int parse_args(int argc, char **argv, gd_hub_config_t *cfg, int *dump)
{
    enum { OPT_SET = 256, OPT_DUMP, OPT_VERSION };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, OPT_SET},
        {"dump-config", no_argument, NULL, OPT_DUMP},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof(char *));
    int n_sets = 0, opt, status = -1;
    char err[1024];

    if (sets == NULL) return EXIT_RUNTIME;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case OPT_SET:
            sets[n_sets++] = optarg;
            break;
        case OPT_DUMP:
            *dump = 1;
            break;
        case OPT_VERSION:
            printf("guestd-hub %s\n", GUESTD_VERSION);
            status = EXIT_OK;
            goto out;
        case 'h':
            usage(stdout);
            status = EXIT_OK;
            goto out;
        default:
            usage(stderr);
            status = EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "guestd-hub: unexpected argument '%s'\n", argv[optind]);
        status = EXIT_USAGE;
        goto out;
    }
    /* The file, then every --set in order, then the cross-key checks. */
    gd_hub_config_defaults(cfg);
    int r = gd_hub_config_load_file(cfg, config_path ? config_path : GD_HUB_CONFIG_DEFAULT_PATH,
                                    config_path == NULL, err, sizeof(err));
    for (int i = 0; r == 0 && i < n_sets; i++)
        r = gd_hub_config_set_dotted(cfg, sets[i], err, sizeof(err));
    if (r == 0) r = gd_hub_config_validate(cfg, err, sizeof(err));
    if (r == 0) {
        char(*pats)[GD_CFG_STR_MAX] = calloc(2 * GD_DISCOVERY_MAX_GLOBS, GD_CFG_STR_MAX);
        size_t n;
        r = pats ? gd_glob_split(cfg->discovery.globs, pats, pats + GD_DISCOVERY_MAX_GLOBS,
                                 GD_DISCOVERY_MAX_GLOBS, &n, err, sizeof(err))
                 : -ENOMEM;
        free(pats);
    }
    if (r != 0) {
        fprintf(stderr, "guestd-hub: %s\n", err);
        status = EXIT_USAGE;
    }
out:
    free(sets);
    return status;
}

int main(int argc, char **argv)
{
    gd_hub_config_t *cfg = malloc(sizeof(*cfg));
    hub_main_t *m = calloc(1, sizeof(*m));
    int dump = 0, status = EXIT_OK;
    char err[1024];
    uv_loop_t loop;

    gd_log_init();
    gd_log_set_name("guestd-hub");
    if (cfg == NULL || m == NULL) return EXIT_RUNTIME;
    int st = parse_args(argc, argv, cfg, &dump);
    if (st >= 0) {
        status = st;
        goto out;
    }
    if (dump) {
        gd_hub_config_dump(cfg, stdout);
        goto out;
    }
    gd_log_set_level((gd_log_level_t)cfg->hub.log_level);
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an EPIPE, not our death */

    uv_loop_init(&loop);
    if (gd_hub_init(&m->hub, &loop, cfg) != 0) {
        status = EXIT_RUNTIME;
        goto close_loop;
    }
    int rc = gd_hub_start(&m->hub, err, sizeof(err));
    if (rc == 0)
        rc = gd_prom_start(&m->prom, &loop, &m->hub, cfg->http.listen, (int)cfg->http.top_processes,
                           err, sizeof(err));
    if (rc == 0) rc = gd_discovery_start(&m->disc, &m->hub, err, sizeof(err));
    if (rc != 0) {
        gd_error("%s", err);
        status = rc == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
        gd_prom_stop(m->prom);
        m->prom = NULL;
        gd_discovery_stop(&m->disc);
        gd_hub_stop(&m->hub);
    } else {
        uv_signal_init(&loop, &m->sigterm);
        uv_signal_init(&loop, &m->sigint);
        m->sigterm.data = m->sigint.data = m;
        uv_signal_start(&m->sigterm, on_signal, SIGTERM);
        uv_signal_start(&m->sigint, on_signal, SIGINT);
        gd_info("listening on %s; %zu guests; metrics on %s", cfg->hub.socket, m->hub.n_guests,
                cfg->http.listen);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    gd_hub_free(&m->hub);
close_loop:
    if (uv_loop_close(&loop) != 0) {
        gd_error("internal: handles left open at exit");
        status = EXIT_RUNTIME;
    }
out:
    free(m);
    free(cfg);
    return status;
}

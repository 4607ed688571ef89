/* guestd: parses flags and the configuration, then runs the agent's loop. */
#include <errno.h>
#include <getopt.h>
/* mallopt/malloc_trim are glibc's; musl's allocator (the static build)
 * returns freed memory to the kernel by itself and has neither. */
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent/agent.h"
#include "core/config.h"
#include "core/json/alloc.h"
#include "core/log.h"
#include "transport/channel.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: guestd [OPTION]...\n"
        "The guest agent: pushes metrics and answers commands from the host over a\n"
        "virtio-serial port (newline-delimited JSON).\n"
        "\n"
        "  -c, --config FILE        configuration file (default %s;\n"
        "                           a missing default file means defaults)\n"
        "      --channel SPEC       virtio-serial:PATH, unix-listen:PATH, unix-connect:PATH,\n"
        "                           vsock-listen:PORT or stdio (same as --set channel.spec=)\n"
        "      --set SECTION.KEY=VALUE  override one key; may be repeated\n"
        "      --log-level LEVEL    error, warn, info or debug (same as --set agent.log_level=)\n"
        "      --dump-config        print the effective configuration as INI and exit\n"
        "      --version            print the version and exit\n"
        "  -h, --help               print this help and exit\n"
        "\n"
        "Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n",
        GD_CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
    enum { OPT_CHANNEL = 256, OPT_SET, OPT_DUMP, OPT_VERSION, OPT_LOG_LEVEL };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"channel", required_argument, NULL, OPT_CHANNEL},
        {"set", required_argument, NULL, OPT_SET},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"dump-config", no_argument, NULL, OPT_DUMP},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    gd_json_alloc_install(); /* before the first cJSON call */
    const char *config_path = NULL;
    int dump = 0;
    /* --set, --channel and --log-level are all overrides, applied in the
     * order given, after the file, and again after each SIGHUP reload. */
    char **overrides = calloc((size_t)argc + 1, sizeof(char *));
    int n_overrides = 0;
    int status = EXIT_OK;
    int opt;

    gd_log_init();
    if (!overrides) return EXIT_RUNTIME;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        char *assignment = NULL;
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case OPT_SET:
            assignment = strdup(optarg);
            break;
        case OPT_CHANNEL:
        case OPT_LOG_LEVEL:
            assignment = malloc(strlen(optarg) + 32);
            if (assignment)
                sprintf(assignment, "%s=%s",
                        opt == OPT_CHANNEL ? "channel.spec" : "agent.log_level", optarg);
            break;
        case OPT_DUMP:
            dump = 1;
            break;
        case OPT_VERSION:
            printf("guestd %s (protocol %d)\n", GUESTD_VERSION, GD_PROTOCOL_VERSION);
            goto out;
        case 'h':
            usage(stdout);
            goto out;
        default:
            usage(stderr);
            status = EXIT_USAGE;
            goto out;
        }
        if (assignment) overrides[n_overrides++] = assignment;
    }
    if (optind < argc) {
        fprintf(stderr, "guestd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        status = EXIT_USAGE;
        goto out;
    }

    gd_config_t cfg;
    char err[512];
    int r = gd_config_assemble(config_path, overrides, n_overrides, &cfg, err, sizeof(err));
    if (r == 0) {
        gd_endpoint_kind_t kind;
        char path[GD_CFG_STR_MAX];
        unsigned port;
        r = gd_channel_parse_spec(cfg.channel.spec, &kind, path, sizeof(path), &port, err,
                                  sizeof(err));
    }
    if (r != 0) {
        fprintf(stderr, "guestd: %s\n", err);
        status = EXIT_USAGE;
        goto out;
    }
    if (dump) {
        gd_config_dump(&cfg, stdout);
        goto out;
    }
    gd_log_set_level((gd_log_level_t)cfg.agent.log_level);
    /* Large transient buffers (a big reply, exec output) are mapped and
     * unmapped rather than kept in the heap, so RSS returns to idle after. */
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 128 * 1024); /* musl: 128 KiB is already its mmap threshold */
#endif
    /* A host that vanishes mid-write must be an EPIPE, not our death. */
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    gd_agent_t agent;
    uv_loop_init(&loop);
    r = gd_agent_init(&agent, &loop, &cfg, err, sizeof(err));
    agent.config_path = config_path;
    agent.overrides = overrides;
    agent.n_overrides = n_overrides;
    if (r != 0) {
        gd_error("%s", err);
        status = r == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
        gd_agent_stop(&agent);
    } else if (gd_agent_start(&agent) != 0) {
        status = EXIT_RUNTIME;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (agent.exit_code) status = agent.exit_code;
    gd_agent_free(&agent);
    if (uv_loop_close(&loop) != 0) {
        gd_error("internal: handles left open at exit");
        status = EXIT_RUNTIME;
    }
    gd_info("stopped");
out:
    for (int i = 0; i < n_overrides; i++)
        free(overrides[i]);
    free(overrides);
    return status;
}

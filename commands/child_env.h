/* The one fixed environment every child the agent starts begins from
 * (exec, guest-exec and the qemu-ga dialect's helpers, systemctl for
 * service.*, the power commands): nothing is inherited from the agent. */
#ifndef GUESTD_CHILD_ENV_H
#define GUESTD_CHILD_ENV_H

#define GD_CHILD_ENV_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define GD_CHILD_ENV_LANG "C.UTF-8"
#define GD_CHILD_ENV_HOME "/root" /* the agent runs as root */

/* The base as "NAME=value" initialisers, for a caller that adds entries of
 * its own to a static list (systemctl's). */
#define GD_CHILD_ENV_BASE                                                                          \
    "PATH=" GD_CHILD_ENV_PATH, "LANG=" GD_CHILD_ENV_LANG, "HOME=" GD_CHILD_ENV_HOME
#define GD_CHILD_ENV_BASE_COUNT 3

/* The base, NULL-terminated, static: what uv_process_options_t.env takes. */
char *const *gd_child_env_base(void);

#endif

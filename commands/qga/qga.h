/* qemu-ga's protocol, spoken beside guestd's own: a request object with
 * "execute" (optional "arguments" and "id") is answered {"return": ...} or
 * {"error": {"class", "desc"}}, as qemu-ga answers it, by the same agent,
 * policy and limits as guestd's own commands (docs/qemu-ga.md).
 *
 * The main channel carries the dialects channel.dialect allows (auto: each
 * connection's first message picks); channel.qga_spec opens a second channel
 * (qemu-ga's port, org.qemu.guest_agent.0) with its own dialect,
 * channel.qga_dialect. Events (hello, metrics, health) go only to guestd
 * connections of the main channel.
 *
 * The dispatcher's replies are routed by connection tag: a guestd request
 * read on the second channel, or made by the dialect on a qemu-ga request's
 * behalf, carries a tagged connection number; gd_qga_route_reply() takes
 * those, and the agent sends the rest to the main channel as always. */
#ifndef GUESTD_QGA_H
#define GUESTD_QGA_H

#include <stddef.h>
#include <stdint.h>

struct gd_cmd_env_s;
typedef struct gd_qga_s gd_qga_t;
struct gd_channel_s;

/* Connection numbers of the dispatcher's replies that are not the main
 * channel's (a channel's own numbers never come near these bits). */
#define GD_QGA_GEN_PORT (UINT64_C(1) << 62)     /* the second channel */
#define GD_QGA_GEN_INTERNAL (UINT64_C(1) << 63) /* made by the dialect */

/* Sets up the dialect over env, whose dispatcher exists, and main, the
 * main channel: its framing (channel.dialect) and the second channel
 * (channel.qga_spec, if set). 0, or -EINVAL / -ENOMEM with err set. */
int gd_qga_new(gd_qga_t **out, const struct gd_cmd_env_s *env, struct gd_channel_s *main, char *err,
               size_t errlen);
/* Starts the second channel and thaws filesystems that a previous run left
 * frozen. 0 or a negative errno with err set. */
int gd_qga_start(gd_qga_t *q, char *err, size_t errlen);
/* The agent is stopping: thaws what is frozen, kills the children of
 * guest-exec, closes files and handles, closes the second channel. */
void gd_qga_stop(gd_qga_t *q);
/* After the loop has ended. */
void gd_qga_free(gd_qga_t *q);
/* The second channel (channel.qga_spec), or NULL. */
struct gd_channel_s *gd_qga_port(const gd_qga_t *q);

/* Bytes read on the main channel (its dialect is not "guestd": the channel
 * hands its raw bytes here instead of to its line framer). Returns the
 * bytes taken (fewer once the channel stops admitting requests). */
size_t gd_qga_feed_main(gd_qga_t *q, uint64_t gen, char *data, size_t len);
/* A reply from the dispatcher: 1 when it was the dialect's to deliver,
 * 0 when it goes to the main channel as usual. */
int gd_qga_route_reply(gd_qga_t *q, uint64_t gen, const char *line, size_t len);
/* Whether the main channel's connection gen takes events (not when it
 * speaks qemu-ga's protocol, whose hosts do not expect them). */
int gd_qga_events_wanted(const gd_qga_t *q, uint64_t gen);
/* Whether guest-fsfreeze-freeze has the guest's filesystems frozen. */
int gd_qga_frozen(const gd_qga_t *q);

#endif

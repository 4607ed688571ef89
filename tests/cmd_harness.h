/* The command-test harness: a real dispatcher on a real loop, with the
 * replies captured, shared by the check_<family>.c suites of commands/. */
#ifndef GUESTD_TEST_CMD_HARNESS_H
#define GUESTD_TEST_CMD_HARNESS_H

#include <check.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "agent/agent.h"
#include "commands/dispatch.h"

extern uv_loop_t loop;
extern gd_agent_t agent;
extern gd_dispatch_t disp;
extern char *replies[256];
extern int n_replies;
extern void (*on_reply)(const char *line); /* a test's hook, or NULL */

/* A fresh loop, an agent with the default configuration, a dispatcher. */
void harness_setup(void);
/* Runs the loop dry, frees the replies, checks uv_loop_close() is 0. */
void harness_teardown(void);
/* Dispatches one request line and runs the loop until its reply; returns
 * the parsed reply (freed by the caller). */
cJSON *call(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The result of an ok reply (owned by reply). */
const cJSON *result_of(const cJSON *reply);
/* Asserts an error reply with this code; returns its message. */
const char *error_of(const cJSON *reply, const char *code);
/* A call expected to fail with code, its message containing want (unless NULL). */
void expect_error(const char *code, const char *want, const char *request);
const char *str_field(const cJSON *o, const char *name);
double num_field(const cJSON *o, const char *name);

#endif

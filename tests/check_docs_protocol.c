/* Check suite that keeps docs/protocol.md, the wire contract, from drifting
 * away from the code: every command of the command table
 * (gd_command_families) has a row in its "## Commands" table and every
 * error code of the dispatcher (gd_error_codes) a row in its "## Errors"
 * table; neither table names something the code does not have; the title
 * carries the protocol version that hello and info send.
 *
 * The page is docs/protocol.md beside the fixtures, or $GUESTD_PROTOCOL_DOC. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "commands/dispatch.h"
#include "commands/table.h"
#include "doc_page.h"

/* ---- the page, split into lines ---- */

static char *page;
static char **lines;
static int n_lines;

static gd_doc_page_t doc;

static void load_page(void)
{
    gd_doc_page_load(&doc, "protocol.md", "GUESTD_PROTOCOL_DOC");
    page = doc.text;
    lines = doc.lines;
    n_lines = doc.n_lines;
}

static void free_page(void)
{
    gd_doc_page_free(&doc);
}

/* The lines of the "## <title>" section: [*start, *end). 0, or -1 when the
 * page has no such section. */
static int find_section(const char *title, int *start, int *end)
{
    char heading[128];
    snprintf(heading, sizeof(heading), "## %s", title);
    for (int i = 0; i < n_lines; i++) {
        if (strcmp(lines[i], heading) != 0) continue;
        int j = i + 1;
        while (j < n_lines && strncmp(lines[j], "## ", 3) != 0)
            j++;
        *start = i + 1;
        *end = j;
        return 0;
    }
    return -1;
}

/* The name of a table row that starts "| `name` |", in buf; NULL otherwise. */
static const char *row_name(const char *line, char *buf, size_t len)
{
    if (strncmp(line, "| `", 3) != 0) return NULL;
    const char *end = strchr(line + 3, '`');
    if (!end || strncmp(end, "` |", 3) != 0 || (size_t)(end - line - 3) >= len) return NULL;
    memcpy(buf, line + 3, (size_t)(end - line - 3));
    buf[end - line - 3] = '\0';
    return buf;
}

/* How many rows of [start, end) are named name. */
static int count_rows(int start, int end, const char *name)
{
    char buf[128];
    int n = 0;
    for (int i = start; i < end; i++) {
        const char *r = row_name(lines[i], buf, sizeof(buf));
        if (r && strcmp(r, name) == 0) n++;
    }
    return n;
}

static int failures;
static char report[16384];

static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mismatch(const char *fmt, ...)
{
    size_t used = strlen(report);
    if (used + 256 >= sizeof(report)) return;
    used += (size_t)snprintf(report + used, sizeof(report) - used, "\n  ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + used, sizeof(report) - used, fmt, ap);
    va_end(ap);
    failures++;
}

static void begin(void)
{
    load_page();
    failures = 0;
    report[0] = '\0';
}

/* ---- the checks ---- */

START_TEST(test_every_command_named)
{
    begin();
    int start, end;
    ck_assert_msg(find_section("Commands", &start, &end) == 0,
                  "docs/protocol.md has no \"## Commands\" section");
    for (const gd_command_t *const *fam = gd_command_families; *fam; fam++) {
        for (const gd_command_t *c = *fam; c->name; c++) {
            int n = count_rows(start, end, c->name);
            if (n == 0)
                mismatch("%s: in the command table, but no row \"| `%s` |\" under ## Commands",
                         c->name, c->name);
            else if (n > 1)
                mismatch("%s: %d rows under ## Commands", c->name, n);
        }
    }
    char buf[128];
    for (int i = start; i < end; i++) {
        const char *name = row_name(lines[i], buf, sizeof(buf));
        if (name && !gd_command_find(name))
            mismatch("%s: a row under ## Commands, but not in the command table", name);
    }
    ck_assert_msg(failures == 0, "docs/protocol.md disagrees with the command table:%s", report);
    free_page();
}
END_TEST

START_TEST(test_every_error_code_named)
{
    begin();
    int start, end;
    ck_assert_msg(find_section("Errors", &start, &end) == 0,
                  "docs/protocol.md has no \"## Errors\" section");
    for (const char *const *code = gd_error_codes; *code; code++) {
        int n = count_rows(start, end, *code);
        if (n == 0)
            mismatch("%s: the dispatcher's code, but no row \"| `%s` |\" under ## Errors", *code,
                     *code);
        else if (n > 1)
            mismatch("%s: %d rows under ## Errors", *code, n);
    }
    char buf[128];
    for (int i = start; i < end; i++) {
        const char *name = row_name(lines[i], buf, sizeof(buf));
        if (name && !gd_error_code_known(name))
            mismatch("%s: a row under ## Errors, but not one of the dispatcher's codes", name);
    }
    ck_assert_msg(failures == 0, "docs/protocol.md disagrees with gd_error_codes:%s", report);
    free_page();
}
END_TEST

START_TEST(test_title_has_the_version)
{
    begin();
    char title[64];
    snprintf(title, sizeof(title), "# guestd wire protocol, version %d", GD_PROTOCOL_VERSION);
    ck_assert_msg(n_lines > 0 && strcmp(lines[0], title) == 0,
                  "docs/protocol.md must start \"%s\" (GD_PROTOCOL_VERSION, hello's protocol)",
                  title);
    free_page();
}
END_TEST

static Suite *docs_protocol_suite(void)
{
    Suite *s = suite_create("docs_protocol");
    TCase *tc = tcase_create("protocol.md");
    tcase_add_test(tc, test_every_command_named);
    tcase_add_test(tc, test_every_error_code_named);
    tcase_add_test(tc, test_title_has_the_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(docs_protocol_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

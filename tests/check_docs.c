/* Check suite that keeps docs/commands.md and the command table
 * (gd_command_families) from drifting apart: every command has a section,
 * no section names a command that does not exist, and each section's
 * summary, argument table, result line, error codes and example exchange
 * agree with the table and the dispatcher's own argument check.
 *
 * `check_docs --skeleton` prints the table-derived part of every section,
 * to paste when a command is added. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "commands/dispatch.h"
#include "commands/table.h"
#include "doc_page.h"

static const char *type_doc(gd_arg_type_t t)
{
    switch (t) {
    case GD_ARG_STRING:
        return "string";
    case GD_ARG_INT:
        return "integer";
    case GD_ARG_BOOL:
        return "boolean";
    case GD_ARG_OBJECT:
        return "object";
    case GD_ARG_STRING_ARRAY:
        return "array of strings";
    case GD_ARG_INT_OR_STRING:
        return "integer or string";
    case GD_ARG_ANY:
        return "any";
    }
    return "?";
}

static void range_doc(const gd_arg_spec_t *a, char *buf, size_t len)
{
    if (a->type == GD_ARG_INT && (a->min || a->max))
        snprintf(buf, len, "%lld..%lld", (long long)a->min, (long long)a->max);
    else
        buf[0] = '\0';
}

/* ---- the page, split into lines ---- */

static char *page;
static char **lines;
static int n_lines;

static gd_doc_page_t doc;

static void load_page(void)
{
    gd_doc_page_load(&doc, "commands.md", "GUESTD_COMMANDS_DOC");
    page = doc.text;
    lines = doc.lines;
    n_lines = doc.n_lines;
}

static void free_page(void)
{
    gd_doc_page_free(&doc);
}

/* The command name of a "### `name`" heading, in buf; NULL otherwise. */
static const char *heading_name(const char *line, char *buf, size_t len)
{
    if (strncmp(line, "### `", 5) != 0) return NULL;
    const char *end = strchr(line + 5, '`');
    if (!end || end[1] != '\0' || (size_t)(end - line - 5) >= len) return NULL;
    memcpy(buf, line + 5, (size_t)(end - line - 5));
    buf[end - line - 5] = '\0';
    return buf;
}

/* Where the section of name starts (the heading line) and ends. */
static int find_section(const char *name, int *end)
{
    char buf[128];
    for (int i = 0; i < n_lines; i++) {
        const char *h = heading_name(lines[i], buf, sizeof(buf));
        if (h && strcmp(h, name) == 0) {
            int j = i + 1;
            while (j < n_lines && strncmp(lines[j], "## ", 3) != 0 &&
                   strncmp(lines[j], "### ", 4) != 0)
                j++;
            *end = j;
            return i;
        }
    }
    return -1;
}

/* Splits "| a | b | c |" into trimmed cells (in place); returns the count. */
static int table_cells(char *row, char **cells, int max)
{
    int n = 0;
    if (row[0] != '|') return 0;
    char *p = row + 1;
    while (*p && n < max) {
        char *bar = strchr(p, '|');
        if (!bar) break;
        *bar = '\0';
        while (*p == ' ')
            p++;
        char *e = bar;
        while (e > p && e[-1] == ' ')
            *--e = '\0';
        cells[n++] = p;
        p = bar + 1;
    }
    return n;
}

/* ---- the checks, one command at a time ---- */

static int failures;
static char report[16384];

static void mismatch(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mismatch(const char *cmd, const char *fmt, ...)
{
    size_t used = strlen(report);
    if (used + 256 >= sizeof(report)) return;
    used += (size_t)snprintf(report + used, sizeof(report) - used, "\n  %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + used, sizeof(report) - used, fmt, ap);
    va_end(ap);
    failures++;
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

static void check_args(const gd_command_t *c, int start, int end)
{
    int table = -1, none = 0;
    for (int i = start; i < end; i++) {
        if (strcmp(lines[i], "| argument | type | required | range | meaning |") == 0) table = i;
        if (strcmp(lines[i], "No arguments.") == 0) none = 1;
    }
    int n_spec = 0;
    for (const gd_arg_spec_t *a = c->args; a && a->name; a++)
        n_spec++;
    if (n_spec == 0) {
        if (!none || table >= 0)
            mismatch(c->name,
                     "takes no arguments: the section must say \"No arguments.\", no table");
        return;
    }
    if (table < 0) {
        mismatch(c->name, "no argument table");
        return;
    }
    int row = table + 2; /* past the |---| line */
    const gd_arg_spec_t *a = c->args;
    for (; row < end && lines[row][0] == '|'; row++, a++) {
        char copy[1024], *cells[8];
        snprintf(copy, sizeof(copy), "%s", lines[row]);
        int n = table_cells(copy, cells, 8);
        if (!a->name) {
            mismatch(c->name, "the page documents an argument %s the command does not take",
                     n ? cells[0] : "?");
            return;
        }
        char want_name[128], want_range[64];
        snprintf(want_name, sizeof(want_name), "`%s`", a->name);
        range_doc(a, want_range, sizeof(want_range));
        if (n != 5) {
            mismatch(c->name, "argument row %s has %d cells, not 5", want_name, n);
        } else if (strcmp(cells[0], want_name) != 0) {
            mismatch(c->name, "argument %s is documented as %s (same order as the table)",
                     want_name, cells[0]);
        } else {
            if (strcmp(cells[1], type_doc(a->type)) != 0)
                mismatch(c->name, "%s: type is \"%s\", the table says \"%s\"", a->name, cells[1],
                         type_doc(a->type));
            if (strcmp(cells[2], a->required ? "yes" : "no") != 0)
                mismatch(c->name, "%s: required is \"%s\", the table says \"%s\"", a->name,
                         cells[2], a->required ? "yes" : "no");
            if (strcmp(cells[3], want_range) != 0)
                mismatch(c->name, "%s: range is \"%s\", the table says \"%s\"", a->name, cells[3],
                         want_range);
            if (a->help && strcmp(cells[4], a->help) != 0)
                mismatch(c->name, "%s: meaning is \"%s\", the table's help is \"%s\"", a->name,
                         cells[4], a->help);
        }
    }
    if (a->name) mismatch(c->name, "argument %s is not documented", a->name);
}

/* The codes of the "**Errors:**" line, in list (NULL-terminated). */
static int parse_errors(const gd_command_t *c, int start, int end, char codes[][32], int max)
{
    for (int i = start; i < end; i++) {
        if (strncmp(lines[i], "**Errors:** ", 12) != 0) continue;
        int n = 0;
        const char *p = lines[i] + 12;
        while ((p = strchr(p, '`')) != NULL && n < max - 1) {
            const char *q = strchr(p + 1, '`');
            if (!q) break;
            snprintf(codes[n], 32, "%.*s", (int)(q - p - 1), p + 1);
            if (!in_list(gd_error_codes, codes[n]))
                mismatch(c->name, "error code `%s` is not one of protocol.md's", codes[n]);
            n++;
            p = q + 1;
        }
        codes[n][0] = '\0';
        return n;
    }
    mismatch(c->name, "no **Errors:** line");
    codes[0][0] = '\0';
    return 0;
}

static int has_code(char codes[][32], const char *code)
{
    for (int i = 0; codes[i][0]; i++)
        if (strcmp(codes[i], code) == 0) return 1;
    return 0;
}

/* The example: a fenced block of "> request" and "< response" lines (and
 * events). At least one request runs this command; every request passes its
 * command's argument check; every response answers one of the requests. */
static void check_example(const gd_command_t *c, int start, int end, char codes[][32])
{
    int own_requests = 0, responses = 0;
    cJSON *ids = cJSON_CreateArray();
    int in_block = 0;
    for (int i = start; i < end; i++) {
        if (strncmp(lines[i], "```", 3) == 0) {
            in_block = !in_block;
            continue;
        }
        if (!in_block || (strncmp(lines[i], "> ", 2) != 0 && strncmp(lines[i], "< ", 2) != 0))
            continue;
        cJSON *msg = cJSON_Parse(lines[i] + 2);
        if (!cJSON_IsObject(msg)) {
            mismatch(c->name, "example line is not a JSON object: %.80s", lines[i]);
            cJSON_Delete(msg);
            continue;
        }
        if (lines[i][0] == '>') {
            const cJSON *cmd = cJSON_GetObjectItem(msg, "cmd");
            const cJSON *args = cJSON_GetObjectItem(msg, "args");
            const gd_command_t *target =
                cJSON_IsString(cmd) ? gd_command_find(cmd->valuestring) : NULL;
            char err[256];
            if (!target)
                mismatch(c->name, "an example request runs no known command");
            else if (args && gd_args_validate(target->args, args, err, sizeof(err)) != 0)
                mismatch(c->name, "the example request's args are refused: %s", err);
            own_requests += target == c;
            cJSON_AddItemToArray(ids, cJSON_Duplicate(cJSON_GetObjectItem(msg, "id"), 1));
        } else if (cJSON_GetObjectItem(msg, "event")) {
            /* An event between request and response (exec streaming). */
        } else {
            responses++;
            const cJSON *ok = cJSON_GetObjectItem(msg, "ok");
            const cJSON *id = cJSON_GetObjectItem(msg, "id");
            int known = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, ids) known |= cJSON_Compare(e, id, 1);
            if (!known) mismatch(c->name, "an example response answers no request of the example");
            if (cJSON_IsTrue(ok) && !cJSON_IsObject(cJSON_GetObjectItem(msg, "result")))
                mismatch(c->name, "the example response has no result object");
            if (cJSON_IsFalse(ok)) {
                const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(msg, "error"), "code");
                if (!cJSON_IsString(code) || !has_code(codes, code->valuestring))
                    mismatch(c->name, "the example's error code is not in its **Errors:** line");
            }
        }
        cJSON_Delete(msg);
    }
    cJSON_Delete(ids);
    if (own_requests == 0 || responses == 0)
        mismatch(c->name, "no example exchange (```, \"> request\", \"< response\", ```)");
}

static void check_command(const gd_command_t *c, void *ctx)
{
    (void)ctx;
    int end;
    int start = find_section(c->name, &end);
    if (start < 0) {
        mismatch(c->name, "no section \"### `%s`\"", c->name);
        return;
    }
    int i = start + 1;
    while (i < end && lines[i][0] == '\0')
        i++;
    if (i >= end || strcmp(lines[i], c->summary) != 0)
        mismatch(c->name, "the first line must be the summary \"%s\"", c->summary);

    check_args(c, start, end);

    char result[1024];
    snprintf(result, sizeof(result), "**Result:** `%s`", c->result_doc ? c->result_doc : "");
    int found = 0;
    for (int k = start; k < end; k++)
        found |= strcmp(lines[k], result) == 0;
    if (!found) mismatch(c->name, "no line %s", result);

    char codes[16][32];
    parse_errors(c, start, end, codes, 16);
    if (!has_code(codes, "invalid_args"))
        mismatch(c->name, "every command answers `invalid_args` (an unknown argument)");
    if (has_code(codes, "busy") != !!(c->flags & GD_CMD_CONCURRENT))
        mismatch(c->name, "`busy` must be listed exactly when the command counts against "
                          "commands.max_concurrent");
    check_example(c, start, end, codes);
}

START_TEST(test_every_command_documented)
{
    load_page();
    failures = 0;
    report[0] = '\0';
    gd_command_foreach(check_command, NULL);
    ck_assert_msg(failures == 0, "docs/commands.md disagrees with the command table:%s", report);
    free_page();
}
END_TEST

START_TEST(test_no_extra_commands)
{
    load_page();
    failures = 0;
    report[0] = '\0';
    char buf[128];
    for (int i = 0; i < n_lines; i++) {
        const char *name = heading_name(lines[i], buf, sizeof(buf));
        if (name && !gd_command_find(name))
            mismatch(name, "documented, but not in the command table");
        for (int j = 0; name && j < i; j++) {
            char other[128];
            const char *prev = heading_name(lines[j], other, sizeof(other));
            if (prev && strcmp(prev, name) == 0) mismatch(name, "documented twice");
        }
    }
    ck_assert_msg(failures == 0, "docs/commands.md:%s", report);
    free_page();
}
END_TEST

/* ---- the skeleton ---- */

static void print_skeleton(const gd_command_t *c, void *ctx)
{
    (void)ctx;
    printf("### `%s`\n\n%s\n\n", c->name, c->summary);
    if (!c->args || !c->args->name) {
        printf("No arguments.\n\n");
    } else {
        printf("| argument | type | required | range | meaning |\n|---|---|---|---|---|\n");
        for (const gd_arg_spec_t *a = c->args; a->name; a++) {
            char range[64];
            range_doc(a, range, sizeof(range));
            printf("| `%s` | %s | %s | %s | %s |\n", a->name, type_doc(a->type),
                   a->required ? "yes" : "no", range, a->help ? a->help : "");
        }
        printf("\n");
    }
    printf("**Result:** `%s`\n\n**Errors:** `invalid_args`%s\n\n",
           c->result_doc ? c->result_doc : "", (c->flags & GD_CMD_CONCURRENT) ? ", `busy`" : "");
    printf("```\n> {\"id\":1,\"cmd\":\"%s\"}\n< {\"id\":1,\"ok\":true,\"result\":{}}\n```\n\n",
           c->name);
}

static Suite *docs_suite(void)
{
    Suite *s = suite_create("docs");
    TCase *tc = tcase_create("commands.md");
    tcase_add_test(tc, test_every_command_documented);
    tcase_add_test(tc, test_no_extra_commands);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--skeleton") == 0) {
        gd_command_foreach(print_skeleton, NULL);
        return EXIT_SUCCESS;
    }
    SRunner *sr = srunner_create(docs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

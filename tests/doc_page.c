/* A page of docs/ read whole and split into lines (see doc_page.h). */
#include "doc_page.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gd_doc_page_load(gd_doc_page_t *page, const char *name, const char *env_override)
{
    char path[1024];
    const char *explicit_path = getenv(env_override);
    const char *fixtures = getenv("GUESTD_FIXTURES");
    if (explicit_path)
        snprintf(path, sizeof(path), "%s", explicit_path);
    else if (fixtures)
        snprintf(path, sizeof(path), "%s/../../docs/%s", fixtures, name);
    else
        snprintf(path, sizeof(path), "docs/%s", name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_ge(size, 0);
    page->text = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(page->text);
    ck_assert_uint_eq(fread(page->text, 1, (size_t)size, f), (size_t)size);
    page->text[size] = '\0';
    fclose(f);
    page->lines = calloc((size_t)size + 2, sizeof(*page->lines));
    ck_assert_ptr_nonnull(page->lines);
    page->n_lines = 0;
    for (char *p = page->text; *p;) {
        page->lines[page->n_lines++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
}

void gd_doc_page_free(gd_doc_page_t *page)
{
    free(page->text);
    free(page->lines);
    memset(page, 0, sizeof(*page));
}

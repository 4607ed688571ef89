/* A page of docs/ read whole and split into lines, for the suites that keep
 * a page and the code from drifting apart (check_docs, check_docs_protocol). */
#ifndef GUESTD_TESTS_DOC_PAGE_H
#define GUESTD_TESTS_DOC_PAGE_H

typedef struct gd_doc_page_s {
    char *text;   /* the whole page, each '\n' replaced by '\0' */
    char **lines; /* n_lines pointers into text */
    int n_lines;
} gd_doc_page_t;

/* Loads docs/NAME (found from $GUESTD_FIXTURES, else the current folder),
 * or the file $ENV_OVERRIDE names when it is set. Fails the test when the
 * page cannot be read. */
void gd_doc_page_load(gd_doc_page_t *page, const char *name, const char *env_override);
void gd_doc_page_free(gd_doc_page_t *page);

#endif

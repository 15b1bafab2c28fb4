/*
 * review_out: the tables the governance review commands print (`policy diff`,
 * `policy matrix`): one grid of cells written as an aligned terminal table, a
 * Markdown table (to post on a pull request) or an HTML table, with every
 * cell escaped for its format.
 */
#ifndef MARTGATE_REVIEW_OUT_H
#define MARTGATE_REVIEW_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { REVIEW_TERMINAL = 0, REVIEW_MARKDOWN, REVIEW_HTML, REVIEW_JSON } review_format;

/* "terminal", "markdown", "html", "json"; false for anything else. */
bool review_format_parse(const char *s, review_format *out);

typedef struct review_table {
    size_t ncols;
    char **cells;                /* row-major, row 0 the header; owned */
    size_t nrows, cap;
    bool oom;
} review_table;

void review_table_init(review_table *t, size_t ncols);
/* Appends one row of ncols cells (copied; NULL is an empty cell). */
void review_table_row(review_table *t, const char *const *cells);
/* Writes it (terminal, Markdown or HTML; JSON has its own shape). */
void review_table_write(const review_table *t, review_format f, FILE *out);
void review_table_free(review_table *t);

/* Text escaped for HTML element content and attribute values. */
void review_html_text(FILE *out, const char *s);

#endif

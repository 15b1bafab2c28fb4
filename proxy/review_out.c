/*
 * review_out: aligned, Markdown and HTML tables for the review commands.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/review_out.h"

bool review_format_parse(const char *s, review_format *out)
{
    static const char *const names[] = {"terminal", "markdown", "html", "json"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (review_format)i;
            return true;
        }
    return false;
}

void review_table_init(review_table *t, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
}

void review_table_row(review_table *t, const char *const *cells)
{
    if (t->oom)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **n = realloc(t->cells, cap * t->ncols * sizeof *n);
        if (!n) {
            t->oom = true;
            return;
        }
        t->cells = n;
        t->cap = cap;
    }
    char **row = &t->cells[t->nrows * t->ncols];
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (!row[i])
            t->oom = true;
    }
    t->nrows++;
}

void review_table_free(review_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* Display width: code points. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* Control characters (a policy's text may hold a newline) become spaces. */
static void put_plain(FILE *out, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
}

static void put_markdown(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20)
            fputc(' ', out);
        else if (strchr("|\\`*_<>[]", c))
            fprintf(out, "\\%c", c);
        else
            fputc(c, out);
    }
}

void review_html_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
        }
    }
}

void review_table_write(const review_table *t, review_format f, FILE *out)
{
    if (t->nrows == 0)
        return;
    if (f == REVIEW_MARKDOWN) {
        for (size_t r = 0; r < t->nrows; r++) {
            for (size_t c = 0; c < t->ncols; c++) {
                fputs(c ? " | " : "| ", out);
                put_markdown(out, t->cells[r * t->ncols + c]);
            }
            fputs(" |\n", out);
            if (r == 0) {
                for (size_t c = 0; c < t->ncols; c++)
                    fputs("|---", out);
                fputs("|\n", out);
            }
        }
        return;
    }
    if (f == REVIEW_HTML) {
        fputs("<table>\n", out);
        for (size_t r = 0; r < t->nrows; r++) {
            fputs("<tr>", out);
            for (size_t c = 0; c < t->ncols; c++) {
                fputs(r ? "<td>" : "<th>", out);
                review_html_text(out, t->cells[r * t->ncols + c]);
                fputs(r ? "</td>" : "</th>", out);
            }
            fputs("</tr>\n", out);
        }
        fputs("</table>\n", out);
        return;
    }
    size_t *w = calloc(t->ncols, sizeof *w);
    if (!w)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t x = width(t->cells[r * t->ncols + c]);
            if (x > w[c])
                w[c] = x;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            put_plain(out, s);
            if (c + 1 < t->ncols)
                fprintf(out, "%*s", (int)(w[c] - width(s) + 2), "");
        }
        fputc('\n', out);
    }
    free(w);
}

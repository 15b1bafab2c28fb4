/*
 * test_audit_html: what the HTML audit report is made of: the HTML escaper it
 * shares with the review tables (proxy/review_out.c's review_html_text) and
 * the SVG bar charts (proxy/svg_bars.c): labels escaped and cut, one bar and
 * one number per value, bars proportional, nothing fetched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/review_out.h"
#include "proxy/svg_bars.h"

/* What f wrote to a memory stream, malloc'd. */
typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} mem_out;

static void mem_open(mem_out *m)
{
    m->buf = NULL;
    m->len = 0;
    m->f = open_memstream(&m->buf, &m->len);
    assert_non_null(m->f);
}

static char *mem_close(mem_out *m)
{
    fclose(m->f);
    return m->buf;
}

static char *escaped(const char *s)
{
    mem_out m;
    mem_open(&m);
    review_html_text(m.f, s);
    return mem_close(&m);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_escape(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"plain text", "plain text"},
        {"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
        {"a & b", "a &amp; b"},
        {"\"double\" 'single'", "&quot;double&quot; &#39;single&#39;"},
        {"&amp;", "&amp;amp;"},                      /* already escaped text is escaped again */
        {"line\nbreak\ttab", "line break tab"},     /* control characters become spaces */
        {"caf\xC3\xA9 \xE2\x80\x94 ok", "caf\xC3\xA9 \xE2\x80\x94 ok"},   /* UTF-8 kept */
        {"\" onmouseover=\"x", "&quot; onmouseover=&quot;x"},          /* cannot leave an attribute */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = escaped(cases[i].in);
        assert_string_equal(got, cases[i].out);
        free(got);
    }
}

static void test_hbars(void **state)
{
    (void)state;
    const char *labels[] = {"raw", "<b>pii</b>", "a very long dataset name that goes on and on and on forever"};
    const long long values[] = {40, 10, 0};
    mem_out m;
    mem_open(&m);
    svg_hbars(m.f, "Denials <by> dataset", labels, values, 3);
    char *svg = mem_close(&m);
    assert_non_null(strstr(svg, "<svg class=\"chart\" role=\"img\""));
    assert_non_null(strstr(svg, "aria-label=\"Denials &lt;by&gt; dataset\""));
    assert_non_null(strstr(svg, "<title>Denials &lt;by&gt; dataset</title>"));
    assert_int_equal(count_of(svg, "class=\"bar\""), 3);
    assert_non_null(strstr(svg, ">&lt;b&gt;pii&lt;/b&gt;</text>"));
    assert_null(strstr(svg, "<b>"));
    /* the longest bar is the full width, the others in proportion, a zero is empty */
    assert_non_null(strstr(svg, "width=\"380\" height=\"16\" class=\"bar\""));
    assert_non_null(strstr(svg, "width=\"95\" height=\"16\" class=\"bar\""));
    assert_non_null(strstr(svg, "width=\"0\" height=\"16\" class=\"bar\""));
    /* each number written after its bar */
    assert_non_null(strstr(svg, "class=\"num\">40</text>"));
    assert_non_null(strstr(svg, "class=\"num\">10</text>"));
    assert_non_null(strstr(svg, "class=\"num\">0</text>"));
    /* a long label is cut with an ellipsis */
    assert_non_null(strstr(svg, "a very long dataset name that goes \xE2\x80\xA6</text>"));
    assert_null(strstr(svg, "forever"));
    /* nothing that could be fetched */
    assert_null(strstr(svg, "http"));
    assert_null(strstr(svg, "href"));
    free(svg);
}

static void test_hbars_empty(void **state)
{
    (void)state;
    mem_out m;
    mem_open(&m);
    svg_hbars(m.f, "Nothing", NULL, NULL, 0);
    char *svg = mem_close(&m);
    assert_non_null(strstr(svg, ">none</text>"));
    assert_int_equal(count_of(svg, "class=\"bar\""), 0);
    assert_non_null(strstr(svg, "</svg>"));
    free(svg);
}

static void test_label_cut_utf8(void **state)
{
    (void)state;
    /* 40 two-byte code points: cut at a code point boundary, never inside one */
    char label[81];
    for (int i = 0; i < 40; i++)
        memcpy(label + 2 * i, "\xC3\xA9", 2);
    label[80] = 0;
    const char *labels[] = {label};
    const long long values[] = {1};
    mem_out m;
    mem_open(&m);
    svg_hbars(m.f, "t", labels, values, 1);
    char *svg = mem_close(&m);
    char want[128];
    size_t o = 0;
    want[o++] = '>';
    for (int i = 0; i < 35; i++, o += 2)
        memcpy(want + o, "\xC3\xA9", 2);
    memcpy(want + o, "\xE2\x80\xA6</text>", 10);
    want[o + 10] = 0;
    assert_non_null(strstr(svg, want));
    free(svg);
}

static void test_stacked(void **state)
{
    (void)state;
    const char *days[] = {"2026-12-01", "2026-12-02"};
    const long long values[] = {3, 1, 4, /* day 1: allow, rewrite, deny */ 0, 0, 2};
    const char *series[] = {"allow", "re<write>", "deny"};
    const char *colors[] = {"#0f0", "#ff0", "#f00"};
    mem_out m;
    mem_open(&m);
    svg_stacked(m.f, "Per day", days, values, 2, series, colors, 3);
    char *svg = mem_close(&m);
    /* the legend: one swatch per series, names escaped */
    assert_non_null(strstr(svg, ">re&lt;write&gt;</text>"));
    /* four segments (zeros are not drawn) and three legend swatches */
    assert_int_equal(count_of(svg, "fill=\"#0f0\""), 2);
    assert_int_equal(count_of(svg, "fill=\"#ff0\""), 2);
    assert_int_equal(count_of(svg, "fill=\"#f00\""), 3);
    /* the totals above the columns, and the axis maximum */
    assert_non_null(strstr(svg, "class=\"num\">8</text>"));
    assert_non_null(strstr(svg, "class=\"num\">2</text>"));
    assert_non_null(strstr(svg, "text-anchor=\"end\">8</text>"));
    /* the tallest column is the plot's height (200): 3 + 1 + 4 of 8 */
    assert_non_null(strstr(svg, "height=\"75\" fill=\"#0f0\""));
    assert_non_null(strstr(svg, "height=\"25\" fill=\"#ff0\""));
    assert_non_null(strstr(svg, "height=\"100\" fill=\"#f00\""));
    assert_non_null(strstr(svg, ">2026-12-02</text>"));
    free(svg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_hbars),
        cmocka_unit_test(test_hbars_empty),
        cmocka_unit_test(test_label_cut_utf8),
        cmocka_unit_test(test_stacked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

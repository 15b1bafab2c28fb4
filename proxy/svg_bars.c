/*
 * svg_bars: small inline SVG bar charts for the HTML reports (the audit
 * report): horizontal bars with their label and number, and vertical stacked
 * bars with a legend. Every label is escaped for HTML; nothing is fetched.
 */
#include "proxy/svg_bars.h"

#include <stdbool.h>
#include <string.h>

#include "proxy/review_out.h"

#define HB_LABEL_W 260     /* room for the labels, left of the bars */
#define HB_BAR_W 380       /* the longest bar */
#define HB_ROW_H 22
#define HB_LABEL_CPS 36    /* labels longer than this (code points) are cut with "…" */
#define ST_COL_W 44        /* one column of the stacked chart */
#define ST_PLOT_H 200
#define ST_TOP 40          /* legend and totals above the plot */
#define ST_LEFT 80         /* the y axis, its numbers and room for the turned labels */

/* A label for the chart: at most HB_LABEL_CPS code points, cut with "…"; escaped. */
static void put_label(FILE *out, const char *s, size_t max_cps)
{
    char buf[4 * HB_LABEL_CPS + 8];
    size_t o = 0, cps = 0, i = 0;
    if (!s)
        s = "";
    for (; s[i]; i++) {
        bool lead = ((unsigned char)s[i] & 0xC0) != 0x80;
        if (lead && cps == max_cps)
            break;
        cps += lead;
        if (o < sizeof buf - 4)
            buf[o++] = s[i];
    }
    if (s[i]) {
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
            o--;   /* drop a partial code point before the ellipsis */
        if (o > 0)
            o--;
        memcpy(buf + o, "\xE2\x80\xA6", 3);
        o += 3;
    }
    buf[o] = 0;
    review_html_text(out, buf);
}

static long long max_of(const long long *v, size_t n)
{
    long long m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

void svg_hbars(FILE *out, const char *title, const char *const *labels, const long long *values, size_t n)
{
    int h = (int)(n ? n : 1) * HB_ROW_H + 10, w = HB_LABEL_W + HB_BAR_W + 80;
    fprintf(out, "<svg class=\"chart\" role=\"img\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" aria-label=\"", w, h, w, h);
    review_html_text(out, title);
    fputs("\"><title>", out);
    review_html_text(out, title);
    fputs("</title>\n", out);
    if (n == 0)
        fprintf(out, "<text x=\"4\" y=\"18\" class=\"none\">none</text>\n");
    long long max = max_of(values, n);
    fprintf(out, "<line x1=\"%d\" y1=\"2\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", HB_LABEL_W, HB_LABEL_W, h - 4);
    for (size_t i = 0; i < n; i++) {
        int y = (int)i * HB_ROW_H + 4;
        long long len = max > 0 ? values[i] * HB_BAR_W / max : 0;
        if (values[i] > 0 && len < 1)
            len = 1;
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", HB_LABEL_W - 6, y + 15);
        put_label(out, labels[i], HB_LABEL_CPS);
        fprintf(out, "</text><rect x=\"%d\" y=\"%d\" width=\"%lld\" height=\"%d\" class=\"bar\"/>"
                     "<text x=\"%lld\" y=\"%d\" class=\"num\">%lld</text>\n",
                HB_LABEL_W, y + 2, len, HB_ROW_H - 6, HB_LABEL_W + len + 6, y + 15, values[i]);
    }
    fputs("</svg>\n", out);
}

void svg_stacked(FILE *out, const char *title, const char *const *labels, const long long *values, size_t n,
                 const char *const *series, const char *const *colors, size_t nseries)
{
    long long max = 0;
    for (size_t i = 0; i < n; i++) {
        long long t = 0;
        for (size_t s = 0; s < nseries; s++)
            t += values[i * nseries + s];
        if (t > max)
            max = t;
    }
    int w = ST_LEFT + (int)(n ? n : 1) * ST_COL_W + 20, h = ST_TOP + ST_PLOT_H + 70;
    if (w < 420)
        w = 420;
    fprintf(out, "<svg class=\"chart\" role=\"img\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" aria-label=\"", w, h, w, h);
    review_html_text(out, title);
    fputs("\"><title>", out);
    review_html_text(out, title);
    fputs("</title>\n", out);
    for (size_t s = 0; s < nseries; s++) {   /* legend */
        int x = ST_LEFT + (int)s * 110;
        fprintf(out, "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"%s\" stroke=\"#000\"/>"
                     "<text x=\"%d\" y=\"17\">", x, colors[s], x + 16);
        review_html_text(out, series[s]);
        fputs("</text>\n", out);
    }
    int base = ST_TOP + ST_PLOT_H;
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>"
                 "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n",
            ST_LEFT, ST_TOP, ST_LEFT, base, ST_LEFT, base, w - 10, base);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>"
                 "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%lld</text>\n",
            ST_LEFT - 4, base + 4, ST_LEFT - 4, ST_TOP + 4, max);
    if (n == 0)
        fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"none\">none</text>\n", ST_LEFT + 8, base - 8);
    for (size_t i = 0; i < n; i++) {
        int x = ST_LEFT + 6 + (int)i * ST_COL_W;
        long long y = base, total = 0;
        for (size_t s = 0; s < nseries; s++) {
            long long v = values[i * nseries + s], hgt = max > 0 ? v * ST_PLOT_H / max : 0;
            total += v;
            if (v <= 0)
                continue;
            if (hgt < 1)
                hgt = 1;
            y -= hgt;
            fprintf(out, "<rect x=\"%d\" y=\"%lld\" width=\"%d\" height=\"%lld\" fill=\"%s\" stroke=\"#000\" "
                         "stroke-width=\"0.5\"/>\n", x, y, ST_COL_W - 12, hgt, colors[s]);
        }
        fprintf(out, "<text x=\"%d\" y=\"%lld\" text-anchor=\"middle\" class=\"num\">%lld</text>",
                x + (ST_COL_W - 12) / 2, y - 4, total);
        /* the day, turned to fit under its column */
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" transform=\"rotate(-45 %d %d)\">",
                x + (ST_COL_W - 12) / 2, base + 14, x + (ST_COL_W - 12) / 2, base + 14);
        put_label(out, labels[i], 12);
        fputs("</text>\n", out);
    }
    fputs("</svg>\n", out);
}

/*
 * svg_bars: small inline SVG bar charts for the HTML reports (the audit
 * report): horizontal bars with their label and number, and vertical stacked
 * bars with a legend. Every label is escaped for HTML; nothing is fetched.
 */
#ifndef MARTGATE_SVG_BARS_H
#define MARTGATE_SVG_BARS_H

#include <stddef.h>
#include <stdio.h>

/* One bar per label, its length proportional to values[i], the number
 * written after it. title names the chart for screen readers. */
void svg_hbars(FILE *out, const char *title, const char *const *labels, const long long *values, size_t n);

/* One column per label, stacked from nseries values (values[i * nseries + s]),
 * coloured by colors[s] (CSS colours, written as given: not from input), a
 * legend naming series[s] and the column's total written above it. */
void svg_stacked(FILE *out, const char *title, const char *const *labels, const long long *values, size_t n,
                 const char *const *series, const char *const *colors, size_t nseries);

#endif

/*
 * cmd_audit_html: `martgate audit report --html OUT.html`, the audit summary
 * (the same struct --summary --json prints) as one self-contained HTML page
 * for the governance review: inline CSS and SVG charts (proxy/svg_bars.c),
 * no script, nothing fetched, readable on paper. Every chart has its numbers
 * in a table under it, each number marked data-k="KEY" after its key in the
 * --summary --json object. Audit text is escaped everywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/cmd_audit_internal.h"
#include "proxy/review_out.h"
#include "proxy/svg_bars.h"

static const char page_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;color:#111;background:#fff;margin:24px;max-width:1100px}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #999}"
    "table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #bbb;padding:3px 8px;"
    "text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "th{background:#eee}code{font:12px monospace;white-space:pre-wrap;word-break:break-all}"
    "svg.chart{display:block;max-width:100%;height:auto}svg text{font:12px system-ui,sans-serif;fill:#111}"
    "svg .bar{fill:#4a6fa5}svg .axis{stroke:#333}svg .num{font-weight:bold}.note{color:#444}"
    "@media print{body{margin:0;max-width:none}h2{break-after:avoid}section{break-inside:avoid}"
    "th{background:#fff}svg .bar{fill:#555}}";

static const char *const decisions[] = {"allow", "rewrite", "deny"};
static const char *const decision_colors[] = {"#7fbf7f", "#f2c94c", "#c0392b"};

/* <td class="n" data-k="PREFIX.KEY">N</td>; key NULL for PREFIX alone. */
static void num_cell(FILE *out, const char *prefix, const char *key, const char *key2, long long v)
{
    fputs("<td class=\"n\" data-k=\"", out);
    review_html_text(out, prefix);
    if (key) {
        fputc('.', out);
        review_html_text(out, key);
    }
    if (key2) {
        fputc('.', out);
        review_html_text(out, key2);
    }
    fprintf(out, "\">%lld</td>", v);
}

static void text_cell(FILE *out, const char *s)
{
    fputs("<td>", out);
    review_html_text(out, s && *s ? s : "(empty)");
    fputs("</td>", out);
}

/* A map of counts: its bar chart and its table, highest first. */
static void count_section(FILE *out, const char *title, const char *what, const char *key, json_t *map)
{
    size_t n;
    count_row *rows = cmd_audit_sorted_counts(map, &n);
    const char **labels = calloc(n + 1, sizeof *labels);
    long long *vals = calloc(n + 1, sizeof *vals);
    fprintf(out, "<section id=\"%s\">\n<h2>", key);
    review_html_text(out, title);
    fputs("</h2>\n", out);
    if (!rows || !labels || !vals)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        labels[i] = *rows[i].key ? rows[i].key : "(empty)";
        vals[i] = rows[i].count;
    }
    svg_hbars(out, title, labels, vals, n);
    fputs("<table>\n<tr><th>", out);
    review_html_text(out, what);
    fputs("</th><th>count</th></tr>\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("<tr>", out);
        text_cell(out, rows[i].key);
        num_cell(out, key, rows[i].key, NULL, rows[i].count);
        fputs("</tr>\n", out);
    }
    if (n == 0)
        fputs("<tr><td colspan=\"2\">none</td></tr>\n", out);
    fputs("</table>\n</section>\n", out);
    free(rows);
    free(labels);
    free(vals);
}

/* Statements per day, stacked by decision. */
static void day_section(FILE *out, summary *s)
{
    size_t n;
    const char **days = cmd_audit_days(s, &n);
    long long *vals = calloc(3 * n + 1, sizeof *vals);
    if (!days || !vals)
        n = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < 3; d++)
            vals[i * 3 + d] = (long long)json_integer_value(json_object_get(json_object_get(s->by_day, days[i]),
                                                                             decisions[d]));
    fputs("<section id=\"by_day_decision\">\n<h2>Statements per day by decision</h2>\n", out);
    svg_stacked(out, "Statements per day by decision", days, vals, n, decisions, decision_colors, 3);
    fputs("<table>\n<tr><th>day (UTC)</th><th>allow</th><th>rewrite</th><th>deny</th></tr>\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("<tr>", out);
        text_cell(out, days[i]);
        for (size_t d = 0; d < 3; d++)
            num_cell(out, "by_day_decision", days[i], decisions[d], vals[i * 3 + d]);
        fputs("</tr>\n", out);
    }
    if (n == 0)
        fputs("<tr><td colspan=\"4\">none</td></tr>\n", out);
    fputs("</table>\n</section>\n", out);
    free(days);
    free(vals);
}

/* Who read restricted datasets, and how often. */
static void restricted_section(FILE *out, summary *s)
{
    fputs("<section id=\"restricted_reads\">\n<h2>Reads of restricted datasets</h2>\n<p class=\"note\">", out);
    if (!s->restricted_known)
        fputs("no policy given: restricted datasets unknown. Listed: the built-in ", out);
    else
        fputs("Restricted datasets (classification &quot;restricted&quot; in the policy, and the built-in one): ", out);
    json_t *it;
    size_t i;
    json_array_foreach(s->restricted, i, it) {
        if (i)
            fputs(", ", out);
        fputs("<code>", out);
        review_html_text(out, json_string_value(it));
        fputs("</code>", out);
    }
    fputs(". Counted: statements allowed (allow or rewrite) that touched one.</p>\n", out);
    size_t n;
    count_row *rows = cmd_audit_sorted_counts(s->restricted_reads, &n);
    char **labels = calloc(n + 1, sizeof *labels);
    long long *vals = calloc(n + 1, sizeof *vals);
    if (!rows || !labels || !vals)
        n = 0;
    for (size_t k = 0; k < n; k++) {
        const char *sep = strchr(rows[k].key, '\x1f');
        if (asprintf(&labels[k], "%.*s \xE2\x80\x94 %s", (int)(sep - rows[k].key), rows[k].key, sep + 1) < 0)
            labels[k] = NULL;
        vals[k] = rows[k].count;
    }
    svg_hbars(out, "Reads of restricted datasets by user", (const char *const *)labels, vals, n);
    fputs("<table>\n<tr><th>user</th><th>dataset</th><th>statements</th></tr>\n", out);
    for (size_t k = 0; k < n; k++) {
        const char *sep = strchr(rows[k].key, '\x1f');
        char *user = strndup(rows[k].key, (size_t)(sep - rows[k].key));
        fputs("<tr>", out);
        text_cell(out, user);
        text_cell(out, sep + 1);
        num_cell(out, "restricted_reads", user ? user : "", sep + 1, rows[k].count);
        fputs("</tr>\n", out);
        free(user);
    }
    if (n == 0)
        fputs("<tr><td colspan=\"3\">none</td></tr>\n", out);
    fputs("</table>\n</section>\n", out);
    for (size_t k = 0; k < n; k++)
        free(labels[k]);
    free(labels);
    free(vals);
    free(rows);
}

/* The most frequent denied fingerprints, with their reason and users. */
static void denied_section(FILE *out, summary *s, int top)
{
    size_t n;
    denied_row *rows = cmd_audit_top_denied(s, top, &n);
    if (!rows)
        n = 0;
    fprintf(out, "<section id=\"top_denied_fingerprints\">\n<h2>Most frequent denied statements (top %d)</h2>\n", top);
    const char **labels = calloc(n + 1, sizeof *labels);
    long long *vals = calloc(n + 1, sizeof *vals);
    for (size_t i = 0; labels && vals && i < n; i++) {
        json_t *q = json_object_get(rows[i].e, "query");
        labels[i] = json_is_string(q) ? json_string_value(q) : rows[i].fp;
        vals[i] = rows[i].count;
    }
    svg_hbars(out, "Most frequent denied statements", labels, vals, labels && vals ? n : 0);
    free(labels);
    free(vals);
    fputs("<table>\n<tr><th>count</th><th>users</th><th>fingerprint</th><th>reason</th><th>query</th></tr>\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("<tr>", out);
        num_cell(out, "top_denied_fingerprints", rows[i].fp, "count", rows[i].count);
        num_cell(out, "top_denied_fingerprints", rows[i].fp, "users", (long long)rows[i].users);
        fputs("<td><code>", out);
        review_html_text(out, rows[i].fp);
        fputs("</code></td>", out);
        json_t *r = json_object_get(rows[i].e, "reason"), *q = json_object_get(rows[i].e, "query");
        text_cell(out, json_is_string(r) ? json_string_value(r) : "-");
        fputs("<td><code>", out);
        review_html_text(out, json_is_string(q) ? json_string_value(q) : "(no text)");
        fputs("</code></td></tr>\n<tr><td></td><td colspan=\"4\" class=\"note\">by ", out);
        const char *u;
        json_t *v;
        size_t k = 0;
        json_object_foreach(json_object_get(rows[i].e, "users"), u, v) {
            fputs(k++ ? ", " : "", out);
            review_html_text(out, u);
        }
        fputs("</td></tr>\n", out);
    }
    if (n == 0)
        fputs("<tr><td colspan=\"5\">none</td></tr>\n", out);
    fputs("</table>\n</section>\n", out);
    free(rows);
}

static void write_page(FILE *out, summary *s, int top, const char *policy_path)
{
    char now[64];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<title>martgate audit report</title>\n<style>%s</style>\n</head>\n<body>\n"
                 "<h1>martgate audit report</h1>\n<p class=\"note\">Generated %s",
            page_css, now);
    if (policy_path) {
        fputs("; restricted datasets from policy <code>", out);
        review_html_text(out, policy_path);
        fputs("</code>", out);
    }
    fputs(".</p>\n<table>\n<tr><th>records</th>", out);
    num_cell(out, "records", NULL, NULL, (long long)s->records);
    fputs("</tr>\n", out);
    const char *ev;
    json_t *v;
    json_object_foreach(s->events, ev, v) {
        fputs("<tr><th>", out);
        review_html_text(out, ev);
        fputs("</th>", out);
        num_cell(out, "events", ev, NULL, (long long)json_integer_value(v));
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
    day_section(out, s);
    count_section(out, "Denials by dataset", "dataset", "deny_by_dataset", s->deny_dataset);
    count_section(out, "Denials by group", "group", "deny_by_group", s->deny_group);
    restricted_section(out, s);
    denied_section(out, s, top);
    count_section(out, "Login failures by reason", "reason", "login_failures_by_reason", s->login_failed);
    count_section(out, "Sessions by application", "application_name", "sessions_by_application", s->sessions_app);
    fputs("</body>\n</html>\n", out);
}

int cmd_audit_write_html(summary *s, int top, const char *path, const char *policy_path)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "martgate audit report: %s: %m\n", path);
        return -1;
    }
    write_page(out, s, top, policy_path);
    int bad = ferror(out);
    if (fclose(out) != 0 || bad) {
        fprintf(stderr, "martgate audit report: %s: could not write it\n", path);
        return -1;
    }
    return 0;
}

/*
 * cmd_audit_internal: what `martgate audit`'s files share (cmd_audit.c reads
 * and filters records; cmd_audit_report.c prints them as a table or a
 * summary; cmd_audit_html.c renders the summary as `audit report --html`).
 * Private.
 */
#ifndef MARTGATE_CMD_AUDIT_INTERNAL_H
#define MARTGATE_CMD_AUDIT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <zlib.h>

typedef struct {
    const char **v;
    size_t n;
} strlist;

typedef struct {
    strlist users, groups, decisions, datasets, relations, sessions, events;
    bool has_since, has_until;
    int64_t since_us, until_us;
    bool json, summary, follow;
    const char *html_path;   /* `audit report --html OUT`: the summary as an HTML page */
    const char *policy_path; /* --policy: which datasets are restricted */
    long long limit;         /* stop after this many records (0: no limit) */
    int top;
    size_t max_line;
} audit_filter;

enum { COL_TIME, COL_EVENT, COL_SESSION, COL_USER, COL_DECISION, COL_RULE, COL_DATASETS, COL_DETAIL, NCOLS };

/* The aligned table, flushed every few thousand rows. */
typedef struct {
    char **cells;            /* nrows * NCOLS */
    size_t nrows, cap;
    size_t width[NCOLS];
    bool header_done;
} out_table;

/* Counts for --summary (and the HTML report, which renders the same). */
typedef struct {
    unsigned long long records;
    json_t *events;          /* event -> count */
    json_t *udd;             /* "user\x1f dataset\x1f decision" -> count */
    json_t *denied;          /* fingerprint -> {count, users{}, query, reason} */
    json_t *by_day;          /* "YYYY-MM-DD" -> {allow, rewrite, deny} (statements) */
    json_t *deny_dataset;    /* dataset ("-": none) -> denied statements */
    json_t *deny_group;      /* group ("-": none) -> denied statements */
    json_t *restricted;      /* array: the restricted datasets' names */
    bool restricted_known;   /* a policy said which datasets are restricted */
    json_t *restricted_reads;/* "user\x1f dataset" -> allowed statements that touched it */
    json_t *login_failed;    /* reason -> login_failed records */
    json_t *sessions_app;    /* application_name ("-": none) -> session_start records */
} summary;

/* One count of a map, for sorted output. */
typedef struct {
    const char *key;
    long long count;
} count_row;

/* One denied fingerprint of the summary. */
typedef struct {
    const char *fp;
    long long count;
    size_t users;
    json_t *e;               /* {count, users{}, query, reason} */
} denied_row;

const char *cmd_audit_str_field(json_t *rec, const char *key);
const char *cmd_audit_session_text(json_t *rec, char *buf, size_t n);
void cmd_audit_table_flush(out_table *t, FILE *out);
int cmd_audit_table_add(out_table *t, json_t *rec);
/* Creates the maps; restricted: the restricted dataset names (borrowed and
 * copied), known: whether a policy gave them. 0, or -1 out of memory. */
int cmd_audit_summary_init(summary *s, const char *const *restricted, size_t n, bool known);
void cmd_audit_summary_free(summary *s);
void cmd_audit_summary_add(summary *s, json_t *rec);
void cmd_audit_print_summary(summary *s, int top, bool json, FILE *out);
/* The map's entries by count (highest first), then key; malloc'd (free it). */
count_row *cmd_audit_sorted_counts(json_t *map, size_t *n);
/* The top denied fingerprints by count, then fingerprint; malloc'd. */
denied_row *cmd_audit_top_denied(summary *s, int top, size_t *n);
/* The days of by_day in order; malloc'd array of borrowed keys. */
const char **cmd_audit_days(summary *s, size_t *n);

/* proxy/cmd_audit_html.c: the summary as one self-contained HTML page.
 * 0, or -1 when it could not be written (message on stderr). */
int cmd_audit_write_html(summary *s, int top, const char *path, const char *policy_path);

/* One input (a file, plain or gzip-compressed, or stdin) read line by line;
 * cmd_audit.c's reader, shared with `policy replay`. */
typedef struct {
    const char *name;        /* for messages: the path, or "<stdin>" */
    const char *path;        /* NULL for stdin */
    gzFile gz;
    dev_t dev;
    ino_t ino;
    unsigned long long consumed;   /* uncompressed bytes read */
    char *buf;
    size_t cap, len, pos;
    bool skipping;           /* inside a line longer than max_line */
    unsigned long long lineno;
    unsigned long long skip_lineno;
} line_reader;

/* Opens path (NULL: stdin); 0, or -1 with why filled. */
int cmd_audit_reader_open(line_reader *r, const char *path, char *why, size_t whylen);
/* The next line (NUL-terminated, without its newline): 1, 0 at the end, -1 on
 * a read error (why filled). Longer lines than max_line are reported and skipped. */
int cmd_audit_reader_next(line_reader *r, size_t max_line, char **line, size_t *len, char *why, size_t whylen);
void cmd_audit_reader_close(line_reader *r);

#endif

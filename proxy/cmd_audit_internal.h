/*
 * cmd_audit_internal: what `martgate audit`'s files share (cmd_audit.c reads
 * and filters records; cmd_audit_report.c prints them as a table or a
 * summary). Private.
 */
#ifndef MARTGATE_CMD_AUDIT_INTERNAL_H
#define MARTGATE_CMD_AUDIT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char **v;
    size_t n;
} strlist;

typedef struct {
    strlist users, groups, decisions, datasets, relations, sessions, events;
    bool has_since, has_until;
    int64_t since_us, until_us;
    bool json, summary, follow;
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

/* Counts for --summary. */
typedef struct {
    unsigned long long records;
    json_t *events;          /* event -> count */
    json_t *udd;             /* "user\x1f dataset\x1f decision" -> count */
    json_t *denied;          /* fingerprint -> {count, users{}, query, reason} */
} summary;

const char *cmd_audit_str_field(json_t *rec, const char *key);
const char *cmd_audit_session_text(json_t *rec, char *buf, size_t n);
void cmd_audit_table_flush(out_table *t, FILE *out);
int cmd_audit_table_add(out_table *t, json_t *rec);
void cmd_audit_summary_add(summary *s, json_t *rec);
void cmd_audit_print_summary(summary *s, int top, bool json, FILE *out);

#endif

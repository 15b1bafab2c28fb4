/*
 * cmd_audit: `martgate audit [FILES...]`, the governance team's review tool
 * for the audit trail. Reads audit logs (plain or gzip-compressed rotated
 * ones, or stdin), filters records by user, group, decision, dataset,
 * relation, session, event and time, and prints an aligned table, JSON lines,
 * or a summary (counts by user x dataset x decision and the most frequent
 * denied fingerprints); `audit report --html` writes that summary as an HTML
 * page. --follow tails a live log across rotations. A bad input line is
 * reported with file:line and skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "policy/decide_access.h"
#include "policy/policy.h"
#include "proxy/cmd_audit_internal.h"
#include "proxy/commands.h"

#define CLI_DEFAULT_MAX_LINE (64u << 20)
#define CLI_FOLLOW_POLL_US 250000
#define CLI_TABLE_FLUSH_ROWS 5000

int cmd_audit_main(int argc, char **argv);

/* ------------------------------------------------------------ options -- */



static int strlist_add(strlist *l, const char *s)
{
    const char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    l->v[l->n++] = s;
    return 0;
}

static bool strlist_has(const strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- time -- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339 ("2024-05-01T12:00:00.5Z", "+02:00" offsets, seconds optional,
 * no zone meaning UTC) or a bare date YYYY-MM-DD (UTC midnight; with
 * end_of_day, the next midnight). Microseconds since the epoch. */
static bool parse_time(const char *s, bool end_of_day, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h = 0, mi = 0, sec = 0;
    long usec = 0;
    if (strlen(s) < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    const char *p = s + 10;
    bool date_only = *p == 0;
    if (!date_only) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        p++;
        if (digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &mi))
            return false;
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec))
                return false;
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                int nd = 0;
                long scale = 100000;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 6)
                        usec += (*p - '0') * scale;
                    scale /= 10;
                    nd++;
                    p++;
                }
                if (nd == 0)
                    return false;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    int64_t off = 0;
    if (!date_only && *p) {
        if ((*p == 'Z' || *p == 'z') && p[1] == 0) {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            int sign = *p == '-' ? -1 : 1;
            p++;
            if (digits(p, 2, &oh))
                return false;
            p += 2;
            if (*p == ':')
                p++;
            if (digits(p, 2, &om))
                return false;
            p += 2;
            if (*p || oh > 23 || om > 59)
                return false;
            off = sign * (oh * 3600 + om * 60);
        } else {
            return false;
        }
    }
    if (date_only && end_of_day)
        t += 86400;
    *out = ((int64_t)t - off) * 1000000 + usec;
    return true;
}

/* --------------------------------------------------------------- input -- */

static int reader_open(line_reader *r, const char *path, char *why, size_t whylen)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->name = path ? path : "<stdin>";
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : dup(STDIN_FILENO);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", r->name, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) == 0) {
        r->dev = st.st_dev;
        r->ino = st.st_ino;
    }
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        snprintf(why, whylen, "%s: cannot read it (out of memory)", r->name);
        return -1;
    }
    gzbuffer(r->gz, 128 * 1024);
    return 0;
}

static void reader_close(line_reader *r)
{
    if (r->gz)
        gzclose(r->gz);
    r->gz = NULL;
    free(r->buf);
    r->buf = NULL;
    r->cap = r->len = r->pos = 0;
}

/* Next line (NUL-terminated in place, without its newline).
 * Returns 1 with *line, 0 at the end of the data available now (a partial
 * last line is returned only when final), -1 on a read error (why filled).
 * A line longer than max_line is reported on stderr and skipped. */
static int reader_next(line_reader *r, size_t max_line, bool final, char **line, size_t *len, char *why,
                       size_t whylen)
{
    for (;;) {
        char *start = r->buf + r->pos;
        char *nl = r->len > r->pos ? memchr(start, '\n', r->len - r->pos) : NULL;
        if (nl) {
            *nl = 0;
            size_t l = (size_t)(nl - start);
            r->pos += l + 1;
            r->lineno++;
            if (r->skipping) {
                r->skipping = false;
                continue;
            }
            if (l > max_line) {
                fprintf(stderr, "martgate audit: %s:%llu: line longer than %zu bytes; skipped\n", r->name,
                        r->lineno, max_line);
                continue;
            }
            if (l && start[l - 1] == '\r')
                start[--l] = 0;
            *line = start;
            *len = l;
            return 1;
        }
        /* no newline buffered: make room and read more */
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, r->len - r->pos);
            r->len -= r->pos;
            r->pos = 0;
        }
        if (r->len >= max_line) {
            if (!r->skipping)
                fprintf(stderr, "martgate audit: %s:%llu: line longer than %zu bytes; skipped\n", r->name,
                        r->lineno + 1, max_line);
            r->skipping = true;
            r->len = 0;
        }
        if (r->cap - r->len < 65536 + 1) {
            size_t cap = r->cap ? r->cap * 2 : 131072;
            while (cap - r->len < 65536 + 1)
                cap *= 2;
            char *b = realloc(r->buf, cap);
            if (!b) {
                snprintf(why, whylen, "%s: out of memory", r->name);
                return -1;
            }
            r->buf = b;
            r->cap = cap;
        }
        size_t want = r->cap - r->len - 1;
        if (want > (1u << 30))
            want = 1u << 30;
        int n = gzread(r->gz, r->buf + r->len, (unsigned)want);
        if (n < 0) {
            int zerr;
            const char *m = gzerror(r->gz, &zerr);
            snprintf(why, whylen, "%s: %s", r->name, zerr == Z_ERRNO ? strerror(errno) : m);
            return -1;
        }
        if (n == 0) {
            int zerr;
            const char *m = gzerror(r->gz, &zerr);
            if (zerr != Z_OK && zerr != Z_BUF_ERROR) {
                snprintf(why, whylen, "%s: %s", r->name, zerr == Z_ERRNO ? strerror(errno) : m);
                return -1;
            }
            if (zerr == Z_BUF_ERROR && final) {
                /* a compressed file cut short (e.g. still being compressed by logrotate) */
                snprintf(why, whylen, "%s: compressed data ends early (the records before were read)", r->name);
                return -1;
            }
            gzclearerr(r->gz);
            if (final && r->len > 0 && !r->skipping) {
                r->buf[r->len] = 0;
                r->lineno++;
                *line = r->buf;
                *len = r->len;
                if (*len && r->buf[*len - 1] == '\r')
                    r->buf[--*len] = 0;
                r->pos = r->len;
                return 1;
            }
            if (final) {
                r->len = r->pos = 0;
                r->skipping = false;
            }
            return 0;
        }
        r->consumed += (unsigned long long)n;
        r->len += (size_t)n;
    }
}

/* The reader for other commands (cmd_audit_internal.h). */
int cmd_audit_reader_open(line_reader *r, const char *path, char *why, size_t whylen)
{
    return reader_open(r, path, why, whylen);
}

int cmd_audit_reader_next(line_reader *r, size_t max_line, char **line, size_t *len, char *why, size_t whylen)
{
    return reader_next(r, max_line, true, line, len, why, whylen);
}

void cmd_audit_reader_close(line_reader *r)
{
    reader_close(r);
}

/* --------------------------------------------------------------- match -- */

const char *cmd_audit_str_field(json_t *rec, const char *key)
{
    json_t *v = json_object_get(rec, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The session id as text, whether the log holds a number or a string. */
const char *cmd_audit_session_text(json_t *rec, char *buf, size_t n)
{
    json_t *v = json_object_get(rec, "session");
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

static bool array_has_any(json_t *rec, const char *key, const strlist *want)
{
    json_t *arr = json_object_get(rec, key), *it;
    size_t i;
    json_array_foreach(arr, i, it) {
        if (json_is_string(it) && strlist_has(want, json_string_value(it)))
            return true;
    }
    return false;
}

/* "orders" matches any schema's orders; "sales.orders" only that one. */
static bool relation_matches(const char *rel, const char *want)
{
    if (strcmp(rel, want) == 0)
        return true;
    if (strchr(want, '.'))
        return false;
    const char *dot = strrchr(rel, '.');
    return dot && strcmp(dot + 1, want) == 0;
}

static bool record_matches(const audit_filter *f, json_t *rec, int64_t ts_us)
{
    if (f->events.n && !(cmd_audit_str_field(rec, "event") && strlist_has(&f->events, cmd_audit_str_field(rec, "event"))))
        return false;
    if (f->users.n) {
        const char *u = cmd_audit_str_field(rec, "user"), *eu = cmd_audit_str_field(rec, "end_user");
        if (!((u && strlist_has(&f->users, u)) || (eu && strlist_has(&f->users, eu))))
            return false;
    }
    if (f->groups.n && !array_has_any(rec, "groups", &f->groups))
        return false;
    if (f->decisions.n && !(cmd_audit_str_field(rec, "decision") && strlist_has(&f->decisions, cmd_audit_str_field(rec, "decision"))))
        return false;
    if (f->datasets.n && !array_has_any(rec, "datasets", &f->datasets))
        return false;
    if (f->relations.n) {
        bool any = false;
        json_t *arr = json_object_get(rec, "relations"), *it;
        size_t i;
        json_array_foreach(arr, i, it) {
            for (size_t k = 0; !any && json_is_string(it) && k < f->relations.n; k++)
                any = relation_matches(json_string_value(it), f->relations.v[k]);
        }
        if (!any)
            return false;
    }
    if (f->sessions.n) {
        char b[32];
        const char *s = cmd_audit_session_text(rec, b, sizeof b);
        if (!s || !strlist_has(&f->sessions, s))
            return false;
    }
    if (f->has_since && ts_us < f->since_us)
        return false;
    if (f->has_until && ts_us >= f->until_us)
        return false;
    return true;
}

/* ---------------------------------------------------------------- main -- */

typedef struct {
    audit_filter *f;
    out_table table;
    summary sum;
    long long matched;
    unsigned long long bad_lines;
    FILE *out;
} run_state;

/* One input line. Returns false when --limit is reached. */
static bool handle_line(run_state *st, line_reader *r, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return true;   /* blank line */
    json_error_t jerr;
    json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!rec || !json_is_object(rec)) {
        st->bad_lines++;
        fprintf(stderr, "martgate audit: %s:%llu: %s; skipped\n", r->name, r->lineno,
                rec ? "not a JSON object" : jerr.text);
        json_decref(rec);
        return true;
    }
    int64_t ts = 0;
    if (st->f->has_since || st->f->has_until) {
        const char *t = cmd_audit_str_field(rec, "ts");
        if (!t || !parse_time(t, false, &ts)) {
            st->bad_lines++;
            fprintf(stderr, "martgate audit: %s:%llu: no RFC 3339 \"ts\"; skipped\n", r->name, r->lineno);
            json_decref(rec);
            return true;
        }
    }
    if (record_matches(st->f, rec, ts)) {
        st->matched++;
        if (st->f->summary)
            cmd_audit_summary_add(&st->sum, rec);
        else if (st->f->json)
            fprintf(st->out, "%.*s\n", (int)len, line);
        else {
            if (cmd_audit_table_add(&st->table, rec) != 0)
                fprintf(stderr, "martgate audit: out of memory\n");
            if (st->table.nrows >= CLI_TABLE_FLUSH_ROWS)
                cmd_audit_table_flush(&st->table, st->out);
        }
    }
    json_decref(rec);
    return !(st->f->limit && st->matched >= st->f->limit);
}

/* Reads one input to its end. 0 ok, 1 read error, 2 --limit reached. */
static int read_all(run_state *st, line_reader *r)
{
    char why[512], *line;
    size_t len;
    int rc;
    while ((rc = reader_next(r, st->f->max_line, true, &line, &len, why, sizeof why)) == 1)
        if (!handle_line(st, r, line, len))
            return 2;
    if (rc < 0) {
        fprintf(stderr, "martgate audit: %s\n", why);
        return 1;
    }
    return 0;
}

static void flush_output(run_state *st)
{
    if (!st->f->summary && !st->f->json && st->table.nrows)
        cmd_audit_table_flush(&st->table, st->out);
    fflush(st->out);
}

/* --follow: reads to the end, then waits for more; a new file under the
 * path (rotation) is opened once the old one is read to its end; a file cut
 * shorter than what was read (copytruncate) is read again from the start. */
static int follow(run_state *st, const char *path)
{
    line_reader r;
    char why[512], *line;
    size_t len;
    if (reader_open(&r, path, why, sizeof why) != 0) {
        fprintf(stderr, "martgate audit: %s\n", why);
        return 1;
    }
    int status = 0;
    for (;;) {
        int rc;
        bool stop = false;
        while ((rc = reader_next(&r, st->f->max_line, false, &line, &len, why, sizeof why)) == 1)
            if (!handle_line(st, &r, line, len)) {
                stop = true;
                break;
            }
        if (rc < 0) {
            fprintf(stderr, "martgate audit: %s\n", why);
            status = 1;
            break;
        }
        flush_output(st);
        if (stop || !path)
            break;
        usleep(CLI_FOLLOW_POLL_US);
        struct stat st_path;
        if (stat(path, &st_path) != 0)
            continue;   /* between rename and create: wait */
        if (st_path.st_dev != r.dev || st_path.st_ino != r.ino) {
            /* rotated: finish the old file (a last line without newline included), then the new one */
            while ((rc = reader_next(&r, st->f->max_line, true, &line, &len, why, sizeof why)) == 1)
                if (!handle_line(st, &r, line, len)) {
                    stop = true;
                    break;
                }
            flush_output(st);
            reader_close(&r);
            if (stop)
                return status;
            if (reader_open(&r, path, why, sizeof why) != 0) {
                fprintf(stderr, "martgate audit: %s\n", why);
                return 1;
            }
        } else if ((unsigned long long)st_path.st_size < r.consumed) {
            fprintf(stderr, "martgate audit: %s was truncated; reading it from the start\n", path);
            reader_close(&r);
            if (reader_open(&r, path, why, sizeof why) != 0) {
                fprintf(stderr, "martgate audit: %s\n", why);
                return 1;
            }
        }
    }
    reader_close(&r);
    return status;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: martgate audit [OPTIONS] [FILE...]\n"
            "       martgate audit report --html OUT.html [OPTIONS] [FILE...]\n"
            "Reads audit logs (JSON lines; gzip-compressed rotated files too; stdin without FILE),\n"
            "oldest file first, and prints the records that match every filter given.\n"
            "A filter given several times matches any of its values.\n\n"
            "  --user NAME          user or end_user (the person Metabase names)\n"
            "  --group NAME         one of the user's groups\n"
            "  --decision D         allow, rewrite or deny\n"
            "  --dataset NAME       a dataset the statement touched\n"
            "  --relation NAME      schema.table, or a table name in any schema\n"
            "  --session ID         a session id\n"
            "  --event E            session_start, login_failed, statement or session_end\n"
            "  --since TIME         at or after TIME: RFC 3339 (2024-05-01T08:00:00Z) or YYYY-MM-DD (UTC)\n"
            "  --until TIME         before TIME; a bare date includes that whole day\n"
            "  --json               JSON lines, as in the log, instead of a table\n"
            "  --summary            counts by user x dataset x decision and the most frequent\n"
            "                       denied fingerprints (with --json: one JSON object)\n"
            "  --top N              how many denied fingerprints --summary lists (10)\n"
            "  --policy PATH        with --summary or report: datasets classified \"restricted\" there\n"
            "                       (and pg_sensitive) are counted as restricted reads\n"
            "  report --html OUT    write the summary as one self-contained HTML page (charts and tables)\n"
            "  --follow             keep reading FILE as it grows, across rotation (one FILE)\n"
            "  --limit N            stop after N matching records\n"
            "  --max-line-bytes N   longer input lines are reported and skipped (64 MiB)\n"
            "Bad input lines are reported on stderr as FILE:LINE and skipped. Exit status: 0, 1 when\n"
            "a file could not be read, 2 on a usage error.\n");
}

enum { OPT_USER = 256, OPT_GROUP, OPT_DECISION, OPT_DATASET, OPT_RELATION, OPT_SESSION, OPT_EVENT, OPT_SINCE, OPT_UNTIL,
       OPT_JSON, OPT_SUMMARY, OPT_TOP, OPT_FOLLOW, OPT_LIMIT, OPT_MAXLINE, OPT_HTML, OPT_POLICY };

/* The option statuses below: 0 goes on, -1 after --help (or out of memory
 * from strlist_add, which parse_audit_options tells apart), 2 a usage error. */

/* --decision: allow, rewrite or deny. */
static int add_decision(audit_filter *f, const char *arg)
{
    if (strcmp(arg, "allow") && strcmp(arg, "rewrite") && strcmp(arg, "deny")) {
        fprintf(stderr, "martgate audit: --decision '%s': use allow, rewrite or deny\n", arg);
        return 2;
    }
    return strlist_add(&f->decisions, arg);
}

/* --event: one of the four record events. */
static int add_event(audit_filter *f, const char *arg)
{
    if (strcmp(arg, "session_start") && strcmp(arg, "login_failed") && strcmp(arg, "statement") &&
        strcmp(arg, "session_end")) {
        fprintf(stderr, "martgate audit: --event '%s': use session_start, login_failed, statement or "
                        "session_end\n", arg);
        return 2;
    }
    return strlist_add(&f->events, arg);
}

/* --since or --until (a bare date in --until includes that whole day). */
static int set_time_bound(audit_filter *f, int o, const char *arg)
{
    int64_t t;
    if (!parse_time(arg, o == OPT_UNTIL, &t)) {
        fprintf(stderr, "martgate audit: --%s '%s': use RFC 3339 (2024-05-01T08:00:00Z) or YYYY-MM-DD\n",
                o == OPT_SINCE ? "since" : "until", arg);
        return 2;
    }
    if (o == OPT_SINCE) {
        f->has_since = true;
        f->since_us = t;
    } else {
        f->has_until = true;
        f->until_us = t;
    }
    return 0;
}

/* --top, --limit or --max-line-bytes, each with its own range. */
static int set_number(audit_filter *f, int o, const char *arg)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || *end || end == arg || v < (o == OPT_LIMIT ? 0 : 1) ||
        v > (o == OPT_MAXLINE ? (1LL << 30) : 1000000000LL)) {
        fprintf(stderr, "martgate audit: --%s '%s' is not a valid number\n",
                o == OPT_TOP ? "top" : o == OPT_LIMIT ? "limit" : "max-line-bytes", arg);
        return 2;
    }
    if (o == OPT_TOP)
        f->top = (int)v;
    else if (o == OPT_LIMIT)
        f->limit = v;
    else
        f->max_line = (size_t)v;
    return 0;
}

/* Applies one option from getopt_long to f. */
static int apply_audit_option(audit_filter *f, int o)
{
    switch (o) {
    case OPT_USER: return strlist_add(&f->users, optarg);
    case OPT_GROUP: return strlist_add(&f->groups, optarg);
    case OPT_DATASET: return strlist_add(&f->datasets, optarg);
    case OPT_RELATION: return strlist_add(&f->relations, optarg);
    case OPT_SESSION: return strlist_add(&f->sessions, optarg);
    case OPT_DECISION: return add_decision(f, optarg);
    case OPT_EVENT: return add_event(f, optarg);
    case OPT_SINCE:
    case OPT_UNTIL: return set_time_bound(f, o, optarg);
    case OPT_JSON: f->json = true; return 0;
    case OPT_SUMMARY: f->summary = true; return 0;
    case OPT_FOLLOW: f->follow = true; return 0;
    case OPT_HTML: f->html_path = optarg; return 0;
    case OPT_POLICY: f->policy_path = optarg; return 0;
    case OPT_TOP:
    case OPT_LIMIT:
    case OPT_MAXLINE: return set_number(f, o, optarg);
    case 'h':
        usage(stdout);
        return -1;
    default:
        usage(stderr);
        return 2;
    }
}

/* Fills f from argv and sets *first_file to the first FILE argument.
 * 0 goes on, -1 after --help, 1 when out of memory, 2 on a usage error. */
static int parse_audit_options(int argc, char **argv, audit_filter *f, int *first_file, bool report)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, OPT_USER},         {"group", required_argument, NULL, OPT_GROUP},
        {"decision", required_argument, NULL, OPT_DECISION}, {"dataset", required_argument, NULL, OPT_DATASET},
        {"relation", required_argument, NULL, OPT_RELATION}, {"session", required_argument, NULL, OPT_SESSION},
        {"event", required_argument, NULL, OPT_EVENT},       {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},       {"json", no_argument, NULL, OPT_JSON},
        {"summary", no_argument, NULL, OPT_SUMMARY},         {"top", required_argument, NULL, OPT_TOP},
        {"follow", no_argument, NULL, OPT_FOLLOW},           {"limit", required_argument, NULL, OPT_LIMIT},
        {"max-line-bytes", required_argument, NULL, OPT_MAXLINE}, {"help", no_argument, NULL, 'h'},
        {"html", required_argument, NULL, OPT_HTML},         {"policy", required_argument, NULL, OPT_POLICY},
        {NULL, 0, NULL, 0}};
    int status = 0, o;
    optind = 1;
    opterr = 1;
    while (status == 0 && (o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        status = apply_audit_option(f, o);
        if (status == -1 && o != 'h') {
            fprintf(stderr, "martgate audit: out of memory\n");
            status = 1;
        }
    }
    *first_file = optind;
    if (status == 0 && f->follow && (f->summary || argc - optind != 1)) {
        fprintf(stderr, "martgate audit: --follow takes exactly one FILE and no --summary\n");
        status = 2;
    }
    if (status == 0 && report != (f->html_path != NULL)) {
        fprintf(stderr, report ? "martgate audit report: --html OUT.html is required\n"
                               : "martgate audit: --html goes with the report command: martgate audit report --html OUT.html\n");
        status = 2;
    }
    if (status == 0 && report && (f->follow || f->json || f->summary)) {
        fprintf(stderr, "martgate audit report: --follow, --json and --summary do not apply\n");
        status = 2;
    }
    if (status == 0 && f->policy_path && !report && !f->summary) {
        fprintf(stderr, "martgate audit: --policy goes with --summary or report\n");
        status = 2;
    }
    if (status == 0 && f->has_since && f->has_until && f->until_us <= f->since_us) {
        fprintf(stderr, "martgate audit: --until is not after --since: nothing can match\n");
        status = 2;
    }
    return status;
}

/* Reads stdin to its end; 0, or 1 when it could not be read. */
static int read_stdin(run_state *st)
{
    line_reader r;
    char why[512];
    if (reader_open(&r, NULL, why, sizeof why) != 0) {
        fprintf(stderr, "martgate audit: %s\n", why);
        return 1;
    }
    int status = read_all(st, &r) == 1 ? 1 : 0;
    reader_close(&r);
    return status;
}

/* Reads the files in order until --limit is reached; 0, or 1 when one could not be read. */
static int read_files(run_state *st, char **files, int n)
{
    int status = 0;
    for (int i = 0; i < n; i++) {
        line_reader r;
        char why[512];
        if (reader_open(&r, files[i], why, sizeof why) != 0) {
            fprintf(stderr, "martgate audit: %s\n", why);
            status = 1;
            continue;
        }
        int rc = read_all(st, &r);
        reader_close(&r);
        if (rc == 1)
            status = 1;
        if (rc == 2)
            break;
    }
    return status;
}

/* Reads the inputs: the one FILE with --follow, stdin without FILE, or every FILE. */
static int read_inputs(run_state *st, char **files, int n)
{
    if (st->f->follow)
        return follow(st, files[0]);
    if (n == 0)
        return read_stdin(st);
    return read_files(st, files, n);
}

/* Prints the summary (with --summary), the rest of the table, and how many bad lines were skipped. */
static int print_results(run_state *st)
{
    int status = 0;
    if (st->f->html_path)
        status = cmd_audit_write_html(&st->sum, st->f->top, st->f->html_path, st->f->policy_path) ? 1 : 0;
    else if (st->f->summary)
        cmd_audit_print_summary(&st->sum, st->f->top, st->f->json, st->out);
    flush_output(st);
    if (st->bad_lines)
        fprintf(stderr, "martgate audit: %llu bad lines skipped\n", st->bad_lines);
    return status;
}

/* The restricted datasets: those the policy at path (if any) classifies
 * "restricted", and the built-in pg_sensitive. 0, or 1 when the policy does
 * not load (its errors on stderr) or out of memory. */
static int init_summary(summary *sum, const char *path)
{
    const char *names[256];
    size_t n = 0;
    policy_t *p = NULL;
    if (path) {
        policy_messages m;
        char err[2048];
        if (policy_load(path, &p, &m, err, sizeof err) != 0) {
            for (size_t i = 0; i < m.n_errors; i++)
                fprintf(stderr, "error: %s\n", m.errors[i]);
            fprintf(stderr, "martgate audit: --policy %s: %zu error%s\n", path, m.n_errors, m.n_errors == 1 ? "" : "s");
            policy_messages_free(&m);
            return 1;
        }
        policy_messages_free(&m);
        const char *name, *cls;
        for (size_t i = 0; n < sizeof names / sizeof *names - 1 && access_dataset_at(p, i, &name, &cls); i++)
            if (cls && strcmp(cls, "restricted") == 0 && strcmp(name, POLICY_SENSITIVE_DATASET) != 0)
                names[n++] = name;
    }
    names[n++] = POLICY_SENSITIVE_DATASET;
    int rc = cmd_audit_summary_init(sum, names, n, path != NULL);
    policy_unref(p);
    if (rc != 0) {
        fprintf(stderr, "martgate audit: out of memory\n");
        return 1;
    }
    return 0;
}

/* Frees the counts, the table and the filter's lists. */
static void free_audit_run(run_state *st, audit_filter *f)
{
    cmd_audit_summary_free(&st->sum);
    free(st->table.cells);
    free(f->users.v);
    free(f->groups.v);
    free(f->decisions.v);
    free(f->datasets.v);
    free(f->relations.v);
    free(f->sessions.v);
    free(f->events.v);
}

/* `martgate audit`: parse the options, read and filter the inputs, print the records or the summary. */
int cmd_audit_main(int argc, char **argv)
{
    audit_filter f = {.top = 10, .max_line = CLI_DEFAULT_MAX_LINE};
    run_state st = {.f = &f, .out = stdout};
    int first_file;
    bool report = argc > 1 && strcmp(argv[1], "report") == 0;
    if (report) {
        argc--;
        argv++;
    }
    int status = parse_audit_options(argc, argv, &f, &first_file, report);
    if (status == 0 && report)
        f.summary = true;
    if (status == 0 && f.summary)
        status = init_summary(&st.sum, f.policy_path);
    if (status == 0) {
        status = read_inputs(&st, argv + first_file, argc - first_file);
        int prc = print_results(&st);
        if (prc)
            status = prc;
    }
    if (status == -1)
        status = 0;
    free_audit_run(&st, &f);
    return status;
}

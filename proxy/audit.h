/*
 * audit: the audit trail. Sessions hand over one record per event
 * (session_start, login_failed, statement, session_end), as JSON text; a
 * writer thread of this module adds what the statement's text gives
 * (fingerprint, normalized text), appends the record as one JSON line to the
 * audit file, fsyncs at a configured interval, reopens
 * the file on SIGUSR1 for logrotate and drains everything on shutdown. An
 * optional second sink (proxy/audit_pg.h) copies the records into a warehouse
 * table. The event loop never does file or network I/O for auditing: the
 * queue is bounded, and when it is full the configured choice applies (the
 * session waits, or the statement is refused); no record is ever dropped
 * silently.
 *
 * Threads: audit_submit and audit_submit_record are safe from any thread. audit_wait,
 * audit_wait_cancel and audit_close belong to the event-loop thread (the one
 * running `base`); audit_loop_wait and audit_loop_wait_cancel to the thread of
 * the loop attached; audit_reopen may be called from any thread.
 */
#ifndef MARTGATE_AUDIT_H
#define MARTGATE_AUDIT_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/json_doc.h"

typedef struct audit_log audit_log;
typedef struct audit_settings audit_settings;

typedef enum { AUDIT_QUERY_NORMALIZED = 0, AUDIT_QUERY_FULL, AUDIT_QUERY_NONE } audit_query_mode;
typedef enum { AUDIT_WHEN_FULL_BLOCK = 0, AUDIT_WHEN_FULL_DENY } audit_when_full;

/* Finds a database of the config's `databases` by name for the warehouse sink
 * (`audit.warehouse.database`): its libpq conninfo and its service password
 * (NULL when none). Returns false when there is no such database. The strings
 * are copied before audit_settings_parse returns. */
typedef bool (*audit_db_lookup)(void *arg, const char *name, const char **conninfo,
                                const char **password);

/* Validates the "audit" object of a config (NULL: auditing off) strictly:
 * unknown keys and wrong types are errors naming file:line:col and the field.
 * Relative paths resolve against base_dir. No file is opened and no thread is
 * started, so config_load may call it for --check and for reloads. lookup may
 * be NULL when no warehouse sink is configured. Returns NULL with err filled
 * on error. */
audit_settings *audit_settings_parse(const json_doc *doc, const json_t *audit, const char *base_dir,
                                     audit_db_lookup lookup, void *lookup_arg, char *err, size_t errlen);
void audit_settings_free(audit_settings *s);
/* true when the settings came from an "audit" object (auditing is on). */
bool audit_settings_enabled(const audit_settings *s);
/* true when two settings would run the same audit log (for a reload: the
 * running log keeps its settings; a change takes a restart). */
bool audit_settings_same(const audit_settings *x, const audit_settings *y);

/* Opens the audit file (creating it, mode 0640), the spool of the warehouse
 * sink if any, and starts the threads. base is the event loop whose thread
 * calls audit_wait (required when auditing is on). With settings that are
 * off (audit_settings_enabled false) returns a no-op log: audit_submit frees
 * the records and returns AUDIT_OK, audit_enabled() is false. Returns NULL
 * only on failure, with err filled ("cannot open /var/log/martgate/audit.jsonl:
 * Permission denied"). */
audit_log *audit_start(const audit_settings *s, struct event_base *base, char *err, size_t errlen);

/* audit_settings_parse + audit_start in one call. audit == NULL: auditing off,
 * a no-op log (never NULL for that reason); NULL means an error (err filled). */
audit_log *audit_open(const json_doc *doc, const json_t *audit, const char *base_dir,
                      struct event_base *base, audit_db_lookup lookup, void *lookup_arg,
                      char *err, size_t errlen);

/* false for the no-op log (and NULL): sessions may skip building records. */
bool audit_enabled(const audit_log *a);

typedef enum { AUDIT_OK = 0, AUDIT_FULL_WAIT, AUDIT_FULL_DENY } audit_status;

/* Takes ownership of rec (a JSON object) when it returns AUDIT_OK. Never
 * blocks (it takes a mutex for a few instructions). Adds `ts` (now) when the
 * record has none. AUDIT_FULL_WAIT (when_full = block) and AUDIT_FULL_DENY
 * (when_full = deny): the queue is full and the record was NOT taken; the
 * caller keeps it, and pauses (audit_wait) or refuses the statement.
 * Records whose event is "session_end" are always taken, beyond queue_size,
 * so that a session's records are never lost. A record that is not a JSON
 * object is a programming error: logged, freed, AUDIT_OK. */
audit_status audit_submit(audit_log *a, json_t *rec);
/* Takes rec whatever the queue holds (like session_end). For a session being
 * freed: the record it still held after AUDIT_FULL_WAIT goes in with this,
 * before its session_end, so nothing of a session is lost. Never blocks. */
void audit_submit_always(audit_log *a, json_t *rec);

/* The hot path's record, already JSON text: `members` is the object's
 * members without the braces (proxy/jsonw), ts included; `query` (may be
 * NULL) the statement's text, which the writer treats by query_text mode
 * (fingerprint, normalized/full/no text); `normalized` (may be NULL) its
 * normalized text when the caller has it already. Everything is copied.
 * Always taken, like audit_submit_always. */
void audit_submit_record(audit_log *a, const char *members, size_t len, const char *query, size_t qlen,
                         const char *normalized, size_t nlen);

/* Would audit_submit take a record now? The session asks before a statement
 * runs, so that what the statement's completion writes (with
 * audit_submit_always) is bounded by the statements in flight. AUDIT_OK, or
 * the full-queue answer of when_full (counted as refused). */
audit_status audit_room(audit_log *a);

/* Calls cb(arg) once, on the event-loop thread, when the queue has room again
 * (at once, on the next loop iteration, if it has room now). One waiter per
 * arg: waiting again with the same arg replaces the earlier callback.
 * audit_wait_cancel removes it (call it when the session is freed). */
void audit_wait(audit_log *a, void (*cb)(void *arg), void *arg);
void audit_wait_cancel(audit_log *a, void *arg);

/* The same for the sessions of another event loop (a worker thread): each
 * attaches its own, whose callbacks run on that loop's thread. NULL when
 * auditing is off (waiting is then never needed). Detach on the loop's
 * thread before freeing its base; audit_close detaches those left. */
typedef struct audit_loop audit_loop;
audit_loop *audit_loop_attach(audit_log *a, struct event_base *base);
void audit_loop_detach(audit_loop *l);
void audit_loop_wait(audit_loop *l, void (*cb)(void *arg), void *arg);
void audit_loop_wait_cancel(audit_loop *l, void *arg);

/* SIGUSR1: the writer closes and reopens the file by its path between two
 * batches (after logrotate renamed it), so every record lands in exactly one
 * of the two files. Returns at once. */
void audit_reopen(audit_log *a);

/* Writes everything queued, fsyncs, stops the threads, frees the log. Call it
 * after the last session is freed (session_end records are queued by then)
 * and before event_base_free(base) (the log owns an event of that base).
 * If the file cannot be written it keeps retrying for AUDIT_CLOSE_RETRY_S
 * seconds, then writes the records it could not store to stderr (each line
 * prefixed "martgate-audit-unwritten: ") rather than lose them. Waiters not
 * yet called are dropped. NULL-safe. */
#define AUDIT_CLOSE_RETRY_S 10
void audit_close(audit_log *a);

/* May a session of `user` name its end user with a Metabase remark
 * ("-- Metabase:: userID: N")? The remark is the client's word: audit
 * trusts it from the users audit.end_user_from names (patterns, fnmatch),
 * or, without that key, from the policy's impersonators (impersonator: is
 * the session's user one). Other sessions' remarks are recorded as
 * end_user_claimed. */
bool audit_trusts_end_user(const audit_log *a, const char *user, bool impersonator);

/* "normalized" | "full" | "none" ("none" for the no-op log). */
const char *audit_query_text_mode(const audit_log *a);

/* RFC 3339 UTC with microseconds: "2026-11-25T12:00:00.123456Z". */
void audit_timestamp(char buf[32]);

/* Counters since audit_start (for metrics and tests). */
typedef struct {
    unsigned long long submitted;   /* records taken by audit_submit */
    unsigned long long written;     /* records appended to the file */
    unsigned long long refused;     /* submits answered FULL_WAIT or FULL_DENY */
    unsigned long long write_errors;/* failed write attempts (each retried) */
    unsigned long long queued;      /* records waiting now */
    unsigned long long queue_size;  /* audit.queue_size */
    bool warehouse;                 /* a warehouse sink is configured */
    /* the warehouse sink, when configured */
    unsigned long long warehouse_inserted;  /* rows the warehouse accepted */
    unsigned long long warehouse_pending;   /* records not there yet (memory, spool, in flight) */
    unsigned long long warehouse_dropped;   /* not copied: spool unwritable and memory cap reached (logged) */
    unsigned long long warehouse_spooled;   /* lines appended to the spool (the warehouse was behind or down) */
    unsigned long long warehouse_replayed;  /* lines inserted from the spool */
    bool warehouse_connected;
} audit_stats;
void audit_get_stats(audit_log *a, audit_stats *out);

/* ---- For tests only. ---- */
/* While paused, the writer takes nothing from the queue (audit_close still
 * drains). */
void audit_test_pause(audit_log *a, bool paused);
/* Blocks the caller until every record submitted so far is written and a
 * requested reopen is done, or timeout_ms passes. true when idle. */
bool audit_test_wait_idle(audit_log *a, int timeout_ms);

#endif

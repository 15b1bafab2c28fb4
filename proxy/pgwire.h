/*
 * pgwire: the PostgreSQL v3 frontend/backend protocol as bytes. Constants,
 * builders for the messages martgate itself answers with (ErrorResponse,
 * Authentication*, ParameterStatus, BackendKeyData, ReadyForQuery), and
 * readers for the few it must look inside (startup packet, Query, Parse).
 * No sockets here: everything works on libevent evbuffers or plain memory.
 */
#ifndef MARTGATE_PGWIRE_H
#define MARTGATE_PGWIRE_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_PROTOCOL_3_0      196608u   /* 3 << 16 */
#define PG_SSL_REQUEST_CODE  80877103u
#define PG_GSSENC_REQUEST_CODE 80877104u
#define PG_CANCEL_REQUEST_CODE 80877102u
/* martgate's own: a CancelRequest one martgate instance forwards to the peer
 * whose id the key names (proxy/cancel_forward). Handled like a
 * CancelRequest but never forwarded again, so that two instances whose
 * "peers" disagree cannot pass a cancel back and forth. 1234 << 16 | 5690:
 * PostgreSQL's request codes are 1234 << 16 | 5678..5680. */
#define PG_FORWARDED_CANCEL_CODE 80877114u
/* A CancelRequest packet: length 16, code, pid, secret key. */
#define PG_CANCEL_PACKET_BYTES 16

/* Startup packets are small; PostgreSQL itself caps them at 10000 bytes. */
#define PG_MAX_STARTUP_PACKET 10000u

/* SQLSTATEs martgate answers with. */
#define SQLSTATE_PROTOCOL_VIOLATION      "08P01"
#define SQLSTATE_CONNECTION_FAILURE      "08006"
#define SQLSTATE_INVALID_AUTHORIZATION   "28000"
#define SQLSTATE_INVALID_PASSWORD        "28P01"
#define SQLSTATE_INVALID_CATALOG_NAME    "3D000"
#define SQLSTATE_INSUFFICIENT_PRIVILEGE  "42501"
#define SQLSTATE_INVALID_SQL_STATEMENT_NAME "26000"
#define SQLSTATE_IN_FAILED_TRANSACTION   "25P02"
#define SQLSTATE_FEATURE_NOT_SUPPORTED   "0A000"
#define SQLSTATE_INVALID_PARAMETER_VALUE "22023"
#define SQLSTATE_OUT_OF_MEMORY           "53200"
#define SQLSTATE_TOO_MANY_CONNECTIONS    "53300"
#define SQLSTATE_PROGRAM_LIMIT_EXCEEDED  "54000"
#define SQLSTATE_ADMIN_SHUTDOWN          "57P01"
#define SQLSTATE_CANNOT_CONNECT_NOW      "57P03"
#define SQLSTATE_QUERY_CANCELED          "57014"

typedef struct {
    const char *severity;   /* "ERROR" or "FATAL" */
    const char *sqlstate;
    const char *message;
    const char *detail;     /* optional */
    const char *hint;       /* optional */
    int position;           /* 1-based cursor position in the query, 0 = none */
    bool parser;            /* the grammar's error: the warehouse would give it
                               even in a failed transaction (not sent) */
} pg_error;

/* Appends a whole message to out. All return 0, or -1 when out of memory. */
int pgw_error(struct evbuffer *out, const pg_error *e);
int pgw_auth_request(struct evbuffer *out, uint32_t code);          /* 'R' */
int pgw_parameter_status(struct evbuffer *out, const char *name, const char *value);
int pgw_backend_key(struct evbuffer *out, uint32_t pid, uint32_t secret);
int pgw_ready_for_query(struct evbuffer *out, char status);
/* A whole CancelRequest (code PG_CANCEL_REQUEST_CODE) or forwarded cancel
 * (PG_FORWARDED_CANCEL_CODE) packet into out. */
void pgw_cancel_packet(unsigned char out[PG_CANCEL_PACKET_BYTES], uint32_t code, uint32_t pid, uint32_t key);
/* A result set of text columns (type text, OID 25), for answers martgate
 * gives itself (the admin console): RowDescription, DataRow (NULL values
 * as SQL NULL), CommandComplete. */
int pgw_row_description(struct evbuffer *out, const char *const *names, size_t n);       /* 'T' */
int pgw_data_row(struct evbuffer *out, const char *const *values, size_t n);             /* 'D' */
int pgw_command_complete(struct evbuffer *out, const char *tag);                          /* 'C' */
int pgw_empty_query(struct evbuffer *out);                                               /* 'I' */
int pgw_negotiate_protocol(struct evbuffer *out, uint32_t newest_minor,
                           const char *const *unknown_options, size_t n);
int pgw_query(struct evbuffer *out, const char *sql);               /* 'Q' */
/* 'P'; types: the parameter count and type OIDs as the message carries
 * them (types_len bytes), NULL for none */
int pgw_parse(struct evbuffer *out, const char *stmt_name, const char *sql, const unsigned char *types,
              size_t types_len);
int pgw_close(struct evbuffer *out, char what, const char *name); /* 'C' of a statement ('S') or portal ('P') */

/* Peeks a message header (type byte + length including itself) at the start
 * of buf without consuming it. Returns false when fewer than 5 bytes. */
bool pgw_peek_header(struct evbuffer *buf, char *type, uint32_t *len);
/* Removes one whole message (type, length, len - 4 body bytes; the caller
 * checked they are all there) into a malloc'ed copy with a NUL after it, so
 * that a body's last string is terminated whatever the client sent; NULL
 * out of memory (the message stays). */
char *pgw_take_message(struct evbuffer *buf, uint32_t len);

/* A parsed startup packet: version plus name/value pairs, all borrowed from
 * the packet memory (which must outlive it). */
#define PG_MAX_STARTUP_PARAMS 64
typedef struct {
    uint32_t code;          /* protocol version, or a request code */
                            /* cancel_pid, cancel_key: of a CancelRequest or forwarded cancel */
    uint32_t cancel_pid, cancel_key;
    size_t nparams;
    const char *names[PG_MAX_STARTUP_PARAMS];
    const char *values[PG_MAX_STARTUP_PARAMS];
} pg_startup;

/* body points after the 4-byte length; len is the body length. Returns 0, or
 * -1 with a reason a person can read (malformed or too many parameters). */
int pgw_parse_startup(const char *body, size_t len, pg_startup *out, char *err, size_t errlen);
const char *pgw_startup_get(const pg_startup *s, const char *name);

/* Reads the NUL-terminated string at *pos within [body, body+len) and advances
 * *pos past it. NULL when there is no terminator. */
const char *pgw_read_cstring(const char *body, size_t len, size_t *pos);

/* ErrorResponse/NoticeResponse field lookup ('C' = SQLSTATE, 'M' = message)
 * in a message body; NULL when absent. */
const char *pgw_error_field(const char *body, size_t len, char field);

static inline uint32_t pgw_get_u32(const void *p)
{
    const unsigned char *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static inline void pgw_put_u32(void *p, uint32_t v)
{
    unsigned char *b = p;
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

#endif

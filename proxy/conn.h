/*
 * conn: one socket end of a session (client or warehouse), optionally TLS,
 * with an input and an output evbuffer, each made when first needed and
 * freed again by conn_trim once empty, so that an idle connection holds
 * neither (a quarter of an idle session's own memory). Unlike libevent's bufferevents it
 * writes at once when asked to flush (one send per batch, no epoll round
 * trip), reads with a single readv into reserved buffer space, and only
 * registers for writability when the kernel's buffer is full. PgBouncer's
 * relay works the same way; the syscalls per query are the proxy's cost.
 */
#ifndef MARTGATE_CONN_H
#define MARTGATE_CONN_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CONN_READABLE = 1,   /* new bytes in c->in */
    CONN_DRAINED = 2,    /* c->out fell to the low-water mark after being above it */
    CONN_CLOSED = 4,     /* EOF or error: c->error says which */
    CONN_TLS_READY = 8,  /* the TLS handshake finished */
} conn_event;

typedef struct conn conn;
typedef void (*conn_cb)(conn *c, conn_event what, void *arg);

struct conn {
    int fd;
    uint32_t low_water;
    SSL *ssl;                 /* NULL for plaintext */
    bool owns_ssl;            /* SSL_free on close (not for libpq's) */
    bool handshaking;
    bool read_enabled;
    bool closed;
    bool above_low;           /* out went above low_water since last DRAINED */
    bool oom;                 /* a buffer could not be made: fails at the next read or flush */
    struct evbuffer *in_, *out_;   /* through conn_in / conn_out only: NULL while not needed */
    struct event *rev;        /* in the caller's memory (conn_init's rev_mem) */
    struct event *wev;
    conn_cb cb;
    void *arg;
    uint64_t *bytes_read;     /* optional: bytes read are added here (metrics) */
    char *error;              /* why it closed (CONN_CLOSED): read it with conn_error */
};

/* rev_mem: conn_event_size() bytes of the caller's (aligned as malloc
 * aligns) that hold the read event until conn_close, so that a session's
 * connections need no allocation of their own for it. */
int conn_init(conn *c, struct event_base *base, int fd, conn_cb cb, void *arg, void *rev_mem);
/* The memory a read event takes (libevent's event_get_struct_event_size,
 * rounded up to malloc's alignment). */
size_t conn_event_size(void);
/* The input and output buffers, made when first asked for. Never NULL: out
 * of memory (or once closed) they are a scratch buffer of the thread whose
 * bytes are dropped, and the connection fails at its next read or flush. */
struct evbuffer *conn_in(conn *c);
struct evbuffer *conn_out(conn *c);
size_t conn_in_len(const conn *c);
size_t conn_out_len(const conn *c);
/* Frees the buffers that are empty. Only where no pointer to them is held:
 * the end of an event's work (proxy/session.c, session_flush). */
void conn_trim(conn *c);
/* Frees the thread's scratch buffer (a worker thread's last act). */
void conn_thread_end(void);
/* Starts a server-side TLS handshake on the socket (client side of a session). */
void conn_tls_accept(conn *c, SSL *ssl);
/* Uses an SSL session someone else established and owns (libpq's). */
void conn_tls_attach(conn *c, SSL *ssl);
void conn_read(conn *c, bool enable);
/* Writes as much of c->out as the socket takes now; registers for
 * writability when some is left. -1 when the connection is broken. */
int conn_flush(conn *c);
/* Why the connection closed, once CONN_CLOSED was reported. */
const char *conn_error(const conn *c);
/* Frees events, buffers and (if owned) the SSL; never closes fd. */
void conn_close(conn *c);

#endif

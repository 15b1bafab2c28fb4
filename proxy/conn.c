/*
 * conn: non-blocking socket I/O with optional TLS for the relay.
 */
#include "proxy/conn.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_CHUNK 16384
#define TLS_READ_BUDGET (64 * 1024)   /* per event, for fairness */

static void on_read_event(evutil_socket_t fd, short what, void *arg);
static void on_write_event(evutil_socket_t fd, short what, void *arg);

/* Where the bytes of a connection that has no buffer to take them go: made
 * with the thread's first connection, emptied on every use. */
static _Thread_local struct evbuffer *scratch_buf;

static struct evbuffer *scratch(void)
{
    if (!scratch_buf)
        scratch_buf = evbuffer_new();
    else
        evbuffer_drain(scratch_buf, evbuffer_get_length(scratch_buf));
    return scratch_buf;
}

void conn_thread_end(void)
{
    if (scratch_buf)
        evbuffer_free(scratch_buf);
    scratch_buf = NULL;
}

static struct evbuffer *buffer(conn *c, struct evbuffer **slot)
{
    if (*slot)
        return *slot;
    if (!c->closed && (*slot = evbuffer_new()))
        return *slot;
    if (!c->closed)
        c->oom = true;
    return scratch();
}

struct evbuffer *conn_in(conn *c) { return buffer(c, &c->in_); }
struct evbuffer *conn_out(conn *c) { return buffer(c, &c->out_); }
size_t conn_in_len(const conn *c) { return c->in_ ? evbuffer_get_length(c->in_) : 0; }
size_t conn_out_len(const conn *c) { return c->out_ ? evbuffer_get_length(c->out_) : 0; }

void conn_trim(conn *c)
{
    if (c->in_ && evbuffer_get_length(c->in_) == 0) {
        evbuffer_free(c->in_);
        c->in_ = NULL;
    }
    if (c->out_ && evbuffer_get_length(c->out_) == 0) {
        evbuffer_free(c->out_);
        c->out_ = NULL;
    }
}

size_t conn_event_size(void)
{
    size_t a = _Alignof(max_align_t);
    return (event_get_struct_event_size() + a - 1) / a * a;
}

int conn_init(conn *c, struct event_base *base, int fd, conn_cb cb, void *arg, void *rev_mem)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->cb = cb;
    c->arg = arg;
    c->low_water = 0;
    /* libevent's ABI-safe way to place an event in one's own memory */
    if (event_assign(rev_mem, base, fd, EV_READ | EV_PERSIST, on_read_event, c) == 0)
        c->rev = rev_mem;
    /* the write event is made the first time the socket's buffer is full,
     * the buffers when bytes first come or go */
    if (!c->rev || !scratch()) {
        conn_close(c);
        return -1;
    }
    return 0;
}

void conn_close(conn *c)
{
    if (c->rev)
        event_del(c->rev);   /* the memory is the caller's */
    if (c->wev)
        event_free(c->wev);
    if (c->in_)
        evbuffer_free(c->in_);
    if (c->out_)
        evbuffer_free(c->out_);
    if (c->ssl && c->owns_ssl)
        SSL_free(c->ssl);
    free(c->error);
    c->error = NULL;
    c->rev = c->wev = NULL;
    c->in_ = c->out_ = NULL;
    c->ssl = NULL;
    c->closed = true;
}

const char *conn_error(const conn *c)
{
    return c->error ? c->error : "connection closed (out of memory for the reason)";
}

static void fail(conn *c, const char *why)
{
    if (c->closed)
        return;
    c->error = strdup(why);
    c->closed = true;
    if (c->rev)
        event_del(c->rev);
    if (c->wev)
        event_del(c->wev);
    c->cb(c, CONN_CLOSED, c->arg);
}

static void tls_fail(conn *c, const char *what)
{
    char buf[128] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    char msg[160];
    snprintf(msg, sizeof msg, "%s%s%s", what, *buf ? ": " : "", buf);
    fail(c, msg);
}

/* Registers for writability, making the event the first time: most
 * connections never fill the kernel's buffer and never need one. */
static int want_write(conn *c)
{
    if (!c->wev)
        c->wev = event_new(event_get_base(c->rev), c->fd, EV_WRITE, on_write_event, c);
    if (!c->wev) {
        fail(c, "out of memory");
        return -1;
    }
    event_add(c->wev, NULL);
    return 0;
}

static void unwant_write(conn *c)
{
    if (c->wev)
        event_del(c->wev);
}

void conn_read(conn *c, bool enable)
{
    if (c->closed || enable == c->read_enabled)
        return;
    c->read_enabled = enable;
    if (!enable) {
        event_del(c->rev);
        return;
    }
    event_add(c->rev, NULL);
    /* TLS may hold decrypted bytes the socket will never signal again */
    if (c->ssl && !c->handshaking && SSL_pending(c->ssl) > 0)
        event_active(c->rev, EV_READ, 0);
}

static void handshake(conn *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->handshaking = false;
        unwant_write(c);
        c->cb(c, CONN_TLS_READY, c->arg);
        return;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return;   /* the persistent read event brings us back */
    case SSL_ERROR_WANT_WRITE:
        want_write(c);
        return;
    default:
        tls_fail(c, "TLS handshake failed");
    }
}

void conn_tls_accept(conn *c, SSL *ssl)
{
    c->ssl = ssl;
    c->owns_ssl = true;
    c->handshaking = true;
    SSL_set_fd(ssl, c->fd);
    SSL_set_accept_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

void conn_tls_attach(conn *c, SSL *ssl)
{
    c->ssl = ssl;
    c->owns_ssl = false;
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}

/* Reads land in one buffer shared by every connection of the thread (each
 * worker thread has its own) and are then appended to the input buffer at their size:
 * an idle connection holds no read buffer at all, which is most of what an
 * idle session would otherwise cost. */
static _Thread_local unsigned char read_buf[READ_CHUNK];

/* Returns bytes read, 0 on would-block, -1 after fail(). */
static ssize_t read_plain(conn *c)
{
    ssize_t got;
    do {
        got = read(c->fd, read_buf, sizeof read_buf);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        fail(c, got == 0 ? "connection closed" : strerror(errno));
        return -1;
    }
    if (evbuffer_add(conn_in(c), read_buf, (size_t)got) != 0 || c->oom) {
        fail(c, "out of memory");
        return -1;
    }
    return got;
}

static ssize_t read_tls(conn *c)
{
    ssize_t total = 0;
    while (total < TLS_READ_BUDGET) {
        ERR_clear_error();
        int rc = SSL_read(c->ssl, read_buf, (int)sizeof read_buf);
        if (rc > 0) {
            if (evbuffer_add(conn_in(c), read_buf, (size_t)rc) != 0 || c->oom) {
                fail(c, "out of memory");
                return -1;
            }
            total += rc;
            /* An SSL_read that finds the socket empty keeps the record
             * buffer it set up for the next record, for as long as the
             * session then idles (RELEASE_BUFFERS frees it only after a
             * record). Ask the kernel instead: the read event brings us back
             * when more comes. */
            int queued = 0;
            if (!SSL_has_pending(c->ssl) && ioctl(c->fd, FIONREAD, &queued) == 0 && queued == 0)
                break;
            continue;
        }
        int err = SSL_get_error(c->ssl, rc);
        if (err == SSL_ERROR_WANT_READ)
            break;
        if (err == SSL_ERROR_WANT_WRITE) {
            if (want_write(c) < 0)
                return -1;
            break;
        }
        /* a peer that closes without close_notify (most clients do) is a
         * close, not a TLS failure */
        unsigned long e = ERR_peek_error();
        if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && e == 0) ||
            (err == SSL_ERROR_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
            ERR_clear_error();
            if (total)
                break;   /* deliver what came before the close first */
            fail(c, "connection closed");
            return -1;
        }
        tls_fail(c, "TLS read failed");
        return -1;
    }
    if (total >= TLS_READ_BUDGET && SSL_pending(c->ssl) > 0)
        event_active(c->rev, EV_READ, 0);
    return total;
}

static void on_read_event(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->closed)
        return;
    if (c->handshaking) {
        handshake(c);
        return;
    }
    ssize_t n = c->ssl ? read_tls(c) : read_plain(c);
    if (n > 0 && c->bytes_read)
        *c->bytes_read += (uint64_t)n;
    if (n > 0)
        c->cb(c, CONN_READABLE, c->arg);
}

static int flush_plain(conn *c)
{
    while (evbuffer_get_length(c->out_) > 0) {
        int n = evbuffer_write(c->out_, c->fd);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            fail(c, strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
    }
    return 0;
}

static int flush_tls(conn *c)
{
    while (evbuffer_get_length(c->out_) > 0) {
        struct evbuffer_iovec v;
        /* one record up to 16 KiB at a time, from contiguous memory */
        size_t want = evbuffer_get_length(c->out_);
        if (want > 16384)
            want = 16384;
        unsigned char *p = evbuffer_pullup(c->out_, (ev_ssize_t)want);
        if (!p) {
            fail(c, "out of memory");
            return -1;
        }
        v.iov_base = p;
        v.iov_len = want;
        ERR_clear_error();
        int rc = SSL_write(c->ssl, v.iov_base, (int)v.iov_len);
        if (rc > 0) {
            evbuffer_drain(c->out_, (size_t)rc);
            continue;
        }
        int err = SSL_get_error(c->ssl, rc);
        if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
            return 0;
        tls_fail(c, "TLS write failed");
        return -1;
    }
    return 0;
}

int conn_flush(conn *c)
{
    if (c->closed)
        return -1;
    if (c->oom) {
        fail(c, "out of memory");
        return -1;
    }
    if (c->handshaking)
        return 0;
    size_t before = conn_out_len(c);
    if (before == 0)
        return 0;
    if (before > c->low_water)
        c->above_low = true;
    int rc = c->ssl ? flush_tls(c) : flush_plain(c);
    if (rc < 0)
        return -1;
    if (evbuffer_get_length(c->out_) == 0)
        unwant_write(c);
    else if (want_write(c) < 0)
        return -1;
    return 0;
}

static void on_write_event(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->closed)
        return;
    if (c->handshaking) {
        handshake(c);
        return;
    }
    if (conn_flush(c) < 0)
        return;
    if (c->above_low && conn_out_len(c) <= c->low_water) {
        c->above_low = false;
        c->cb(c, CONN_DRAINED, c->arg);
    }
    /* a TLS read that wanted to write can go on now */
    if (c->ssl && c->read_enabled && SSL_pending(c->ssl) > 0)
        event_active(c->rev, EV_READ, 0);
}

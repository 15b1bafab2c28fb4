/*
 * pgwire: message builders and readers for the PostgreSQL v3 protocol.
 */
#include "proxy/pgwire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends type + length header + body pieces in one evbuffer_add each. */
static int add_msg(struct evbuffer *out, char type, const void *body, size_t len)
{
    unsigned char hdr[5];
    hdr[0] = (unsigned char)type;
    pgw_put_u32(hdr + 1, (uint32_t)(len + 4));
    if (evbuffer_add(out, hdr, 5) != 0)
        return -1;
    return len ? evbuffer_add(out, body, len) : 0;
}

static size_t put_field(char *buf, size_t off, size_t cap, char code, const char *s)
{
    if (!s)
        return off;
    size_t n = strlen(s);
    if (off + n + 2 > cap)
        n = cap > off + 2 ? cap - off - 2 : 0;
    if (off + 2 > cap)
        return off;
    buf[off++] = code;
    memcpy(buf + off, s, n);
    off += n;
    buf[off++] = 0;
    return off;
}

int pgw_error(struct evbuffer *out, const pg_error *e)
{
    char body[4096];
    size_t off = 0, cap = sizeof body - 1;
    off = put_field(body, off, cap, 'S', e->severity);
    off = put_field(body, off, cap, 'V', e->severity);
    off = put_field(body, off, cap, 'C', e->sqlstate);
    off = put_field(body, off, cap, 'M', e->message);
    off = put_field(body, off, cap, 'D', e->detail);
    off = put_field(body, off, cap, 'H', e->hint);
    if (e->position > 0) {
        char pos[16];
        snprintf(pos, sizeof pos, "%d", e->position);
        off = put_field(body, off, cap, 'P', pos);
    }
    body[off++] = 0;
    return add_msg(out, 'E', body, off);
}

int pgw_auth_request(struct evbuffer *out, uint32_t code)
{
    unsigned char b[4];
    pgw_put_u32(b, code);
    return add_msg(out, 'R', b, 4);
}

int pgw_parameter_status(struct evbuffer *out, const char *name, const char *value)
{
    size_t a = strlen(name) + 1, b = strlen(value) + 1;
    unsigned char hdr[5];
    hdr[0] = 'S';
    pgw_put_u32(hdr + 1, (uint32_t)(4 + a + b));
    if (evbuffer_add(out, hdr, 5) || evbuffer_add(out, name, a) || evbuffer_add(out, value, b))
        return -1;
    return 0;
}

int pgw_backend_key(struct evbuffer *out, uint32_t pid, uint32_t secret)
{
    unsigned char b[8];
    pgw_put_u32(b, pid);
    pgw_put_u32(b + 4, secret);
    return add_msg(out, 'K', b, 8);
}

int pgw_ready_for_query(struct evbuffer *out, char status)
{
    return add_msg(out, 'Z', &status, 1);
}

void pgw_cancel_packet(unsigned char out[PG_CANCEL_PACKET_BYTES], uint32_t code, uint32_t pid, uint32_t key)
{
    pgw_put_u32(out, PG_CANCEL_PACKET_BYTES);
    pgw_put_u32(out + 4, code);
    pgw_put_u32(out + 8, pid);
    pgw_put_u32(out + 12, key);
}

/* A message built in a scratch buffer: type, then the body appended. */
static int add_built(struct evbuffer *out, char type, struct evbuffer *body)
{
    size_t len = evbuffer_get_length(body);
    unsigned char hdr[5];
    hdr[0] = (unsigned char)type;
    pgw_put_u32(hdr + 1, (uint32_t)(len + 4));
    int rc = evbuffer_add(out, hdr, 5) == 0 && evbuffer_add_buffer(out, body) == 0 ? 0 : -1;
    evbuffer_free(body);
    return rc;
}

/* A scratch body starting with an int16 count (RowDescription, DataRow). */
static struct evbuffer *counted_body(size_t n)
{
    struct evbuffer *b = evbuffer_new();
    unsigned char u16[2] = {(unsigned char)(n >> 8), (unsigned char)n};
    if (b)
        evbuffer_add(b, u16, 2);
    return b;
}

int pgw_row_description(struct evbuffer *out, const char *const *names, size_t n)
{
    struct evbuffer *b = counted_body(n);
    if (!b)
        return -1;
    for (size_t i = 0; i < n; i++) {
        /* name, table OID 0, column 0, type text (25), size -1, typmod -1, format text */
        static const unsigned char rest[18] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0};
        evbuffer_add(b, names[i], strlen(names[i]) + 1);
        evbuffer_add(b, rest, sizeof rest);
    }
    return add_built(out, 'T', b);
}

int pgw_data_row(struct evbuffer *out, const char *const *values, size_t n)
{
    struct evbuffer *b = counted_body(n);
    if (!b)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char len[4];
        size_t l = values[i] ? strlen(values[i]) : 0;
        pgw_put_u32(len, values[i] ? (uint32_t)l : 0xffffffffu);
        evbuffer_add(b, len, 4);
        if (values[i])
            evbuffer_add(b, values[i], l);
    }
    return add_built(out, 'D', b);
}

char *pgw_take_message(struct evbuffer *buf, uint32_t len)
{
    char *msg = malloc((size_t)len + 2);
    if (!msg)
        return NULL;
    evbuffer_remove(buf, msg, (size_t)len + 1);
    msg[len + 1] = 0;
    return msg;
}

int pgw_empty_query(struct evbuffer *out)
{
    return add_msg(out, 'I', NULL, 0);
}

int pgw_command_complete(struct evbuffer *out, const char *tag)
{
    return add_msg(out, 'C', tag, strlen(tag) + 1);
}

int pgw_negotiate_protocol(struct evbuffer *out, uint32_t newest_minor,
                           const char *const *unknown, size_t n)
{
    size_t len = 8;
    for (size_t i = 0; i < n; i++)
        len += strlen(unknown[i]) + 1;
    unsigned char hdr[13];
    hdr[0] = 'v';
    pgw_put_u32(hdr + 1, (uint32_t)(len + 4));
    pgw_put_u32(hdr + 5, PG_PROTOCOL_3_0 | newest_minor);
    pgw_put_u32(hdr + 9, (uint32_t)n);
    if (evbuffer_add(out, hdr, sizeof hdr))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (evbuffer_add(out, unknown[i], strlen(unknown[i]) + 1))
            return -1;
    return 0;
}

int pgw_query(struct evbuffer *out, const char *sql)
{
    return add_msg(out, 'Q', sql, strlen(sql) + 1);
}

int pgw_parse(struct evbuffer *out, const char *stmt_name, const char *sql, const unsigned char *types,
              size_t types_len)
{
    size_t a = strlen(stmt_name) + 1, b = strlen(sql) + 1;
    unsigned char hdr[5];
    static const unsigned char no_params[2] = {0, 0};
    if (!types) {
        types = no_params;
        types_len = sizeof no_params;
    }
    hdr[0] = 'P';
    pgw_put_u32(hdr + 1, (uint32_t)(4 + a + b + types_len));
    if (evbuffer_add(out, hdr, 5) || evbuffer_add(out, stmt_name, a) ||
        evbuffer_add(out, sql, b) || evbuffer_add(out, types, types_len))
        return -1;
    return 0;
}

int pgw_close(struct evbuffer *out, char what, const char *name)
{
    size_t a = strlen(name) + 1;
    unsigned char hdr[6];
    hdr[0] = 'C';
    pgw_put_u32(hdr + 1, (uint32_t)(4 + 1 + a));
    hdr[5] = (unsigned char)what;
    return evbuffer_add(out, hdr, 6) || evbuffer_add(out, name, a) ? -1 : 0;
}

bool pgw_peek_header(struct evbuffer *buf, char *type, uint32_t *len)
{
    unsigned char hdr[5];
    if (evbuffer_copyout(buf, hdr, 5) != 5)
        return false;
    *type = (char)hdr[0];
    *len = pgw_get_u32(hdr + 1);
    return true;
}

const char *pgw_read_cstring(const char *body, size_t len, size_t *pos)
{
    if (*pos >= len)
        return NULL;
    const char *s = body + *pos;
    const char *nul = memchr(s, 0, len - *pos);
    if (!nul)
        return NULL;
    *pos = (size_t)(nul - body) + 1;
    return s;
}

int pgw_parse_startup(const char *body, size_t len, pg_startup *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len < 4) {
        snprintf(err, errlen, "startup packet too short");
        return -1;
    }
    out->code = pgw_get_u32(body);
    if (out->code == PG_CANCEL_REQUEST_CODE || out->code == PG_FORWARDED_CANCEL_CODE) {
        if (len != 12) {
            snprintf(err, errlen, "%scancel request of %zu bytes, expected 12",
                     out->code == PG_FORWARDED_CANCEL_CODE ? "forwarded " : "", len);
            return -1;
        }
        out->cancel_pid = pgw_get_u32(body + 4);
        out->cancel_key = pgw_get_u32(body + 8);
        return 0;
    }
    if (out->code == PG_SSL_REQUEST_CODE || out->code == PG_GSSENC_REQUEST_CODE) {
        if (len != 4) {
            snprintf(err, errlen, "malformed SSL/GSS request");
            return -1;
        }
        return 0;
    }
    if ((out->code >> 16) != 3) {
        snprintf(err, errlen, "unsupported frontend protocol %u.%u: server supports 3.0",
                 out->code >> 16, out->code & 0xffff);
        return -1;
    }
    size_t pos = 4;
    for (;;) {
        const char *name = pgw_read_cstring(body, len, &pos);
        if (!name) {
            snprintf(err, errlen, "invalid startup packet layout: expected terminator as last byte");
            return -1;
        }
        if (*name == 0)
            break;
        const char *value = pgw_read_cstring(body, len, &pos);
        if (!value) {
            snprintf(err, errlen, "invalid startup packet layout: parameter \"%s\" has no value", name);
            return -1;
        }
        if (out->nparams == PG_MAX_STARTUP_PARAMS) {
            snprintf(err, errlen, "startup packet has more than %d parameters", PG_MAX_STARTUP_PARAMS);
            return -1;
        }
        out->names[out->nparams] = name;
        out->values[out->nparams] = value;
        out->nparams++;
    }
    if (pos != len) {
        snprintf(err, errlen, "invalid startup packet layout: expected terminator as last byte");
        return -1;
    }
    return 0;
}

const char *pgw_startup_get(const pg_startup *s, const char *name)
{
    for (size_t i = 0; i < s->nparams; i++)
        if (strcmp(s->names[i], name) == 0)
            return s->values[i];
    return NULL;
}

const char *pgw_error_field(const char *body, size_t len, char field)
{
    size_t pos = 0;
    while (pos < len && body[pos]) {
        char code = body[pos++];
        const char *v = pgw_read_cstring(body, len, &pos);
        if (!v)
            return NULL;
        if (code == field)
            return v;
    }
    return NULL;
}

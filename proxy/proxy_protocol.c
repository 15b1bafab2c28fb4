/*
 * proxy_protocol: the PROXY protocol v1/v2 header parser, the v2 header
 * builder, and the CIDR ranges of proxy_protocol.trusted (proxy_protocol.h).
 * No I/O, no allocation.
 */
#include "proxy/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_prefix[] = "PROXY ";

static int fail(proxy_header *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(proxy_header *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    return PROXY_ERROR;
}

static bool prefix_of(const uint8_t *buf, size_t len, const void *want, size_t wantlen)
{
    size_t n = len < wantlen ? len : wantlen;
    return memcmp(buf, want, n) == 0;
}

bool proxy_header_looks_like(const uint8_t *buf, size_t len)
{
    return len > 0 && (prefix_of(buf, len, v1_prefix, 5) || prefix_of(buf, len, v2_signature, sizeof v2_signature));
}

/* ---- v1 ----------------------------------------------------------------- */

/* A port: 1 to 5 decimal digits, at most 65535. */
static bool v1_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return false;
    long v = strtol(s, NULL, 10);
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static int parse_v1(const uint8_t *buf, size_t len, proxy_header *out, size_t *consumed)
{
    size_t scan = len < PROXY_V1_MAX_BYTES ? len : PROXY_V1_MAX_BYTES;
    size_t cr = scan;
    for (size_t i = 0; i < scan; i++) {
        if (buf[i] == '\r') {
            cr = i;
            break;
        }
        if (buf[i] < 0x20 || buf[i] > 0x7e)
            return fail(out, "v1 header has the byte 0x%02x at offset %zu (not printable ASCII)", buf[i], i);
    }
    if (cr == scan) {
        if (len >= PROXY_V1_MAX_BYTES)
            return fail(out, "v1 header without CRLF in its first %d bytes", PROXY_V1_MAX_BYTES);
        return PROXY_NEED_MORE;
    }
    if (cr + 1 >= PROXY_V1_MAX_BYTES)
        return fail(out, "v1 header without CRLF in its first %d bytes", PROXY_V1_MAX_BYTES);
    if (cr + 1 == len)
        return PROXY_NEED_MORE;
    if (buf[cr + 1] != '\n')
        return fail(out, "v1 header: CR not followed by LF");
    char line[PROXY_V1_MAX_BYTES];
    memcpy(line, buf, cr);
    line[cr] = 0;
    out->version = 1;
    if (strncmp(line, "PROXY UNKNOWN", 13) == 0 && (line[13] == 0 || line[13] == ' ')) {
        /* the rest of the line is to be ignored (the spec) */
        out->has_address = false;
        *consumed = cr + 2;
        return PROXY_OK;
    }
    /* single spaces between the fields, none empty */
    char *field[7];
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == 7)
            return fail(out, "v1 header has more than 6 fields");
        field[n++] = p;
        char *sp = strchr(p, ' ');
        if (!sp)
            break;
        *sp = 0;
        p = sp + 1;
    }
    if (strcmp(field[0], "PROXY") != 0)
        return fail(out, "v1 header does not start with \"PROXY \"");
    if (n < 2 || (strcmp(field[1], "TCP4") != 0 && strcmp(field[1], "TCP6") != 0))
        return fail(out, "v1 header: protocol \"%.16s\" is not TCP4, TCP6 or UNKNOWN", n < 2 ? "" : field[1]);
    if (n != 6)
        return fail(out, "v1 header has %zu fields, not 6 (PROXY proto src dst sport dport)", n);
    for (size_t i = 2; i < 6; i++)
        if (!*field[i])
            return fail(out, "v1 header has an empty field (two spaces in a row)");
    out->family = field[1][3] == '4' ? AF_INET : AF_INET6;
    if (inet_pton(out->family, field[2], out->src) != 1)
        return fail(out, "v1 header: source address \"%.45s\" is not an %s address", field[2],
                    out->family == AF_INET ? "IPv4" : "IPv6");
    if (inet_pton(out->family, field[3], out->dst) != 1)
        return fail(out, "v1 header: destination address \"%.45s\" is not an %s address", field[3],
                    out->family == AF_INET ? "IPv4" : "IPv6");
    if (!v1_port(field[4], &out->src_port))
        return fail(out, "v1 header: source port \"%.8s\" is not 0 to 65535", field[4]);
    if (!v1_port(field[5], &out->dst_port))
        return fail(out, "v1 header: destination port \"%.8s\" is not 0 to 65535", field[5]);
    out->has_address = true;
    *consumed = cr + 2;
    return PROXY_OK;
}

/* ---- v2 ----------------------------------------------------------------- */

static int parse_v2(const uint8_t *buf, size_t len, proxy_header *out, size_t *consumed)
{
    if (len < 16)
        return PROXY_NEED_MORE;
    uint8_t ver_cmd = buf[12], fam = buf[13];
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if ((ver_cmd >> 4) != 2)
        return fail(out, "v2 header of version %d (only 2 exists)", ver_cmd >> 4);
    if ((ver_cmd & 0x0f) > 1)
        return fail(out, "v2 header with command %d (neither LOCAL nor PROXY)", ver_cmd & 0x0f);
    if (body > PROXY_V2_MAX_LENGTH)
        return fail(out, "v2 header of %zu bytes after its 16 (martgate's limit is %d)", body, PROXY_V2_MAX_LENGTH);
    out->version = 2;
    out->local = (ver_cmd & 0x0f) == 0;
    size_t need;
    switch (fam) {
    case 0x00: need = 0; break;    /* UNSPEC */
    case 0x11: need = 12; break;   /* TCP over IPv4 */
    case 0x21: need = 36; break;   /* TCP over IPv6 */
    default:
        /* LOCAL carries no address that matters, whatever its family says */
        if (!out->local)
            return fail(out, "v2 header with address family 0x%02x (martgate takes TCP4 0x11, TCP6 0x21, "
                        "UNSPEC 0x00)", fam);
        need = 0;
    }
    if (body < need)
        return fail(out, "v2 header of length %zu, too short for its addresses (%zu bytes)", body, need);
    if (len < 16 + body)
        return PROXY_NEED_MORE;
    /* TLVs (type, 2-byte length, value) after the addresses: skipped, but
     * they must fill the rest exactly */
    size_t at = 16 + need, end = 16 + body;
    while (!out->local && at < end) {
        if (end - at < 3)
            return fail(out, "v2 header: a TLV at offset %zu is cut short", at);
        size_t tl = (size_t)buf[at + 1] << 8 | buf[at + 2];
        if (tl > end - at - 3)
            return fail(out, "v2 header: the TLV of type 0x%02x at offset %zu overruns the header", buf[at], at);
        at += 3 + tl;
    }
    if (!out->local && need > 0) {
        const uint8_t *a = buf + 16;
        size_t alen = fam == 0x11 ? 4 : 16;
        out->family = fam == 0x11 ? AF_INET : AF_INET6;
        memcpy(out->src, a, alen);
        memcpy(out->dst, a + alen, alen);
        out->src_port = (uint16_t)(a[2 * alen] << 8 | a[2 * alen + 1]);
        out->dst_port = (uint16_t)(a[2 * alen + 2] << 8 | a[2 * alen + 3]);
        out->has_address = true;
    }
    *consumed = end;
    return PROXY_OK;
}

int proxy_header_parse(const uint8_t *buf, size_t len, proxy_header *out, size_t *consumed)
{
    memset(out, 0, sizeof *out);
    *consumed = 0;
    if (len == 0)
        return PROXY_NEED_MORE;
    if (prefix_of(buf, len, v2_signature, sizeof v2_signature))
        return len < sizeof v2_signature ? PROXY_NEED_MORE : parse_v2(buf, len, out, consumed);
    if (prefix_of(buf, len, v1_prefix, strlen(v1_prefix)))
        return len < strlen(v1_prefix) ? PROXY_NEED_MORE : parse_v1(buf, len, out, consumed);
    return fail(out, "not a PROXY protocol header (first byte 0x%02x)", buf[0]);
}

int proxy_header_source(const proxy_header *h, char *buf, size_t len)
{
    if (!h->has_address || !inet_ntop(h->family, h->src, buf, (socklen_t)len)) {
        snprintf(buf, len, "unknown");
        return 0;
    }
    return h->src_port;
}

/* ---- building a v2 header ------------------------------------------------- */

size_t proxy_header_v2_build(uint8_t out[PROXY_V2_BUILD_MAX_BYTES], const char *src, int src_port,
                             const struct sockaddr *dst)
{
    uint8_t a[16], b[16] = {0};
    int family = 0;
    size_t alen = 0;
    uint16_t dport = 0;
    if (src && inet_pton(AF_INET, src, a) == 1) {
        family = AF_INET;
        alen = 4;
    } else if (src && inet_pton(AF_INET6, src, a) == 1) {
        family = AF_INET6;
        alen = 16;
    }
    if (family && dst && dst->sa_family == family) {
        if (family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)dst;
            memcpy(b, &in->sin_addr, 4);
            dport = ntohs(in->sin_port);
        } else {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)dst;
            memcpy(b, &in6->sin6_addr, 16);
            dport = ntohs(in6->sin6_port);
        }
    } else if (family && dst && dst->sa_family == AF_INET) {
        dport = ntohs(((const struct sockaddr_in *)dst)->sin_port);
    } else if (family && dst && dst->sa_family == AF_INET6) {
        dport = ntohs(((const struct sockaddr_in6 *)dst)->sin6_port);
    }
    memcpy(out, v2_signature, sizeof v2_signature);
    out[12] = 0x21;   /* version 2, PROXY */
    out[13] = family == AF_INET ? 0x11 : family == AF_INET6 ? 0x21 : 0x00;
    size_t body = family ? 2 * alen + 4 : 0;
    out[14] = (uint8_t)(body >> 8);
    out[15] = (uint8_t)body;
    if (!family)
        return 16;
    uint16_t sport = src_port > 0 && src_port <= 65535 ? (uint16_t)src_port : 0;
    uint8_t *p = out + 16;
    memcpy(p, a, alen);
    memcpy(p + alen, b, alen);
    p[2 * alen] = (uint8_t)(sport >> 8);
    p[2 * alen + 1] = (uint8_t)sport;
    p[2 * alen + 2] = (uint8_t)(dport >> 8);
    p[2 * alen + 3] = (uint8_t)dport;
    return 16 + body;
}

/* ---- CIDR ---------------------------------------------------------------- */

int proxy_cidr_parse(const char *text, proxy_cidr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof addr) {
        snprintf(err, errlen, "'%.64s' is not an address or address/prefix", text);
        return -1;
    }
    memcpy(addr, text, alen);
    addr[alen] = 0;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
    } else {
        snprintf(err, errlen, "'%.64s' is not an IPv4 or IPv6 address", addr);
        return -1;
    }
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->prefix = max;
    if (slash) {
        const char *p = slash + 1;
        size_t n = strlen(p);
        if (n == 0 || n > 3 || strspn(p, "0123456789") != n || (unsigned)atoi(p) > max) {
            snprintf(err, errlen, "'%.64s': the prefix length must be 0 to %u", text, max);
            return -1;
        }
        out->prefix = (unsigned)atoi(p);
    }
    /* bits beyond the prefix: a typo more often than not (10.0.0.1/8) */
    for (unsigned bit = out->prefix; bit < max; bit++)
        if (out->addr[bit / 8] & (0x80 >> (bit % 8))) {
            snprintf(err, errlen, "'%.64s' has bits set beyond its /%u prefix", text, out->prefix);
            return -1;
        }
    return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool proxy_cidr_match(const proxy_cidr *c, const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return c->family == AF_INET && prefix_equal(c->addr, (const uint8_t *)&in->sin_addr, c->prefix);
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        const uint8_t *a = (const uint8_t *)&in6->sin6_addr;
        if (c->family == AF_INET6)
            return prefix_equal(c->addr, a, c->prefix);
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && prefix_equal(c->addr, a + 12, c->prefix);
    }
    return false;
}

bool proxy_cidr_list_match(const proxy_cidr *list, size_t n, const struct sockaddr *addr)
{
    for (size_t i = 0; i < n; i++)
        if (proxy_cidr_match(&list[i], addr))
            return true;
    return false;
}

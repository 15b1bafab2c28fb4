/*
 * Unit tests for proxy/proxy_protocol: PROXY protocol v1 and v2 headers
 * (every kind, every split point, every way to be malformed, the size
 * limits), the CIDR ranges of proxy_protocol.trusted, and their parsing in
 * proxy/config (errors naming the file, line and field).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "proxy/config.h"
#include "proxy/proxy_protocol.h"

static const uint8_t SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* ---- helpers ----------------------------------------------------------- */

/* A v2 header: signature, ver/cmd, fam, the body (addresses and TLVs). */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t blen)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    if (blen)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

static size_t v2_tcp4(uint8_t *out, const char *src, uint16_t sport, const uint8_t *tlv, size_t tlen)
{
    uint8_t body[512];
    inet_pton(AF_INET, src, body);
    inet_pton(AF_INET, "10.9.8.7", body + 4);
    body[8] = (uint8_t)(sport >> 8);
    body[9] = (uint8_t)sport;
    body[10] = 0x19;   /* 6432 */
    body[11] = 0x20;
    if (tlen)
        memcpy(body + 12, tlv, tlen);
    return v2(out, 0x21, 0x11, body, 12 + tlen);
}

/* Every proper prefix of buf[0..n) needs more; the whole parses to OK with
 * n consumed, also with bytes after it. */
static void expect_ok_in_pieces(const uint8_t *buf, size_t n, proxy_header *h)
{
    size_t used = 99;
    for (size_t k = 0; k < n; k++) {
        int rc = proxy_header_parse(buf, k, h, &used);
        if (rc != PROXY_NEED_MORE)
            fail_msg("prefix of %zu of %zu bytes: %d (%s)", k, n, rc, h->reason);
    }
    uint8_t more[PROXY_HEADER_MAX_BYTES + 16];
    assert_true(n + 8 <= sizeof more);
    memcpy(more, buf, n);
    memcpy(more + n, "\x00\x00\x00\x08\x04\xd2\x16\x2f", 8);   /* an SSLRequest behind it */
    assert_int_equal(proxy_header_parse(more, n + 8, h, &used), PROXY_OK);
    assert_int_equal(used, n);
    int rc = proxy_header_parse(buf, n, h, &used);
    if (rc != PROXY_OK)
        fail_msg("whole header: %d (%s)", rc, h->reason);
    assert_int_equal(used, n);
}

static void expect_error(const uint8_t *buf, size_t n, const char *reason_part)
{
    proxy_header h;
    size_t used = 0;
    int rc = proxy_header_parse(buf, n, &h, &used);
    if (rc != PROXY_ERROR)
        fail_msg("expected an error mentioning '%s', got %d", reason_part, rc);
    if (!strstr(h.reason, reason_part))
        fail_msg("reason '%s' does not mention '%s'", h.reason, reason_part);
}

static void expect_text_error(const char *text, const char *reason_part)
{
    expect_error((const uint8_t *)text, strlen(text), reason_part);
}

static void source_is(const proxy_header *h, const char *addr, int port)
{
    char buf[64];
    assert_true(h->has_address);
    assert_int_equal(proxy_header_source(h, buf, sizeof buf), port);
    assert_string_equal(buf, addr);
}

/* ---- v1 ------------------------------------------------------------------ */

static void test_v1_tcp4(void **state)
{
    (void)state;
    const char *t = "PROXY TCP4 192.168.1.10 10.0.0.1 56324 6432\r\n";
    proxy_header h;
    expect_ok_in_pieces((const uint8_t *)t, strlen(t), &h);
    assert_int_equal(h.version, 1);
    assert_false(h.local);
    assert_int_equal(h.family, AF_INET);
    source_is(&h, "192.168.1.10", 56324);
    assert_int_equal(h.dst_port, 6432);
}

static void test_v1_tcp6(void **state)
{
    (void)state;
    const char *t = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    proxy_header h;
    expect_ok_in_pieces((const uint8_t *)t, strlen(t), &h);
    assert_int_equal(h.family, AF_INET6);
    source_is(&h, "2001:db8::1", 65535);
    assert_int_equal(h.dst_port, 0);
}

static void test_v1_unknown(void **state)
{
    (void)state;
    proxy_header h;
    const char *a = "PROXY UNKNOWN\r\n";
    expect_ok_in_pieces((const uint8_t *)a, strlen(a), &h);
    assert_false(h.has_address);
    /* the rest of an UNKNOWN line is ignored, whatever it holds */
    const char *b = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535 and more\r\n";
    expect_ok_in_pieces((const uint8_t *)b, strlen(b), &h);
    assert_false(h.has_address);
    char buf[32];
    assert_int_equal(proxy_header_source(&h, buf, sizeof buf), 0);
    assert_string_equal(buf, "unknown");
}

static void test_v1_longest(void **state)
{
    (void)state;
    /* the spec's worst case is exactly 107 bytes (UNKNOWN with IPv6 fields) */
    const char *u = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                    "65535 65535\r\n";
    assert_int_equal(strlen(u), PROXY_V1_MAX_BYTES);
    proxy_header h;
    expect_ok_in_pieces((const uint8_t *)u, strlen(u), &h);
    assert_false(h.has_address);
    const char *t = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                    "65535 65535\r\n";
    expect_ok_in_pieces((const uint8_t *)t, strlen(t), &h);
    source_is(&h, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void test_v1_malformed(void **state)
{
    (void)state;
    /* no CRLF within 107 bytes: refused at the 107th, not waited for */
    char line[200];
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    expect_error((const uint8_t *)line, PROXY_V1_MAX_BYTES, "CRLF");
    expect_error((const uint8_t *)line, sizeof line, "CRLF");
    proxy_header h;
    size_t used;
    assert_int_equal(proxy_header_parse((const uint8_t *)line, PROXY_V1_MAX_BYTES - 1, &h, &used), PROXY_NEED_MORE);
    /* CR as the 107th byte: the LF would be the 108th */
    line[PROXY_V1_MAX_BYTES - 1] = '\r';
    expect_error((const uint8_t *)line, PROXY_V1_MAX_BYTES, "CRLF");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "LF");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "0x0a");
    expect_error((const uint8_t *)"PROXY TCP4 1.2.3.4\0", 19, "0x00");   /* at once, not after 107 */
    expect_text_error("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "TCP5");
    expect_text_error("PROXY\r\n", "not a PROXY");   /* "PROXY" without its space */
    expect_text_error("PROXY \r\n", "protocol");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "fields");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3 4 5\r\n", "more than 6");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "field");
    expect_text_error("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "field");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "field");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", "field");
    expect_text_error("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "source address");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", "destination address");
    expect_text_error("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "IPv4");
    expect_text_error("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "IPv6");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "source port");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "source port");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 0x10\r\n", "destination port");
    expect_text_error("PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n", "destination port");
    expect_text_error("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY");
}

/* ---- v2 ------------------------------------------------------------------ */

static void test_v2_tcp4_with_tlvs(void **state)
{
    (void)state;
    /* ALPN "pg", an empty AUTHORITY, a NOOP of 5 bytes */
    const uint8_t tlv[] = {0x01, 0x00, 0x02, 'p', 'g', 0x02, 0x00, 0x00, 0x04, 0x00, 0x05, 0, 0, 0, 0, 0};
    uint8_t buf[600];
    size_t n = v2_tcp4(buf, "127.0.0.2", 40000, tlv, sizeof tlv);
    proxy_header h;
    expect_ok_in_pieces(buf, n, &h);
    assert_int_equal(h.version, 2);
    assert_false(h.local);
    assert_int_equal(h.family, AF_INET);
    source_is(&h, "127.0.0.2", 40000);
    assert_int_equal(h.dst_port, 6432);
    /* no TLVs at all */
    n = v2_tcp4(buf, "10.1.2.3", 1, NULL, 0);
    expect_ok_in_pieces(buf, n, &h);
    source_is(&h, "10.1.2.3", 1);
}

static void test_v2_tcp6(void **state)
{
    (void)state;
    uint8_t body[36 + 7];
    inet_pton(AF_INET6, "2001:db8::42", body);
    inet_pton(AF_INET6, "::1", body + 16);
    body[32] = 0xff;
    body[33] = 0xfe;
    body[34] = 0x00;
    body[35] = 0x50;
    const uint8_t tlv[] = {0x05, 0x00, 0x04, 1, 2, 3, 4};   /* UNIQUE_ID */
    memcpy(body + 36, tlv, sizeof tlv);
    uint8_t buf[128];
    size_t n = v2(buf, 0x21, 0x21, body, sizeof body);
    proxy_header h;
    expect_ok_in_pieces(buf, n, &h);
    assert_int_equal(h.family, AF_INET6);
    source_is(&h, "2001:db8::42", 65534);
    assert_int_equal(h.dst_port, 80);
}

static void test_v2_local_and_unspec(void **state)
{
    (void)state;
    uint8_t buf[128];
    proxy_header h;
    /* HAProxy's check-send-proxy: LOCAL, UNSPEC, no body */
    size_t n = v2(buf, 0x20, 0x00, NULL, 0);
    expect_ok_in_pieces(buf, n, &h);
    assert_true(h.local);
    assert_false(h.has_address);
    /* LOCAL with addresses: they are ignored */
    uint8_t tcp4[128];
    size_t m = v2_tcp4(tcp4, "1.2.3.4", 5, NULL, 0);
    tcp4[12] = 0x20;
    expect_ok_in_pieces(tcp4, m, &h);
    assert_true(h.local);
    assert_false(h.has_address);
    /* LOCAL of another family (a unix socket's): ignored too */
    uint8_t unixb[216] = {0};
    n = v2(buf, 0x20, 0x31, unixb, 100);
    expect_ok_in_pieces(buf, n, &h);
    assert_false(h.has_address);
    /* PROXY with UNSPEC: the peer's address stands */
    n = v2(buf, 0x21, 0x00, (const uint8_t *)"\x03\x00\x04" "abcd", 7);
    expect_ok_in_pieces(buf, n, &h);
    assert_false(h.local);
    assert_false(h.has_address);
}

static void test_v2_malformed(void **state)
{
    (void)state;
    uint8_t buf[PROXY_HEADER_MAX_BYTES + 64];
    uint8_t body[64] = {0};
    /* bad signature: any byte of it changed */
    for (size_t i = 0; i < 12; i++) {
        size_t n = v2(buf, 0x21, 0x11, body, 12);
        buf[i] ^= 0x40;
        expect_error(buf, n, "not a PROXY");
    }
    size_t n = v2(buf, 0x11, 0x11, body, 12);
    expect_error(buf, n, "version 1");
    n = v2(buf, 0x31, 0x11, body, 12);
    expect_error(buf, n, "version 3");
    n = v2(buf, 0x22, 0x11, body, 12);
    expect_error(buf, n, "command 2");
    n = v2(buf, 0x21, 0x12, body, 12);   /* UDP over IPv4 */
    expect_error(buf, n, "0x12");
    n = v2(buf, 0x21, 0x31, body, 12);   /* unix stream */
    expect_error(buf, n, "0x31");
    n = v2(buf, 0x21, 0x41, body, 12);
    expect_error(buf, n, "0x41");
    /* length too short for the family */
    n = v2(buf, 0x21, 0x11, body, 11);
    expect_error(buf, n, "too short");
    n = v2(buf, 0x21, 0x21, body, 35);
    expect_error(buf, n, "too short");
    /* ... said from the 16 bytes, without waiting for the body */
    expect_error(buf, 16, "too short");
    /* TLVs that do not fill the body exactly */
    const uint8_t cut[] = {0x04, 0x00};
    n = v2_tcp4(buf, "1.2.3.4", 5, cut, sizeof cut);
    expect_error(buf, n, "cut short");
    const uint8_t over[] = {0x04, 0x00, 0x09, 1, 2};
    n = v2_tcp4(buf, "1.2.3.4", 5, over, sizeof over);
    expect_error(buf, n, "overruns");
}

static void test_v2_oversized(void **state)
{
    (void)state;
    static uint8_t buf[16 + 65535];
    static uint8_t body[65535];
    /* the largest accepted: the limit exactly, as one big NOOP TLV */
    size_t tl = PROXY_V2_MAX_LENGTH - 12 - 3;
    body[12] = 0x04;
    body[13] = (uint8_t)(tl >> 8);
    body[14] = (uint8_t)tl;
    size_t n = v2(buf, 0x21, 0x11, body, PROXY_V2_MAX_LENGTH);
    assert_int_equal(n, PROXY_HEADER_MAX_BYTES);
    proxy_header h;
    size_t used;
    assert_int_equal(proxy_header_parse(buf, n, &h, &used), PROXY_OK);
    assert_int_equal(used, PROXY_HEADER_MAX_BYTES);
    assert_int_equal(proxy_header_parse(buf, n - 1, &h, &used), PROXY_NEED_MORE);
    /* one byte more is refused from the first 16 bytes */
    n = v2(buf, 0x21, 0x11, body, PROXY_V2_MAX_LENGTH + 1);
    expect_error(buf, 16, "limit");
    expect_error(buf, n, "limit");
    n = v2(buf, 0x21, 0x11, body, 65535);
    expect_error(buf, 16, "limit");
}

static void test_split_point_errors(void **state)
{
    (void)state;
    /* not a header at all: said at the first byte that differs */
    expect_error((const uint8_t *)"\x00\x00\x00\x08", 4, "not a PROXY");
    expect_error((const uint8_t *)"PROXZ", 5, "not a PROXY");
    expect_error((const uint8_t *)"\x0d\x0a\x0d\x0b", 4, "not a PROXY");
    proxy_header h;
    size_t used;
    assert_int_equal(proxy_header_parse((const uint8_t *)"", 0, &h, &used), PROXY_NEED_MORE);
    assert_int_equal(proxy_header_parse((const uint8_t *)"PRO", 3, &h, &used), PROXY_NEED_MORE);
    assert_int_equal(proxy_header_parse(SIG, 7, &h, &used), PROXY_NEED_MORE);
}

static void test_looks_like(void **state)
{
    (void)state;
    assert_false(proxy_header_looks_like((const uint8_t *)"", 0));
    assert_true(proxy_header_looks_like((const uint8_t *)"PROX", 4));
    assert_true(proxy_header_looks_like((const uint8_t *)"PROXY TCP4", 10));
    assert_true(proxy_header_looks_like(SIG, 4));
    assert_true(proxy_header_looks_like(SIG, 12));
    assert_false(proxy_header_looks_like((const uint8_t *)"\x00\x00\x00\x08\x04\xd2\x16\x2f", 8));
    assert_false(proxy_header_looks_like((const uint8_t *)"GET / HTTP/1.1", 14));
}

/* ---- CIDR ---------------------------------------------------------------- */

static struct sockaddr_storage sa(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    return ss;
}

static bool in_range(const char *cidr, const char *addr)
{
    proxy_cidr c;
    char err[200];
    if (proxy_cidr_parse(cidr, &c, err, sizeof err) != 0)
        fail_msg("%s: %s", cidr, err);
    struct sockaddr_storage ss = sa(addr);
    return proxy_cidr_match(&c, (const struct sockaddr *)&ss);
}

static void test_cidr_match(void **state)
{
    (void)state;
    assert_true(in_range("127.0.0.0/8", "127.0.0.1"));
    assert_true(in_range("127.0.0.0/8", "127.255.255.255"));
    assert_false(in_range("127.0.0.0/8", "128.0.0.0"));
    assert_false(in_range("127.0.0.0/8", "126.255.255.255"));
    assert_true(in_range("127.0.0.1/32", "127.0.0.1"));
    assert_false(in_range("127.0.0.1/32", "127.0.0.2"));
    assert_true(in_range("127.0.0.1", "127.0.0.1"));   /* an address alone: /32 */
    assert_false(in_range("127.0.0.1", "127.0.0.5"));
    assert_true(in_range("0.0.0.0/0", "203.0.113.9"));
    assert_false(in_range("0.0.0.0/0", "2001:db8::1"));   /* not across families */
    assert_true(in_range("10.0.0.0/9", "10.127.0.1"));
    assert_false(in_range("10.0.0.0/9", "10.128.0.1"));
    assert_true(in_range("192.168.1.128/25", "192.168.1.200"));
    assert_false(in_range("192.168.1.128/25", "192.168.1.127"));
    assert_true(in_range("::1/128", "::1"));
    assert_false(in_range("::1/128", "::2"));
    assert_true(in_range("::1", "::1"));
    assert_true(in_range("::/0", "2001:db8::1"));
    assert_false(in_range("::/0", "127.0.0.1"));
    assert_true(in_range("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in_range("2001:db8::/32", "2001:db9::1"));
    assert_true(in_range("fe80::/10", "febf::1"));
    assert_false(in_range("fe80::/10", "fec0::1"));
    /* an IPv4-mapped IPv6 peer (a listener on [::]) matches the IPv4 ranges */
    assert_true(in_range("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert_false(in_range("127.0.0.1/32", "::ffff:127.0.0.2"));
    assert_true(in_range("::ffff:127.0.0.0/104", "::ffff:127.0.0.9"));
    assert_false(in_range("127.0.0.0/8", "::127.0.0.1"));   /* IPv4-compatible is not mapped */
    /* lists, and families that never match */
    proxy_cidr list[2];
    char err[200];
    assert_int_equal(proxy_cidr_parse("10.0.0.0/8", &list[0], err, sizeof err), 0);
    assert_int_equal(proxy_cidr_parse("::1/128", &list[1], err, sizeof err), 0);
    struct sockaddr_storage a = sa("::1"), b = sa("10.2.3.4"), c = sa("11.0.0.1");
    assert_true(proxy_cidr_list_match(list, 2, (struct sockaddr *)&a));
    assert_true(proxy_cidr_list_match(list, 2, (struct sockaddr *)&b));
    assert_false(proxy_cidr_list_match(list, 2, (struct sockaddr *)&c));
    assert_false(proxy_cidr_list_match(list, 0, (struct sockaddr *)&b));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_false(proxy_cidr_list_match(list, 2, &un));
}

static void cidr_refused(const char *text, const char *part)
{
    proxy_cidr c;
    char err[200] = "";
    if (proxy_cidr_parse(text, &c, err, sizeof err) == 0)
        fail_msg("'%s' parsed", text);
    if (!strstr(err, part))
        fail_msg("'%s': error '%s' does not mention '%s'", text, err, part);
}

static void test_cidr_parse_errors(void **state)
{
    (void)state;
    cidr_refused("", "not an address");
    cidr_refused("/8", "not an address");
    cidr_refused("10.0.0/8", "not an IPv4 or IPv6");
    cidr_refused("localhost", "not an IPv4 or IPv6");
    cidr_refused("10.0.0.0/33", "0 to 32");
    cidr_refused("::/129", "0 to 128");
    cidr_refused("10.0.0.0/", "0 to 32");
    cidr_refused("10.0.0.0/-1", "0 to 32");
    cidr_refused("10.0.0.0/8x", "0 to 32");
    cidr_refused("10.0.0.1/8", "beyond its /8");
    cidr_refused("::1/64", "beyond its /64");
    proxy_cidr c;
    char err[200];
    assert_int_equal(proxy_cidr_parse("10.0.0.0/8", &c, err, sizeof err), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(proxy_cidr_parse("::", &c, err, sizeof err), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix, 128);
}

/* ---- config --------------------------------------------------------------- */

static char dir[] = "/tmp/martgate-test-proxy-protocol-XXXXXX";

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    write_file("jwt.secret", "0123456789abcdef0123456789abcdef-test-secret\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define BASE "{\"listen\": \"127.0.0.1:1\", \"tls\": {\"allow_plaintext\": true},\n" \
             "\"auth\": {\"keys\": [{\"hmac_secret_file\": \"jwt.secret\", \"algorithms\": [\"HS256\"]}]},\n" \
             "\"databases\": {\"app\": {\"conninfo\": \"host=127.0.0.1 dbname=app\"}}"

static config *load(const char *text, char *err, size_t errlen)
{
    write_file("martgate.json", text);
    char path[256];
    snprintf(path, sizeof path, "%s/martgate.json", dir);
    return config_load(path, err, errlen);
}

static void config_refused(const char *text, const char *const *expect)
{
    char err[1024] = "";
    config *c = load(text, err, sizeof err);
    if (c) {
        config_unref(c);
        fail_msg("loaded although it should not: %s", text);
    }
    for (const char *const *e = expect; *e; e++)
        if (!strstr(err, *e))
            fail_msg("error '%s' does not mention '%s'", err, *e);
}

static void test_config(void **state)
{
    (void)state;
    char err[1024] = "";
    config *c = load(BASE "}", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->n_proxy_trusted, 0);
    config_unref(c);
    c = load(BASE ",\n\"proxy_protocol\": {\"trusted\": [\"127.0.0.0/8\", \"10.0.0.0/8\", \"::1/128\"]}}", err,
             sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->n_proxy_trusted, 3);
    assert_int_equal(c->proxy_trusted[2].family, AF_INET6);
    assert_int_equal(c->proxy_trusted[1].prefix, 8);
    config_unref(c);
    config_refused(BASE ",\n\"proxy_protocol\": {\"trusted\": [\"127.0.0.0/8\",\n \"10.0.0.1/8\"]}}",
                   (const char *const[]){"martgate.json:5:", "proxy_protocol.trusted[1]", "beyond its /8", NULL});
    config_refused(BASE ",\n\"proxy_protocol\": {\"trusted\": [\"haproxy.local\"]}}",
                   (const char *const[]){"martgate.json:4:", "proxy_protocol.trusted[0]", "haproxy.local", NULL});
    config_refused(BASE ",\n\"proxy_protocol\": {\"trusted\": []}}",
                   (const char *const[]){"martgate.json:4:", "proxy_protocol.trusted", "at least one", NULL});
    config_refused(BASE ",\n\"proxy_protocol\": {}}",
                   (const char *const[]){"martgate.json:4:", "trusted", NULL});
    config_refused(BASE ",\n\"proxy_protocol\": {\"trusted\": [\"::1\"], \"trust\": 1}}",
                   (const char *const[]){"martgate.json:4:", "unknown key 'trust'", NULL});
    config_refused(BASE ",\n\"proxy_protocol\": {\"trusted\": [8]}}",
                   (const char *const[]){"martgate.json:4:", "proxy_protocol", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),
        cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),
        cmocka_unit_test(test_v1_longest),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v2_tcp4_with_tlvs),
        cmocka_unit_test(test_v2_tcp6),
        cmocka_unit_test(test_v2_local_and_unspec),
        cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_v2_oversized),
        cmocka_unit_test(test_split_point_errors),
        cmocka_unit_test(test_looks_like),
        cmocka_unit_test(test_cidr_match),
        cmocka_unit_test(test_cidr_parse_errors),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests_name("proxy_protocol", tests, setup, teardown);
}

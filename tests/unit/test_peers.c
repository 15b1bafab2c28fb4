/*
 * Unit tests for cancels across instances: the cancel key layout
 * (proxy/cancel_key.h), the "peer_id" and "peers" configuration keys
 * (proxy/config: bad ids, duplicates, the own id, bad addresses, each error
 * naming the file, line and field), the forwarded cancel packet
 * (proxy/pgwire) and the PROXY v2 header martgate sends before it
 * (proxy/proxy_protocol), read back by martgate's own parser.
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

#include "proxy/cancel_key.h"
#include "proxy/config.h"
#include "proxy/pgwire.h"
#include "proxy/proxy_protocol.h"

static char dir[] = "/tmp/martgate-test-peers-XXXXXX";

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

/* ---- the key layout ------------------------------------------------------- */

static void test_key_layout(void **state)
{
    (void)state;
    uint32_t pid = cancel_key_encode(2, 0, 0x12345);
    assert_int_equal(pid, (2u << 23) | 0x12345u);
    assert_int_equal(cancel_key_peer(pid), 2);
    assert_int_equal(cancel_key_worker(pid), 0);
    assert_int_equal(cancel_key_random(pid), 0x12345);
    assert_true(cancel_key_valid(pid));

    /* every field at its largest: still a positive int32 */
    pid = cancel_key_encode(255, 31, 0x3ffff);
    assert_int_equal(pid, 0x7fffffffu);
    assert_int_equal(cancel_key_peer(pid), 255);
    assert_int_equal(cancel_key_worker(pid), 31);
    assert_int_equal(cancel_key_random(pid), 0x3ffff);
    assert_true((int32_t)pid > 0);

    /* the fields do not spill into each other: random bits beyond 18 and
     * worker bits beyond 5 are cut */
    pid = cancel_key_encode(7, 0xff, 0xffffffffu);
    assert_int_equal(cancel_key_peer(pid), 7);
    assert_int_equal(cancel_key_worker(pid), 31);
    assert_int_equal(cancel_key_random(pid), 0x3ffff);
    pid = cancel_key_encode(0x1ff, 3, 1);
    assert_int_equal(cancel_key_peer(pid), 0xff);
    assert_int_equal(cancel_key_worker(pid), 3);
    assert_int_equal(pid & 0x80000000u, 0);

    /* no peering (peer 0), worker 0: the random part alone; 0 is never handed out */
    assert_false(cancel_key_valid(cancel_key_encode(0, 0, 0)));
    assert_false(cancel_key_valid(cancel_key_encode(5, 2, 0)));
    assert_true(cancel_key_valid(cancel_key_encode(0, 0, 1)));
    assert_false(cancel_key_valid(0x80000001u));

    /* each bit of the pid belongs to exactly one field */
    for (int bit = 0; bit < 31; bit++) {
        uint32_t p = 1u << bit;
        int fields = (cancel_key_peer(p) != 0) + (cancel_key_worker(p) != 0) + (cancel_key_random(p) != 0);
        assert_int_equal(fields, 1);
        assert_int_equal(cancel_key_encode(cancel_key_peer(p), cancel_key_worker(p), cancel_key_random(p)), p);
    }
}

/* ---- the configuration ---------------------------------------------------- */

#define BASE "{\n \"listen\": [\"127.0.0.1:6432\"],\n \"tls\": {\"allow_plaintext\": true},\n" \
             " \"auth\": {\"keys\": [{\"hmac_secret_file\": \"jwt.secret\", \"algorithms\": [\"HS256\"]}]},\n" \
             " \"databases\": {\"app\": {\"conninfo\": \"host=127.0.0.1 dbname=app\"}}"

static config *load(const char *text, char *err, size_t errlen)
{
    write_file("martgate.json", text);
    char path[256];
    snprintf(path, sizeof path, "%s/martgate.json", dir);
    return config_load(path, err, errlen);
}

static void expect_error(const char *text, const char *const *expect)
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

static void test_config_peers_valid(void **state)
{
    (void)state;
    char err[1024] = "";
    config *c = load(BASE "\n}\n", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->peer_id, 0);   /* absent: no peering */
    assert_int_equal(c->npeers, 0);
    assert_null(config_find_peer(c, 2));
    config_unref(c);

    c = load(BASE ",\n \"peer_id\": 1,\n \"peers\": [\n"
                  "  {\"id\": 2, \"address\": \"127.0.0.1:6433\", \"proxy_protocol\": true},\n"
                  "  {\"id\": 255, \"address\": \"[::1]:6434\"}\n ]\n}\n",
             err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->peer_id, 1);
    assert_int_equal(c->npeers, 2);
    const config_peer *p = config_find_peer(c, 2);
    assert_non_null(p);
    assert_string_equal(p->address, "127.0.0.1:6433");
    assert_true(p->proxy_protocol);
    assert_int_equal(p->addr.ss_family, AF_INET);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&p->addr;
    assert_int_equal(ntohs(in->sin_port), 6433);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);
    p = config_find_peer(c, 255);
    assert_non_null(p);
    assert_false(p->proxy_protocol);   /* the default */
    assert_int_equal(p->addr.ss_family, AF_INET6);
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&p->addr)->sin6_port), 6434);
    assert_null(config_find_peer(c, 1));   /* its own id is no peer */
    config_unref(c);

    /* peer_id alone: keys carry it, nothing is forwarded; an empty list too */
    c = load(BASE ",\n \"peer_id\": 255,\n \"peers\": []\n}\n", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->peer_id, 255);
    assert_int_equal(c->npeers, 0);
    config_unref(c);
}

static void test_config_peer_id_errors(void **state)
{
    (void)state;
    expect_error(BASE ",\n \"peer_id\": 0\n}\n",
                 (const char *const[]){"martgate.json:6:", "'peer_id' is 0, must be between 1 and 255", NULL});
    expect_error(BASE ",\n \"peer_id\": 256\n}\n",
                 (const char *const[]){"martgate.json:6:", "peer_id", "256", NULL});
    expect_error(BASE ",\n \"peer_id\": \"1\"\n}\n",
                 (const char *const[]){"martgate.json:6:", "'peer_id' must be an integer", NULL});
    /* peers without an own id: the peers could not find this instance's sessions */
    expect_error(BASE ",\n \"peers\": [{\"id\": 2, \"address\": \"127.0.0.1:6433\"}]\n}\n",
                 (const char *const[]){"martgate.json:6:", "peers: needs peer_id", NULL});
    expect_error(BASE ",\n \"peer_id\": 1,\n \"peers\": {\"id\": 2}\n}\n",
                 (const char *const[]){"martgate.json:7:", "peers: must be an array", NULL});
}

static void test_config_peers_errors(void **state)
{
    (void)state;
#define PEERS(x) BASE ",\n \"peer_id\": 1,\n \"peers\": [\n  {\"id\": 2, \"address\": \"127.0.0.1:6433\"},\n  " x "\n ]\n}\n"
    /* bad ids */
    expect_error(PEERS("{\"id\": 0, \"address\": \"127.0.0.1:6434\"}"),
                 (const char *const[]){"martgate.json:9:", "peers[1]: 'id' is 0, must be between 1 and 255", NULL});
    expect_error(PEERS("{\"id\": 300, \"address\": \"127.0.0.1:6434\"}"),
                 (const char *const[]){"martgate.json:9:", "peers[1]: 'id' is 300", NULL});
    expect_error(PEERS("{\"id\": -1, \"address\": \"127.0.0.1:6434\"}"),
                 (const char *const[]){"peers[1]: 'id' is -1", NULL});
    expect_error(PEERS("{\"id\": \"3\", \"address\": \"127.0.0.1:6434\"}"),
                 (const char *const[]){"peers[1]: 'id' must be an integer", NULL});
    expect_error(PEERS("{\"address\": \"127.0.0.1:6434\"}"),
                 (const char *const[]){"martgate.json:9:", "peers[1]", "id", NULL});
    /* a duplicate, and the own id */
    expect_error(PEERS("{\"id\": 2, \"address\": \"127.0.0.1:6434\"}"),
                 (const char *const[]){"martgate.json:9:", "peers[1].id: 2 is listed twice", NULL});
    expect_error(PEERS("{\"id\": 1, \"address\": \"127.0.0.1:6434\"}"),
                 (const char *const[]){"martgate.json:9:", "peers[1].id: 1 is this instance's own peer_id", NULL});
    /* bad addresses: a host name, no port, port 0 or too large, garbage, not a string */
    static const char *const bad[] = {"localhost:6434", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                                      "127.0.0.1:64x", "1.2.3:6434", "::1:6434x", "", ":6434", "[::1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024], want[128];
        char entry[128];
        snprintf(entry, sizeof entry, "{\"id\": 3, \"address\": \"%s\"}", bad[i]);
        snprintf(text, sizeof text, PEERS("%s"), entry);
        snprintf(want, sizeof want, "peers[1].address: '%s' is not an IP address and port", bad[i]);
        expect_error(text, (const char *const[]){"martgate.json:9:", want, NULL});
    }
    expect_error(PEERS("{\"id\": 3, \"address\": 6434}"),
                 (const char *const[]){"martgate.json:9:", "peers[1]: 'address' must be a string", NULL});
    expect_error(PEERS("{\"id\": 3}"), (const char *const[]){"peers[1]", "address", NULL});
    /* unknown keys and wrong types */
    expect_error(PEERS("{\"id\": 3, \"address\": \"127.0.0.1:6434\", \"proxy\": true}"),
                 (const char *const[]){"martgate.json:9:", "unknown key 'proxy'", NULL});
    expect_error(PEERS("{\"id\": 3, \"address\": \"127.0.0.1:6434\", \"proxy_protocol\": 1}"),
                 (const char *const[]){"peers[1]", "proxy_protocol", NULL});
    expect_error(PEERS("\"127.0.0.1:6434\""),
                 (const char *const[]){"martgate.json:9:", "peers[1]: must be an object", NULL});
#undef PEERS
}

/* ---- the forwarded packet and its PROXY header ------------------------------ */

static void test_forwarded_cancel_packet(void **state)
{
    (void)state;
    unsigned char pkt[PG_CANCEL_PACKET_BYTES];
    pgw_cancel_packet(pkt, PG_FORWARDED_CANCEL_CODE, 0x01234567, 0x89abcdef);
    assert_int_equal(pgw_get_u32(pkt), 16);
    assert_int_equal(pgw_get_u32(pkt + 4), (1234u << 16) | 5690u);
    pg_startup st;
    char err[128];
    assert_int_equal(pgw_parse_startup((const char *)pkt + 4, 12, &st, err, sizeof err), 0);
    assert_int_equal(st.code, PG_FORWARDED_CANCEL_CODE);
    assert_int_equal(st.cancel_pid, 0x01234567);
    assert_int_equal(st.cancel_key, 0x89abcdef);
    /* a plain CancelRequest reads as before */
    pgw_cancel_packet(pkt, PG_CANCEL_REQUEST_CODE, 7, 8);
    assert_int_equal(pgw_parse_startup((const char *)pkt + 4, 12, &st, err, sizeof err), 0);
    assert_int_equal(st.code, PG_CANCEL_REQUEST_CODE);
    assert_int_equal(st.cancel_pid, 7);
    /* the wrong length is refused, as for a CancelRequest */
    unsigned char longer[20] = {0};
    pgw_put_u32(longer, PG_FORWARDED_CANCEL_CODE);
    assert_int_equal(pgw_parse_startup((const char *)longer, 16, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "forwarded cancel request of 16 bytes, expected 12"));
}

static void test_proxy_header_build(void **state)
{
    (void)state;
    uint8_t hdr[PROXY_V2_BUILD_MAX_BYTES];
    proxy_header h;
    size_t used;
    char addr[64];

    struct sockaddr_in dst4 = {.sin_family = AF_INET, .sin_port = htons(6433)};
    inet_pton(AF_INET, "127.0.0.1", &dst4.sin_addr);
    size_t n = proxy_header_v2_build(hdr, "10.1.2.3", 54321, (struct sockaddr *)&dst4);
    assert_int_equal(n, 28);
    assert_int_equal(proxy_header_parse(hdr, n, &h, &used), PROXY_OK);
    assert_int_equal(used, n);
    assert_int_equal(h.version, 2);
    assert_false(h.local);
    assert_true(h.has_address);
    assert_int_equal(h.family, AF_INET);
    assert_int_equal(proxy_header_source(&h, addr, sizeof addr), 54321);
    assert_string_equal(addr, "10.1.2.3");
    assert_int_equal(h.dst_port, 6433);
    assert_memory_equal(h.dst, &dst4.sin_addr, 4);

    struct sockaddr_in6 dst6 = {.sin6_family = AF_INET6, .sin6_port = htons(6434)};
    inet_pton(AF_INET6, "::1", &dst6.sin6_addr);
    n = proxy_header_v2_build(hdr, "2001:db8::7", 1, (struct sockaddr *)&dst6);
    assert_int_equal(n, 52);
    assert_int_equal(proxy_header_parse(hdr, n, &h, &used), PROXY_OK);
    assert_int_equal(h.family, AF_INET6);
    assert_int_equal(proxy_header_source(&h, addr, sizeof addr), 1);
    assert_string_equal(addr, "2001:db8::7");
    assert_int_equal(h.dst_port, 6434);

    /* an IPv6 canceller, an IPv4 peer: the unspecified destination of the
     * canceller's family, the peer's port */
    n = proxy_header_v2_build(hdr, "::ffff:10.0.0.9", 5, (struct sockaddr *)&dst4);
    assert_int_equal(proxy_header_parse(hdr, n, &h, &used), PROXY_OK);
    assert_int_equal(h.family, AF_INET6);
    assert_int_equal(h.dst_port, 6433);
    static const uint8_t zero[16] = {0};
    assert_memory_equal(h.dst, zero, 16);

    /* no address to name: PROXY over UNSPEC, the receiver keeps its peer's */
    n = proxy_header_v2_build(hdr, "local", 0, (struct sockaddr *)&dst4);
    assert_int_equal(n, 16);
    assert_int_equal(proxy_header_parse(hdr, n, &h, &used), PROXY_OK);
    assert_false(h.local);
    assert_false(h.has_address);

    /* the packet right behind the header stays for the startup reader */
    uint8_t both[PROXY_V2_BUILD_MAX_BYTES + PG_CANCEL_PACKET_BYTES];
    n = proxy_header_v2_build(both, "10.1.2.3", 54321, (struct sockaddr *)&dst4);
    pgw_cancel_packet(both + n, PG_FORWARDED_CANCEL_CODE, 1, 2);
    assert_int_equal(proxy_header_parse(both, n + PG_CANCEL_PACKET_BYTES, &h, &used), PROXY_OK);
    assert_int_equal(used, n);
    assert_int_equal(pgw_get_u32(both + used + 4), PG_FORWARDED_CANCEL_CODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_layout),
        cmocka_unit_test(test_config_peers_valid),
        cmocka_unit_test(test_config_peer_id_errors),
        cmocka_unit_test(test_config_peers_errors),
        cmocka_unit_test(test_forwarded_cancel_packet),
        cmocka_unit_test(test_proxy_header_build),
    };
    return cmocka_run_group_tests_name("peers", tests, setup, teardown);
}

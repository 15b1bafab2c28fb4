/*
 * fuzz_proxy_header: the PROXY protocol header parser of proxy/proxy_protocol
 * on arbitrary bytes, copied into a buffer of exactly their size so that
 * AddressSanitizer sees any read past it. It asserts (abort()): a header
 * that parses consumed at least 8 and at most PROXY_HEADER_MAX_BYTES bytes,
 * no more than it was given, and parses the same from exactly those bytes;
 * every shorter prefix of a parsed header needs more; NEED_MORE is only said
 * of fewer than PROXY_HEADER_MAX_BYTES bytes; an error has a reason; a
 * parsed address prints; and the CIDR parser, fed the same bytes as text,
 * either fails with a reason or gives a prefix within its family's bits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/proxy_protocol.h"

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_proxy_header: invariant failed: %s: ", #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);

    proxy_header h;
    size_t used = 0;
    int rc = proxy_header_parse(buf, size, &h, &used);
    CHECK(rc == PROXY_OK || rc == PROXY_NEED_MORE || rc == PROXY_ERROR, "result %d", rc);
    if (rc == PROXY_OK) {
        CHECK(used >= 8 && used <= size && used <= PROXY_HEADER_MAX_BYTES, "consumed %zu of %zu", used, size);
        CHECK(h.version == 1 || h.version == 2, "version %d", h.version);
        CHECK(!h.has_address || h.family == AF_INET || h.family == AF_INET6, "family %d", h.family);
        char addr[64];
        int port = proxy_header_source(&h, addr, sizeof addr);
        CHECK(port >= 0 && port <= 65535 && memchr(addr, 0, sizeof addr), "port %d", port);
        proxy_header again;
        size_t used2 = 0;
        CHECK(proxy_header_parse(buf, used, &again, &used2) == PROXY_OK && used2 == used,
              "the header's own %zu bytes do not parse alike", used);
        for (size_t k = 0; k < used; k += 1 + used / 64) {
            int r = proxy_header_parse(buf, k, &again, &used2);
            CHECK(r == PROXY_NEED_MORE, "a prefix of %zu of the %zu-byte header gave %d", k, used, r);
        }
    } else if (rc == PROXY_NEED_MORE) {
        CHECK(size < PROXY_HEADER_MAX_BYTES, "NEED_MORE after %zu bytes", size);
        CHECK(used == 0, "consumed %zu while needing more", used);
    } else {
        CHECK(h.reason[0] != 0, "an error without a reason");
        CHECK(memchr(h.reason, 0, sizeof h.reason) != NULL, "reason not terminated");
    }
    (void)proxy_header_looks_like(buf, size);

    /* the same bytes as a proxy_protocol.trusted entry */
    char text[80];
    size_t tn = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, buf, tn);
    text[tn] = 0;
    proxy_cidr c;
    char err[200] = "";
    if (proxy_cidr_parse(text, &c, err, sizeof err) == 0)
        CHECK((c.family == AF_INET && c.prefix <= 32) || (c.family == AF_INET6 && c.prefix <= 128),
              "family %d prefix %u", c.family, c.prefix);
    else
        CHECK(err[0] != 0, "a CIDR error without a reason");

    free(buf);
    return 0;
}

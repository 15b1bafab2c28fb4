/*
 * proxy_protocol: the PROXY protocol header (HAProxy's doc/proxy-protocol.txt,
 * versions 1 and 2) that a load balancer in front of martgate sends before
 * the client's first byte, so that the client's own address is the one
 * martgate logs, audits and limits. A pure parser (no I/O: the session feeds
 * it what it has read so far), the builder of the v2 header martgate itself
 * sends before a cancel it forwards to a peer (proxy/cancel_forward), and the
 * CIDR ranges of proxy_protocol.trusted, the addresses that must send one
 * (docs/scaling.md).
 */
#ifndef MARTGATE_PROXY_PROTOCOL_H
#define MARTGATE_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* A v1 header is one line of at most 107 bytes, CRLF included (the spec). */
#define PROXY_V1_MAX_BYTES 107
/* A v2 header is 16 bytes and a length (addresses, then TLVs) that the spec
 * allows up to 65535; martgate refuses more than this (HAProxy sends well
 * under 300 bytes, even with its SSL and unique-id TLVs). */
#define PROXY_V2_MAX_LENGTH 2048
/* The most bytes a header that martgate accepts may take. */
#define PROXY_HEADER_MAX_BYTES (16 + PROXY_V2_MAX_LENGTH)

typedef enum {
    PROXY_ERROR = -1,       /* not a valid header: out->reason says why */
    PROXY_NEED_MORE = 0,    /* a valid beginning: read more and call again */
    PROXY_OK = 1,           /* a whole header of *consumed bytes */
} proxy_parse_result;

typedef struct {
    int version;            /* 1 or 2 */
    bool local;             /* v2 LOCAL: the proxy's own connection (a health check) */
    bool has_address;       /* false (v1 UNKNOWN, v2 LOCAL or UNSPEC): the peer's own address stands */
    int family;             /* AF_INET or AF_INET6 when has_address */
    uint8_t src[16], dst[16];   /* network order; 4 bytes of each for AF_INET */
    uint16_t src_port, dst_port;
    char reason[160];       /* why, on PROXY_ERROR */
} proxy_header;

/* Parses the header at the start of buf[0..len): PROXY_OK with *consumed
 * (the header's bytes; what follows is the client's), PROXY_NEED_MORE while
 * buf is a valid but incomplete beginning (never beyond
 * PROXY_HEADER_MAX_BYTES), PROXY_ERROR otherwise. v1 and v2 are told apart
 * by their first bytes. */
int proxy_header_parse(const uint8_t *buf, size_t len, proxy_header *out, size_t *consumed);

/* Whether buf begins like a PROXY header (v1 "PROXY" or the v2 signature,
 * as far as len goes; false for len 0): to say so when an untrusted peer
 * sends one. */
bool proxy_header_looks_like(const uint8_t *buf, size_t len);

/* The source address of h (has_address) as text into buf; returns the port. */
int proxy_header_source(const proxy_header *h, char *buf, size_t len);

/* The most bytes proxy_header_v2_build writes (TCP over IPv6, no TLV). */
#define PROXY_V2_BUILD_MAX_BYTES (16 + 36)
/* A v2 PROXY header naming src (an IPv4 or IPv6 address as text, and its
 * port) as the client and dst (AF_INET or AF_INET6; its address when of
 * src's family, the unspecified one otherwise) as where it connected. When
 * src is no address, the header is PROXY with family UNSPEC: the receiver
 * keeps the connection's own address. Returns the bytes written to out. */
size_t proxy_header_v2_build(uint8_t out[PROXY_V2_BUILD_MAX_BYTES], const char *src, int src_port,
                             const struct sockaddr *dst);

/* One range of proxy_protocol.trusted. */
typedef struct {
    int family;             /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;        /* 0..32 or 0..128 */
} proxy_cidr;

/* "10.0.0.0/8", "::1/128", or an address alone (a /32 or /128). -1 with err
 * when it is not one, or when bits beyond the prefix are set. */
int proxy_cidr_parse(const char *text, proxy_cidr *out, char *err, size_t errlen);
/* Whether the address (AF_INET or AF_INET6; an IPv4-mapped IPv6 address
 * also matches the IPv4 ranges) is in the range. Other families never are. */
bool proxy_cidr_match(const proxy_cidr *c, const struct sockaddr *addr);
bool proxy_cidr_list_match(const proxy_cidr *list, size_t n, const struct sockaddr *addr);

#endif

/*
 * fuzz_startup: the startup packet reader of proxy/pgwire on arbitrary bytes.
 * The input is a packet body (what follows the 4-byte length: protocol code,
 * then name/value C strings and a final NUL), copied into a buffer of exactly
 * its size so AddressSanitizer sees any read past it. pgw_parse_startup runs on
 * it, then pgw_startup_get for "user", "database" and "options", then
 * pgw_read_cstring walks the whole buffer and pgw_error_field reads it as an
 * ErrorResponse body. It asserts (abort()): every returned pointer and the
 * NUL that ends its string lie inside the buffer; a parsed packet has at most
 * PG_MAX_STARTUP_PARAMS parameters, a cancel request is exactly 12 bytes and
 * an SSL/GSS request exactly 4; pgw_startup_get returns the value of the first
 * parameter of that name; pgw_read_cstring always moves forward.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/pgwire.h"

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "fuzz_startup: invariant failed: %s: ", #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            abort();                                                      \
        }                                                                 \
    } while (0)

/* p is a NUL-terminated string entirely within [buf, buf + len). */
static void check_inside(const char *buf, size_t len, const char *p, const char *what)
{
    CHECK(p >= buf && p < buf + len, "%s at offset %td of a %zu-byte buffer", what, p - buf, len);
    CHECK(memchr(p, 0, (size_t)(buf + len - p)) != NULL, "%s at offset %td has no NUL inside the buffer",
          what, p - buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);

    pg_startup s;
    char err[256] = "";
    if (pgw_parse_startup(buf, size, &s, err, sizeof err) == 0) {
        CHECK(s.nparams <= PG_MAX_STARTUP_PARAMS, "%zu parameters", s.nparams);
        if (s.code == PG_CANCEL_REQUEST_CODE || s.code == PG_FORWARDED_CANCEL_CODE)
            CHECK(size == 12, "cancel request of %zu bytes accepted", size);
        else if (s.code == PG_SSL_REQUEST_CODE || s.code == PG_GSSENC_REQUEST_CODE)
            CHECK(size == 4, "SSL/GSS request of %zu bytes accepted", size);
        else
            CHECK((s.code >> 16) == 3, "protocol %u accepted", s.code);
        for (size_t i = 0; i < s.nparams; i++) {
            check_inside(buf, size, s.names[i], "name");
            check_inside(buf, size, s.values[i], "value");
            CHECK(s.names[i][0] != 0, "empty parameter name %zu", i);
        }
        static const char *const keys[] = {"user", "database", "options"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const char *v = pgw_startup_get(&s, keys[k]);
            const char *first = NULL;
            for (size_t i = 0; i < s.nparams && !first; i++)
                if (strcmp(s.names[i], keys[k]) == 0)
                    first = s.values[i];
            CHECK(v == first, "pgw_startup_get(%s) is not the first such parameter's value", keys[k]);
            if (v)
                check_inside(buf, size, v, keys[k]);
        }
    } else {
        CHECK(err[0] != 0, "parse failed without a reason");
    }

    size_t pos = 0;
    for (;;) {
        size_t before = pos;
        const char *str = pgw_read_cstring(buf, size, &pos);
        if (!str) {
            CHECK(pos == before, "pgw_read_cstring moved pos on failure");
            break;
        }
        CHECK(str == buf + before, "string at offset %td, expected %zu", str - buf, before);
        check_inside(buf, size, str, "pgw_read_cstring");
        CHECK(pos > before && pos <= size, "pos %zu after %zu (size %zu)", pos, before, size);
        CHECK(pos == before + strlen(str) + 1, "pos not just past the NUL");
    }

    static const char fields[] = {'C', 'M', 'S', 'D'};
    for (size_t f = 0; f < sizeof fields; f++) {
        const char *v = pgw_error_field(buf, size, fields[f]);
        if (v)
            check_inside(buf, size, v, "pgw_error_field");
    }

    free(buf);
    return 0;
}

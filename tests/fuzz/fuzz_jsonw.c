/*
 * fuzz_jsonw: the audit records' JSON writer (proxy/jsonw) on arbitrary bytes.
 * Each input builds one record: `{`, jw_strn "v" with all the input bytes,
 * jw_int "i" with a long long and jw_ms "ms" with a double both taken from the
 * input's first 16 bytes (zero-padded: any bit pattern, NaN and infinities
 * included), jw_str "n" with NULL (null), `}`. It asserts (abort()): the
 * writer never reports out of memory; the text is valid JSON for jansson
 * (json_loadb with JSON_ALLOW_NUL) and holds no newline byte (one record, one
 * line); "v" is a string that equals the input bytes exactly when the input is
 * valid UTF-8, and otherwise equals them with every byte that starts no valid
 * sequence replaced by U+FFFD; "i" is the integer written; "ms" is a
 * number in [0, 1e15] within a microsecond (relative 1e-12 when large) of the
 * value clamped to that range (NaN and negatives give 0); "n" is null.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proxy/jsonw.h"

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "fuzz_jsonw: invariant failed: %s: ", #cond); \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            abort();                                                    \
        }                                                               \
    } while (0)

/* Length of the strict UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 when p starts none. */
static size_t seq_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (p[k] < 0x80 || p[k] > 0xBF)
            return 0;
    return len;
}

/* What the string must decode to: the input with every byte that starts no
 * valid sequence replaced by U+FFFD (malloc'd, *valid says if none was). */
static uint8_t *expected_text(const uint8_t *p, size_t n, size_t *out_len, int *valid)
{
    uint8_t *o = malloc(n * 3 + 1);
    if (!o)
        abort();
    size_t i = 0, k = 0;
    *valid = 1;
    while (i < n) {
        size_t l = seq_len(p + i, n - i);
        if (l) {
            memcpy(o + k, p + i, l);
            k += l;
            i += l;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
            *valid = 0;
        }
    }
    *out_len = k;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t head[16] = {0};
    memcpy(head, data, size < sizeof head ? size : sizeof head);
    long long iv;
    double ms;
    memcpy(&iv, head, sizeof iv);
    memcpy(&ms, head + 8, sizeof ms);

    jsonw w = {0};
    jw_raw(&w, "{", 1);
    jw_strn(&w, "v", (const char *)data, size);
    jw_int(&w, "i", iv);
    jw_ms(&w, "ms", ms);
    jw_str(&w, "n", NULL);
    jw_raw(&w, "}", 1);
    CHECK(!w.oom, "out of memory");
    CHECK(w.s != NULL && w.len == strlen(w.s), "len %zu", w.len);
    CHECK(memchr(w.s, '\n', w.len) == NULL, "newline in the record");
    CHECK(memchr(w.s, '\r', w.len) == NULL, "carriage return in the record");

    json_error_t jerr;
    json_t *root = json_loadb(w.s, w.len, JSON_ALLOW_NUL, &jerr);
    CHECK(root != NULL, "invalid JSON (%s at %d:%d): %s", jerr.text, jerr.line, jerr.column, w.s);
    CHECK(json_is_object(root) && json_object_size(root) == 4, "not an object of 4 members");

    json_t *v = json_object_get(root, "v");
    CHECK(json_is_string(v), "v is not a string");
    const char *sv = json_string_value(v);
    size_t sl = json_string_length(v);
    size_t el;
    int valid;
    uint8_t *expect = expected_text(data, size, &el, &valid);
    if (valid)
        CHECK(sl == size && memcmp(sv, data, size) == 0, "valid UTF-8 input of %zu bytes came back as %zu bytes",
              size, sl);
    CHECK(sl == el && memcmp(sv, expect, el) == 0, "string of %zu bytes decodes to %zu bytes, expected %zu", size,
          sl, el);
    free(expect);

    json_t *i = json_object_get(root, "i");
    CHECK(json_is_integer(i) && json_integer_value(i) == iv, "i is not %lld", iv);

    json_t *m = json_object_get(root, "ms");
    CHECK(json_is_number(m), "ms is not a number");
    double got = json_number_value(m);
    double want = ms > 0 ? (ms > 1e15 ? 1e15 : ms) : 0;   /* NaN fails ms > 0 */
    CHECK(got >= 0 && got <= 1e15, "ms %.17g out of range", got);
    CHECK(fabs(got - want) <= 0.0005 + want * 1e-12, "ms %.17g written as %.17g", ms, got);

    CHECK(json_is_null(json_object_get(root, "n")), "n is not null");

    json_decref(root);
    jw_free(&w);
    return 0;
}

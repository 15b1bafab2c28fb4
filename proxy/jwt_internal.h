/*
 * jwt_internal: what the two halves of JWT login share: the verifier's keys
 * and settings, built by jwt_keys.c (the configuration's keys, files and
 * JWKS) and read by jwt_verify.c (checking a token). Private to them.
 */
#ifndef MARTGATE_JWT_INTERNAL_H
#define MARTGATE_JWT_INTERNAL_H

#include <jwt.h>
#include <stdbool.h>
#include <stddef.h>

#include "proxy/jwk.h"
#include "proxy/jwt_verify.h"

#define ALG_BIT(a) (1u << (unsigned)(a))
#define MAX_KEYS 256
#define TIME_CLAMP (1LL << 53)   /* NumericDate values beyond this are clamped */

typedef struct {
    char *kid;                 /* NULL when the key has none */
    char *label;               /* for messages: the kid, or where the key came from */
    jwk_kind kind;
    unsigned char *material;   /* HMAC secret bytes, or SubjectPublicKeyInfo PEM */
    size_t len;
    unsigned algs;             /* ALG_BIT of each allowed jwt_alg_t */
} vkey;

struct jwt_verifier {
    vkey *keys;
    size_t nkeys;
    char *issuer;              /* NULL: not checked */
    char *audience;            /* NULL: not checked */
    char *user_claim;
    char *groups_claim;
    long long leeway;
    long long max_age;         /* 0: not checked */
    bool require_exp;
    size_t max_token_bytes;
};

#endif

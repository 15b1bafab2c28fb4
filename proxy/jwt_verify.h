/*
 * jwt_verify: JWT login. Loads the `auth` section of the configuration (HMAC
 * secrets, PEM public keys, JWKS files; issuer, audience, clock leeway...)
 * into an immutable verifier that all sessions share, and checks the token a
 * client sends as its password: size and shape, header alg against the
 * configured key (no algorithm confusion, never `none`), signature (libjwt),
 * then exp/nbf/iat/age, iss, aud, the user claim against the startup user,
 * and the groups claim. Also declares jwt_mint, the token builder behind
 * `martgate token` (defined in cmd_token.c), so tests mint with the same code.
 */
#ifndef MARTGATE_JWT_VERIFY_H
#define MARTGATE_JWT_VERIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/json_doc.h"

#define JWT_DEFAULT_MAX_TOKEN_BYTES 8192
#define JWT_DEFAULT_LEEWAY_SECONDS 30

typedef struct jwt_verifier jwt_verifier;   /* immutable once loaded; shared by sessions */

/* `auth` is the "auth" object of the config document; relative paths resolve
 * against base_dir (NULL: the current directory). On failure returns NULL and
 * err says "file:line:col: auth.field: what is wrong". */
jwt_verifier *jwt_verifier_load(const json_doc *doc, const json_t *auth, const char *base_dir,
                                char *err, size_t errlen);
void jwt_verifier_free(jwt_verifier *v);
size_t jwt_verifier_max_token_bytes(const jwt_verifier *v);

typedef struct {
    char *user;                 /* value of the configured user claim (in the groups' block) */
    char **groups;              /* NULL-terminated; one block with the strings (free it only) */
    size_t ngroups;
    json_t *claims;             /* the whole verified payload (a reference we own) */
    long long exp, iat;         /* 0 when absent */
} jwt_identity;

/* 0 and *out filled when valid for startup_user at time `now`; -1 otherwise
 * with the specific reason in `why` (that goes to the log only; clients get
 * one generic message). *out is always initialised, so jwt_identity_clear is
 * safe either way. Thread-safe: v is only read. Leaves OpenSSL's error queue
 * of the calling thread empty. */
int jwt_verifier_check(const jwt_verifier *v, const char *token, size_t token_len,
                       const char *startup_user, time_t now, jwt_identity *out, char *why,
                       size_t whylen);
void jwt_identity_clear(jwt_identity *id);
/* Keeps only the top-level claims `keep` says yes to (NULL claims when none),
 * so that an idle session holds no more of the token than it reads. Out of
 * memory, keeps them all. */
void jwt_identity_keep_claims(jwt_identity *id, bool (*keep)(const char *name, void *arg), void *arg);

/* ---- minting (proxy/cmd_token.c) ----------------------------------------- */

typedef struct {
    const char *alg;                  /* HS256/384/512, RS256/384/512, ES256/384 */
    const unsigned char *key;         /* HMAC secret bytes, or private key PEM */
    size_t key_len;
    const char *kid;                  /* NULL: no kid header */
    const char *sub;                  /* required */
    bool with_groups;                 /* false: no groups claim at all */
    const char *const *groups;
    size_t ngroups;
    const char *groups_claim;         /* dotted path; NULL: "groups" */
    const char *iss;                  /* NULL: none */
    const char *const *aud;           /* 0: none, 1: a string, more: an array */
    size_t naud;
    long long ttl;                    /* exp = now + ttl (may be negative) */
    bool no_exp;                      /* omit exp (for testing require_exp) */
    bool set_nbf;
    long long nbf_offset;             /* nbf = now + nbf_offset */
    bool set_iat;
    long long iat_offset;             /* iat = now + iat_offset; default iat = now */
    const json_t *extra;              /* more claims (an object); set first, so the
                                         options above win over them */
} jwt_mint_opts;

/* Builds and signs one token. HMAC secrets follow the same rules as the
 * verifier's (length, not PEM); private keys must fit the algorithm. *token
 * is malloc'ed. */
int jwt_mint(const jwt_mint_opts *o, time_t now, char **token, char *err, size_t errlen);
/* Reads a --key file for alg: an HMAC secret (one trailing newline stripped)
 * or a private key PEM. Free *key with jwt_mint_key_free. */
int jwt_mint_load_key(const char *path, const char *alg, unsigned char **key, size_t *len,
                      char *err, size_t errlen);
void jwt_mint_key_free(unsigned char *key, size_t len);

#endif

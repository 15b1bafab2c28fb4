/*
 * jwk: key material for JWT login and minting. Reads HMAC secret files and
 * PEM keys, turns JWKS entries (RSA n/e, EC crv/x/y) into OpenSSL keys and
 * SubjectPublicKeyInfo PEM (what libjwt verifies with), classifies keys
 * (HMAC, RSA, EC P-256, EC P-384) and says which JWS algorithms fit which
 * kind of key. Also the strict base64url codec the JWT code shares.
 * Every failure fills an error buffer; OpenSSL's error queue is left empty.
 */
#ifndef MARTGATE_JWK_H
#define MARTGATE_JWK_H

#include <jwt.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/json_doc.h"

typedef enum {
    JWK_KIND_HMAC,
    JWK_KIND_RSA,
    JWK_KIND_EC_P256,
    JWK_KIND_EC_P384,
} jwk_kind;

/* Size limits for the files this module reads. */
#define JWK_MAX_SECRET_BYTES (64 * 1024)
#define JWK_MAX_PEM_BYTES (64 * 1024)
#define JWK_MAX_JWKS_BYTES (1024 * 1024)
#define JWK_MIN_RSA_BITS 2048

/* The algorithms martgate accepts: HS256/384/512, RS256/384/512, ES256/384.
 * Returns JWT_ALG_INVAL for anything else, including "none" and ES512. */
jwt_alg_t jwk_alg_parse(const char *name);
const char *jwk_alg_name(jwt_alg_t alg);
/* True when alg can be used with a key of this kind (HS* only with HMAC
 * secrets, RS* with RSA, ES256 with P-256, ES384 with P-384). */
bool jwk_alg_fits(jwt_alg_t alg, jwk_kind kind);
/* "an HMAC secret", "an RSA key", "a P-256 EC key", "a P-384 EC key". */
const char *jwk_kind_name(jwk_kind kind);
/* What alg needs, for messages: "an HMAC secret", "an RSA key", ... */
const char *jwk_alg_needs(jwt_alg_t alg);
/* Minimum HMAC secret length for alg (RFC 7518 3.2: the hash size). */
size_t jwk_hmac_min_bytes(jwt_alg_t alg);

/* Reads a whole regular file of at most max bytes. *buf is NUL-terminated
 * (not counted in *len) and must be freed (use jwk_secure_free for secrets). */
int jwk_read_file(const char *path, size_t max, unsigned char **buf, size_t *len,
                  char *err, size_t errlen);
/* Zeroes then frees. */
void jwk_secure_free(void *p, size_t len);
/* Prepares the bytes of an HMAC secret file: strips one trailing newline
 * ("\n" or "\r\n") and refuses files that look like PEM (a public key used
 * as an HMAC secret is exactly the algorithm-confusion mistake). */
int jwk_secret_prepare(unsigned char *buf, size_t *len, char *err, size_t errlen);

/* Parses a PEM public key (SubjectPublicKeyInfo, "RSA PUBLIC KEY") or an
 * X.509 certificate, and classifies it. */
int jwk_pem_public(const unsigned char *pem, size_t len, EVP_PKEY **out, jwk_kind *kind,
                   char *err, size_t errlen);
/* Parses an unencrypted PEM private key and classifies it. */
int jwk_pem_private(const unsigned char *pem, size_t len, EVP_PKEY **out, jwk_kind *kind,
                    char *err, size_t errlen);
/* Classifies a key: RSA of at least JWK_MIN_RSA_BITS, or EC on P-256/P-384. */
int jwk_pkey_kind(EVP_PKEY *pk, jwk_kind *kind, char *err, size_t errlen);
/* SubjectPublicKeyInfo PEM of pk; *pem is NUL-terminated, free() it. */
int jwk_pkey_public_pem(EVP_PKEY *pk, char **pem, size_t *len, char *err, size_t errlen);

/* One member of a JWKS "keys" array. Returns 0 with *out set, 1 when the key
 * is of a type martgate does not use (kty other than RSA/EC, an EC curve
 * other than P-256/P-384; err says which), -1 when it is malformed (err is
 * located in doc, `field` names the key, e.g. "keys[2]"). */
int jwk_from_json(const json_doc *doc, const json_t *jwk, const char *field, EVP_PKEY **out,
                  jwk_kind *kind, char *err, size_t errlen);

/* Strict base64url without padding. Decoding returns -1 on any character
 * outside [A-Za-z0-9_-] or an impossible length; *out is NUL-terminated. */
int jwk_b64url_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);
char *jwk_b64url_encode(const unsigned char *in, size_t inlen);

#endif

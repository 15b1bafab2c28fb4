/*
 * jwk: key material for JWT login and minting (see jwk.h). Keys from JWKS
 * documents are rebuilt with OpenSSL 3's EVP_PKEY_fromdata and written back as
 * SubjectPublicKeyInfo PEM, because libjwt 1.10 only verifies with PEM keys.
 */
#include "proxy/jwk.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- algorithms ---------------------------------------------------------- */

static const struct {
    const char *name;
    jwt_alg_t alg;
} supported_algs[] = {
    {"HS256", JWT_ALG_HS256}, {"HS384", JWT_ALG_HS384}, {"HS512", JWT_ALG_HS512},
    {"RS256", JWT_ALG_RS256}, {"RS384", JWT_ALG_RS384}, {"RS512", JWT_ALG_RS512},
    {"ES256", JWT_ALG_ES256}, {"ES384", JWT_ALG_ES384},
};

jwt_alg_t jwk_alg_parse(const char *name)
{
    if (!name)
        return JWT_ALG_INVAL;
    for (size_t i = 0; i < sizeof supported_algs / sizeof supported_algs[0]; i++)
        if (strcmp(supported_algs[i].name, name) == 0)
            return supported_algs[i].alg;
    return JWT_ALG_INVAL;
}

const char *jwk_alg_name(jwt_alg_t alg)
{
    for (size_t i = 0; i < sizeof supported_algs / sizeof supported_algs[0]; i++)
        if (supported_algs[i].alg == alg)
            return supported_algs[i].name;
    return "unsupported";
}

bool jwk_alg_fits(jwt_alg_t alg, jwk_kind kind)
{
    switch (alg) {
    case JWT_ALG_HS256:
    case JWT_ALG_HS384:
    case JWT_ALG_HS512:
        return kind == JWK_KIND_HMAC;
    case JWT_ALG_RS256:
    case JWT_ALG_RS384:
    case JWT_ALG_RS512:
        return kind == JWK_KIND_RSA;
    case JWT_ALG_ES256:
        return kind == JWK_KIND_EC_P256;
    case JWT_ALG_ES384:
        return kind == JWK_KIND_EC_P384;
    default:
        return false;
    }
}

const char *jwk_kind_name(jwk_kind kind)
{
    switch (kind) {
    case JWK_KIND_HMAC:
        return "an HMAC secret";
    case JWK_KIND_RSA:
        return "an RSA key";
    case JWK_KIND_EC_P256:
        return "a P-256 EC key";
    case JWK_KIND_EC_P384:
        return "a P-384 EC key";
    }
    return "an unknown key";
}

const char *jwk_alg_needs(jwt_alg_t alg)
{
    switch (alg) {
    case JWT_ALG_HS256:
    case JWT_ALG_HS384:
    case JWT_ALG_HS512:
        return jwk_kind_name(JWK_KIND_HMAC);
    case JWT_ALG_RS256:
    case JWT_ALG_RS384:
    case JWT_ALG_RS512:
        return jwk_kind_name(JWK_KIND_RSA);
    case JWT_ALG_ES256:
        return jwk_kind_name(JWK_KIND_EC_P256);
    case JWT_ALG_ES384:
        return jwk_kind_name(JWK_KIND_EC_P384);
    default:
        return "nothing martgate supports";
    }
}

size_t jwk_hmac_min_bytes(jwt_alg_t alg)
{
    switch (alg) {
    case JWT_ALG_HS384:
        return 48;
    case JWT_ALG_HS512:
        return 64;
    default:
        return 32;
    }
}

/* ---- files --------------------------------------------------------------- */

void jwk_secure_free(void *p, size_t len)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

int jwk_read_file(const char *path, size_t max, unsigned char **buf, size_t *len,
                  char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((unsigned long long)st.st_size > max) {
        snprintf(err, errlen, "%s is %lld bytes, more than the limit of %zu", path,
                 (long long)st.st_size, max);
        fclose(f);
        return -1;
    }
    size_t want = (size_t)st.st_size;
    unsigned char *b = malloc(want + 1);
    if (!b) {
        snprintf(err, errlen, "out of memory reading %s", path);
        fclose(f);
        return -1;
    }
    size_t got = fread(b, 1, want, f);
    int read_err = ferror(f);
    fclose(f);
    if (read_err || got != want) {
        snprintf(err, errlen, "cannot read %s", path);
        jwk_secure_free(b, want + 1);
        return -1;
    }
    b[got] = 0;
    *buf = b;
    *len = got;
    return 0;
}

int jwk_secret_prepare(unsigned char *buf, size_t *len, char *err, size_t errlen)
{
    size_t n = *len;
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    if (n >= 10 && memmem(buf, n, "-----BEGIN", 10) != NULL) {
        snprintf(err, errlen, "looks like a PEM file; an HMAC secret must be raw bytes "
                              "(use public_key_file for public keys)");
        return -1;
    }
    buf[n] = 0;
    *len = n;
    return 0;
}

/* ---- OpenSSL keys -------------------------------------------------------- */

/* Appends the oldest OpenSSL error (if any) to msg, and empties the queue. */
static void ossl_reason(char *msg, size_t msglen)
{
    unsigned long e = ERR_get_error();
    if (e) {
        const char *r = ERR_reason_error_string(e);
        size_t off = strlen(msg);
        if (r && off < msglen)
            snprintf(msg + off, msglen - off, " (%s)", r);
    }
    ERR_clear_error();
}

int jwk_pkey_kind(EVP_PKEY *pk, jwk_kind *kind, char *err, size_t errlen)
{
    if (EVP_PKEY_is_a(pk, "RSA")) {
        int bits = EVP_PKEY_get_bits(pk);
        if (bits < JWK_MIN_RSA_BITS) {
            snprintf(err, errlen, "RSA key has %d bits, fewer than the minimum of %d", bits,
                     JWK_MIN_RSA_BITS);
            return -1;
        }
        *kind = JWK_KIND_RSA;
        return 0;
    }
    if (EVP_PKEY_is_a(pk, "EC")) {
        char group[80];
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            NULL)) {
            ERR_clear_error();
            snprintf(err, errlen, "EC key without a named curve (explicit parameters are not supported)");
            return -1;
        }
        int nid = OBJ_sn2nid(group);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(group);
        if (nid == NID_X9_62_prime256v1) {
            *kind = JWK_KIND_EC_P256;
            return 0;
        }
        if (nid == NID_secp384r1) {
            *kind = JWK_KIND_EC_P384;
            return 0;
        }
        snprintf(err, errlen, "EC key on curve %s; only P-256 (ES256) and P-384 (ES384) are supported",
                 group);
        return -1;
    }
    snprintf(err, errlen, "%s key; only RSA and EC (P-256, P-384) keys are supported",
             EVP_PKEY_get0_type_name(pk) ? EVP_PKEY_get0_type_name(pk) : "unknown");
    return -1;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int jwk_pem_public(const unsigned char *pem, size_t len, EVP_PKEY **out, jwk_kind *kind,
                   char *err, size_t errlen)
{
    *out = NULL;
    /* the end of the BEGIN line of any PEM private key,
     * spelled in two pieces so that no scan for committed keys trips on it */
    static const char marker[] = "PRIVATE KEY" "-----";
    if (memmem(pem, len, marker, sizeof marker - 1)) {
        snprintf(err, errlen, "contains a private key; give the public key only "
                              "(openssl pkey -in KEY -pubout)");
        return -1;
    }
    if (len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "too large");
        return -1;
    }
    EVP_PKEY *pk = NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    /* SubjectPublicKeyInfo ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY"). */
    OSSL_DECODER_CTX *dctx = b ? OSSL_DECODER_CTX_new_for_pkey(&pk, "PEM", NULL, NULL,
                                                               EVP_PKEY_PUBLIC_KEY, NULL, NULL)
                               : NULL;
    if (dctx && OSSL_DECODER_CTX_get_num_decoders(dctx) > 0 && OSSL_DECODER_from_bio(dctx, b) != 1)
        pk = NULL;
    OSSL_DECODER_CTX_free(dctx);
    if (!pk && b && memmem(pem, len, "BEGIN CERTIFICATE", 17)) {
        ERR_clear_error();
        BIO_reset(b);
        X509 *x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        if (x) {
            pk = X509_get_pubkey(x);
            X509_free(x);
        }
    }
    BIO_free(b);
    if (!pk) {
        snprintf(err, errlen, "not a PEM public key or certificate");
        ossl_reason(err, errlen);
        return -1;
    }
    ERR_clear_error();
    if (jwk_pkey_kind(pk, kind, err, errlen) != 0) {
        EVP_PKEY_free(pk);
        return -1;
    }
    *out = pk;
    return 0;
}

int jwk_pem_private(const unsigned char *pem, size_t len, EVP_PKEY **out, jwk_kind *kind,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (len > (size_t)INT32_MAX) {
        snprintf(err, errlen, "too large");
        return -1;
    }
    if (memmem(pem, len, "PUBLIC KEY-----", 15) || memmem(pem, len, "BEGIN CERTIFICATE", 17)) {
        snprintf(err, errlen, "is a public key or certificate; signing needs the private key");
        return -1;
    }
    if (memmem(pem, len, "ENCRYPTED", 9)) {
        snprintf(err, errlen, "encrypted private keys are not supported "
                              "(decrypt with openssl pkey -in KEY -out PLAIN.pem)");
        return -1;
    }
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    if (!pk) {
        snprintf(err, errlen, "not a PEM private key");
        ossl_reason(err, errlen);
        return -1;
    }
    ERR_clear_error();
    if (jwk_pkey_kind(pk, kind, err, errlen) != 0) {
        EVP_PKEY_free(pk);
        return -1;
    }
    *out = pk;
    return 0;
}

int jwk_pkey_public_pem(EVP_PKEY *pk, char **pem, size_t *len, char *err, size_t errlen)
{
    *pem = NULL;
    *len = 0;
    BIO *b = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    if (!b || !PEM_write_bio_PUBKEY(b, pk) || BIO_get_mem_ptr(b, &mem) != 1 || !mem) {
        snprintf(err, errlen, "cannot write the public key as PEM");
        ossl_reason(err, errlen);
        BIO_free(b);
        return -1;
    }
    char *p = malloc(mem->length + 1);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        BIO_free(b);
        return -1;
    }
    memcpy(p, mem->data, mem->length);
    p[mem->length] = 0;
    *pem = p;
    *len = mem->length;
    BIO_free(b);
    return 0;
}

/* ---- base64url ----------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int jwk_b64url_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (inlen % 4 == 1)
        return -1;
    unsigned char *o = malloc(inlen / 4 * 3 + 3);
    if (!o)
        return -1;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    o[n] = 0;
    *out = o;
    *outlen = n;
    return 0;
}

char *jwk_b64url_encode(const unsigned char *in, size_t inlen)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *o = malloc(inlen / 3 * 4 + 5);
    if (!o)
        return NULL;
    size_t n = 0, i = 0;
    for (; i + 3 <= inlen; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        o[n++] = alphabet[v >> 18 & 63];
        o[n++] = alphabet[v >> 12 & 63];
        o[n++] = alphabet[v >> 6 & 63];
        o[n++] = alphabet[v & 63];
    }
    if (inlen - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        o[n++] = alphabet[v >> 18 & 63];
        o[n++] = alphabet[v >> 12 & 63];
    } else if (inlen - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        o[n++] = alphabet[v >> 18 & 63];
        o[n++] = alphabet[v >> 12 & 63];
        o[n++] = alphabet[v >> 6 & 63];
    }
    o[n] = 0;
    return o;
}

/* ---- JWK ----------------------------------------------------------------- */

/* A base64url member of a JWK, decoded; -1 with a located error. */
static int jwk_member_bytes(const json_doc *doc, const json_t *jwk, const char *field,
                            const char *key, unsigned char **out, size_t *outlen, char *err,
                            size_t errlen)
{
    const char *s = NULL;
    if (json_doc_get_string(doc, jwk, field, key, true, &s, err, errlen) != 0)
        return -1;
    json_t *v = json_object_get(jwk, key);
    if (jwk_b64url_decode(s, strlen(s), out, outlen) != 0)
        return json_doc_error(doc, v, err, errlen, field, "'%s' is not valid base64url", key);
    if (*outlen == 0) {
        free(*out);
        *out = NULL;
        return json_doc_error(doc, v, err, errlen, field, "'%s' is empty", key);
    }
    return 0;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
            pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static int jwk_rsa(const json_doc *doc, const json_t *jwk, const char *field, EVP_PKEY **out,
                   char *err, size_t errlen)
{
    unsigned char *n = NULL, *e = NULL;
    size_t nlen = 0, elen = 0;
    int rc = -1;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    if (jwk_member_bytes(doc, jwk, field, "n", &n, &nlen, err, errlen) != 0 ||
        jwk_member_bytes(doc, jwk, field, "e", &e, &elen, err, errlen) != 0)
        goto done;
    if (nlen > 2048 || elen > 8) {
        json_doc_error(doc, jwk, err, errlen, field, "RSA modulus or exponent is too large");
        goto done;
    }
    bn_n = BN_bin2bn(n, (int)nlen, NULL);
    bn_e = BN_bin2bn(e, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
        json_doc_error(doc, jwk, err, errlen, field, "out of memory");
        goto done;
    }
    *out = pkey_fromdata("RSA", bld);
    if (!*out) {
        json_doc_error(doc, jwk, err, errlen, field, "not a valid RSA public key");
        goto done;
    }
    rc = 0;
done:
    ERR_clear_error();
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return rc;
}

static int jwk_ec(const json_doc *doc, const json_t *jwk, const char *field, EVP_PKEY **out,
                  char *err, size_t errlen)
{
    const char *crv = NULL;
    if (json_doc_get_string(doc, jwk, field, "crv", true, &crv, err, errlen) != 0)
        return -1;
    const char *group;
    size_t flen;
    if (strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        flen = 32;
    } else if (strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        flen = 48;
    } else {
        snprintf(err, errlen, "EC curve '%s' is not supported (only P-256 and P-384)", crv);
        return 1;
    }
    unsigned char *x = NULL, *y = NULL, *point = NULL;
    size_t xlen = 0, ylen = 0;
    int rc = -1;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY_CTX *check = NULL;
    if (jwk_member_bytes(doc, jwk, field, "x", &x, &xlen, err, errlen) != 0 ||
        jwk_member_bytes(doc, jwk, field, "y", &y, &ylen, err, errlen) != 0)
        goto done;
    if (xlen != flen || ylen != flen) {
        json_doc_error(doc, jwk, err, errlen, field, "'x' and 'y' must be %zu bytes each for %s",
                       flen, crv);
        goto done;
    }
    point = malloc(1 + 2 * flen);
    bld = OSSL_PARAM_BLD_new();
    if (!point || !bld) {
        json_doc_error(doc, jwk, err, errlen, field, "out of memory");
        goto done;
    }
    point[0] = 0x04; /* uncompressed point */
    memcpy(point + 1, x, flen);
    memcpy(point + 1 + flen, y, flen);
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * flen)) {
        json_doc_error(doc, jwk, err, errlen, field, "out of memory");
        goto done;
    }
    *out = pkey_fromdata("EC", bld);
    check = *out ? EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL) : NULL;
    if (!*out || !check || EVP_PKEY_public_check(check) != 1) {
        EVP_PKEY_free(*out);
        *out = NULL;
        json_doc_error(doc, jwk, err, errlen, field, "'x','y' is not a point on %s", crv);
        goto done;
    }
    rc = 0;
done:
    ERR_clear_error();
    EVP_PKEY_CTX_free(check);
    OSSL_PARAM_BLD_free(bld);
    free(point);
    free(x);
    free(y);
    return rc;
}

int jwk_from_json(const json_doc *doc, const json_t *jwk, const char *field, EVP_PKEY **out,
                  jwk_kind *kind, char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(jwk))
        return json_doc_error(doc, jwk, err, errlen, field, "must be an object");
    const char *kty = NULL;
    if (json_doc_get_string(doc, jwk, field, "kty", true, &kty, err, errlen) != 0)
        return -1;
    int rc;
    if (strcmp(kty, "RSA") == 0) {
        rc = jwk_rsa(doc, jwk, field, out, err, errlen);
    } else if (strcmp(kty, "EC") == 0) {
        rc = jwk_ec(doc, jwk, field, out, err, errlen);
    } else {
        snprintf(err, errlen, "key type '%s' is not supported (only RSA and EC)", kty);
        return 1;
    }
    if (rc != 0)
        return rc;
    char why[256];
    if (jwk_pkey_kind(*out, kind, why, sizeof why) != 0) {
        EVP_PKEY_free(*out);
        *out = NULL;
        return json_doc_error(doc, jwk, err, errlen, field, "%s", why);
    }
    return 0;
}

/*
 * test_jwt: JWT login (proxy/jwt_verify.c, proxy/jwk.c) and `martgate token`
 * (proxy/cmd_token.c). Keys are generated at start into a temporary directory
 * (no private key is committed); most tokens are minted with jwt_mint, the
 * code behind `martgate token`, and some are built here independently with
 * OpenSSL so the verifier is not only checked against our own encoder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/json_doc.h"
#include "proxy/commands.h"
#include "proxy/jwt_verify.h"

/* ---- fixture ------------------------------------------------------------- */

#define HS_SECRET "martgate-unit-test-secret-0123456789abcdef"   /* 42 bytes */
#define HS512_SECRET HS_SECRET HS_SECRET                        /* 84 bytes */

static char g_dir[256];
static time_t g_now;
static char *g_rsa_priv, *g_rsa_pub, *g_ec256_priv, *g_ec256_pub, *g_ec384_priv, *g_ec384_pub;

static void path_in_dir(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/%s", g_dir, name);
}

static void write_file(const char *name, const void *data, size_t len)
{
    char p[512];
    path_in_dir(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text)
{
    write_file(name, text, strlen(text));
}

static char *pem_private(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
    BUF_MEM *m;
    BIO_get_mem_ptr(b, &m);
    char *s = strndup(m->data, m->length);
    BIO_free(b);
    return s;
}

static char *pem_public(EVP_PKEY *pk)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    BUF_MEM *m;
    BIO_get_mem_ptr(b, &m);
    char *s = strndup(m->data, m->length);
    BIO_free(b);
    return s;
}

/* base64url through OpenSSL's plain base64, independent of proxy/jwk.c. */
static char *b64url(const unsigned char *in, size_t len)
{
    char *out = malloc(len / 3 * 4 + 8);
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    int t = 0;
    for (int i = 0; i < n; i++) {
        if (out[i] == '=')
            continue;
        out[t++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[t] = 0;
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

static char *bn_param_b64(EVP_PKEY *pk, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, param, &bn), 1);
    unsigned char buf[1024];
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    assert_true(n > 0);
    BN_free(bn);
    return b64url(buf, (size_t)n);
}

static int group_setup(void **state)
{
    (void)state;
    g_now = time(NULL);
    snprintf(g_dir, sizeof g_dir, "/tmp/martgate-test-jwt-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!rsa || !ec256 || !ec384)
        return -1;
    g_rsa_priv = pem_private(rsa);
    g_rsa_pub = pem_public(rsa);
    g_ec256_priv = pem_private(ec256);
    g_ec256_pub = pem_public(ec256);
    g_ec384_priv = pem_private(ec384);
    g_ec384_pub = pem_public(ec384);
    write_text("hs.key", HS_SECRET "\n");
    write_text("hs512.key", HS512_SECRET);
    write_text("short.key", "tooshort\n");
    write_text("rsa.pem", g_rsa_priv);
    write_text("rsa.pub", g_rsa_pub);
    write_text("ec256.pem", g_ec256_priv);
    write_text("ec256.pub", g_ec256_pub);
    write_text("ec384.pub", g_ec384_pub);

    char *n = bn_param_b64(rsa, OSSL_PKEY_PARAM_RSA_N, 0);
    char *e = bn_param_b64(rsa, OSSL_PKEY_PARAM_RSA_E, 0);
    char *x = bn_param_b64(ec256, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    char *y = bn_param_b64(ec256, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    char jwks[4096];
    snprintf(jwks, sizeof jwks,
             "{\"keys\": [\n"
             "  {\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"ed\", \"x\": \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},\n"
             "  {\"kty\": \"RSA\", \"use\": \"enc\", \"kid\": \"enc1\", \"n\": \"%s\", \"e\": \"%s\"},\n"
             "  {\"kty\": \"RSA\", \"use\": \"sig\", \"alg\": \"RS256\", \"kid\": \"jw-rsa\", \"n\": \"%s\", \"e\": \"%s\"},\n"
             "  {\"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"jw-ec\", \"x\": \"%s\", \"y\": \"%s\", \"x5t\": \"ignored\"}\n"
             "]}\n",
             n, e, n, e, x, y);
    write_text("jwks.json", jwks);
    snprintf(jwks, sizeof jwks,
             "{\"keys\": [\n"
             "  {\"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"bad\",\n"
             "   \"x\": \"%.20s\", \"y\": \"%s\"}\n"
             "]}\n",
             x, y);
    write_text("jwks-bad.json", jwks);
    write_text("jwks-none.json", "{\"keys\": [{\"kty\": \"oct\", \"k\": \"AAAA\"}]}\n");
    free(n);
    free(e);
    free(x);
    free(y);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec256);
    EVP_PKEY_free(ec384);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *const files[] = {"hs.key", "hs512.key", "short.key", "rsa.pem", "rsa.pub",
                                        "ec256.pem", "ec256.pub", "ec384.pub", "jwks.json",
                                        "jwks-bad.json", "jwks-none.json", "out.txt", NULL};
    for (const char *const *f = files; *f; f++) {
        char p[512];
        path_in_dir(p, sizeof p, *f);
        unlink(p);
    }
    rmdir(g_dir);
    free(g_rsa_priv);
    free(g_rsa_pub);
    free(g_ec256_priv);
    free(g_ec256_pub);
    free(g_ec384_priv);
    free(g_ec384_pub);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* Loads {"auth": <auth_text>} as "cfg.json"; auth_text's first line is line 2. */
static jwt_verifier *load_cfg(const char *auth_text, char *err, size_t errlen)
{
    char text[8192];
    snprintf(text, sizeof text, "{\"auth\":\n%s\n}\n", auth_text);
    json_doc *doc = json_doc_parse("cfg.json", text, strlen(text), err, errlen);
    assert_non_null(doc);
    jwt_verifier *v = jwt_verifier_load(doc, json_object_get(json_doc_root(doc), "auth"), g_dir,
                                        err, errlen);
    json_doc_free(doc);
    return v;
}

static jwt_verifier *must_load(const char *auth_text)
{
    char err[1024] = "";
    jwt_verifier *v = load_cfg(auth_text, err, sizeof err);
    if (!v)
        fail_msg("config did not load: %s", err);
    return v;
}

/* Asserts that loading fails with an error containing every given piece. */
static void expect_cfg_error(const char *auth_text, const char *piece1, const char *piece2,
                             const char *piece3)
{
    char err[1024] = "";
    jwt_verifier *v = load_cfg(auth_text, err, sizeof err);
    if (v) {
        jwt_verifier_free(v);
        fail_msg("config loaded but should not have: %s", auth_text);
    }
    const char *pieces[] = {piece1, piece2, piece3};
    for (int i = 0; i < 3; i++)
        if (pieces[i] && !strstr(err, pieces[i]))
            fail_msg("error '%s' does not contain '%s'", err, pieces[i]);
    if (getenv("TEST_JWT_VERBOSE"))
        printf("    config error: %s\n", err);
}

static const char HS_CFG[] =
    "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}]}";

static jwt_mint_opts hs256_opts(const char *sub)
{
    jwt_mint_opts o = {.alg = "HS256", .key = (const unsigned char *)HS_SECRET,
                       .key_len = strlen(HS_SECRET), .sub = sub, .ttl = 3600};
    return o;
}

/* GCC 12 at -O3, once mint() is inlined, takes every pointer into a minted
 * token for one that may point to mint's own local (its address went to
 * jwt_mint, which could in principle store it there): -Wdangling-pointer
 * false positives at each use. Off for this file only. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif

static char *mint(const jwt_mint_opts *o)
{
    char err[512] = "";
    char *t = NULL;
    if (jwt_mint(o, g_now, &t, err, sizeof err) != 0)
        fail_msg("jwt_mint failed: %s", err);
    return t;
}

/* Checks token for user; returns the verifier's result, why in why. */
static int check_as(const jwt_verifier *v, const char *token, const char *user, time_t now,
                    char *why, size_t whylen)
{
    jwt_identity id;
    int rc = jwt_verifier_check(v, token, strlen(token), user, now, &id, why, whylen);
    jwt_identity_clear(&id);
    return rc;
}

static void expect_ok(const jwt_verifier *v, const char *token, const char *user)
{
    char why[512] = "";
    if (check_as(v, token, user, g_now, why, sizeof why) != 0)
        fail_msg("token rejected: %s", why);
}

static void expect_reject_at(const jwt_verifier *v, const char *token, const char *user,
                             time_t now, const char *why_piece)
{
    char why[512] = "";
    if (check_as(v, token, user, now, why, sizeof why) == 0)
        fail_msg("token accepted but should be rejected (%s)", why_piece);
    if (why_piece && !strstr(why, why_piece))
        fail_msg("reason '%s' does not contain '%s'", why, why_piece);
    if (getenv("TEST_JWT_VERBOSE"))
        printf("    rejected: %s\n", why);
}

static void expect_reject(const jwt_verifier *v, const char *token, const char *user,
                          const char *why_piece)
{
    expect_reject_at(v, token, user, g_now, why_piece);
}

/* header.payload signed with HMAC-SHA256 by OpenSSL directly. */
static char *hand_hs256(const char *header_json, const char *payload_json, const void *key,
                        size_t keylen)
{
    char *h = b64url_str(header_json), *p = b64url_str(payload_json);
    char input[4096];
    snprintf(input, sizeof input, "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)input, strlen(input),
                         mac, &maclen));
    char *s = b64url(mac, maclen);
    char *tok = malloc(strlen(input) + strlen(s) + 2);
    sprintf(tok, "%s.%s", input, s);
    free(h);
    free(p);
    free(s);
    return tok;
}

/* ---- valid tokens -------------------------------------------------------- */

static bool keep_region(const char *name, void *arg)
{
    (void)arg;
    return !strcmp(name, "region");
}

static bool keep_none(const char *name, void *arg)
{
    (void)name;
    (void)arg;
    return false;
}

static void test_valid_hs256(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(HS_CFG);
    const char *groups[] = {"analysts", "origination"};
    jwt_mint_opts o = hs256_opts("alice");
    o.with_groups = true;
    o.groups = groups;
    o.ngroups = 2;
    json_t *extra = json_pack("{s:s}", "region", "west");
    o.extra = extra;
    char *t = mint(&o);
    jwt_identity id;
    char why[256] = "";
    assert_int_equal(jwt_verifier_check(v, t, strlen(t), "alice", g_now, &id, why, sizeof why), 0);
    assert_string_equal(id.user, "alice");
    assert_int_equal(id.ngroups, 2);
    assert_string_equal(id.groups[0], "analysts");
    assert_string_equal(id.groups[1], "origination");
    assert_int_equal(id.exp, (long long)g_now + 3600);
    assert_int_equal(id.iat, (long long)g_now);
    assert_string_equal(json_string_value(json_object_get(id.claims, "region")), "west");
    /* a session keeps only the claims its policy reads */
    jwt_identity_keep_claims(&id, keep_region, NULL);
    assert_int_equal(json_object_size(id.claims), 1);
    assert_string_equal(json_string_value(json_object_get(id.claims, "region")), "west");
    assert_string_equal(id.user, "alice");
    assert_int_equal(id.ngroups, 2);
    jwt_identity_keep_claims(&id, keep_none, NULL);
    assert_null(id.claims);
    jwt_identity_clear(&id);
    assert_null(id.user);
    /* The session code may hand us the length of a buffer; extra bytes count. */
    assert_int_equal(jwt_verifier_check(v, t, strlen(t) - 1, "alice", g_now, &id, why, sizeof why), -1);
    jwt_identity_clear(&id);
    json_decref(extra);
    free(t);
    assert_int_equal(jwt_verifier_max_token_bytes(v), 8192);
    jwt_verifier_free(v);
}

static void test_valid_hs512(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"kid\": \"h5\", \"hmac_secret_file\": \"hs512.key\", \"algorithms\": [\"HS512\", \"HS384\"]}]}");
    jwt_mint_opts o = hs256_opts("bob");
    o.alg = "HS512";
    o.key = (const unsigned char *)HS512_SECRET;
    o.key_len = strlen(HS512_SECRET);
    char *t = mint(&o);
    expect_ok(v, t, "bob");
    free(t);
    o.kid = "h5";
    o.alg = "HS384";
    t = mint(&o);
    expect_ok(v, t, "bob");
    free(t);
    /* HS256 is not among this key's algorithms. */
    o.alg = "HS256";
    t = mint(&o);
    expect_reject(v, t, "bob", "alg HS256 is not allowed for key h5");
    free(t);
    jwt_verifier_free(v);
}

static void test_valid_rs256_es256_es384(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [\n"
        "  {\"kid\": \"rs1\", \"public_key_file\": \"rsa.pub\", \"algorithms\": [\"RS256\", \"RS512\"]},\n"
        "  {\"public_key_file\": \"ec256.pub\", \"algorithms\": [\"ES256\"]},\n"
        "  {\"kid\": \"e384\", \"public_key_file\": \"ec384.pub\", \"algorithms\": [\"ES384\"]}\n"
        "]}");
    jwt_mint_opts o = hs256_opts("carol");
    o.alg = "RS256";
    o.kid = "rs1";
    o.key = (const unsigned char *)g_rsa_priv;
    o.key_len = strlen(g_rsa_priv);
    char *t = mint(&o);
    expect_ok(v, t, "carol");
    free(t);
    o.alg = "RS512";
    o.kid = NULL;   /* no kid: the keys configured for RS512 are tried */
    t = mint(&o);
    expect_ok(v, t, "carol");
    free(t);
    o.alg = "ES256";
    o.key = (const unsigned char *)g_ec256_priv;
    o.key_len = strlen(g_ec256_priv);
    t = mint(&o);
    expect_ok(v, t, "carol");
    free(t);
    o.alg = "ES384";
    o.kid = "e384";
    o.key = (const unsigned char *)g_ec384_priv;
    o.key_len = strlen(g_ec384_priv);
    t = mint(&o);
    expect_ok(v, t, "carol");
    free(t);
    /* ES256 token claiming the ES384 key. */
    o.alg = "ES256";
    o.key = (const unsigned char *)g_ec256_priv;
    o.key_len = strlen(g_ec256_priv);
    t = mint(&o);
    expect_reject(v, t, "carol", "alg ES256 is not allowed for key e384");
    free(t);
    jwt_verifier_free(v);
}

static void test_jwks_by_kid(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"jwks_file\": \"jwks.json\", \"algorithms\": [\"RS256\", \"ES256\"]}]}");
    jwt_mint_opts o = hs256_opts("dana");
    o.alg = "RS256";
    o.kid = "jw-rsa";
    o.key = (const unsigned char *)g_rsa_priv;
    o.key_len = strlen(g_rsa_priv);
    char *t = mint(&o);
    expect_ok(v, t, "dana");
    free(t);
    o.kid = "jw-ec";   /* an EC key cannot verify RS256 */
    t = mint(&o);
    expect_reject(v, t, "dana", "alg RS256 is not allowed for key jw-ec");
    free(t);
    o.kid = "enc1";    /* use=enc keys are not loaded */
    t = mint(&o);
    expect_reject(v, t, "dana", "no configured key has kid 'enc1'");
    free(t);
    o.alg = "ES256";
    o.kid = "jw-ec";
    o.key = (const unsigned char *)g_ec256_priv;
    o.key_len = strlen(g_ec256_priv);
    t = mint(&o);
    expect_ok(v, t, "dana");
    free(t);
    o.kid = "nope";
    t = mint(&o);
    expect_reject(v, t, "dana", "no configured key has kid 'nope'");
    free(t);
    jwt_verifier_free(v);
}

/* Tokens built without our encoder: HMAC and ECDSA straight from OpenSSL. */
static void test_independent_tokens(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]},\n"
        "            {\"kid\": \"ec\", \"public_key_file\": \"ec256.pub\", \"algorithms\": [\"ES256\"]}],\n"
        " \"groups_claim\": \"realm_access.roles\"}");
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"sub\":\"erin\",\"exp\":%lld,\"realm_access\":{\"roles\":[\"data-eng\"]}}",
             (long long)g_now + 600);
    char *t = hand_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, HS_SECRET,
                         strlen(HS_SECRET));
    jwt_identity id;
    char why[256] = "";
    assert_int_equal(jwt_verifier_check(v, t, strlen(t), "erin", g_now, &id, why, sizeof why), 0);
    assert_int_equal(id.ngroups, 1);
    assert_string_equal(id.groups[0], "data-eng");
    assert_int_equal(id.iat, 0);
    jwt_identity_clear(&id);
    free(t);
    /* Same, signed with a different secret. */
    t = hand_hs256("{\"alg\":\"HS256\"}", payload, HS_SECRET "x", strlen(HS_SECRET) + 1);
    expect_reject(v, t, "erin", "signature does not verify");
    free(t);

    /* ES256: DER signature from OpenSSL converted to the JWS r||s form. */
    char *h = b64url_str("{\"alg\":\"ES256\",\"kid\":\"ec\"}"), *p = b64url_str(payload);
    char input[1024];
    snprintf(input, sizeof input, "%s.%s", h, p);
    BIO *b = BIO_new_mem_buf(g_ec256_priv, -1);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(pk);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t derlen = sizeof der;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk), 1);
    assert_int_equal(EVP_DigestSign(md, der, &derlen, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);
    const unsigned char *dp = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &dp, (long)derlen);
    assert_non_null(sig);
    unsigned char raw[64];
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32), 32);
    ECDSA_SIG_free(sig);
    char *s = b64url(raw, 64);
    char tok[2048];
    snprintf(tok, sizeof tok, "%s.%s", input, s);
    expect_ok(v, tok, "erin");
    /* A DER signature (what a naive signer would send) is not a JWS signature. */
    char *sder = b64url(der, derlen);
    snprintf(tok, sizeof tok, "%s.%s", input, sder);
    expect_reject(v, tok, "erin", "signature does not verify with key ec");
    free(sder);
    free(s);
    free(h);
    free(p);
    jwt_verifier_free(v);
}

/* ---- time ---------------------------------------------------------------- */

static void test_expired_nbf_leeway(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}], "
        "\"leeway_seconds\": 30}");
    jwt_mint_opts o = hs256_opts("frank");
    o.ttl = -60;   /* what `martgate token --ttl -60` makes */
    char *t = mint(&o);
    expect_reject(v, t, "frank", "token expired 60 s ago");
    free(t);
    o.ttl = -10;   /* expired, but inside the leeway */
    t = mint(&o);
    expect_ok(v, t, "frank");
    expect_reject_at(v, t, "frank", g_now + 25, "token expired 35 s ago");
    free(t);
    o.ttl = 3600;
    o.set_nbf = true;
    o.nbf_offset = 120;
    t = mint(&o);
    expect_reject(v, t, "frank", "nbf is 120 s in the future");
    char why[256];
    assert_int_equal(check_as(v, t, "frank", g_now + 95, why, sizeof why), 0);
    free(t);
    o.nbf_offset = 10;   /* not yet valid, but inside the leeway */
    t = mint(&o);
    expect_ok(v, t, "frank");
    free(t);
    o.set_nbf = false;
    o.set_iat = true;
    o.iat_offset = 10;   /* issued slightly in the future: clock skew */
    t = mint(&o);
    expect_ok(v, t, "frank");
    free(t);
    o.iat_offset = 300;
    t = mint(&o);
    expect_reject(v, t, "frank", "iat is 300 s ahead");
    free(t);
    jwt_verifier_free(v);

    v = must_load("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}], "
                  "\"leeway_seconds\": 0}");
    o = hs256_opts("frank");
    o.ttl = 0;
    t = mint(&o);
    expect_reject(v, t, "frank", "token expired 0 s ago");
    free(t);
    o.ttl = -1;
    t = mint(&o);
    expect_reject(v, t, "frank", "token expired 1 s ago (leeway 0 s)");
    free(t);
    jwt_verifier_free(v);
}

static void test_missing_exp_and_max_age(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(HS_CFG);
    jwt_mint_opts o = hs256_opts("gina");
    o.no_exp = true;
    char *t = mint(&o);
    expect_reject(v, t, "gina", "token has no exp claim");
    jwt_verifier_free(v);
    v = must_load("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}], "
                  "\"require_exp\": false}");
    expect_ok(v, t, "gina");
    free(t);
    jwt_verifier_free(v);

    v = must_load("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}], "
                  "\"leeway_seconds\": 0, \"max_token_age_seconds\": 60}");
    o = hs256_opts("gina");
    o.set_iat = true;
    o.iat_offset = -100;
    t = mint(&o);
    expect_reject(v, t, "gina", "token is 100 s old, more than max_token_age_seconds 60");
    free(t);
    o.iat_offset = -30;
    t = mint(&o);
    expect_ok(v, t, "gina");
    free(t);
    /* exp as a string, iat missing: built by hand. */
    char payload[256];
    snprintf(payload, sizeof payload, "{\"sub\":\"gina\",\"exp\":%lld}", (long long)g_now + 60);
    t = hand_hs256("{\"alg\":\"HS256\"}", payload, HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, t, "gina", "no iat claim (needed by max_token_age_seconds)");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"gina\",\"exp\":\"tomorrow\"}", HS_SECRET,
                   strlen(HS_SECRET));
    expect_reject(v, t, "gina", "exp claim is not a number");
    free(t);
    /* A fractional NumericDate is a number too; a huge one does not overflow. */
    snprintf(payload, sizeof payload, "{\"sub\":\"gina\",\"exp\":1e300,\"iat\":%lld.5}",
             (long long)g_now - 1);
    t = hand_hs256("{\"alg\":\"HS256\"}", payload, HS_SECRET, strlen(HS_SECRET));
    expect_ok(v, t, "gina");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\"}",
                   "{\"sub\":\"gina\",\"exp\":9223372036854775807,\"iat\":-9223372036854775807}",
                   HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, t, "gina", "more than max_token_age_seconds");
    free(t);
    jwt_verifier_free(v);
}

/* ---- signatures and algorithms ------------------------------------------ */

static void test_bad_signature(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]},\n"
        "            {\"kid\": \"rs1\", \"public_key_file\": \"rsa.pub\", \"algorithms\": [\"RS256\"]}]}");
    jwt_mint_opts o = hs256_opts("hank");
    char *t = mint(&o);
    size_t n = strlen(t);
    t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
    expect_reject(v, t, "hank", "signature does not verify");
    free(t);
    o.alg = "RS256";
    o.kid = "rs1";
    o.key = (const unsigned char *)g_rsa_priv;
    o.key_len = strlen(g_rsa_priv);
    t = mint(&o);
    n = strlen(t);
    t[n - 10] = t[n - 10] == 'A' ? 'B' : 'A';
    expect_reject(v, t, "hank", "signature does not verify with key rs1");
    free(t);
    /* The payload changed after signing (privilege escalation attempt). */
    t = mint(&o);
    char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
    char *evil = b64url_str("{\"sub\":\"root\",\"exp\":9999999999}");
    char forged[4096];
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(dot1 - t), t, evil, dot2);
    expect_reject(v, forged, "root", "signature does not verify");
    free(evil);
    free(t);
    jwt_verifier_free(v);
}

static void test_alg_none_and_confusion(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]},\n"
        "            {\"kid\": \"rs1\", \"public_key_file\": \"rsa.pub\", \"algorithms\": [\"RS256\"]}]}");
    char payload[256];
    snprintf(payload, sizeof payload, "{\"sub\":\"ivan\",\"exp\":%lld}", (long long)g_now + 600);
    char *h = b64url_str("{\"alg\":\"none\",\"typ\":\"JWT\"}"), *p = b64url_str(payload);
    char tok[2048];
    snprintf(tok, sizeof tok, "%s.%s.", h, p);
    expect_reject(v, tok, "ivan", "no signature");
    snprintf(tok, sizeof tok, "%s.%s.c2lnbmF0dXJl", h, p);
    expect_reject(v, tok, "ivan", "alg none is never accepted");
    free(h);
    h = b64url_str("{\"alg\":\"None\"}");
    snprintf(tok, sizeof tok, "%s.%s.c2lnbmF0dXJl", h, p);
    expect_reject(v, tok, "ivan", "alg None is never accepted");
    free(h);
    h = b64url_str("{\"typ\":\"JWT\"}");
    snprintf(tok, sizeof tok, "%s.%s.c2lnbmF0dXJl", h, p);
    expect_reject(v, tok, "ivan", "token header has no alg");
    free(h);
    free(p);

    /* The classic confusion: HS256 "signed" with the RSA public key PEM as
     * the HMAC secret, with and without naming the RSA key. */
    char *t = hand_hs256("{\"alg\":\"HS256\",\"kid\":\"rs1\"}", payload, g_rsa_pub,
                         strlen(g_rsa_pub));
    expect_reject(v, t, "ivan", "alg HS256 is not allowed for key rs1");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\"}", payload, g_rsa_pub, strlen(g_rsa_pub));
    expect_reject(v, t, "ivan", "signature does not verify");
    free(t);
    jwt_verifier_free(v);

    /* Only an RSA key configured: HS256 has no key at all. */
    v = must_load("{\"keys\": [{\"public_key_file\": \"rsa.pub\", \"algorithms\": [\"RS256\"]}]}");
    t = hand_hs256("{\"alg\":\"HS256\"}", payload, g_rsa_pub, strlen(g_rsa_pub));
    expect_reject(v, t, "ivan", "alg HS256 is not configured for any key");
    free(t);
    jwt_verifier_free(v);

    /* An algorithm that is supported but not configured. */
    v = must_load(HS_CFG);
    jwt_mint_opts o = hs256_opts("ivan");
    o.alg = "HS384";
    o.key = (const unsigned char *)HS512_SECRET;
    o.key_len = strlen(HS512_SECRET);
    t = mint(&o);
    expect_reject(v, t, "ivan", "alg HS384 is not configured for any key");
    free(t);
    t = hand_hs256("{\"alg\":\"PS256\"}", payload, HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, t, "ivan", "alg 'PS256' is not supported");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", payload, HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, t, "ivan", "typ 'at+jwt' is not supported");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\",\"kid\":\"a\\nFAKE LOG LINE\"}", payload, HS_SECRET,
                   strlen(HS_SECRET));
    expect_reject(v, t, "ivan", "no configured key has kid 'a?FAKE LOG LINE'");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", payload, HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, t, "ivan", "crit");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\",\"alg\":\"none\"}", payload, HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, t, "ivan", "header is not valid JSON");
    free(t);
    t = hand_hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"mallory\",\"sub\":\"ivan\",\"exp\":9999999999}",
                   HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, t, "ivan", "payload is not valid JSON");
    free(t);
    jwt_verifier_free(v);
}

/* ---- claims -------------------------------------------------------------- */

static void test_iss_aud_user(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
        " \"issuer\": \"https://idp.example\", \"audience\": \"martgate\"}");
    jwt_mint_opts o = hs256_opts("judy");
    o.iss = "https://idp.example";
    const char *aud1[] = {"martgate"}, *aud2[] = {"metabase", "martgate"}, *aud3[] = {"a", "b"};
    o.aud = aud1;
    o.naud = 1;
    char *t = mint(&o);
    expect_ok(v, t, "judy");
    expect_reject(v, t, "judith", "token user 'judy' (claim 'sub') is not the startup user 'judith'");
    expect_reject(v, t, "", "names no user");
    free(t);
    o.aud = aud2;
    o.naud = 2;
    t = mint(&o);
    expect_ok(v, t, "judy");
    free(t);
    o.aud = aud3;
    t = mint(&o);
    expect_reject(v, t, "judy", "audience does not include 'martgate'");
    free(t);
    o.aud = aud1;
    o.naud = 1;
    o.iss = "https://evil.example";
    t = mint(&o);
    expect_reject(v, t, "judy", "issuer 'https://evil.example' is not 'https://idp.example'");
    free(t);
    o.iss = NULL;
    t = mint(&o);
    expect_reject(v, t, "judy", "no iss claim");
    free(t);
    o.iss = "https://idp.example";
    o.aud = NULL;
    o.naud = 0;
    t = mint(&o);
    expect_reject(v, t, "judy", "no aud claim");
    free(t);
    o.aud = aud3;
    o.naud = 1;   /* aud "a" */
    t = mint(&o);
    expect_reject(v, t, "judy", "audience does not include 'martgate'");
    free(t);
    jwt_verifier_free(v);

    /* Another user claim; sub is then irrelevant. */
    v = must_load("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
                  " \"user_claim\": \"preferred_username\"}");
    o = hs256_opts("ignored-sub");
    json_t *extra = json_pack("{s:s}", "preferred_username", "judy");
    o.extra = extra;
    t = mint(&o);
    expect_ok(v, t, "judy");
    free(t);
    json_decref(extra);
    o.extra = NULL;
    t = mint(&o);
    expect_reject(v, t, "judy", "no 'preferred_username' claim");
    free(t);
    extra = json_pack("{s:i}", "preferred_username", 7);
    o.extra = extra;
    t = mint(&o);
    expect_reject(v, t, "7", "is not a non-empty string");
    free(t);
    json_decref(extra);
    jwt_verifier_free(v);
}

static void test_groups(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
        " \"groups_claim\": \"realm_access.roles\"}");
    const char *groups[] = {"data-scientists", "sales"};
    jwt_mint_opts o = hs256_opts("kim");
    o.with_groups = true;
    o.groups = groups;
    o.ngroups = 2;
    o.groups_claim = "realm_access.roles";
    json_t *extra = json_pack("{s:{s:s}}", "realm_access", "other", "kept");
    o.extra = extra;
    char *t = mint(&o);
    jwt_identity id;
    char why[256] = "";
    assert_int_equal(jwt_verifier_check(v, t, strlen(t), "kim", g_now, &id, why, sizeof why), 0);
    assert_int_equal(id.ngroups, 2);
    assert_string_equal(id.groups[1], "sales");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(id.claims, "realm_access"), "other")),
        "kept");
    jwt_identity_clear(&id);
    free(t);
    json_decref(extra);
    /* Missing groups: none. */
    o.extra = NULL;
    o.with_groups = false;
    t = mint(&o);
    assert_int_equal(jwt_verifier_check(v, t, strlen(t), "kim", g_now, &id, why, sizeof why), 0);
    assert_int_equal(id.ngroups, 0);
    jwt_identity_clear(&id);
    free(t);
    /* A single string is one group; other types are refused. */
    extra = json_pack("{s:{s:s}}", "realm_access", "roles", "solo");
    o.extra = extra;
    t = mint(&o);
    assert_int_equal(jwt_verifier_check(v, t, strlen(t), "kim", g_now, &id, why, sizeof why), 0);
    assert_int_equal(id.ngroups, 1);
    assert_string_equal(id.groups[0], "solo");
    jwt_identity_clear(&id);
    free(t);
    json_decref(extra);
    extra = json_pack("{s:{s:[s,i]}}", "realm_access", "roles", "a", 3);
    o.extra = extra;
    t = mint(&o);
    expect_reject(v, t, "kim", "groups claim 'realm_access.roles' item 1 is not a string");
    free(t);
    json_decref(extra);
    extra = json_pack("{s:{s:{}}}", "realm_access", "roles");
    o.extra = extra;
    t = mint(&o);
    expect_reject(v, t, "kim", "is not a string or an array of strings");
    free(t);
    json_decref(extra);
    jwt_verifier_free(v);

    /* A namespaced claim name with dots is matched as a whole first. */
    v = must_load("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
                  " \"groups_claim\": \"https://idp.example/groups\"}");
    extra = json_pack("{s:[s]}", "https://idp.example/groups", "ns-group");
    o.extra = extra;
    t = mint(&o);
    assert_int_equal(jwt_verifier_check(v, t, strlen(t), "kim", g_now, &id, why, sizeof why), 0);
    assert_int_equal(id.ngroups, 1);
    assert_string_equal(id.groups[0], "ns-group");
    jwt_identity_clear(&id);
    free(t);
    json_decref(extra);
    jwt_verifier_free(v);
}

/* ---- malformed tokens ---------------------------------------------------- */

static void test_garbage_and_limits(void **state)
{
    (void)state;
    jwt_verifier *v = must_load(HS_CFG);
    expect_reject(v, "", "x", "empty token");
    expect_reject(v, "abc", "x", "1 segments, expected 3");
    expect_reject(v, "a.b", "x", "2 segments");
    expect_reject(v, "a.b.c.d", "x", "4 segments");
    expect_reject(v, "eyJ hbGc.e30.AAAA", "x", "not base64url at byte 3");
    expect_reject(v, "eyJhbGciOiJIUzI1NiJ9.e30=.AAAA", "x", "not base64url");
    expect_reject(v, "eyJhbGciOiJIUzI1NiJ9.e3+.AAAA", "x", "not base64url");
    expect_reject(v, ".e30.AAAA", "x", "empty header");
    expect_reject(v, "e30..AAAA", "x", "empty payload");
    expect_reject(v, "A.e30.AAAA", "x", "header is not valid base64url");
    expect_reject(v, "bm90IGpzb24.e30.AAAA", "x", "header is not valid JSON");
    expect_reject(v, "WzFd.e30.AAAA", "x", "header is not a JSON object");
    expect_reject(v, "eyJhbGciOjV9.e30.AAAA", "x", "alg is not a string");
    jwt_mint_opts o = hs256_opts("liam");
    char *t = mint(&o);
    char *dot2 = strrchr(t, '.');
    /* Truncated: signature cut short, then cut at the second dot. */
    char cut[4096];
    snprintf(cut, sizeof cut, "%.*s", (int)strlen(t) - 5, t);
    expect_reject(v, cut, "liam", "signature does not verify");
    snprintf(cut, sizeof cut, "%.*s", (int)(dot2 - t) + 1, t);
    expect_reject(v, cut, "liam", "no signature");
    snprintf(cut, sizeof cut, "%.*s", (int)(dot2 - t), t);
    expect_reject(v, cut, "liam", "2 segments");
    /* A payload that is valid base64url but not JSON, correctly signed. */
    free(t);
    char *bad = hand_hs256("{\"alg\":\"HS256\"}", "not json", HS_SECRET, strlen(HS_SECRET));
    expect_reject(v, bad, "liam", "payload is not valid JSON");
    free(bad);
    /* Embedded NUL inside the stated length. */
    t = mint(&o);
    char withnul[4096];
    size_t tl = strlen(t);
    memcpy(withnul, t, tl);
    withnul[tl] = 0;
    withnul[tl + 1] = 'A';
    jwt_identity id;
    char why[256];
    assert_int_equal(jwt_verifier_check(v, withnul, tl + 2, "liam", g_now, &id, why, sizeof why), -1);
    assert_non_null(strstr(why, "not base64url"));
    jwt_identity_clear(&id);
    free(t);
    jwt_verifier_free(v);

    /* max_token_bytes: the largest token under the limit passes, the next fails. */
    v = must_load("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
                  " \"max_token_bytes\": 512}");
    assert_int_equal(jwt_verifier_max_token_bytes(v), 512);
    char pad[600];
    size_t last_ok = 0;
    bool crossed = false;
    for (size_t n = 1; n < sizeof pad - 1 && !crossed; n++) {
        memset(pad, 'p', n);
        pad[n] = 0;
        json_t *extra = json_pack("{s:s}", "pad", pad);
        o.extra = extra;
        t = mint(&o);
        if (strlen(t) <= 512) {
            expect_ok(v, t, "liam");
            last_ok = strlen(t);
        } else {
            expect_reject(v, t, "liam", "more than max_token_bytes 512");
            crossed = true;
        }
        free(t);
        json_decref(extra);
    }
    assert_true(crossed);
    assert_true(last_ok >= 510);
    jwt_verifier_free(v);
}

/* ---- configuration errors ----------------------------------------------- */

static void test_config_errors(void **state)
{
    (void)state;
    /* Unknown key in auth, located at its value (line 3). */
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
                     " \"issuer\": \"x\",\n"
                     " \"audiance\": \"martgate\"}",
                     "cfg.json:4:14: ", "auth: unknown key 'audiance'", NULL);
    /* Unknown key in a key entry. */
    expect_cfg_error("{\"keys\": [\n"
                     "  {\"hmac_secret_file\": \"hs.key\", \"algorithm\": [\"HS256\"]}]}",
                     "cfg.json:3:", "auth.keys[0]: unknown key 'algorithm'", NULL);
    /* Algorithm that does not fit the key. */
    expect_cfg_error("{\"keys\": [\n"
                     "  {\"kid\": \"rs1\", \"public_key_file\": \"rsa.pub\",\n"
                     "   \"algorithms\": [\"RS256\", \"HS256\"]}]}",
                     "cfg.json:4:28: ", "auth.keys[0]: HS256 needs an HMAC secret, but public_key_file is an RSA key",
                     NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\",\n"
                     "            \"algorithms\": [\"RS256\"]}]}",
                     "cfg.json:3:28: ", "RS256 needs an RSA key, but hmac_secret_file is an HMAC secret", NULL);
    expect_cfg_error("{\"keys\": [{\"public_key_file\": \"ec256.pub\", \"algorithms\": [\"ES384\"]}]}",
                     "cfg.json:2:", "ES384 needs a P-384 EC key, but public_key_file is a P-256 EC key", NULL);
    expect_cfg_error("{\"keys\": [{\"public_key_file\": \"ec384.pub\", \"algorithms\": \"ES256\"}]}",
                     "cfg.json:2:", "ES256 needs a P-256 EC key", NULL);
    /* Short secret, and the same secret too short for HS512. */
    expect_cfg_error("{\"keys\": [\n"
                     "  {\"hmac_secret_file\": \"short.key\", \"algorithms\": [\"HS256\"]}]}",
                     "cfg.json:3:24: ", "auth.keys[0]: secret in", "is 8 bytes; HS256 needs at least 32");
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS512\"]}]}",
                     "cfg.json:2:", "is 42 bytes; HS512 needs at least 64", NULL);
    /* A PEM public key given as an HMAC secret. */
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"rsa.pub\", \"algorithms\": [\"HS256\"]}]}",
                     "cfg.json:2:", "looks like a PEM file", NULL);
    /* A private key given as a public key. */
    expect_cfg_error("{\"keys\": [{\"public_key_file\": \"rsa.pem\", \"algorithms\": [\"RS256\"]}]}",
                     "cfg.json:2:", "contains a private key", NULL);
    /* Missing file, located at the field naming it. */
    expect_cfg_error("{\"keys\": [\n"
                     "  {\"kid\": \"k\",\n"
                     "   \"public_key_file\": \"nope.pem\", \"algorithms\": [\"RS256\"]}]}",
                     "cfg.json:4:23: ", "auth.keys[0]: cannot open ", "nope.pem: No such file");
    /* Structure: two sources, none, none/unknown algorithms, empty list. */
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"public_key_file\": \"rsa.pub\", "
                     "\"algorithms\": [\"HS256\"]}]}",
                     "cfg.json:2:11: ", "give only one of", NULL);
    expect_cfg_error("{\"keys\": [{\"algorithms\": [\"HS256\"]}]}", "cfg.json:2:", "needs one of", NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"none\"]}]}",
                     "cfg.json:2:", "'none' is never accepted", NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"ES512\"]}]}",
                     "cfg.json:2:", "algorithm 'ES512' is not supported", NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": []}]}",
                     "cfg.json:2:", "must not be empty", NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\"}]}", "cfg.json:2:",
                     "missing required key 'algorithms'", NULL);
    expect_cfg_error("{\"keys\": []}", "cfg.json:2:", "auth.keys: must be a non-empty array", NULL);
    expect_cfg_error("{\"issuer\": \"x\"}", "cfg.json:2:", "missing required key 'keys'", NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
                     " \"leeway_seconds\": -5}",
                     "cfg.json:3:", "'leeway_seconds' is -5", NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
                     " \"require_exp\": \"yes\"}",
                     "cfg.json:3:", "'require_exp' must be true or false", NULL);
    expect_cfg_error("{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]}],\n"
                     " \"user_claim\": \"\"}",
                     "cfg.json:3:", "'user_claim' must not be empty", NULL);
    /* Duplicate kid, kid with a JWKS. */
    expect_cfg_error("{\"keys\": [{\"kid\": \"a\", \"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]},\n"
                     "  {\"kid\": \"a\", \"public_key_file\": \"rsa.pub\", \"algorithms\": [\"RS256\"]}]}",
                     "cfg.json:3:11: ", "kid 'a' is already used", NULL);
    expect_cfg_error("{\"keys\": [{\"kid\": \"a\", \"jwks_file\": \"jwks.json\", \"algorithms\": [\"RS256\"]}]}",
                     "cfg.json:2:", "'kid' cannot be set with jwks_file", NULL);
    /* JWKS errors name both the config field and the place in the JWKS. */
    expect_cfg_error("{\"keys\": [{\"jwks_file\": \"jwks-bad.json\", \"algorithms\": [\"ES256\"]}]}",
                     "cfg.json:2:25: auth.keys[0]: ", "jwks-bad.json:2:3: keys[0]: 'x' and 'y' must be 32 bytes",
                     NULL);
    expect_cfg_error("{\"keys\": [{\"jwks_file\": \"jwks-none.json\", \"algorithms\": [\"RS256\"]}]}",
                     "cfg.json:2:", "no usable key in", "key type 'oct' is not supported");
    expect_cfg_error("{\"keys\": [{\"jwks_file\": \"jwks.json\", \"algorithms\": [\"ES384\"]}]}",
                     "cfg.json:2:", "no usable key in", NULL);
    expect_cfg_error("{\"keys\": [{\"jwks_file\": \"missing.json\", \"algorithms\": [\"ES384\"]}]}",
                     "cfg.json:2:", "missing.json: cannot open", NULL);
}

/* ---- martgate token ------------------------------------------------------ */

/* Runs cmd_token_main with stdout (and stderr) going to a file; returns the
 * exit status and the first line of stdout in out. */
static int run_token_cmd(const char *const *args, char *out, size_t outlen)
{
    char *argv[32];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = strdup(args[argc]);
    argv[argc] = NULL;
    char p[512];
    path_in_dir(p, sizeof p, "out.txt");
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(fd >= 0 && devnull >= 0 && saved_out >= 0 && saved_err >= 0);
    dup2(fd, 1);
    dup2(devnull, 2);
    int rc = cmd_token_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(fd);
    close(devnull);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    out[0] = 0;
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    if (!fgets(out, (int)outlen, f))
        out[0] = 0;
    fclose(f);
    out[strcspn(out, "\n")] = 0;
    return rc;
}

static void test_token_command(void **state)
{
    (void)state;
    char hs[512], rsa[512], ec[512], out[8192];
    path_in_dir(hs, sizeof hs, "hs.key");
    path_in_dir(rsa, sizeof rsa, "rsa.pem");
    path_in_dir(ec, sizeof ec, "ec256.pem");
    jwt_verifier *v = must_load(
        "{\"keys\": [{\"hmac_secret_file\": \"hs.key\", \"algorithms\": [\"HS256\"]},\n"
        "            {\"kid\": \"rs1\", \"public_key_file\": \"rsa.pub\", \"algorithms\": [\"RS256\"]},\n"
        "            {\"public_key_file\": \"ec256.pub\", \"algorithms\": [\"ES256\"]}],\n"
        " \"audience\": \"martgate\", \"issuer\": \"dev\", \"leeway_seconds\": 5,\n"
        " \"groups_claim\": \"realm_access.roles\"}");
    const char *a1[] = {"token", "--key", hs, "--alg", "HS256", "--sub", "alice",
                        "--groups", "analysts,sales", "--groups-claim", "realm_access.roles",
                        "--ttl", "30m", "--claim", "region=west", "--iss", "dev",
                        "--aud", "martgate", NULL};
    assert_int_equal(run_token_cmd(a1, out, sizeof out), 0);
    jwt_identity id;
    char why[256] = "";
    time_t now = time(NULL);
    assert_int_equal(jwt_verifier_check(v, out, strlen(out), "alice", now, &id, why, sizeof why), 0);
    assert_int_equal(id.ngroups, 2);
    assert_string_equal(id.groups[0], "analysts");
    assert_string_equal(json_string_value(json_object_get(id.claims, "region")), "west");
    assert_true(id.exp - id.iat == 1800);
    jwt_identity_clear(&id);

    const char *a2[] = {"token", "--key", rsa, "--alg", "RS256", "--kid", "rs1", "--sub", "bob",
                        "--iss", "dev", "--aud", "x", "--aud", "martgate", "--ttl", "1h", NULL};
    assert_int_equal(run_token_cmd(a2, out, sizeof out), 0);
    expect_ok(v, out, "bob");
    const char *a3[] = {"token", "--key", ec, "--alg", "ES256", "--sub", "carl", "--iss", "dev",
                        "--aud", "martgate", "--ttl", "-60", NULL};
    assert_int_equal(run_token_cmd(a3, out, sizeof out), 0);
    expect_reject_at(v, out, "carl", time(NULL), "token expired");
    const char *a4[] = {"token", "--key", hs, "--sub", "dora", "--iss", "dev", "--aud", "martgate",
                        "--nbf", "2m", NULL};
    assert_int_equal(run_token_cmd(a4, out, sizeof out), 0);
    expect_reject_at(v, out, "dora", time(NULL), "not valid yet");
    const char *a5[] = {"token", "--key", hs, "--sub", "ed", "--iss", "dev", "--aud", "martgate",
                        "--no-exp", NULL};
    assert_int_equal(run_token_cmd(a5, out, sizeof out), 0);
    expect_reject_at(v, out, "ed", time(NULL), "no exp claim");
    jwt_verifier_free(v);

    /* Usage errors exit 2; key problems exit 1; --help exits 0. */
    const char *u1[] = {"token", "--key", hs, NULL};
    assert_int_equal(run_token_cmd(u1, out, sizeof out), 2);
    const char *u2[] = {"token", "--key", hs, "--sub", "a", "--ttl", "soon", NULL};
    assert_int_equal(run_token_cmd(u2, out, sizeof out), 2);
    const char *u3[] = {"token", "--key", hs, "--sub", "a", "--bogus", NULL};
    assert_int_equal(run_token_cmd(u3, out, sizeof out), 2);
    const char *u4[] = {"token", "--key", hs, "--sub", "a", "--alg", "none", NULL};
    assert_int_equal(run_token_cmd(u4, out, sizeof out), 2);
    const char *u5[] = {"token", "--key", hs, "--sub", "a", "--claim", "exp=1", NULL};
    assert_int_equal(run_token_cmd(u5, out, sizeof out), 2);
    const char *u6[] = {"token", "--key", hs, "--sub", "a", "--groups", "a,,b", NULL};
    assert_int_equal(run_token_cmd(u6, out, sizeof out), 2);
    const char *u7[] = {"token", "--key", hs, "--sub", NULL};
    assert_int_equal(run_token_cmd(u7, out, sizeof out), 2);
    const char *u8[] = {"token", "--key", hs, "--sub", "a", "extra", NULL};
    assert_int_equal(run_token_cmd(u8, out, sizeof out), 2);
    const char *k1[] = {"token", "--key", rsa, "--alg", "ES256", "--sub", "a", NULL};
    assert_int_equal(run_token_cmd(k1, out, sizeof out), 1);
    const char *k2[] = {"token", "--key", "/nonexistent/key", "--sub", "a", NULL};
    assert_int_equal(run_token_cmd(k2, out, sizeof out), 1);
    const char *k3[] = {"token", "--key", rsa, "--alg", "HS256", "--sub", "a", NULL};
    assert_int_equal(run_token_cmd(k3, out, sizeof out), 1);
    const char *h[] = {"token", "--help", NULL};
    assert_int_equal(run_token_cmd(h, out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: martgate token"));
}

static void test_mint_rejects_bad_keys(void **state)
{
    (void)state;
    char err[256];
    char *t = NULL;
    jwt_mint_opts o = hs256_opts("x");
    o.key = (const unsigned char *)"short";
    o.key_len = 5;
    assert_int_equal(jwt_mint(&o, g_now, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs at least 32"));
    o = hs256_opts("x");
    o.alg = "ES384";
    o.key = (const unsigned char *)g_ec256_priv;
    o.key_len = strlen(g_ec256_priv);
    assert_int_equal(jwt_mint(&o, g_now, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "ES384 needs a P-384 EC key, but the key is a P-256 EC key"));
    o.alg = "none";
    assert_int_equal(jwt_mint(&o, g_now, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "not supported"));
    o = hs256_opts(NULL);
    assert_int_equal(jwt_mint(&o, g_now, &t, err, sizeof err), -1);
    o = hs256_opts("x");
    o.with_groups = true;
    o.groups_claim = "a..b";
    assert_int_equal(jwt_mint(&o, g_now, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty part"));
    assert_null(t);
    /* jwt_mint_load_key strips exactly one trailing newline. */
    char p[512];
    unsigned char *key = NULL;
    size_t len = 0;
    path_in_dir(p, sizeof p, "hs.key");
    assert_int_equal(jwt_mint_load_key(p, "HS256", &key, &len, err, sizeof err), 0);
    assert_int_equal(len, strlen(HS_SECRET));
    assert_memory_equal(key, HS_SECRET, len);
    jwt_mint_key_free(key, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_hs256),
        cmocka_unit_test(test_valid_hs512),
        cmocka_unit_test(test_valid_rs256_es256_es384),
        cmocka_unit_test(test_jwks_by_kid),
        cmocka_unit_test(test_independent_tokens),
        cmocka_unit_test(test_expired_nbf_leeway),
        cmocka_unit_test(test_missing_exp_and_max_age),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_alg_none_and_confusion),
        cmocka_unit_test(test_iss_aud_user),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_garbage_and_limits),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_token_command),
        cmocka_unit_test(test_mint_rejects_bad_keys),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/*
 * jwt_verify: JWT login (see jwt_verify.h). The token's header is decoded and
 * judged here before libjwt sees it, so the key and algorithm are always
 * chosen by the configuration, never by the token: an HS* token is only ever
 * checked against an HMAC secret, RS* and ES* only against public keys of the
 * matching type and curve. HMAC signatures are compared in constant time here
 * first (libjwt 1.10 compares them with strcmp); libjwt then verifies again
 * and its decoded alg must equal the header's.
 */
#include "proxy/jwt_verify.h"

#include <jwt.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/path.h"
#include "proxy/jwk.h"

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

/* ---- loading ------------------------------------------------------------- */

static void vkey_free(vkey *k)
{
    free(k->kid);
    free(k->label);
    if (k->material)
        jwk_secure_free(k->material, k->len);
}

void jwt_verifier_free(jwt_verifier *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nkeys; i++)
        vkey_free(&v->keys[i]);
    free(v->keys);
    free(v->issuer);
    free(v->audience);
    free(v->user_claim);
    free(v->groups_claim);
    free(v);
}

size_t jwt_verifier_max_token_bytes(const jwt_verifier *v)
{
    return v->max_token_bytes;
}


/* Adds a key (taking ownership of material). kid_at locates the kid for a
 * duplicate-kid error, in kid_doc. */
static int add_key(jwt_verifier *v, const char *kid, const char *label, jwk_kind kind,
                   unsigned char *material, size_t len, unsigned algs, const json_doc *kid_doc,
                   const json_t *kid_at, const char *field, char *err, size_t errlen)
{
    if (kid)
        for (size_t i = 0; i < v->nkeys; i++)
            if (v->keys[i].kid && strcmp(v->keys[i].kid, kid) == 0) {
                jwk_secure_free(material, len);
                return json_doc_error(kid_doc, kid_at, err, errlen, field,
                                      "kid '%s' is already used by another key", kid);
            }
    if (v->nkeys >= MAX_KEYS) {
        jwk_secure_free(material, len);
        return json_doc_error(kid_doc, kid_at, err, errlen, field, "more than %d keys", MAX_KEYS);
    }
    vkey *nk = realloc(v->keys, (v->nkeys + 1) * sizeof *nk);
    if (!nk) {
        jwk_secure_free(material, len);
        return json_doc_error(kid_doc, kid_at, err, errlen, field, "out of memory");
    }
    v->keys = nk;
    vkey *k = &v->keys[v->nkeys];
    memset(k, 0, sizeof *k);
    k->kind = kind;
    k->material = material;
    k->len = len;
    k->algs = algs;
    k->kid = kid ? strdup(kid) : NULL;
    k->label = strdup(kid ? kid : label);
    v->nkeys++;
    if ((kid && !k->kid) || !k->label)
        return json_doc_error(kid_doc, kid_at, err, errlen, field, "out of memory");
    return 0;
}

/* The algorithms of a key entry, as a bit set; locations in alg_at[]. */
static int parse_algorithms(const json_doc *doc, const json_t *entry, const char *field,
                            unsigned *algs, const json_t **alg_at, char *err, size_t errlen)
{
    const char **names = NULL;
    size_t n = 0;
    if (json_doc_get_strings(doc, entry, field, "algorithms", true, &names, &n, err, errlen) != 0)
        return -1;
    json_t *arr = json_object_get(entry, "algorithms");
    int rc = 0;
    *algs = 0;
    if (n == 0)
        rc = json_doc_error(doc, arr, err, errlen, field, "'algorithms' must not be empty");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *at = json_is_array(arr) ? json_array_get(arr, i) : arr;
        jwt_alg_t a = jwk_alg_parse(names[i]);
        if (strcasecmp(names[i], "none") == 0)
            rc = json_doc_error(doc, at, err, errlen, field,
                                "algorithm 'none' is never accepted (tokens must be signed)");
        else if (a == JWT_ALG_INVAL)
            rc = json_doc_error(doc, at, err, errlen, field,
                                "algorithm '%s' is not supported (supported: HS256, HS384, HS512, "
                                "RS256, RS384, RS512, ES256, ES384)",
                                names[i]);
        else {
            *algs |= ALG_BIT(a);
            alg_at[a] = at;
        }
    }
    free(names);
    return rc;
}

/* Every configured algorithm must fit the key. */
static int check_algs_fit(const json_doc *doc, unsigned algs, const json_t **alg_at,
                          jwk_kind kind, const char *source, const char *field, char *err,
                          size_t errlen)
{
    for (int a = 0; a < JWT_ALG_TERM; a++)
        if ((algs & ALG_BIT(a)) && !jwk_alg_fits((jwt_alg_t)a, kind))
            return json_doc_error(doc, alg_at[a], err, errlen, field,
                                  "%s needs %s, but %s is %s", jwk_alg_name((jwt_alg_t)a),
                                  jwk_alg_needs((jwt_alg_t)a), source, jwk_kind_name(kind));
    return 0;
}

static int load_hmac(jwt_verifier *v, const json_doc *doc, const json_t *entry,
                     const char *field, const char *path, const json_t *path_at, const char *kid,
                     unsigned algs, const json_t **alg_at, char *err, size_t errlen)
{
    char why[512];
    unsigned char *buf = NULL;
    size_t len = 0;
    if (jwk_read_file(path, JWK_MAX_SECRET_BYTES, &buf, &len, why, sizeof why) != 0)
        return json_doc_error(doc, path_at, err, errlen, field, "%s", why);
    size_t alloc = len + 1;
    if (jwk_secret_prepare(buf, &len, why, sizeof why) != 0) {
        jwk_secure_free(buf, alloc);
        return json_doc_error(doc, path_at, err, errlen, field, "%s: %s", path, why);
    }
    if (check_algs_fit(doc, algs, alg_at, JWK_KIND_HMAC, "hmac_secret_file", field, err,
                       errlen) != 0) {
        jwk_secure_free(buf, alloc);
        return -1;
    }
    for (int a = 0; a < JWT_ALG_TERM; a++)
        if ((algs & ALG_BIT(a)) && len < jwk_hmac_min_bytes((jwt_alg_t)a)) {
            jwk_secure_free(buf, alloc);
            return json_doc_error(doc, path_at, err, errlen, field,
                                  "secret in %s is %zu bytes; %s needs at least %zu "
                                  "(RFC 7518 3.2), e.g. openssl rand -out FILE %zu",
                                  path, len, jwk_alg_name((jwt_alg_t)a),
                                  jwk_hmac_min_bytes((jwt_alg_t)a),
                                  jwk_hmac_min_bytes((jwt_alg_t)a));
        }
    return add_key(v, kid, field, JWK_KIND_HMAC, buf, len, algs, doc,
                   kid ? json_object_get(entry, "kid") : entry, field, err, errlen);
}

static int load_public(jwt_verifier *v, const json_doc *doc, const json_t *entry,
                       const char *field, const char *path, const json_t *path_at,
                       const char *kid, unsigned algs, const json_t **alg_at, char *err,
                       size_t errlen)
{
    char why[512];
    unsigned char *buf = NULL;
    size_t len = 0;
    if (jwk_read_file(path, JWK_MAX_PEM_BYTES, &buf, &len, why, sizeof why) != 0)
        return json_doc_error(doc, path_at, err, errlen, field, "%s", why);
    EVP_PKEY *pk = NULL;
    jwk_kind kind;
    int rc = jwk_pem_public(buf, len, &pk, &kind, why, sizeof why);
    free(buf);
    if (rc != 0)
        return json_doc_error(doc, path_at, err, errlen, field, "%s: %s", path, why);
    char *pem = NULL;
    size_t pemlen = 0;
    rc = check_algs_fit(doc, algs, alg_at, kind, "public_key_file", field, err, errlen);
    if (rc == 0 && jwk_pkey_public_pem(pk, &pem, &pemlen, why, sizeof why) != 0)
        rc = json_doc_error(doc, path_at, err, errlen, field, "%s: %s", path, why);
    EVP_PKEY_free(pk);
    if (rc != 0)
        return -1;
    return add_key(v, kid, field, kind, (unsigned char *)pem, pemlen, algs, doc,
                   kid ? json_object_get(entry, "kid") : entry, field, err, errlen);
}

/* Whether a JWK may be used to verify signatures ("use", "key_ops"). */
static bool jwk_for_signatures(const json_t *jwk, char *why, size_t whylen)
{
    json_t *use = json_object_get(jwk, "use");
    if (json_is_string(use) && strcmp(json_string_value(use), "sig") != 0) {
        snprintf(why, whylen, "use is '%s', not 'sig'", json_string_value(use));
        return false;
    }
    json_t *ops = json_object_get(jwk, "key_ops");
    if (json_is_array(ops)) {
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op) {
            if (json_is_string(op) && strcmp(json_string_value(op), "verify") == 0)
                return true;
        }
        snprintf(why, whylen, "key_ops does not include 'verify'");
        return false;
    }
    return true;
}

static int load_jwks(jwt_verifier *v, const json_doc *doc, const char *field, const char *path,
                     const json_t *path_at, unsigned algs, char *err, size_t errlen)
{
    char why[1024];
    json_doc *jd = json_doc_load(path, JWK_MAX_JWKS_BYTES, why, sizeof why);
    if (!jd)
        return json_doc_error(doc, path_at, err, errlen, field, "%s", why);
    json_t *root = json_doc_root(jd);
    json_t *keys = json_is_object(root) ? json_object_get(root, "keys") : NULL;
    if (!json_is_array(keys)) {
        json_doc_error(jd, keys ? keys : root, why, sizeof why, "", "a JWKS must be an object "
                                                                    "with a 'keys' array");
        json_doc_free(jd);
        return json_doc_error(doc, path_at, err, errlen, field, "%s", why);
    }
    size_t used = 0, i;
    char skipped[512] = "";
    json_t *jwk;
    json_array_foreach(keys, i, jwk) {
        char jfield[48], reason[300] = "";
        snprintf(jfield, sizeof jfield, "keys[%zu]", i);
        EVP_PKEY *pk = NULL;
        jwk_kind kind;
        unsigned mask = algs;
        int rc = jwk_from_json(jd, jwk, jfield, &pk, &kind, why, sizeof why);
        if (rc < 0) {
            json_doc_free(jd);
            return json_doc_error(doc, path_at, err, errlen, field, "%s", why);
        }
        if (rc > 0) {
            snprintf(reason, sizeof reason, "%.200s", why);
        } else if (!jwk_for_signatures(jwk, reason, sizeof reason)) {
            /* reason filled */
        } else {
            json_t *alg = json_object_get(jwk, "alg");
            if (json_is_string(alg)) {
                jwt_alg_t a = jwk_alg_parse(json_string_value(alg));
                mask = a == JWT_ALG_INVAL ? 0 : mask & ALG_BIT(a);
            }
            for (int a = 0; a < JWT_ALG_TERM; a++)
                if (!jwk_alg_fits((jwt_alg_t)a, kind))
                    mask &= ~ALG_BIT(a);
            if (!mask)
                snprintf(reason, sizeof reason, "%s%s%s fits none of the configured algorithms",
                         jwk_kind_name(kind), json_is_string(alg) ? " with alg " : "",
                         json_is_string(alg) ? json_string_value(alg) : "");
        }
        if (reason[0]) {
            if (!skipped[0])
                snprintf(skipped, sizeof skipped, "%s: %s", jfield, reason);
            EVP_PKEY_free(pk);
            continue;
        }
        char *pem = NULL;
        size_t pemlen = 0;
        rc = jwk_pkey_public_pem(pk, &pem, &pemlen, why, sizeof why);
        EVP_PKEY_free(pk);
        if (rc != 0) {
            json_doc_free(jd);
            return json_doc_error(doc, path_at, err, errlen, field, "%s: %s: %s", path, jfield, why);
        }
        json_t *kidv = json_object_get(jwk, "kid");
        if (kidv && !json_is_string(kidv)) {
            free(pem);
            json_doc_error(jd, kidv, why, sizeof why, jfield, "'kid' must be a string");
            json_doc_free(jd);
            return json_doc_error(doc, path_at, err, errlen, field, "%s", why);
        }
        char label[600];
        snprintf(label, sizeof label, "%s %s", field, jfield);
        why[0] = 0;
        rc = add_key(v, kidv ? json_string_value(kidv) : NULL, label, kind, (unsigned char *)pem,
                     pemlen, mask, jd, kidv ? kidv : jwk, jfield, why, sizeof why);
        if (rc != 0) {
            json_doc_free(jd);
            return json_doc_error(doc, path_at, err, errlen, field, "%s", why);
        }
        used++;
    }
    json_doc_free(jd);
    if (used == 0)
        return json_doc_error(doc, path_at, err, errlen, field, "no usable key in %s%s%s%s", path,
                              skipped[0] ? " (" : "", skipped[0] ? skipped : "",
                              skipped[0] ? ")" : "");
    return 0;
}

static int load_key_entry(jwt_verifier *v, const json_doc *doc, const json_t *entry, size_t idx,
                          const char *base_dir, char *err, size_t errlen)
{
    static const char *const allowed[] = {"kid", "hmac_secret_file", "public_key_file",
                                          "jwks_file", "algorithms", NULL};
    static const char *const sources[] = {"hmac_secret_file", "public_key_file", "jwks_file"};
    char field[40];
    snprintf(field, sizeof field, "auth.keys[%zu]", idx);
    if (json_doc_check_keys(doc, entry, field, allowed, err, errlen) != 0)
        return -1;
    int which = -1, count = 0;
    for (int s = 0; s < 3; s++)
        if (json_object_get(entry, sources[s])) {
            if (which < 0)
                which = s;
            count++;
        }
    if (count != 1)
        return json_doc_error(doc, entry, err, errlen, field,
                              count ? "give only one of hmac_secret_file, public_key_file, jwks_file"
                                    : "needs one of hmac_secret_file, public_key_file, jwks_file");
    const char *file = NULL, *kid = NULL;
    if (json_doc_get_string(doc, entry, field, sources[which], true, &file, err, errlen) != 0)
        return -1;
    const json_t *file_at = json_object_get(entry, sources[which]);
    if (!*file)
        return json_doc_error(doc, file_at, err, errlen, field, "'%s' must not be empty",
                              sources[which]);
    if (json_doc_get_string(doc, entry, field, "kid", false, &kid, err, errlen) < 0)
        return -1;
    if (kid && !*kid)
        return json_doc_error(doc, json_object_get(entry, "kid"), err, errlen, field,
                              "'kid' must not be empty");
    if (kid && which == 2)
        return json_doc_error(doc, json_object_get(entry, "kid"), err, errlen, field,
                              "'kid' cannot be set with jwks_file (JWKS keys carry their own kids)");
    unsigned algs = 0;
    const json_t *alg_at[JWT_ALG_TERM + 1] = {0};
    if (parse_algorithms(doc, entry, field, &algs, alg_at, err, errlen) != 0)
        return -1;
    char *path = path_resolve(base_dir, file);
    if (!path)
        return json_doc_error(doc, file_at, err, errlen, field, "out of memory");
    int rc;
    if (which == 0)
        rc = load_hmac(v, doc, entry, field, path, file_at, kid, algs, alg_at, err, errlen);
    else if (which == 1)
        rc = load_public(v, doc, entry, field, path, file_at, kid, algs, alg_at, err, errlen);
    else
        rc = load_jwks(v, doc, field, path, file_at, algs, err, errlen);
    free(path);
    return rc;
}

static int get_nonempty_string(const json_doc *doc, const json_t *auth, const char *key,
                               const char *dflt, char **out, char *err, size_t errlen)
{
    const char *s = dflt;
    if (json_doc_get_string(doc, auth, "auth", key, false, &s, err, errlen) < 0)
        return -1;
    if (s && !*s)
        return json_doc_error(doc, json_object_get(auth, key), err, errlen, "auth",
                              "'%s' must not be empty", key);
    *out = NULL;
    if (s && !(*out = strdup(s)))
        return json_doc_error(doc, auth, err, errlen, "auth", "out of memory");
    return 0;
}

jwt_verifier *jwt_verifier_load(const json_doc *doc, const json_t *auth, const char *base_dir,
                                char *err, size_t errlen)
{
    static const char *const allowed[] = {"keys", "issuer", "audience", "leeway_seconds",
                                          "max_token_age_seconds", "user_claim", "groups_claim",
                                          "require_exp", "max_token_bytes", NULL};
    if (!auth) {
        json_doc_error(doc, NULL, err, errlen, "auth", "missing (the JWT login configuration)");
        return NULL;
    }
    if (json_doc_check_keys(doc, auth, "auth", allowed, err, errlen) != 0)
        return NULL;
    jwt_verifier *v = calloc(1, sizeof *v);
    if (!v) {
        json_doc_error(doc, auth, err, errlen, "auth", "out of memory");
        return NULL;
    }
    long long leeway = JWT_DEFAULT_LEEWAY_SECONDS, max_age = 0,
              max_bytes = JWT_DEFAULT_MAX_TOKEN_BYTES;
    v->require_exp = true;
    if (json_doc_get_int(doc, auth, "auth", "leeway_seconds", false, 0, 3600, &leeway, err,
                         errlen) < 0 ||
        json_doc_get_int(doc, auth, "auth", "max_token_age_seconds", false, 0,
                         10LL * 366 * 86400, &max_age, err, errlen) < 0 ||
        json_doc_get_int(doc, auth, "auth", "max_token_bytes", false, 256, 1024 * 1024,
                         &max_bytes, err, errlen) < 0 ||
        json_doc_get_bool(doc, auth, "auth", "require_exp", false, &v->require_exp, err,
                          errlen) < 0 ||
        get_nonempty_string(doc, auth, "issuer", NULL, &v->issuer, err, errlen) != 0 ||
        get_nonempty_string(doc, auth, "audience", NULL, &v->audience, err, errlen) != 0 ||
        get_nonempty_string(doc, auth, "user_claim", "sub", &v->user_claim, err, errlen) != 0 ||
        get_nonempty_string(doc, auth, "groups_claim", "groups", &v->groups_claim, err,
                            errlen) != 0)
        goto fail;
    v->leeway = leeway;
    v->max_age = max_age;
    v->max_token_bytes = (size_t)max_bytes;

    json_t *keys = json_object_get(auth, "keys");
    if (!keys) {
        json_doc_error(doc, auth, err, errlen, "auth", "missing required key 'keys'");
        goto fail;
    }
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        json_doc_error(doc, keys, err, errlen, "auth.keys", "must be a non-empty array of keys");
        goto fail;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(keys, i, entry) {
        if (load_key_entry(v, doc, entry, i, base_dir, err, errlen) != 0)
            goto fail;
    }
    ERR_clear_error();
    return v;
fail:
    ERR_clear_error();
    jwt_verifier_free(v);
    return NULL;
}

/* ---- checking ------------------------------------------------------------ */

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void jwt_identity_clear(jwt_identity *id)
{
    if (!id)
        return;
    free(id->user);
    for (size_t i = 0; i < id->ngroups; i++)
        free(id->groups[i]);
    free(id->groups);
    json_decref(id->claims);
    memset(id, 0, sizeof *id);
}

/* A claim by name: the exact top-level key first (names such as
 * "https://idp.example/groups" contain dots), else a dotted path. */
static json_t *claim_at(json_t *claims, const char *path)
{
    json_t *v = json_object_get(claims, path);
    if (v || !strchr(path, '.'))
        return v;
    v = claims;
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(v) || n == 0)
            return NULL;
        v = json_object_getn(v, p, n);
        p = dot ? dot + 1 : p + n;
    }
    return v;
}

/* A NumericDate claim: 1 absent, 0 found, -1 not a number. */
static int time_claim(json_t *claims, const char *name, long long *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 1;
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        *out = x > TIME_CLAMP ? TIME_CLAMP : x < -TIME_CLAMP ? -TIME_CLAMP : x;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d))
            return -1;
        if (d > (double)TIME_CLAMP)
            *out = TIME_CLAMP;
        else if (d < (double)-TIME_CLAMP)
            *out = -TIME_CLAMP;
        else {
            long long t = (long long)d;   /* toward zero; make it floor */
            *out = (double)t > d ? t - 1 : t;
        }
        return 0;
    }
    return -1;
}

static bool hmac_matches(const vkey *k, jwt_alg_t alg, const char *input, size_t inlen,
                         const char *sig, size_t siglen)
{
    const EVP_MD *md = alg == JWT_ALG_HS512 ? EVP_sha512()
                     : alg == JWT_ALG_HS384 ? EVP_sha384()
                                            : EVP_sha256();
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(md, k->material, (int)k->len, (const unsigned char *)input, inlen, mac, &maclen))
        return false;
    char *enc = jwk_b64url_encode(mac, maclen);
    OPENSSL_cleanse(mac, sizeof mac);
    bool ok = enc && strlen(enc) == siglen && CRYPTO_memcmp(enc, sig, siglen) == 0;
    free(enc);
    return ok;
}

/* Verifies the signature with key k through libjwt; 0 ok, -1 not this key,
 * -2 refuse the token whatever the other keys say. */
static int verify_with_key(const vkey *k, jwt_alg_t alg, const char *tok, size_t dot2,
                           const char *sig, size_t siglen, char *why, size_t whylen)
{
    if (k->kind == JWK_KIND_HMAC && !hmac_matches(k, alg, tok, dot2, sig, siglen))
        return fail(why, whylen, "signature does not verify with key %s", k->label);
    jwt_t *j = NULL;
    int rc = jwt_decode(&j, tok, k->material, (int)k->len);
    if (rc != 0 || !j) {
        jwt_free(j);
        return fail(why, whylen, "signature does not verify with key %s", k->label);
    }
    jwt_alg_t got = jwt_get_alg(j);
    jwt_free(j);
    if (got != alg) {
        fail(why, whylen, "libjwt verified the token as %s but its header says %s",
             jwt_alg_str(got) ? jwt_alg_str(got) : "?", jwk_alg_name(alg));
        return -2;
    }
    return 0;
}

static int check_header(json_t *hdr, jwt_alg_t *alg_out, const char **kid_out, char *why,
                        size_t whylen)
{
    json_t *alg = json_object_get(hdr, "alg");
    if (!alg)
        return fail(why, whylen, "token header has no alg");
    if (!json_is_string(alg))
        return fail(why, whylen, "token header alg is not a string");
    const char *name = json_string_value(alg);
    if (strcasecmp(name, "none") == 0)
        return fail(why, whylen, "alg %s is never accepted (unsigned token)", name);
    jwt_alg_t a = jwk_alg_parse(name);
    if (a == JWT_ALG_INVAL)
        return fail(why, whylen, "alg '%.40s' is not supported", name);
    if (json_object_get(hdr, "crit"))
        return fail(why, whylen, "token header has crit (no JWS extensions are supported)");
    if (json_object_get(hdr, "enc") || json_object_get(hdr, "zip"))
        return fail(why, whylen, "encrypted or compressed tokens (enc/zip) are not supported");
    json_t *typ = json_object_get(hdr, "typ");
    if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        return fail(why, whylen, "token typ '%.40s' is not supported (only JWT)",
                    json_is_string(typ) ? json_string_value(typ) : "(not a string)");
    json_t *kid = json_object_get(hdr, "kid");
    if (kid && !json_is_string(kid))
        return fail(why, whylen, "token header kid is not a string");
    *alg_out = a;
    *kid_out = kid ? json_string_value(kid) : NULL;
    return 0;
}

static int check_claims(const jwt_verifier *v, json_t *claims, const char *startup_user,
                        long long now, jwt_identity *out, char *why, size_t whylen)
{
    long long exp = 0, nbf = 0, iat = 0, lw = v->leeway;
    int has_exp = time_claim(claims, "exp", &exp);
    int has_nbf = time_claim(claims, "nbf", &nbf);
    int has_iat = time_claim(claims, "iat", &iat);
    if (has_exp < 0)
        return fail(why, whylen, "exp claim is not a number");
    if (has_nbf < 0)
        return fail(why, whylen, "nbf claim is not a number");
    if (has_iat < 0)
        return fail(why, whylen, "iat claim is not a number");
    if (has_exp == 1 && v->require_exp)
        return fail(why, whylen, "token has no exp claim (require_exp is true)");
    if (has_exp == 0 && now >= exp + lw)
        return fail(why, whylen, "token expired %lld s ago (leeway %lld s)", now - exp, lw);
    if (has_nbf == 0 && now + lw < nbf)
        return fail(why, whylen, "token not valid yet: nbf is %lld s in the future (leeway %lld s)",
                    nbf - now, lw);
    if (has_iat == 0 && iat > now + lw)
        return fail(why, whylen, "token issued in the future: iat is %lld s ahead (leeway %lld s)",
                    iat - now, lw);
    if (v->max_age > 0) {
        if (has_iat != 0)
            return fail(why, whylen, "token has no iat claim (needed by max_token_age_seconds)");
        if (now - iat > v->max_age + lw)
            return fail(why, whylen, "token is %lld s old, more than max_token_age_seconds %lld",
                        now - iat, v->max_age);
    }
    if (v->issuer) {
        json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss))
            return fail(why, whylen, "token has no iss claim (expected '%s')", v->issuer);
        if (strcmp(json_string_value(iss), v->issuer) != 0)
            return fail(why, whylen, "token issuer '%.200s' is not '%s'", json_string_value(iss),
                        v->issuer);
    }
    if (v->audience) {
        json_t *aud = json_object_get(claims, "aud");
        bool ok = false;
        if (json_is_string(aud)) {
            ok = strcmp(json_string_value(aud), v->audience) == 0;
        } else if (json_is_array(aud)) {
            size_t i;
            json_t *a;
            json_array_foreach(aud, i, a) {
                if (json_is_string(a) && strcmp(json_string_value(a), v->audience) == 0)
                    ok = true;
            }
        } else {
            return fail(why, whylen, "token has no aud claim (expected '%s')", v->audience);
        }
        if (!ok)
            return fail(why, whylen, "token audience does not include '%s'", v->audience);
    }
    json_t *user = claim_at(claims, v->user_claim);
    if (!user)
        return fail(why, whylen, "token has no '%s' claim (user_claim)", v->user_claim);
    if (!json_is_string(user) || !*json_string_value(user))
        return fail(why, whylen, "user claim '%s' is not a non-empty string", v->user_claim);
    if (!startup_user || !*startup_user)
        return fail(why, whylen, "the startup message names no user");
    if (strcmp(json_string_value(user), startup_user) != 0)
        return fail(why, whylen, "token user '%.200s' (claim '%s') is not the startup user '%.200s'",
                    json_string_value(user), v->user_claim, startup_user);

    json_t *groups = claim_at(claims, v->groups_claim);
    size_t ng = 0;
    if (json_is_string(groups))
        ng = 1;
    else if (json_is_array(groups)) {
        size_t i;
        json_t *g;
        json_array_foreach(groups, i, g) {
            if (!json_is_string(g))
                return fail(why, whylen, "groups claim '%s' item %zu is not a string",
                            v->groups_claim, i);
        }
        ng = json_array_size(groups);
    } else if (groups)
        return fail(why, whylen, "groups claim '%s' is not a string or an array of strings",
                    v->groups_claim);

    out->user = strdup(json_string_value(user));
    out->groups = calloc(ng + 1, sizeof *out->groups);
    if (!out->user || !out->groups)
        return fail(why, whylen, "out of memory");
    for (size_t i = 0; i < ng; i++) {
        json_t *g = json_is_string(groups) ? groups : json_array_get(groups, i);
        if (!(out->groups[i] = strdup(json_string_value(g))))
            return fail(why, whylen, "out of memory");
        out->ngroups = i + 1;
    }
    out->exp = has_exp == 0 ? exp : 0;
    out->iat = has_iat == 0 ? iat : 0;
    return 0;
}

/* Decodes one base64url segment as a JSON object. */
static json_t *segment_json(const char *seg, size_t len, const char *what, char *why,
                            size_t whylen)
{
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (jwk_b64url_decode(seg, len, &raw, &rawlen) != 0) {
        fail(why, whylen, "token %s is not valid base64url", what);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, &je);
    free(raw);
    if (!j) {
        fail(why, whylen, "token %s is not valid JSON: %s", what, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(why, whylen, "token %s is not a JSON object", what);
        return NULL;
    }
    return j;
}

static int check_token(const jwt_verifier *v, const char *token, size_t token_len,
                       const char *startup_user, time_t now, jwt_identity *out, char *why,
                       size_t whylen)
{
    if (!token || token_len == 0)
        return fail(why, whylen, "empty token");
    if (token_len > v->max_token_bytes)
        return fail(why, whylen, "token is %zu bytes, more than max_token_bytes %zu", token_len,
                    v->max_token_bytes);
    size_t dots[2], ndots = 0;
    for (size_t i = 0; i < token_len; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '.') {
            if (ndots < 2)
                dots[ndots] = i;
            ndots++;
        } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_')) {
            return fail(why, whylen, "token has a character that is not base64url at byte %zu", i);
        }
    }
    if (ndots != 2)
        return fail(why, whylen, "token has %zu segments, expected 3 (header.payload.signature)",
                    ndots + 1);
    if (dots[0] == 0 || dots[1] == dots[0] + 1)
        return fail(why, whylen, "token has an empty %s", dots[0] == 0 ? "header" : "payload");
    if (dots[1] + 1 == token_len)
        return fail(why, whylen, "token has no signature (unsigned tokens are never accepted)");
    const char *sig = token + dots[1] + 1;
    size_t siglen = token_len - dots[1] - 1;
    if (siglen % 4 == 1)
        return fail(why, whylen, "token signature is not valid base64url");

    json_t *hdr = segment_json(token, dots[0], "header", why, whylen);
    if (!hdr)
        return -1;
    jwt_alg_t alg = JWT_ALG_INVAL;
    const char *kid = NULL;   /* points into hdr */
    const vkey *cand[MAX_KEYS];
    size_t ncand = 0;
    int rc = check_header(hdr, &alg, &kid, why, whylen);

    /* The configuration chooses the key; the header only picks among keys
     * that are configured for exactly this algorithm. */
    if (rc == 0 && kid) {
        const vkey *k = NULL;
        for (size_t i = 0; i < v->nkeys && !k; i++)
            if (v->keys[i].kid && strcmp(v->keys[i].kid, kid) == 0)
                k = &v->keys[i];
        if (!k)
            rc = fail(why, whylen, "no configured key has kid '%.100s'", kid);
        else if (!(k->algs & ALG_BIT(alg)))
            rc = fail(why, whylen, "alg %s is not allowed for key %s", jwk_alg_name(alg),
                      k->label);
        else
            cand[ncand++] = k;
    } else if (rc == 0) {
        for (size_t i = 0; i < v->nkeys; i++)
            if (v->keys[i].algs & ALG_BIT(alg))
                cand[ncand++] = &v->keys[i];
        if (ncand == 0)
            rc = fail(why, whylen, "alg %s is not configured for any key", jwk_alg_name(alg));
    }
    json_decref(hdr);
    if (rc != 0)
        return -1;
    /* Defence in depth: never hand a public key to an HS algorithm or the
     * reverse, whatever the configuration code above let through. */
    for (size_t i = 0; i < ncand; i++)
        if (!jwk_alg_fits(alg, cand[i]->kind))
            return fail(why, whylen, "alg %s does not fit key %s (%s)", jwk_alg_name(alg),
                        cand[i]->label, jwk_kind_name(cand[i]->kind));

    json_t *claims = segment_json(token + dots[0] + 1, dots[1] - dots[0] - 1, "payload", why,
                                  whylen);
    if (!claims)
        return -1;

    char *tok = strndup(token, token_len);
    if (!tok) {
        json_decref(claims);
        return fail(why, whylen, "out of memory");
    }
    rc = -1;
    for (size_t i = 0; i < ncand && rc == -1; i++)
        rc = verify_with_key(cand[i], alg, tok, dots[1], sig, siglen, why, whylen);
    free(tok);
    if (rc == -1 && ncand > 1)
        fail(why, whylen, "signature does not verify with any of the %zu keys allowed for %s",
             ncand, jwk_alg_name(alg));
    if (rc == 0)
        rc = check_claims(v, claims, startup_user, (long long)now, out, why, whylen);
    else
        rc = -1;
    if (rc == 0)
        out->claims = claims;
    else
        json_decref(claims);
    return rc;
}

int jwt_verifier_check(const jwt_verifier *v, const char *token, size_t token_len,
                       const char *startup_user, time_t now, jwt_identity *out, char *why,
                       size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (why && whylen)
        why[0] = 0;
    int rc = v ? check_token(v, token, token_len, startup_user, now, out, why, whylen)
               : fail(why, whylen, "no JWT verifier configured");
    if (rc != 0) {
        jwt_identity_clear(out);
        /* why quotes token contents (kid, iss, user): keep it one log line. */
        for (char *p = why; why && whylen && *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    ERR_clear_error();   /* keep the thread's queue clean for the TLS code */
    return rc;
}

/*
 * jwt_keys: the verification keys of JWT login, from the configuration's
 * auth section (HMAC secrets, PEM public keys, JWKS files), each pinned to
 * the algorithms it may verify (see jwt_verify.h).
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
#include "proxy/jwt_internal.h"

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

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

#include "proxy/jwt_internal.h"

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
    free(id->groups);   /* with the user's and the groups' strings (check_claims) */
    json_decref(id->claims);
    memset(id, 0, sizeof *id);
}

void jwt_identity_keep_claims(jwt_identity *id, bool (*keep)(const char *name, void *arg), void *arg)
{
    if (!id->claims)
        return;
    json_t *kept = NULL, *v;
    const char *name;
    json_object_foreach(id->claims, name, v) {
        if (!keep(name, arg))
            continue;
        if ((!kept && !(kept = json_object())) || json_object_set(kept, name, v) != 0) {
            json_decref(kept);
            return;
        }
    }
    json_decref(id->claims);
    id->claims = kept;
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

/* Group i of a groups claim checked to be a string or an array of strings. */
static const char *group_at(const json_t *groups, size_t i)
{
    return json_string_value(json_is_string(groups) ? groups : json_array_get(groups, i));
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

    /* one block, kept as long as the session: the group pointers, then
     * the user's and the groups' strings */
    size_t bytes = (ng + 1) * sizeof *out->groups + strlen(json_string_value(user)) + 1;
    for (size_t i = 0; i < ng; i++)
        bytes += strlen(group_at(groups, i)) + 1;
    if (!(out->groups = malloc(bytes)))
        return fail(why, whylen, "out of memory");
    char *text = (char *)(out->groups + ng + 1);
    out->user = text;
    text = stpcpy(text, json_string_value(user)) + 1;
    for (size_t i = 0; i < ng; i++) {
        out->groups[i] = text;
        text = stpcpy(text, group_at(groups, i)) + 1;
    }
    out->groups[ng] = NULL;
    out->ngroups = ng;
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

/*
 * cmd_token: `martgate token`, which mints one signed JWT for development,
 * tests and demos (HMAC secret or RSA/EC private key), and jwt_mint, the
 * builder it uses, which the unit tests call directly.
 */
#include <errno.h>
#include <getopt.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/commands.h"
#include "proxy/jwk.h"
#include "proxy/jwt_verify.h"

#define MAX_OFFSET_SECONDS (100LL * 366 * 86400)

/* ---- jwt_mint ------------------------------------------------------------ */

/* Sets value (stolen) at a dotted path, creating objects on the way. */
static int set_claim_path(json_t *root, const char *path, json_t *value, char *err, size_t errlen)
{
    json_t *cur = root;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0) {
            json_decref(value);
            snprintf(err, errlen, "claim path '%s' has an empty part", path);
            return -1;
        }
        if (!dot) {
            if (json_object_setn_new(cur, p, n, value) != 0) {
                snprintf(err, errlen, "cannot set claim '%s'", path);
                return -1;
            }
            return 0;
        }
        json_t *child = json_object_getn(cur, p, n);
        if (!child) {
            child = json_object();
            if (!child || json_object_setn_new(cur, p, n, child) != 0) {
                json_decref(value);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
        } else if (!json_is_object(child)) {
            json_decref(value);
            snprintf(err, errlen, "claim path '%s': '%.*s' is already set and is not an object",
                     path, (int)n, p);
            return -1;
        }
        cur = child;
        p = dot + 1;
    }
}

static int check_signing_key(const jwt_mint_opts *o, jwt_alg_t alg, char *err, size_t errlen)
{
    if (!o->key || o->key_len == 0) {
        snprintf(err, errlen, "no signing key");
        return -1;
    }
    if (o->key_len > INT_MAX) {
        snprintf(err, errlen, "signing key too large");
        return -1;
    }
    if (jwk_alg_fits(alg, JWK_KIND_HMAC)) {
        if (o->key_len < jwk_hmac_min_bytes(alg)) {
            snprintf(err, errlen, "HMAC secret is %zu bytes; %s needs at least %zu", o->key_len,
                     jwk_alg_name(alg), jwk_hmac_min_bytes(alg));
            return -1;
        }
        if (o->key_len >= 10 && memmem(o->key, o->key_len, "-----BEGIN", 10)) {
            snprintf(err, errlen, "the key looks like a PEM file; %s needs a raw HMAC secret",
                     jwk_alg_name(alg));
            return -1;
        }
        return 0;
    }
    EVP_PKEY *pk = NULL;
    jwk_kind kind;
    char why[256];
    if (jwk_pem_private(o->key, o->key_len, &pk, &kind, why, sizeof why) != 0) {
        snprintf(err, errlen, "signing key for %s: %s", jwk_alg_name(alg), why);
        return -1;
    }
    EVP_PKEY_free(pk);
    if (!jwk_alg_fits(alg, kind)) {
        snprintf(err, errlen, "%s needs %s, but the key is %s", jwk_alg_name(alg),
                 jwk_alg_needs(alg), jwk_kind_name(kind));
        return -1;
    }
    return 0;
}

static int build_claims(const jwt_mint_opts *o, long long now, json_t **out, char *err,
                        size_t errlen)
{
    json_t *c = o->extra ? json_deep_copy(o->extra) : json_object();
    if (!c || !json_is_object(c)) {
        json_decref(c);
        snprintf(err, errlen, o->extra ? "extra claims must be a JSON object" : "out of memory");
        return -1;
    }
    int bad = 0;
    bad |= json_object_set_new(c, "sub", json_string(o->sub));
    bad |= json_object_set_new(c, "iat", json_integer(now + (o->set_iat ? o->iat_offset : 0)));
    if (!o->no_exp)
        bad |= json_object_set_new(c, "exp", json_integer(now + o->ttl));
    if (o->set_nbf)
        bad |= json_object_set_new(c, "nbf", json_integer(now + o->nbf_offset));
    if (o->iss)
        bad |= json_object_set_new(c, "iss", json_string(o->iss));
    if (o->naud == 1) {
        bad |= json_object_set_new(c, "aud", json_string(o->aud[0]));
    } else if (o->naud > 1) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < o->naud; i++)
            bad |= json_array_append_new(a, json_string(o->aud[i]));
        bad |= json_object_set_new(c, "aud", a);
    }
    if (bad) {
        json_decref(c);
        snprintf(err, errlen, "cannot build claims (a value is not valid UTF-8?)");
        return -1;
    }
    if (o->with_groups) {
        json_t *g = json_array();
        for (size_t i = 0; g && i < o->ngroups; i++)
            if (json_array_append_new(g, json_string(o->groups[i])) != 0) {
                json_decref(g);
                g = NULL;
            }
        if (!g) {
            json_decref(c);
            snprintf(err, errlen, "cannot build the groups claim (not valid UTF-8?)");
            return -1;
        }
        if (set_claim_path(c, o->groups_claim ? o->groups_claim : "groups", g, err, errlen) != 0) {
            json_decref(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

int jwt_mint(const jwt_mint_opts *o, time_t now, char **token, char *err, size_t errlen)
{
    *token = NULL;
    jwt_alg_t alg = jwk_alg_parse(o->alg);
    if (alg == JWT_ALG_INVAL) {
        snprintf(err, errlen, "algorithm '%s' is not supported (HS256, HS384, HS512, RS256, "
                              "RS384, RS512, ES256, ES384)",
                 o->alg ? o->alg : "");
        return -1;
    }
    if (!o->sub || !*o->sub) {
        snprintf(err, errlen, "a subject (sub) is required");
        return -1;
    }
    if (check_signing_key(o, alg, err, errlen) != 0) {
        ERR_clear_error();
        return -1;
    }
    json_t *claims = NULL;
    if (build_claims(o, (long long)now, &claims, err, errlen) != 0)
        return -1;
    char *payload = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(claims);
    jwt_t *j = NULL;
    int rc = -1;
    if (!payload || jwt_new(&j) != 0) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (jwt_add_grants_json(j, payload) != 0) {
        snprintf(err, errlen, "libjwt refused the claims");
        goto done;
    }
    if (o->kid && jwt_add_header(j, "kid", o->kid) != 0) {
        snprintf(err, errlen, "libjwt refused the kid header");
        goto done;
    }
    if (jwt_set_alg(j, alg, o->key, (int)o->key_len) != 0) {
        snprintf(err, errlen, "libjwt refused the key for %s", jwk_alg_name(alg));
        goto done;
    }
    char *t = jwt_encode_str(j);
    if (!t) {
        snprintf(err, errlen, "libjwt could not sign the token: %s", strerror(errno));
        goto done;
    }
    /* Hand back memory from our allocator, not libjwt's. */
    *token = strdup(t);
    free(t);
    if (!*token) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = 0;
done:
    jwt_free(j);
    free(payload);
    ERR_clear_error();
    return rc;
}

int jwt_mint_load_key(const char *path, const char *alg_name, unsigned char **key, size_t *len,
                      char *err, size_t errlen)
{
    *key = NULL;
    *len = 0;
    jwt_alg_t alg = jwk_alg_parse(alg_name);
    if (alg == JWT_ALG_INVAL) {
        snprintf(err, errlen, "algorithm '%s' is not supported", alg_name ? alg_name : "");
        return -1;
    }
    bool hmac = jwk_alg_fits(alg, JWK_KIND_HMAC);
    if (jwk_read_file(path, hmac ? JWK_MAX_SECRET_BYTES : JWK_MAX_PEM_BYTES, key, len, err,
                      errlen) != 0)
        return -1;
    if (hmac) {
        char why[256];
        if (jwk_secret_prepare(*key, len, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", path, why);
            jwt_mint_key_free(*key, *len);
            *key = NULL;
            *len = 0;
            return -1;
        }
    }
    return 0;
}

void jwt_mint_key_free(unsigned char *key, size_t len)
{
    jwk_secure_free(key, len);
}

/* ---- the command --------------------------------------------------------- */

static const char usage_text[] =
    "usage: martgate token --key FILE --sub USER [options]\n"
    "\n"
    "Prints one signed JWT (and a newline) that martgate accepts as a password.\n"
    "\n"
    "  --key FILE            HMAC secret file (HS*) or private key PEM (RS*, ES*)\n"
    "  --alg ALG             HS256 (default), HS384, HS512, RS256, RS384, RS512,\n"
    "                        ES256, ES384\n"
    "  --sub USER            the user (sub claim); must equal the database user\n"
    "  --groups A,B          groups, comma-separated (\"\" for an empty list)\n"
    "  --groups-claim PATH   where groups go; dotted paths nest (default: groups)\n"
    "  --ttl DURATION        lifetime: 3600, 45s, 30m, 1h, 2d (default 1h);\n"
    "                        negative makes an already expired token\n"
    "  --claim NAME=VALUE    an extra string claim (repeatable)\n"
    "  --iss ISSUER          iss claim\n"
    "  --aud AUDIENCE        aud claim (repeat for an array)\n"
    "  --kid KID             kid header (selects the verifying key)\n"
    "  --nbf DURATION        nbf claim, relative to now (may be negative)\n"
    "  --iat DURATION        iat claim, relative to now (default 0 = now)\n"
    "  --no-exp              leave out exp (tokens that require_exp rejects)\n"
    "  -h, --help            this text\n";

/* "3600", "-60", "45s", "30m", "1h", "2d" -> seconds. */
static int parse_duration(const char *s, long long *out)
{
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (*p < '0' || *p > '9')
        return -1;
    long long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > MAX_OFFSET_SECONDS)
            return -1;
    }
    long long mult = 1;
    if (*p) {
        switch (*p++) {
        case 's':
            mult = 1;
            break;
        case 'm':
            mult = 60;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'd':
            mult = 86400;
            break;
        default:
            return -1;
        }
        if (*p)
            return -1;
    }
    if (v > MAX_OFFSET_SECONDS / mult)
        return -1;
    *out = neg ? -(v * mult) : v * mult;
    return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "martgate token: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_text);
    return 2;
}

/* Splits "a,b" into items (pointers into s, which is modified). */
static int split_groups(char *s, const char ***items, size_t *n)
{
    size_t cnt = 0, cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    const char **v = calloc(cap, sizeof *v);
    if (!v)
        return -1;
    if (*s) {
        char *p = s;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma)
                *comma = 0;
            if (!*p) {
                free(v);
                return -1;
            }
            v[cnt++] = p;
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    *items = v;
    *n = cnt;
    return 0;
}

enum {
    OPT_KEY = 1000, OPT_ALG, OPT_SUB, OPT_GROUPS, OPT_GROUPS_CLAIM, OPT_TTL, OPT_CLAIM, OPT_ISS,
    OPT_AUD, OPT_KID, OPT_NBF, OPT_IAT, OPT_NO_EXP, OPT_HELP
};

/* The token step functions' result when the command goes on. */
#define TOKEN_GO_ON (-1)

/* What `martgate token` was asked, and what it holds until it exits. */
typedef struct {
    jwt_mint_opts mint;
    const char *key_path;
    char *groups_arg;            /* --groups as given; split in place */
    const char **groups;         /* the pieces of groups_arg */
    const char **auds;           /* argc + 1 slots, for every --aud */
    size_t naud;
    json_t *extra;               /* the --claim claims */
    unsigned char *key;          /* read from key_path */
    size_t key_len;
    char *token;                 /* the signed JWT */
} token_request;

/* Sets the defaults and makes room for the claims and audiences; TOKEN_GO_ON or 1 when out of memory. */
static int token_request_init(token_request *t, int argc)
{
    memset(t, 0, sizeof *t);
    t->mint.alg = "HS256";
    t->mint.ttl = 3600;
    t->extra = json_object();
    if (!t->extra || !(t->auds = calloc((size_t)argc + 1, sizeof *t->auds))) {
        fprintf(stderr, "martgate token: out of memory\n");
        return 1;
    }
    return TOKEN_GO_ON;
}

/* Frees what the request holds. */
static void token_request_free(token_request *t)
{
    free(t->token);
    if (t->key)
        jwt_mint_key_free(t->key, t->key_len);
    free(t->groups);
    free(t->auds);
    json_decref(t->extra);
}

/* Parses a duration option into *out (setting *given first, when not NULL); TOKEN_GO_ON or a usage error. */
static int parse_offset_option(const char *arg, long long *out, bool *given, const char *bad)
{
    if (given)
        *given = true;
    if (parse_duration(arg, out) != 0)
        return usage_error(bad, arg);
    return TOKEN_GO_ON;
}

/* Adds one --claim NAME=VALUE (arg is modified) to extra; TOKEN_GO_ON or a usage error. */
static int add_extra_claim(json_t *extra, char *arg)
{
    static const char *const reserved[] = {"sub", "exp", "iat", "nbf", "iss", "aud", NULL};
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return usage_error("bad --claim '%s' (use NAME=VALUE)", arg);
    *eq = 0;
    for (const char *const *r = reserved; *r; r++)
        if (strcmp(*r, arg) == 0)
            return usage_error("--claim cannot set '%s'; use its own option", arg);
    if (json_object_get(extra, arg))
        return usage_error("--claim '%s' is given twice", arg);
    json_t *val = json_string(eq + 1);
    if (!val || json_object_set_new(extra, arg, val) != 0)
        return usage_error("--claim '%s' is not valid UTF-8", arg);
    return TOKEN_GO_ON;
}

/* Applies one option from getopt_long; TOKEN_GO_ON, or the exit status after --help or a usage error. */
static int apply_token_option(int c, char **argv, token_request *t)
{
    jwt_mint_opts *o = &t->mint;
    switch (c) {
    case OPT_KEY:
        t->key_path = optarg;
        break;
    case OPT_ALG:
        o->alg = optarg;
        break;
    case OPT_SUB:
        o->sub = optarg;
        break;
    case OPT_GROUPS:
        t->groups_arg = optarg;
        break;
    case OPT_GROUPS_CLAIM:
        o->groups_claim = optarg;
        break;
    case OPT_TTL:
        return parse_offset_option(optarg, &o->ttl, NULL,
                                   "bad --ttl '%s' (use e.g. 3600, 45s, 30m, 1h, 2d, -60)");
    case OPT_NBF:
        return parse_offset_option(optarg, &o->nbf_offset, &o->set_nbf,
                                   "bad --nbf '%s' (seconds from now, e.g. 120 or -5m)");
    case OPT_IAT:
        return parse_offset_option(optarg, &o->iat_offset, &o->set_iat,
                                   "bad --iat '%s' (seconds from now, e.g. -600)");
    case OPT_CLAIM:
        return add_extra_claim(t->extra, optarg);
    case OPT_ISS:
        o->iss = optarg;
        break;
    case OPT_AUD:
        t->auds[t->naud++] = optarg;
        break;
    case OPT_KID:
        o->kid = optarg;
        break;
    case OPT_NO_EXP:
        o->no_exp = true;
        break;
    case 'h':
    case OPT_HELP:
        fputs(usage_text, stdout);
        return 0;
    case ':':
        return usage_error("option '%s' needs a value", argv[optind - 1]);
    default:
        return usage_error("unknown option '%s'", argv[optind - 1]);
    }
    return TOKEN_GO_ON;
}

/* Checks what the options left together, splits --groups and hands the lists to the mint options;
 * TOKEN_GO_ON or a usage error. */
static int finish_token_options(int argc, char **argv, token_request *t)
{
    jwt_mint_opts *o = &t->mint;
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!t->key_path)
        return usage_error("%s", "--key is required");
    if (!o->sub || !*o->sub)
        return usage_error("%s", "--sub is required");
    if (jwk_alg_parse(o->alg) == JWT_ALG_INVAL)
        return usage_error("unsupported --alg '%s'", o->alg);
    if (t->groups_arg) {
        if (split_groups(t->groups_arg, &t->groups, &o->ngroups) != 0)
            return usage_error("bad --groups '%s' (comma-separated names, none empty)", t->groups_arg);
        o->with_groups = true;
        o->groups = t->groups;
    }
    o->aud = t->auds;
    o->naud = t->naud;
    o->extra = t->extra;
    return TOKEN_GO_ON;
}

/* Fills t from argv; TOKEN_GO_ON, or the exit status after --help or a usage error. */
static int parse_token_options(int argc, char **argv, token_request *t)
{
    static const struct option longopts[] = {
        {"key", required_argument, NULL, OPT_KEY},
        {"alg", required_argument, NULL, OPT_ALG},
        {"sub", required_argument, NULL, OPT_SUB},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"groups-claim", required_argument, NULL, OPT_GROUPS_CLAIM},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"claim", required_argument, NULL, OPT_CLAIM},
        {"iss", required_argument, NULL, OPT_ISS},
        {"aud", required_argument, NULL, OPT_AUD},
        {"kid", required_argument, NULL, OPT_KID},
        {"nbf", required_argument, NULL, OPT_NBF},
        {"iat", required_argument, NULL, OPT_IAT},
        {"no-exp", no_argument, NULL, OPT_NO_EXP},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":h", longopts, NULL);
        if (c == -1)
            break;
        int status = apply_token_option(c, argv, t);
        if (status != TOKEN_GO_ON)
            return status;
    }
    return finish_token_options(argc, argv, t);
}

/* Reads the signing key from --key; TOKEN_GO_ON or 1 with the error printed. */
static int load_token_key(token_request *t)
{
    char err[512];
    if (jwt_mint_load_key(t->key_path, t->mint.alg, &t->key, &t->key_len, err, sizeof err) != 0) {
        fprintf(stderr, "martgate token: --key: %s\n", err);
        return 1;
    }
    t->mint.key = t->key;
    t->mint.key_len = t->key_len;
    return TOKEN_GO_ON;
}

/* Signs the token, valid from now; TOKEN_GO_ON or 1 with the error printed. */
static int mint_token(token_request *t)
{
    char err[512];
    if (jwt_mint(&t->mint, time(NULL), &t->token, err, sizeof err) != 0) {
        fprintf(stderr, "martgate token: %s\n", err);
        return 1;
    }
    return TOKEN_GO_ON;
}

/* Prints the token and a newline; 0, or 1 when stdout cannot take it. */
static int print_token(const char *token)
{
    if (printf("%s\n", token) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "martgate token: cannot write the token: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* `martgate token`: parse the options, read the key, sign the token, print it. */
int cmd_token_main(int argc, char **argv)
{
    token_request t;
    int status = token_request_init(&t, argc);
    if (status == TOKEN_GO_ON)
        status = parse_token_options(argc, argv, &t);
    if (status == TOKEN_GO_ON)
        status = load_token_key(&t);
    if (status == TOKEN_GO_ON)
        status = mint_token(&t);
    if (status == TOKEN_GO_ON)
        status = print_token(t.token);
    token_request_free(&t);
    return status;
}

/*
 * tls: server SSL_CTX construction. A context is immutable once built and is
 * swapped whole on reload, so sessions keep the one they started with.
 */
#include "proxy/tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

void tls_error_string(char *buf, size_t len)
{
    unsigned long e;
    size_t off = 0;
    buf[0] = 0;
    while ((e = ERR_get_error()) != 0 && off + 2 < len) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "; " : "", one);
    }
    if (!buf[0])
        snprintf(buf, len, "unknown TLS error");
}

SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, int min_version,
                            char *err, size_t errlen)
{
    char why[512];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls_error_string(why, sizeof why);
        snprintf(err, errlen, "cannot create TLS context: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* idle sessions should not pin 2 x 16 KiB of record buffers each */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_error_string(why, sizeof why);
        snprintf(err, errlen, "%s: cannot load certificate chain: %s", cert_file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        tls_error_string(why, sizeof why);
        snprintf(err, errlen, "%s: cannot load private key: %s", key_file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s: private key does not match certificate %s", key_file, cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

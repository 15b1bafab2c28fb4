/*
 * tls: the OpenSSL server context clients' TLS sessions are made from
 * (certificate, key, TLS 1.2 minimum, no renegotiation, small idle buffers).
 */
#ifndef MARTGATE_TLS_H
#define MARTGATE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* min_version: TLS1_2_VERSION or TLS1_3_VERSION. NULL with err filled. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, int min_version,
                            char *err, size_t errlen);
/* The last OpenSSL error queue entries as text, for logs. */
void tls_error_string(char *buf, size_t len);

#endif

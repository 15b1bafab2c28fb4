/*
 * secret_file: see secret_file.h.
 */
#include "proxy/secret_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *secret_file_read(const char *path, char *why, size_t whylen)
{
    size_t n;
    return secret_file_read_len(path, &n, why, whylen);
}

char *secret_file_read_len(const char *path, size_t *len, char *why, size_t whylen)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    if (more) {
        explicit_bzero(buf, sizeof buf);
        snprintf(why, whylen, "%s is larger than %zu bytes", path, sizeof buf - 1);
        return NULL;
    }
    buf[n] = 0;
    if (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    if (n && buf[n - 1] == '\r')
        buf[--n] = 0;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, buf, n + 1);
        *len = n;
    }
    explicit_bzero(buf, sizeof buf);
    if (!s)
        snprintf(why, whylen, "out of memory");
    return s;
}

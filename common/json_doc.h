/*
 * json_doc: a JSON file parsed with jansson that remembers where every value
 * came from, so that configuration and policy errors can name the file, line,
 * column and field a person has to fix ("policy/sales.json:12:7: rules[2]:
 * unknown key 'acess'"). Also holds the small typed getters both loaders use,
 * which reject unknown keys and wrong types instead of ignoring them.
 */
#ifndef MARTGATE_JSON_DOC_H
#define MARTGATE_JSON_DOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct json_doc json_doc;

/* Reads and parses a file of at most max_bytes. Duplicate keys are errors.
 * On failure returns NULL and writes "path:line:col: message" into err. */
json_doc *json_doc_load(const char *path, size_t max_bytes, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The same from memory; name is what errors call the document. */
json_doc *json_doc_parse(const char *name, const char *text, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void json_doc_free(json_doc *doc);

json_t *json_doc_root(const json_doc *doc);
const char *json_doc_name(const json_doc *doc);
/* Where a value of this document starts (1-based); false if unknown. */
bool json_doc_where(const json_doc *doc, const json_t *value, int *line, int *col);

/* Writes "name:line:col: <field>: <message>" (location of `at`, or of the
 * document when at is NULL or unknown). Always returns -1, for `return`. */
int json_doc_error(const json_doc *doc, const json_t *at, char *err, size_t errlen,
                   const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Every key of obj must be in allowed (NULL-terminated); `field` names obj. */
int json_doc_check_keys(const json_doc *doc, const json_t *obj, const char *field,
                        const char *const *allowed, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Typed getters: 0 when found and valid, 1 when absent and optional (out is
 * left alone), -1 on error (err filled). `field` names obj in messages. */
int json_doc_get_string(const json_doc *doc, const json_t *obj, const char *field,
                        const char *key, bool required, const char **out,
                        char *err, size_t errlen)
    __attribute__((warn_unused_result));
int json_doc_get_int(const json_doc *doc, const json_t *obj, const char *field,
                     const char *key, bool required, long long min, long long max,
                     long long *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int json_doc_get_bool(const json_doc *doc, const json_t *obj, const char *field,
                      const char *key, bool required, bool *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* An array of strings, or a single string taken as a one-element array.
 * *out is a NULL-terminated array of borrowed strings; free() it (not items). */
int json_doc_get_strings(const json_doc *doc, const json_t *obj, const char *field,
                         const char *key, bool required, const char ***out, size_t *n,
                         char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

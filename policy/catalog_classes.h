/*
 * catalog_classes: every relation of pg_catalog and information_schema in
 * exactly one class. FILTERED: rewritten to the rows of objects the principal
 * may see (policy/catalog_filter.c holds those, with how to filter each);
 * SAFE: no per-object rows about user data, readable as is; RESTRICTED: the
 * built-in pg_sensitive dataset, readable only through a rule naming it.
 * Anything else is UNCLASSIFIED and denied, so a relation new in the next
 * PostgreSQL major is refused until someone classifies it here.
 */
#ifndef MARTGATE_CATALOG_CLASSES_H
#define MARTGATE_CATALOG_CLASSES_H

#include <stdbool.h>
#include <stddef.h>

typedef enum catalog_class {
    CATALOG_UNCLASSIFIED = 0,
    CATALOG_FILTERED,
    CATALOG_SAFE,
    CATALOG_RESTRICTED
} catalog_class;

/* The class of schema.name (schema: pg_catalog or information_schema). */
catalog_class catalog_class_of(const char *schema, const char *name);

/* "filtered", "safe", "restricted", "unclassified". */
const char *catalog_class_name(catalog_class c);

/* The i-th SAFE or RESTRICTED entry (the FILTERED ones are
 * rewrite_filtered_catalog_at's); false past the end. */
bool catalog_classes_at(size_t i, const char **schema, const char **name, catalog_class *c);

#endif

/*
 * warehouse_json: a warehouse's facts (common/warehouse_facts.h) to and
 * from JSON, for offline policy tests and `martgate policy explain`.
 */
#ifndef MARTGATE_WAREHOUSE_JSON_H
#define MARTGATE_WAREHOUSE_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "common/warehouse_facts.h"

/* NULL with err filled when v is not a facts object. */
warehouse_facts *wh_from_json(const json_t *v, char *err, size_t errlen);
/* A new reference, or NULL out of memory. */
json_t *wh_to_json(const warehouse_facts *f);

#endif

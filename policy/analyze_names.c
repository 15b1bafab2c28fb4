/*
 * analyze_names: relations a statement names by a constant instead of in a
 * FROM list: 'schema.table'::regclass, and the relation argument of the
 * functions that take one (to_regclass, pg_relation_size,
 * has_table_privilege, pg_get_viewdef, obj_description, ...). Naming a
 * relation reads none of its rows, but what such a function tells (that it
 * exists, its size, a view's definition, a comment) is catalog data that
 * catalog filtering hides: the relation is recorded with usage
 * ANALYZE_USE_NAME, which policy/decide allows when the principal may read
 * it at all. Names computed at run time (format('%I.%I', ...)::regclass
 * over catalog rows, as Metabase writes) and OIDs (psql's \d+ asks
 * pg_get_viewdef('16390'::oid)) are left alone: the analyser cannot tell
 * what they name, and catalog rows they come from are filtered already.
 */
#include "policy/analyze_walk.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* PostgreSQL's identifiers stop at NAMEDATALEN - 1 bytes */
#define NAME_MAX_BYTES 63

/* Functions taking a relation (by name or OID) as argument `arg` when called
 * with `n_args` arguments (0: any number). nextval and setval write the
 * sequence they name (sequence_written). */
static const struct {
    const char *name;
    int arg, n_args;
} TAKES_RELATION[] = {
    {"to_regclass", 0, 1},
    {"pg_relation_size", 0, 0},
    {"pg_total_relation_size", 0, 1},
    {"pg_table_size", 0, 1},
    {"pg_indexes_size", 0, 1},
    {"pg_relation_filenode", 0, 1},
    {"pg_relation_filepath", 0, 1},
    {"pg_get_viewdef", 0, 0},
    {"pg_get_serial_sequence", 0, 2},
    {"pg_get_indexdef", 0, 0},
    {"obj_description", 0, 0},
    {"col_description", 0, 2},
    {"has_table_privilege", 0, 2},
    {"has_table_privilege", 1, 3},
    {"has_any_column_privilege", 0, 2},
    {"has_any_column_privilege", 1, 3},
    {"has_column_privilege", 0, 3},
    {"has_column_privilege", 1, 4},
    {"has_sequence_privilege", 0, 2},
    {"has_sequence_privilege", 1, 3},
    {"regclass", 0, 1},   /* the cast written as a call */
    {"pg_relation_is_updatable", 0, 2},
    {"pg_column_is_updatable", 0, 3},
    {"pg_sequence_last_value", 0, 1},
    {"pg_sequence_parameters", 0, 1},
    {"currval", 0, 1},
    {"pg_partition_tree", 0, 1},
    {"pg_partition_ancestors", 0, 1},
    {"pg_partition_root", 0, 1},
    {"pg_get_partkeydef", 0, 1},
    {"pg_get_partition_constraintdef", 0, 1},
    {"pg_get_replica_identity_index", 0, 1},
    {"pg_table_is_visible", 0, 1},
    {"pg_get_triggerdef", 0, 0},
    {"pg_get_ruledef", 0, 0},
    {"pg_stat_get_numscans", 0, 1},
    {"pg_stat_get_live_tuples", 0, 1},
    {"pg_stat_get_dead_tuples", 0, 1},
    {"pg_stat_get_tuples_inserted", 0, 1},
    {"pg_stat_get_tuples_updated", 0, 1},
    {"pg_stat_get_tuples_deleted", 0, 1},
    {"pg_stat_get_last_analyze_time", 0, 1},
    {"pg_stat_get_last_autoanalyze_time", 0, 1},
    {"pg_stat_get_last_vacuum_time", 0, 1},
    {"pg_stat_get_last_autovacuum_time", 0, 1},
};

/* Bytes of s (n of them) that fit an identifier, cut at a UTF-8 character
 * boundary as the server cuts it. */
static size_t clip(const char *s, size_t n)
{
    if (n <= NAME_MAX_BYTES)
        return n;
    n = NAME_MAX_BYTES;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Splits a qualified name as the server's regclass input does (identifiers
 * separated by dots, whitespace around them, unquoted ones folded to lower
 * case, quoted ones with "" for a quote, each cut to 63 bytes). Returns the
 * number of parts (1 to 3), or 0 when the text is not such a name. */
static int split_qualified(walk_state *st, const char *s, const char *part[3])
{
    int n = 0;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        size_t cap = strlen(s) + 1;
        char *buf = arena_alloc(st->b->arena, cap);
        if (!buf) {
            st->b->out_of_memory = true;
            return 0;
        }
        size_t len = 0;
        if (*s == '"') {
            for (s++;; s++) {
                if (!*s)
                    return 0;
                if (*s == '"') {
                    if (s[1] != '"')
                        break;
                    s++;
                }
                buf[len++] = *s;
            }
            s++;
        } else {
            while (*s && *s != '.' && !isspace((unsigned char)*s)) {
                char c = *s++;
                buf[len++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
            }
        }
        if (len == 0 || n == 3)
            return 0;
        buf[clip(buf, len)] = 0;
        part[n++] = buf;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            return n;
        if (*s++ != '.')
            return 0;
    }
}

static bool all_digits(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return false;
    while (isdigit((unsigned char)*s))
        s++;
    while (isspace((unsigned char)*s))
        s++;
    return *s == 0;
}

static bool is_catalog_type(List *names, const char *type)
{
    int n = list_length(names);
    if (n < 1 || n > 2 || !IsA(llast(names), String) || strcmp(strVal(llast(names)), type) != 0)
        return false;
    return n == 1 || (IsA(linitial(names), String) && !strcmp(strVal(linitial(names)), "pg_catalog"));
}

/* The constant n, where a relation is expected: the relation it names is
 * recorded. An OID, or a name computed at run time, is not. */
static void relation_constant(walk_state *st, Node *n, int location)
{
    /* '16384'::oid or 'raw.t'::text: the constant's value is what counts
     * (a regclass cast is met as such by walk_named_by_cast) */
    if (n && IsA(n, TypeCast) && !is_catalog_type(((TypeCast *)n)->typeName->names, "regclass"))
        n = ((TypeCast *)n)->arg;
    if (!n || !IsA(n, A_Const) || ((A_Const *)n)->isnull)
        return;
    A_Const *c = (A_Const *)n;
    /* the decision follows the constant's value: not a shape's */
    st->b->a->reads_constants = true;
    const char *value = IsA(&c->val, String) ? c->val.sval.sval : NULL;
    if (!value || all_digits(value))
        return;
    const char *part[3];
    int k = split_qualified(st, value, part);
    if (k == 0) {
        if (!st->b->out_of_memory)
            walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "a relation name the analyser cannot read", value, location);
        return;
    }
    walk_add_relation(st, k == 3 ? part[0] : NULL, k >= 2 ? part[k - 2] : NULL, part[k - 1], 'p', location, 0,
                      ANALYZE_USE_NAME, false);
}

/* '{a.t, "b"."u"}'::regclass[]: each element of the array literal, as
 * array input reads it (braces, commas, double quotes with backslash
 * escapes, NULL) and regclass input then. Anything nested or malformed is
 * flagged. */
static void relation_array(walk_state *st, Node *n, int location)
{
    if (!n || !IsA(n, A_Const) || ((A_Const *)n)->isnull || !IsA(&((A_Const *)n)->val, String))
        return;
    st->b->a->reads_constants = true;
    const char *s = ((A_Const *)n)->val.sval.sval;
    size_t cap = strlen(s) + 1;
    char *elem = arena_alloc(st->b->arena, cap);
    if (!elem) {
        st->b->out_of_memory = true;
        return;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s++ != '{')
        goto bad;
    for (;;) {
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '}') {
            for (s++; isspace((unsigned char)*s); s++)
                ;
            if (*s)
                goto bad;
            return;
        }
        size_t len = 0;
        bool quoted = *s == '"';
        if (quoted) {
            for (s++; *s != '"'; s++) {
                if (!*s)
                    goto bad;
                if (*s == '\\' && s[1])
                    s++;
                elem[len++] = *s;
            }
            s++;
        } else {
            while (*s && *s != ',' && *s != '}') {
                if (*s == '{' || *s == '"' || *s == '\\')
                    goto bad;
                elem[len++] = *s++;
            }
            while (len && isspace((unsigned char)elem[len - 1]))
                len--;
            if (!len)
                goto bad;   /* every turn reads something */
        }
        elem[len] = 0;
        if (quoted || strcasecmp(elem, "NULL") != 0) {
            A_Const c = {.type = T_A_Const, .location = location};
            c.val.sval.type = T_String;
            c.val.sval.sval = elem;
            relation_constant(st, (Node *)&c, location);   /* keeps copies of what it reads */
            if (st->b->out_of_memory)
                return;
        }
        while (isspace((unsigned char)*s))
            s++;
        if (*s == ',')
            s++;
        else if (*s != '}')
            goto bad;
    }
bad:
    walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "an array of relation names the analyser cannot read", NULL, location);
}

void walk_named_by_cast(walk_state *st, const TypeCast *tc)
{
    if (!tc->typeName || !is_catalog_type(tc->typeName->names, "regclass"))
        return;
    if (!tc->typeName->arrayBounds)
        relation_constant(st, tc->arg, tc->location);
    else if (list_length(tc->typeName->arrayBounds) == 1)
        relation_array(st, tc->arg, tc->location);
    else
        walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "a multidimensional array of relation names", NULL, tc->location);
}

/* nextval(seq) and setval(seq, ...): a write of the sequence, which must be
 * named by a constant (text or regclass) for the policy to see which. */
static void sequence_written(walk_state *st, Node *n, int location)
{
    if (n && IsA(n, TypeCast) && (is_catalog_type(((TypeCast *)n)->typeName->names, "regclass") ||
                                  is_catalog_type(((TypeCast *)n)->typeName->names, "text")))
        n = ((TypeCast *)n)->arg;
    const char *part[3];
    int k = 0;
    if (n && IsA(n, A_Const) && !((A_Const *)n)->isnull && IsA(&((A_Const *)n)->val, String)) {
        st->b->a->reads_constants = true;
        const char *value = ((A_Const *)n)->val.sval.sval;
        k = all_digits(value) ? 0 : split_qualified(st, value, part);
    }
    if (k == 0) {
        if (!st->b->out_of_memory)
            walk_flag(st, ANALYZE_FLAG_UNSUPPORTED, "nextval or setval of a sequence not named by a constant",
                      NULL, location);
        return;
    }
    walk_add_relation(st, k == 3 ? part[0] : NULL, k >= 2 ? part[k - 2] : NULL, part[k - 1], 'p', location,
                      ANALYZE_ACCESS_WRITE, ANALYZE_USE_UTILITY, false);
}

void walk_named_by_call(walk_state *st, const FuncCall *fc, const char *schema, const char *name)
{
    if (schema && strcmp(schema, "pg_catalog") != 0)
        return;
    int n = list_length(fc->args);
    if (n >= 1 && (!strcmp(name, "nextval") || !strcmp(name, "setval"))) {
        sequence_written(st, linitial(fc->args), fc->location);
        return;
    }
    for (size_t i = 0; i < sizeof TAKES_RELATION / sizeof TAKES_RELATION[0]; i++) {
        if (strcmp(TAKES_RELATION[i].name, name) != 0 || TAKES_RELATION[i].arg >= n ||
            (TAKES_RELATION[i].n_args && TAKES_RELATION[i].n_args != n))
            continue;
        relation_constant(st, list_nth(fc->args, TAKES_RELATION[i].arg), fc->location);
        return;
    }
}

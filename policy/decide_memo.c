/*
 * decide_memo: decisions kept by statement shape. See decide_memo.h.
 */
#include "policy/decide_memo.h"
#include "common/text_hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    char *key;              /* NULL: a free slot */
    size_t key_len;
    char *note;
    uint64_t last_hash;     /* of the last exact text of this shape seen */
    char *text;
    size_t text_len, text_cap;
    size_t bytes;           /* of key, note and text */
} memo_entry;

/* The decisions of one state. */
typedef struct {
    char *state;            /* NULL: unused */
    size_t state_len;
    memo_entry *slots;      /* grown up to DECIDE_MEMO_SLOTS: an idle session keeps little */
    size_t n_slots;
    size_t hand;            /* the next slot to give up when all are taken */
    size_t bytes;           /* of its entries */
    uint64_t used;          /* when it was last the state (for giving one up) */
} memo_set;

struct decide_memo {
    memo_set sets[DECIDE_MEMO_STATES];
    memo_set *cur;          /* the state now, or NULL */
    uint64_t clock;
    decide_memo_stats stats;
};

bool decide_memo_keeps(const analysis *a, const decision *d)
{
    if (!a || !d || d->verdict != DECIDE_ALLOW || d->rewritten_sql)
        return false;
    if (a->n_stmts != 1 || a->reads_constants || a->n_settings || a->n_roles || a->n_flags || a->n_schemas)
        return false;
    const analysis_stmt *st = &a->stmts[0];
    if (st->kind != ANALYZE_STMT_READ && st->kind != ANALYZE_STMT_WRITE)
        return false;
    /* plain data statements only: not COPY, EXPLAIN, TRUNCATE... */
    static const char *const tags[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"};
    bool plain = false;
    for (size_t i = 0; st->tag && i < sizeof tags / sizeof *tags; i++)
        plain = plain || !strcmp(st->tag, tags[i]);
    if (!plain)
        return false;
    /* statements that change what later ones mean */
    if (st->prepare_name || st->execute_name || st->deallocate_name || st->deallocate_all || st->cursor_name)
        return false;
    /* every relation resolved without the catalog (callbacks may change) */
    for (size_t i = 0; i < a->n_relations; i++) {
        analyze_resolution r = a->relations[i].resolution;
        if (r == ANALYZE_RES_CATALOG || r == ANALYZE_RES_NOT_FOUND)
            return false;
    }
    for (size_t i = 0; i < d->n_items; i++)
        if (d->items[i].verdict != DECIDE_ALLOW)
            return false;
    return true;
}

static void entry_clear(decide_memo *m, memo_set *set, memo_entry *e)
{
    if (!e->key)
        return;
    set->bytes -= e->bytes;
    m->stats.bytes -= e->bytes;
    m->stats.entries--;
    free(e->key);
    free(e->note);
    free(e->text);
    memset(e, 0, sizeof *e);
}

static void set_empty(decide_memo *m, memo_set *set)
{
    for (size_t i = 0; i < set->n_slots; i++)
        entry_clear(m, set, &set->slots[i]);
}

bool decide_memo_state(decide_memo **mp, const void *state, size_t len)
{
    decide_memo *m = *mp;
    if (!m) {
        if (!(m = calloc(1, sizeof *m)))
            return false;
        *mp = m;
    }
    if (m->cur && m->cur->state_len == len && memcmp(m->cur->state, state, len) == 0)
        return true;
    /* a state of before (Metabase's impersonation goes back and forth), a
     * free one, or the one used longest ago, emptied */
    memo_set *pick = NULL;
    for (size_t i = 0; i < DECIDE_MEMO_STATES; i++) {
        memo_set *set = &m->sets[i];
        if (set->state && set->state_len == len && memcmp(set->state, state, len) == 0) {
            m->cur = set;
            set->used = ++m->clock;
            return true;
        }
        if (!pick || (pick->state && (!set->state || set->used < pick->used)))
            pick = set;
    }
    if (pick->state && pick->bytes)
        m->stats.resets++;
    set_empty(m, pick);
    free(pick->state);
    pick->state = NULL;
    m->cur = NULL;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    memcpy(copy, state, len);
    pick->state = copy;
    pick->state_len = len;
    pick->used = ++m->clock;
    m->cur = pick;
    return true;
}

static memo_entry *find(memo_set *set, const analyze_shape *shape)
{
    for (size_t i = 0; i < set->n_slots; i++) {
        memo_entry *e = &set->slots[i];
        if (e->key && e->hash == shape->hash && e->key_len == shape->key_len &&
            memcmp(e->key, shape->key, shape->key_len) == 0)
            return e;
    }
    return NULL;
}

static void fill_hit(const memo_entry *e, decide_memo_hit *hit)
{
    hit->note = e->note ? e->note : "";
    hit->normalized = e->key;   /* the key starts with the normalized text */
    hit->normalized_len = strlen(e->key);
}

bool decide_memo_find_text(decide_memo *m, const char *sql, size_t len, decide_memo_hit *hit)
{
    if (!m || !m->cur || len > DECIDE_MEMO_MAX_KEY)
        return false;
    memo_set *set = m->cur;
    uint64_t h = text_hash(sql, len);
    for (size_t i = 0; i < set->n_slots; i++) {
        memo_entry *e = &set->slots[i];
        if (e->text && e->last_hash == h && e->text_len == len && memcmp(e->text, sql, len) == 0) {
            m->stats.hits++;
            fill_hit(e, hit);
            return true;
        }
    }
    return false;
}

/* Remembers sql as the exact text of e's shape last seen (within budget). */
static void remember_text(decide_memo *m, memo_set *set, memo_entry *e, const char *sql, size_t len)
{
    if (len > DECIDE_MEMO_MAX_KEY)
        return;
    if (len > e->text_cap) {
        /* texts of one shape differ only in their constants: the buffer is
         * grown rarely, and reused for each new text */
        size_t cap = len < 64 ? 64 : len;
        if (set->bytes - e->text_cap + cap > DECIDE_MEMO_MAX_BYTES)
            return;
        char *grown = realloc(e->text, cap);
        if (!grown)
            return;
        set->bytes = set->bytes - e->text_cap + cap;
        m->stats.bytes = m->stats.bytes - e->text_cap + cap;
        e->bytes = e->bytes - e->text_cap + cap;
        e->text = grown;
        e->text_cap = cap;
    }
    memcpy(e->text, sql, len);
    e->text_len = len;
    e->last_hash = text_hash(sql, len);
}

bool decide_memo_find(decide_memo *m, const analyze_shape *shape, const char *sql, size_t len,
                      decide_memo_hit *hit)
{
    if (!m || !m->cur || !shape->decidable)
        return false;
    memo_entry *e = find(m->cur, shape);
    if (!e) {
        m->stats.misses++;
        return false;
    }
    m->stats.hits++;
    remember_text(m, m->cur, e, sql, len);
    fill_hit(e, hit);
    return true;
}

void decide_memo_put(decide_memo *m, const analyze_shape *shape, const char *sql, size_t len, const char *note)
{
    memo_set *set = m ? m->cur : NULL;
    if (!set || !shape->decidable || shape->key_len > DECIDE_MEMO_MAX_KEY || find(set, shape))
        return;
    size_t nlen = note ? strlen(note) : 0;
    size_t bytes = shape->key_len + nlen;
    if (bytes > DECIDE_MEMO_MAX_BYTES)
        return;
    /* a free slot (growing the table while it may), else give up slots in
     * turn until there is room */
    memo_entry *e = NULL;
    for (size_t i = 0; i < set->n_slots && !e; i++)
        if (!set->slots[i].key)
            e = &set->slots[i];
    if (!e && set->n_slots < DECIDE_MEMO_SLOTS) {
        size_t n = set->n_slots ? set->n_slots * 2 : 2;
        memo_entry *grown = realloc(set->slots, n * sizeof *grown);
        if (grown) {
            memset(grown + set->n_slots, 0, (n - set->n_slots) * sizeof *grown);
            e = &grown[set->n_slots];
            set->slots = grown;
            set->n_slots = n;
        }
    }
    if (!e && !set->n_slots)
        return;
    while (!e || set->bytes + bytes > DECIDE_MEMO_MAX_BYTES) {
        memo_entry *victim = &set->slots[set->hand % set->n_slots];
        set->hand = (set->hand + 1) % set->n_slots;
        if (victim->key) {
            entry_clear(m, set, victim);
            m->stats.evicted++;
        }
        if (!e)
            e = victim;
    }
    char *key = malloc(shape->key_len);
    char *copy = note ? strdup(note) : NULL;
    if (!key || (note && !copy)) {
        free(key);
        free(copy);
        return;
    }
    memcpy(key, shape->key, shape->key_len);
    *e = (memo_entry){.hash = shape->hash, .key = key, .key_len = shape->key_len, .note = copy,
                      .bytes = bytes};
    set->bytes += bytes;
    m->stats.bytes += bytes;
    m->stats.entries++;
    m->stats.kept++;
    remember_text(m, set, e, sql, len);
}

void decide_memo_free(decide_memo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < DECIDE_MEMO_STATES; i++) {
        set_empty(m, &m->sets[i]);
        free(m->sets[i].slots);
        free(m->sets[i].state);
    }
    free(m);
}

void decide_memo_get_stats(const decide_memo *m, decide_memo_stats *out)
{
    memset(out, 0, sizeof *out);
    if (m)
        *out = m->stats;
}

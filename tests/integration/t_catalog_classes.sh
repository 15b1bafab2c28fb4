#!/usr/bin/env bash
# Every relation of pg_catalog and information_schema is in exactly one class
# (issue 12, class 4), checked against the real server: the list `martgate
# policy catalog` prints must be the warehouse's own relations, so a new
# PostgreSQL major's new view fails here instead of leaking. Then, as an
# analyst who reads one schema, through martgate: no filtered or safe relation
# returns a row naming the hidden schema's objects (tables, views, functions,
# types, domains, sequences, triggers, grants), every restricted one is denied,
# and a catalog relation martgate has not classified is denied.
. "$(dirname "$0")/../lib/harness.sh"
h_init catalog_classes
need_martgate
DB=t_catalog_classes
pg_createdb $DB

rels_sql="select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where n.nspname in ('pg_catalog', 'information_schema') and c.relkind in ('r', 'v', 'm', 'p', 'f') order by 1"
# compare_classes: one failure per relation the server has and martgate has
# not classified, and per classified one the server does not have
compare_classes() {
  local live listed
  live=$(pg_admin $DB -c "$rels_sql" | LC_ALL=C sort)
  listed=$("$MARTGATE_BIN" policy catalog | cut -f1 | LC_ALL=C sort)
  LC_ALL=C comm -23 <(echo "$live") <(echo "$listed")
  LC_ALL=C comm -13 <(echo "$live") <(echo "$listed") | sed 's/$/ (classified, not on this server)/'
}
n_live=$(pg_admin $DB -c "$rels_sql" | wc -l)
missing=$(compare_classes)
if [ -z "$missing" ]; then ok "all $n_live relations of pg_catalog and information_schema are classified"
else
  while IFS= read -r r; do fail "classified: $r" "not in policy/catalog_filter.c or policy/catalog_classes.c"; done <<<"$missing"
fi
dups=$("$MARTGATE_BIN" policy catalog | cut -f1 | sort | uniq -d)
check_eq "each relation is in exactly one class" "" "$dups"

# the hidden schema, with one of every kind of object the catalogs list
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA open; CREATE TABLE open.t (id int PRIMARY KEY, v text); INSERT INTO open.t VALUES (1, 'x');
CREATE SCHEMA hidden_zz;
CREATE TYPE hidden_zz.hidden_zz_type AS (a int, b text);
CREATE TYPE hidden_zz.hidden_zz_enum AS ENUM ('one', 'two');
CREATE DOMAIN hidden_zz.hidden_zz_dom AS int CONSTRAINT hidden_zz_dom_check CHECK (VALUE > 0);
CREATE SEQUENCE hidden_zz.hidden_zz_seq;
CREATE TABLE hidden_zz.hidden_zz_t (id int PRIMARY KEY DEFAULT nextval('hidden_zz.hidden_zz_seq'),
  secret text DEFAULT 'hidden_zz_default', d hidden_zz.hidden_zz_dom, e hidden_zz.hidden_zz_enum,
  c hidden_zz.hidden_zz_type, CONSTRAINT hidden_zz_check CHECK (id > 0));
CREATE INDEX hidden_zz_idx ON hidden_zz.hidden_zz_t (secret);
CREATE VIEW hidden_zz.hidden_zz_v AS SELECT id, secret FROM hidden_zz.hidden_zz_t;
CREATE FUNCTION hidden_zz.hidden_zz_f(x hidden_zz.hidden_zz_dom) RETURNS text LANGUAGE sql
  AS 'SELECT secret FROM hidden_zz.hidden_zz_t WHERE id = x';
CREATE FUNCTION hidden_zz.hidden_zz_trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER hidden_zz_trigger BEFORE UPDATE OF secret ON hidden_zz.hidden_zz_t
  FOR EACH ROW EXECUTE FUNCTION hidden_zz.hidden_zz_trg();
CREATE POLICY hidden_zz_policy ON hidden_zz.hidden_zz_t USING (true);
CREATE TABLE hidden_zz.hidden_zz_parted (k int) PARTITION BY RANGE (k);
CREATE TABLE hidden_zz.hidden_zz_part1 PARTITION OF hidden_zz.hidden_zz_parted FOR VALUES FROM (0) TO (10);
CREATE RULE hidden_zz_rule AS ON DELETE TO hidden_zz.hidden_zz_v DO INSTEAD NOTHING;
COMMENT ON TABLE hidden_zz.hidden_zz_t IS 'hidden_zz comment';
GRANT USAGE ON SCHEMA hidden_zz TO PUBLIC;
GRANT SELECT ON hidden_zz.hidden_zz_t TO PUBLIC;
GRANT USAGE ON TYPE hidden_zz.hidden_zz_type TO PUBLIC;
GRANT USAGE ON DOMAIN hidden_zz.hidden_zz_dom TO PUBLIC;
GRANT EXECUTE ON FUNCTION hidden_zz.hidden_zz_f(hidden_zz.hidden_zz_dom) TO PUBLIC;
GRANT USAGE ON SEQUENCE hidden_zz.hidden_zz_seq TO PUBLIC;
ANALYZE hidden_zz.hidden_zz_t;
SELECT hidden_zz.hidden_zz_f(1);
SQL
cat >"$T_DIR/policy.json" <<'JSON'
{
  "datasets": {"open": {"schemas": ["open"]}, "hidden": {"schemas": ["hidden_zz"]}},
  "rules": [{"id": "analysts-open", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["open"]}, "access": "read"}]
}
JSON
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\""
mg_start $DB || h_die "martgate did not start"
tok=$(mg_token --sub ana --groups analysts --ttl 30m)
analyst() {
  PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$MG_PORT dbname=$DB user=ana sslmode=verify-full sslrootcert=$MG_CA" -c "$1" 2>&1 || true
}
check_match "the hidden objects are there for the warehouse itself" "hidden_zz_t" \
  "$(direct_psql $DB -At -c "select * from information_schema.data_type_privileges" -c "select * from pg_class" 2>&1)"

n_read=0 n_denied=0
while IFS=$'\t' read -r rel cls; do
  out=$(analyst "select * from $rel")
  case $cls in
    restricted)
      if grep -q "42501" <<<"$out"; then n_denied=$((n_denied + 1)); else fail "restricted $rel is denied" "no 42501" "$out"; fi ;;
    *)
      if grep -q "hidden_zz" <<<"$out"; then
        fail "$cls $rel shows nothing of the hidden schema" "a row names it" "$(grep hidden_zz <<<"$out" | head -3)"
      elif grep -qE "^(ERROR|FATAL):.*(by policy|martgate)" <<<"$out"; then
        fail "$cls $rel is readable" "martgate refused it" "$out"
      else
        # the warehouse's own refusal (PostgreSQL 15 grants PUBLIC nothing on
        # information_schema.sql_parts and transforms) is the warehouse's answer
        grep -q "^ERROR:  42501: permission denied for" <<<"$out" && h_log "$rel: the warehouse itself refuses it"
        n_read=$((n_read + 1))
      fi ;;
  esac
done < <("$MARTGATE_BIN" policy catalog)
n_all=$("$MARTGATE_BIN" policy catalog | wc -l)
n_restricted=$("$MARTGATE_BIN" policy catalog | grep -c $'\trestricted$')
check_eq "every filtered and safe relation read through martgate, none naming a hidden object" \
  "$((n_all - n_restricted))" "$n_read"
check_eq "every restricted relation denied" "$n_restricted" "$n_denied"
check "the analyst still sees its own schema's objects" grep -q "open" <<<"$(analyst "select table_schema from information_schema.tables")"
check_match "... and pg_proc's own functions" "^lower$" "$(analyst "select proname from pg_proc where proname = 'lower'")"
for v in "data_type_privileges object_schema" "udt_privileges udt_schema" "role_udt_grants udt_schema"; do
  set -- $v
  direct=$(direct_psql $DB -At -c "select count(*) > 0 from information_schema.$1 where $2 = 'hidden_zz'" 2>&1 || true)
  out=$(analyst "select count(*) from information_schema.$1 where $2 = 'hidden_zz'")
  check_eq "$1: the warehouse lists hidden objects, martgate none" "t 0" "$direct $out"
done

# a catalog relation martgate has not classified: a PostgreSQL major's new view
pg_admin $DB -c "SET allow_system_table_mods = on" -c "CREATE VIEW pg_catalog.pg_zz_new_view AS SELECT relname FROM pg_catalog.pg_class" \
  -c "GRANT SELECT ON pg_catalog.pg_zz_new_view TO PUBLIC" >/dev/null   # as a new view of the catalog would be
check_match "the check catches a relation new on the server" "^pg_catalog.pg_zz_new_view$" "$(compare_classes)"
# martgate reads the names of pg_catalog's relations with the warehouse's
# other metadata (at start, on reload, when the server's version changes): a
# superuser's addition while it runs is known from the next reload
mg_reload_wait || fail "reload" "martgate did not log the reload"
out=$(analyst "select * from pg_catalog.pg_zz_new_view")
check_match "an unclassified catalog relation is denied, saying how to classify it" \
  "42501.*not classified.*filtered, safe or restricted" "$out"
check_nomatch "... and nothing of it comes back" "hidden_zz" "$out"
out=$(analyst "select * from pg_zz_new_view")
check_match "... unqualified too" "42501" "$out"
# the server looks in pg_catalog before the path: a readable schema first in
# the path does not make the name that schema's
out=$(analyst "set search_path = open; select * from pg_zz_new_view")
check_match "... unqualified with a readable schema as the whole search_path" "42501" "$out"
check_nomatch "... nothing of it comes back" "hidden_zz" "$out"
out=$(analyst "set search_path = open, pg_catalog; select * from pg_zz_new_view")
check_match "... with pg_catalog listed after it" "42501" "$out"
out=$(analyst "set search_path = ''; select * from pg_zz_new_view")
check_match "... with an empty search_path (where an unqualified name is otherwise a temporary table)" "42501" "$out"
check_nomatch "... nothing of it comes back" "hidden_zz" "$out"
# a pg_* name the warehouse's pg_catalog does not have is the path's, as
# the server resolves it (and one it lacks altogether is the server's to report)
direct_psql $DB -q -c "CREATE TABLE open.pg_zz_mine (v text); INSERT INTO open.pg_zz_mine VALUES ('mine_zz')" >/dev/null
out=$(analyst "set search_path = open; select * from pg_zz_mine")
check_match "an unqualified pg_* name pg_catalog lacks is read from the path's schema" "mine_zz" "$out"
out=$(analyst "set search_path = open; select to_regclass('pg_zz_nowhere') is null as none")
check_match "... and one nowhere is the server's to report" "^ *t$" "$out"
pg_admin $DB -c "SET allow_system_table_mods = on" -c "DROP VIEW pg_catalog.pg_zz_new_view" >/dev/null
h_done

#!/usr/bin/env bash
# Enforcement on the wire (issue 4): each persona of the reference policy reads
# exactly its datasets through psql; the classic ways around a SQL-parsing
# proxy are each refused; rewrites (row filters, masks) give the same rows as
# the direct query over the filtered data; a leaky predicate cannot see hidden
# rows; catalogs show each persona only its schemas; denials keep protocol
# order and fail transactions; search_path is guarded in every form.
. "$(dirname "$0")/../lib/harness.sh"
h_init policy
DB=t_policy
POLICY=$H_REPO/tests/unit/fixtures/policy/passei
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA raw; CREATE SCHEMA staging; CREATE SCHEMA funnel_data_mart;
CREATE SCHEMA origination_mart; CREATE SCHEMA sales_mart; CREATE SCHEMA shared_mart;
CREATE TABLE raw.leads (id int PRIMARY KEY, email text, phone text, region text);
INSERT INTO raw.leads SELECT g, 'lead' || g || '@example.com', '+55 11 9' || (1000 + g), (ARRAY['north','south'])[1 + g % 2]
  FROM generate_series(1, 20) g;
CREATE TABLE raw.credentials (id int, secret text);
CREATE TABLE staging.leads AS SELECT id, region FROM raw.leads;
CREATE TABLE funnel_data_mart.funnel (day date, squad text, region text, leads int);
INSERT INTO funnel_data_mart.funnel VALUES ('2026-10-01', 'origination', 'north', 1), ('2026-10-01', 'sales', 'south', 2),
  ('2026-10-01', 'sales', 'north', 3), ('2026-10-02', 'origination', 'south', 4);
CREATE TABLE origination_mart.originations (month date, region text, plan text, n int);
INSERT INTO origination_mart.originations VALUES ('2026-10-01', 'north', 'gold', 5), ('2026-10-01', 'south', 'basic', 7);
CREATE VIEW origination_mart.by_region AS SELECT region, sum(n) AS n FROM origination_mart.originations GROUP BY region;
CREATE TABLE sales_mart.sales_per_region (region text, amount numeric);
INSERT INTO sales_mart.sales_per_region VALUES ('north', 100), ('south', 200);
CREATE TABLE shared_mart.customers (id int, email text, cpf text, phone text, birth_date date, salary numeric, name text);
INSERT INTO shared_mart.customers VALUES (1, 'ann@example.com', '12345678901', '555-1234', '1990-01-02', 9000, 'Ann'),
  (2, 'bob@example.com', '98765432100', '555-9876', '1985-05-06', 7000, 'Bob');
CREATE TABLE shared_mart.calendar (day date);
INSERT INTO shared_mart.calendar VALUES ('2026-10-01');
ANALYZE raw.leads; ANALYZE funnel_data_mart.funnel;
SQL
MG_CFG_EXTRA="\"policy\": \"$POLICY\", \"deny_hint\": \"ask #data-governance\""
mg_start $DB || h_die "martgate did not start"
wait_until 10 grep -q 'catalog of database' "$MG_LOG" || h_log "catalog not read yet"

# as USER GROUPS psql-args...: psql through martgate as that person (region north)
as() {
  local user=$1 groups=$2; shift 2
  local tok
  tok=$(mg_token --sub "$user" ${groups:+--groups "$groups"} --claim region=north --ttl 10m)
  PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$user sslmode=verify-full sslrootcert=$MG_CA" "$@" 2>&1 || true
}
# allowed NAME USER GROUPS SQL: runs without error
allowed() {
  local out; out=$(as "$2" "$3" -v ON_ERROR_STOP=1 -c "$4")
  if grep -q '^ERROR' <<<"$out"; then fail "$1" "denied, expected allowed: $4" "$out"; else ok "$1"; fi
}
# denied NAME USER GROUPS SQL: refused with 42501 by martgate's policy
denied() {
  local out; out=$(as "$2" "$3" -c "$4")
  if grep -q 'ERROR:  42501: permission denied by policy' <<<"$out"; then ok "$1"
  else fail "$1" "expected a 42501 policy denial: $4" "$out"; fi
}

ENG=(ana data-engineers); SCI=(carla data-scientists); ORIG=(olga squad-origination)
SALES=(sam squad-sales); NOBODY=(zed "")

# ---- the persona × dataset matrix (psql)
for t in raw.leads staging.leads funnel_data_mart.funnel origination_mart.originations sales_mart.sales_per_region shared_mart.calendar; do
  allowed "engineer reads $t" "${ENG[@]}" "select count(*) from $t"
done
for t in raw.leads staging.leads funnel_data_mart.funnel origination_mart.originations sales_mart.sales_per_region; do
  allowed "scientist reads $t" "${SCI[@]}" "select count(*) from $t"
done
denied "scientist: raw.credentials denied by the no-secrets rule" "${SCI[@]}" "select * from raw.credentials"
for t in origination_mart.originations origination_mart.by_region funnel_data_mart.funnel shared_mart.calendar; do
  allowed "origination reads $t" "${ORIG[@]}" "select count(*) from $t"
done
for t in raw.leads staging.leads sales_mart.sales_per_region; do
  denied "origination denied $t" "${ORIG[@]}" "select count(*) from $t"
done
allowed "sales reads sales_mart" "${SALES[@]}" "select count(*) from sales_mart.sales_per_region"
for t in raw.leads staging.leads origination_mart.originations funnel_data_mart.funnel; do
  denied "sales denied $t" "${SALES[@]}" "select count(*) from $t"
done
allowed "nobody reads the shared dataset" "${NOBODY[@]}" "select count(*) from shared_mart.calendar"
for t in raw.leads staging.leads funnel_data_mart.funnel origination_mart.originations sales_mart.sales_per_region; do
  denied "nobody denied $t" "${NOBODY[@]}" "select count(*) from $t"
done
out=$(as "${ORIG[@]}" -c "select * from raw.leads")
check_match "denial names relation, rule and hint" 'raw\.leads.*squad-origination-marts' "$out"
check_match "denial carries the configured hint" 'HINT:  ask #data-governance' "$out"

# ---- rewrites give the direct answer over the filtered / masked data
check_eq "row filter: origination sees its squad or its region" \
  "$(direct_psql $DB -Atc "select * from funnel_data_mart.funnel where squad = 'origination' or region = 'north' order by 1,2,3")" \
  "$(as "${ORIG[@]}" -c "select * from funnel_data_mart.funnel order by 1,2,3")"
check_eq "masks: hash, last4, redact, null, expression; denied column absent" \
  "$(direct_psql $DB -Atc "select id, email, '***' || right(cpf, 4), '***', NULL::date, left(name,1) || '.' from shared_mart.customers order by id" | mg_hmac_field "$MG_HASH_KEY" 2 | tr -d ' ')" \
  "$(as "${ORIG[@]}" -c "select id, email, cpf, phone, birth_date, name from shared_mart.customers order by id" | tr -d ' ')"
out=$(as "${ORIG[@]}" -c "select salary from shared_mart.customers")
check_match "a denied column cannot be selected" 'ERROR' "$out"
LEAKY="select * from funnel_data_mart.funnel f where case when f.squad = 'sales' and f.region = 'south' then f.leads / (f.leads - f.leads) else 1 end = 1"
check_match "the leaky predicate does fire on the hidden row directly" 'division by zero' "$(direct_psql $DB -Atc "$LEAKY" 2>&1 || true)"
out=$(as "${ORIG[@]}" -c "$LEAKY")
check_nomatch "leaky predicate cannot see hidden rows (no division by zero)" 'division by zero|ERROR' "$out"
check_eq "leaky predicate still answers the visible rows" 3 "$(grep -c '|' <<<"$out")"
check_eq "schema-qualified column references are re-pointed (Metabase style)" \
  "$(direct_psql $DB -Atc "select count(*) from funnel_data_mart.funnel where squad = 'origination' or region = 'north'")" \
  "$(as "${ORIG[@]}" -c 'select count("funnel_data_mart"."funnel"."leads") from "funnel_data_mart"."funnel"')"

# ---- the classic ways around a SQL-parsing proxy (each as olga, squad-origination)
denied "quoted identifiers"          "${ORIG[@]}" 'select * from "raw"."leads"'
denied "upper case folds"            "${ORIG[@]}" 'select * from RAW.LEADS'
denied "unicode-escaped identifier"  "${ORIG[@]}" 'select * from U&"\0072aw".leads'
denied "comment inside the name"     "${ORIG[@]}" 'select * from /* x */ raw . /* y */ leads'
allowed "a string that mentions raw.leads is fine" "${ORIG[@]}" "select 'select * from raw.leads' as text, \$q\$raw.leads\$q\$"
allowed "a comment that mentions raw.leads is fine" "${ORIG[@]}" "select 1 /* raw.leads */ -- raw.leads"
out=$(as "${ORIG[@]}" -c "select 'visible-before'; select * from raw.leads")
check_nomatch "multi-statement string denied whole" 'visible-before' "$out"
check_match "multi-statement string: 42501" '42501' "$out"
denied "CTE hides the relation"      "${ORIG[@]}" 'with x as (select * from raw.leads) select * from x'
denied "subquery in FROM"            "${ORIG[@]}" 'select * from (select email from raw.leads) s'
denied "scalar subquery"             "${ORIG[@]}" 'select (select email from raw.leads limit 1)'
denied "EXISTS sublink"              "${ORIG[@]}" 'select 1 where exists (select 1 from raw.leads)'
denied "set operation"               "${ORIG[@]}" 'select region from origination_mart.originations union select region from raw.leads'
denied "LATERAL"                     "${ORIG[@]}" 'select * from origination_mart.originations o, lateral (select email from raw.leads l where l.region = o.region) x'
denied "TABLE statement"             "${ORIG[@]}" 'table raw.leads'
denied "SET search_path to a restricted schema" "${ORIG[@]}" 'set search_path = raw'
denied "SET LOCAL search_path"       "${ORIG[@]}" 'begin; set local search_path = raw, public; commit'
denied "set_config search_path"      "${ORIG[@]}" "select set_config('search_path', 'raw', false)"
denied "set_config of anything else" "${ORIG[@]}" "select set_config('work_mem', '1GB', false)"
out=$(as "${ORIG[@]}" -c 'set search_path = origination_mart' -c 'select count(*) from originations' -c 'show search_path')
check_match "allowed SET search_path, then unqualified names resolve there" '^2$' "$out"
out=$(as "${ORIG[@]}" -c 'select count(*) from leads')
check_match "unqualified name outside the readable search_path" 'ERROR' "$out"
denied "query_to_xml runs hidden SQL" "${ORIG[@]}" "select query_to_xml('select * from raw.leads', true, true, '')"
denied "ts_stat runs hidden SQL" "${ORIG[@]}" "select * from ts_stat('select to_tsvector(email) from raw.leads')"
denied "ts_rewrite runs hidden SQL" "${ORIG[@]}" "select ts_rewrite('a'::tsquery, 'select email::tsquery, email::tsquery from raw.leads')"
# catalog functions over a relation named by a constant tell what catalog
# filtering hides (existence, size, a view's definition, a comment)
denied "regclass cast of a hidden relation" "${ORIG[@]}" "select 'raw.leads'::regclass::oid"
denied "pg_get_viewdef of a hidden view"    "${ORIG[@]}" "select pg_get_viewdef('\"RAW\".leads'::regclass)"
denied "obj_description of a hidden table"  "${ORIG[@]}" "select obj_description('raw.leads'::regclass, 'pg_class')"
denied "pg_relation_size by name"           "${ORIG[@]}" "select pg_relation_size(' raw . leads ')"
denied "to_regclass of a hidden table"      "${ORIG[@]}" "select to_regclass('raw.leads')"
denied "regclass written as a call"          "${ORIG[@]}" "select pg_get_viewdef(regclass('raw.leads'))"
denied "an array of relation names"          "${ORIG[@]}" "select pg_get_viewdef(x) from unnest('{origination_mart.by_region, raw.leads}'::regclass[]) x"
denied "has_table_privilege by name"        "${ORIG[@]}" "select has_table_privilege(current_user, 'raw.leads', 'select')"
allowed "pg_relation_size of its own mart"  "${ORIG[@]}" "select pg_relation_size('origination_mart.originations')"
allowed "a catalog named by regclass"        "${ORIG[@]}" "select count(*) from pg_description where classoid = 'pg_class'::regclass"
out=$(as "${ORIG[@]}" -v ON_ERROR_STOP=1 -P tuples_only=off -c '\d origination_mart.originations')
check_match "psql \\d of its own table works (pg_statistic_ext is filtered, not denied)" 'Table "origination_mart.originations"' "$out"
check_nomatch "... without an error" 'ERROR' "$out"
out=$(as "${ORIG[@]}" -c 'select count(*) from pg_statistic_ext_data')
check_match "pg_statistic_ext_data (the statistics' values) stays denied" 'ERROR:  42501' "$out"
out=$(as "${ORIG[@]}" -v ON_ERROR_STOP=1 -P tuples_only=off -c '\d+ origination_mart.by_region')
check_match "psql \\d+ of its own view shows the definition (pg_get_viewdef by OID)" 'View definition:' "$out"
out=$(as "${ENG[@]}" -v ON_ERROR_STOP=1 -c "select pg_relation_size('raw.leads') > 0")
check_match "the data engineer may ask the size of raw.leads" '^t$' "$out"
denied "pg_read_file"                "${ORIG[@]}" "select pg_read_file('/etc/passwd')"
denied "lo_import"                   "${ORIG[@]}" "select lo_import('/etc/passwd')"
denied "dblink"                      "${ORIG[@]}" "select * from dblink('dbname=x', 'select 1') as t(a int)"
denied "COPY table TO STDOUT"        "${ORIG[@]}" 'copy raw.leads to stdout'
denied "COPY (query) TO STDOUT"      "${ORIG[@]}" 'copy (select * from raw.leads) to stdout'
denied "COPY to a server file"       "${ORIG[@]}" "copy origination_mart.originations to '/tmp/x.csv'"
denied "COPY FROM PROGRAM"           "${ORIG[@]}" "copy origination_mart.originations from program 'id'"
out=$(as "${ORIG[@]}" -c '\copy raw.leads to stdout')
check_match "psql \\copy of a restricted table" '42501' "$out"
denied "DO block"                    "${ORIG[@]}" 'do $$ begin perform 1; end $$'
denied "PREPARE of a restricted query" "${ORIG[@]}" 'prepare p as select * from raw.leads'
out=$(as "${ORIG[@]}" -c 'execute p_unknown')
check_match "EXECUTE of a statement never prepared: the warehouse's own answer (26000)" \
  'ERROR:  26000: prepared statement "p_unknown" does not exist' "$out"
out=$(as "${ORIG[@]}" -c 'prepare ok_p as select count(*) from origination_mart.originations' -c 'execute ok_p')
check_match "PREPARE/EXECUTE of an allowed query" '^2$' "$out"
denied "DECLARE CURSOR over a restricted query" "${ORIG[@]}" 'begin; declare c cursor for select * from raw.leads; fetch c; commit'
denied "temporary table copied from raw" "${ORIG[@]}" 'create temp table t as select * from raw.leads'
denied "temporary view over raw"     "${ORIG[@]}" 'create temp view v as select * from raw.leads'
denied "INSERT into a readable mart (read-only default)" "${ORIG[@]}" "insert into origination_mart.originations values ('2026-11-01', 'x', 'y', 1)"
denied "UPDATE a readable mart"      "${ORIG[@]}" "update origination_mart.originations set n = 0"
denied "DELETE from a readable mart" "${ORIG[@]}" 'delete from origination_mart.originations'
denied "EXPLAIN of a restricted query" "${ORIG[@]}" 'explain select * from raw.leads'
denied "pg_stats leaks values"       "${ORIG[@]}" "select * from pg_stats where schemaname = 'raw'"
denied "pg_statistic"                "${ORIG[@]}" 'select * from pg_statistic'
denied "pg_stat_activity shows others' queries" "${ORIG[@]}" 'select query from pg_stat_activity'
denied "SET ROLE"                    "${ORIG[@]}" 'set role postgres'
denied "SET SESSION AUTHORIZATION"   "${ORIG[@]}" 'set session authorization postgres'
denied "ALTER ROLE ... SET"          "${ORIG[@]}" 'alter role current_user set search_path = raw'
allowed "engineer writes raw"        "${ENG[@]}" "insert into raw.leads values (1000, 'x@example.com', '0', 'north')"
denied "scientist cannot write raw"  "${SCI[@]}" "delete from raw.leads"

# ---- denial in a transaction fails it, as a server error would
out=$(as "${ORIG[@]}" -c 'begin' -c 'select * from raw.leads' -c 'select 1' -c 'rollback' -c "select 'after'")
check_match "denial inside a transaction block: 25P02 next" '25P02' "$out"
check_match "ROLLBACK recovers the session" 'after' "$out"

# ---- catalogs show each persona only its schemas
schemas() { as "$@" -c "select nspname from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema' order by 1" | tr '\n' ' '; }
check_eq "origination sees its schemas in pg_namespace" "funnel_data_mart origination_mart public shared_mart " "$(schemas "${ORIG[@]}")"
check_eq "sales sees its schemas" "funnel_data_mart public sales_mart shared_mart " "$(schemas "${SALES[@]}")"
check_eq "engineer sees every schema" "funnel_data_mart origination_mart public raw sales_mart shared_mart staging " "$(schemas "${ENG[@]}")"
out=$(as "${ORIG[@]}" -c "select table_schema || '.' || table_name from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema') order by 1")
check_nomatch "information_schema.tables hides raw and sales" '^(raw|staging|sales_mart)\.' "$out"
check_match "information_schema.tables shows origination" 'origination_mart.originations' "$out"
out=$(as "${ORIG[@]}" -c '\dt *.*')
check_nomatch "psql \\dt *.* hides restricted tables" '(^| )(raw|staging|sales_mart) *\|' "$out"
check_match "psql \\dt *.* lists allowed tables" 'origination_mart *\| *originations' "$out"
out=$(as "${ORIG[@]}" -c '\d raw.*')
check_nomatch "psql \\d raw.* describes nothing" 'leads' "$out"
# types and the information_schema views that name tables follow them too
out=$(as "${ORIG[@]}" -c "select count(*) filter (where n.nspname in ('raw', 'staging', 'sales_mart')), count(*) filter (where t.typname in ('int4', 'text')), count(*) filter (where t.typname = 'originations') from pg_type t join pg_namespace n on n.oid = t.typnamespace")
check_eq "pg_type: no type of a hidden schema; base types and visible row types stay" "0|2|1" "$out"
out=$(as "${ORIG[@]}" -c "select typname from pg_type where typname in ('leads', '_leads', 'originations', '_originations') order by 1")
check_eq "pg_type: a hidden table's row and array types are gone, a visible one's stay" "_originations originations" "$(echo $out)"
for v in column_privileges table_privileges role_table_grants column_udt_usage constraint_table_usage attributes; do
  col=table_schema; [ $v = attributes ] && col=udt_schema
  out=$(as "${ORIG[@]}" -c "select count(*) from information_schema.$v where $col in ('raw', 'staging', 'sales_mart')")
  check_eq "information_schema.$v names no hidden table" 0 "$out"
done
out=$(as "${ORIG[@]}" -c "select count(*) from information_schema.view_table_usage where table_schema in ('raw', 'staging', 'sales_mart') or view_schema in ('raw', 'staging', 'sales_mart')")
check_eq "information_schema.view_table_usage names no hidden view or table" 0 "$out"
out=$(as "${ORIG[@]}" -c "select count(*) from information_schema.view_table_usage where view_schema = 'origination_mart'")
check_eq "information_schema.view_table_usage keeps the visible view over a visible table" 1 "$out"

# ---- reload under load: pgbench keeps running while the policy is reloaded 20 times
cat >"$T_DIR/read.sql" <<'SQL'
select count(*) from origination_mart.originations;
select n from origination_mart.by_region where region = 'north';
SQL
tok=$(mg_token --sub olga --groups squad-origination --claim region=north --ttl 10m)
PGPASSWORD=$tok PGSSLMODE=verify-full PGSSLROOTCERT=$MG_CA timeout 60 pgbench -n -h 127.0.0.1 -p "$MG_PORT" -U olga \
  -c 4 -T 8 -f "$T_DIR/read.sql" $DB >"$T_DIR/pgbench.out" 2>&1 &
bench_pid=$!
for i in $(seq 1 20); do mg_reload; sleep 0.3; done
rc=0; wait $bench_pid || rc=$?
check_eq "pgbench through 20 reloads exits 0" 0 "$rc"
check_match "pgbench: no failed transactions" 'number of failed transactions: 0 ' "$(cat "$T_DIR/pgbench.out")"
check_eq "20 reloads logged" 20 "$(grep -c 'configuration reloaded' "$MG_LOG")"
check "martgate still serves after the reloads" as "${ORIG[@]}" -c 'select 1'

mg_stop
h_done

#!/usr/bin/env bash
# Side channels of row filters and masks (issue 12, class 7), against the
# real warehouse: EXPLAIN in every form of a statement that a row filter or
# mask rewrites is refused with 42501 (EXPLAIN of an unrewritten one runs);
# the hash mask is HMAC-SHA256 under hash_mask_key_file's key (equal to
# Python's hmac of the real value, not md5), so a guess hashed with md5 no
# longer matches while joins on the masked column still do; current_query()
# and pg_prepared_statements, which show the rewritten text, are refused; and
# neither the audit file nor the audit table holds the key's pads.
. "$(dirname "$0")/../lib/harness.sh"
h_init sidechannel
DB=t_sidechannel
POLICY=$H_REPO/tests/unit/fixtures/policy/passei
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA funnel_data_mart; CREATE SCHEMA origination_mart; CREATE SCHEMA shared_mart;
CREATE TABLE funnel_data_mart.funnel (day date, squad text, region text, leads int);
INSERT INTO funnel_data_mart.funnel SELECT '2026-10-01'::date + g % 30, (ARRAY['origination','sales'])[1 + g % 2],
  (ARRAY['north','south','east'])[1 + g % 3], g FROM generate_series(1, 300) g;
CREATE TABLE origination_mart.originations (month date, region text, plan text, n int);
INSERT INTO origination_mart.originations VALUES ('2026-10-01', 'north', 'gold', 5), ('2026-10-01', 'south', 'basic', 7);
CREATE TABLE shared_mart.customers (id int, email text, cpf text, phone text, birth_date date, salary numeric, name text);
INSERT INTO shared_mart.customers VALUES (1, 'ann@example.com', '12345678901', '555-1234', '1990-01-02', 9000, 'Ann'),
  (2, 'bob@example.com', '98765432100', '555-9876', '1985-05-06', 7000, 'Bob'),
  (3, 'ann@example.com', '11122233344', NULL, NULL, 1, 'Ann B'), (4, NULL, NULL, NULL, NULL, NULL, 'Nobody'),
  (5, 'çà@exemplo.br', '5', '5', NULL, 5, 'Çà');
ANALYZE funnel_data_mart.funnel;
SQL
MG_CFG_EXTRA="\"policy\": \"$POLICY\", \"deny_hint\": \"ask #data-governance\",
  \"audit\": {\"file\": \"$T_DIR/audit.jsonl\", \"query_text\": \"full\", \"warehouse\": {\"database\": \"$DB\", \"flush_interval_ms\": 200}}"
mg_start $DB || h_die "martgate did not start"
wait_until 10 grep -q 'catalog of database' "$MG_LOG" || h_log "catalog not read yet"

as() { # USER GROUPS psql-args...: psql through martgate (region north)
  local user=$1 groups=$2; shift 2
  local tok
  tok=$(mg_token --sub "$user" ${groups:+--groups "$groups"} --claim region=north --ttl 10m)
  PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$user sslmode=verify-full sslrootcert=$MG_CA" "$@" 2>&1 || true
}
ORIG=(olga squad-origination)
denied() { # NAME SQL...: every statement refused with 42501 by the policy
  local name=$1; shift
  local out; out=$(as "${ORIG[@]}" -c "$@")
  if grep -q 'ERROR:  42501: permission denied by policy' <<<"$out" && ! grep -q 'Rows Removed\|Filter:\|sha256\|QUERY PLAN\|Seq Scan' <<<"$out"; then ok "$name"
  else fail "$name" "expected a 42501 policy denial and no plan" "$out"; fi
}
allowed() { # NAME SQL: runs
  local out; out=$(as "${ORIG[@]}" -v ON_ERROR_STOP=1 -c "$2")
  if grep -q '^ERROR' <<<"$out"; then fail "$1" "denied, expected allowed: $2" "$out"; else ok "$1"; fi
}

# ---- EXPLAIN of rewritten statements
denied "EXPLAIN ANALYZE of a row-filtered table" "EXPLAIN ANALYZE SELECT * FROM funnel_data_mart.funnel"
denied "EXPLAIN of a row-filtered table (estimates)" "EXPLAIN SELECT * FROM funnel_data_mart.funnel WHERE region = 'south'"
denied "EXPLAIN VERBOSE of a masked table" "EXPLAIN VERBOSE SELECT email FROM shared_mart.customers"
denied "EXPLAIN (FORMAT json) of a masked table" "EXPLAIN (FORMAT json) SELECT * FROM shared_mart.customers"
denied "EXPLAIN (ANALYZE, BUFFERS, FORMAT yaml)" "EXPLAIN (ANALYZE, BUFFERS, FORMAT yaml) SELECT count(*) FROM funnel_data_mart.funnel"
denied "EXPLAIN of a CTE over a filtered table" "EXPLAIN ANALYZE WITH f AS (SELECT * FROM funnel_data_mart.funnel) SELECT count(*) FROM f"
denied "EXPLAIN of a subquery over a masked table" "EXPLAIN SELECT * FROM origination_mart.originations WHERE n IN (SELECT id FROM shared_mart.customers)"
out=$(as "${ORIG[@]}" -c "EXPLAIN ANALYZE SELECT * FROM funnel_data_mart.funnel")
check_match "the denial says how to allow plain EXPLAIN" 'defaults.explain_filtered' "$out"
allowed "EXPLAIN ANALYZE of an unrewritten table runs" "EXPLAIN (ANALYZE, VERBOSE, FORMAT json) SELECT * FROM origination_mart.originations"
# EXPLAIN EXECUTE of a prepared statement, in one session
out=$(as "${ORIG[@]}" <<'SQL'
PREPARE f AS SELECT * FROM funnel_data_mart.funnel;
PREPARE o AS SELECT * FROM origination_mart.originations;
EXPLAIN ANALYZE EXECUTE f;
EXPLAIN EXECUTE f;
EXPLAIN (COSTS off) EXECUTE o;
EXECUTE f;
SQL
)
check_eq "EXPLAIN [ANALYZE] EXECUTE of a filtered PREPARE refused, of a plain one runs" \
  "2 1 0" "$(grep -c 'permission denied by policy: EXPLAIN of a statement' <<<"$out") $(grep -c 'Seq Scan on originations' <<<"$out") $(grep -c 'Rows Removed' <<<"$out")"
check_eq "EXECUTE of the filtered PREPARE still runs (only the north and origination rows)" \
  "$(direct_psql $DB -Atc "select count(*) from funnel_data_mart.funnel where squad = 'origination' or region = 'north'")" \
  "$(grep -c '^2026' <<<"$out")"

# ---- the keyed hash mask
check_eq "hash mask: HMAC-SHA256 of the real value under the configured key (Python's hmac), NULL stays NULL" \
  "$(direct_psql $DB -Atc "select id, email from shared_mart.customers order by id" | mg_hmac_field "$MG_HASH_KEY" 2)" \
  "$(as "${ORIG[@]}" -c "select id, email from shared_mart.customers order by id")"
check_eq "hash mask: not md5 of the value" 0 \
  "$(as "${ORIG[@]}" -c "select count(*) from shared_mart.customers where email = md5('ann@example.com') or length(email) <> 64")"
check_eq "a guess hashed with md5 matches nothing" 0 \
  "$(as "${ORIG[@]}" -c "select count(*) from shared_mart.customers where email in (md5('ann@example.com'), md5('bob@example.com'), encode(sha256('ann@example.com'), 'hex'))")"
check_eq "equal values still join on the masked column (ann twice: 2x2 + bob + ç)" 6 \
  "$(as "${ORIG[@]}" -c "select count(*) from shared_mart.customers a join shared_mart.customers b on a.email = b.email")"
check_eq "and group: 3 distinct masked e-mails" 3 \
  "$(as "${ORIG[@]}" -c "select count(distinct email) from shared_mart.customers")"
denied "current_query() would show the rewritten text and the key's pads" "select current_query() from shared_mart.customers"
denied "pg_prepared_statements shows the rewritten PREPARE" "select statement from pg_prepared_statements"
denied "pg_cursors shows the rewritten DECLARE" "select statement from pg_cursors"

# ---- the key's pads are in no audit record
pads=$(/usr/bin/python3 -c '
import sys
k = open(sys.argv[1], "rb").read().rstrip(b"\n")
k0 = k.ljust(64, b"\0")
print(bytes(b ^ 0x36 for b in k0).hex()[:32], bytes(b ^ 0x5c for b in k0).hex()[:32])' "$MG_HASH_KEY")
ipad=${pads% *}; opad=${pads#* }
wait_until 10 grep -q 'shared_mart.customers a join' "$T_DIR/audit.jsonl" || h_log "audit file not written yet"
check_eq "audit file: the masked reads are there, the pads are not" "yes 0" \
  "$(grep -q 'select id, email from shared_mart.customers' "$T_DIR/audit.jsonl" && echo yes) $(grep -c -e "$ipad" -e "$opad" -e 'sha256(pg_catalog.decode' "$T_DIR/audit.jsonl")"
sleep 1
check_eq "audit table: no record holds the pads" "t 0" \
  "$(pg_admin $DB -c "select count(*) > 0 from governance.audit_events") $(pg_admin $DB -c "select count(*) from governance.audit_events t where t::text like '%$ipad%' or t::text like '%$opad%'")"

mg_stop
h_done

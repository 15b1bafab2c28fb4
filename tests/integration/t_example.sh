#!/usr/bin/env bash
# The reference deployment (examples/passei-direto) end to end: warehouse.sql
# loads, deterministically, and its layers agree with each other (staging
# de-duplicates raw, the marts add up to staging, the streamed sales agree
# with the batch path); the policy checks and passes its tests.json; the
# committed config renders and checks; then, through martgate with psql, each
# persona reads exactly its datasets, the data-science masks and the sales
# region filter give the direct answer over the masked / filtered rows, writes
# are refused but to data engineering, Metabase impersonation switches
# principals, and the governance team reads the audit trail in the warehouse.
. "$(dirname "$0")/../lib/harness.sh"
h_init example
need_martgate
EX=$H_REPO/examples/passei-direto
DB=t_example

# ---- the warehouse
pg_createdb $DB
out=$(direct_psql $DB -q -v ON_ERROR_STOP=1 -f "$EX/warehouse.sql" 2>&1) || h_die "warehouse.sql does not load: $out"
ok "warehouse.sql loads"
q() { direct_psql $DB -Atc "$1"; }
check_eq "raw.leads has redeliveries and test leads (more rows than leads)" t \
  "$(q "select count(*) > count(distinct id) and count(*) filter (where payload->>'is_test' = 'true') > 0 from raw.leads")"
check_eq "raw.contracts has redeliveries" t "$(q "select count(*) > count(distinct id) from raw.contracts")"
check_eq "raw.events has redeliveries and malformed messages" t \
  "$(q "select count(*) filter (where topic = 'billing.contract_signed' and payload ? 'contract_id') > count(distinct payload->>'contract_id') and count(*) filter (where not payload ? 'contract_id' and topic = 'billing.contract_signed') > 0 from raw.events")"
check_eq "raw spells regions several ways" t "$(q "select count(distinct region) > 10 from raw.leads")"
check_eq "staging.leads: one row per real lead of raw" \
  "$(q "select count(distinct id) from raw.leads where payload->>'is_test' is null")" "$(q "select count(*) from staging.leads")"
check_eq "staging.leads keeps the latest message of a lead (region filled in later)" 0 \
  "$(q "select count(*) from staging.leads s join raw.leads r on r.id = s.lead_id where (r.payload #>> '{_kafka,offset}')::bigint > 20000 and s.region = 'unknown'")"
check_eq "staging.contracts: one row per real contract of raw" \
  "$(q "select count(distinct trim(id)) from raw.contracts where id not like 'QA-%'")" "$(q "select count(*) from staging.contracts")"
check_eq "staging normalises every spelling (no channel other, plan unknown)" "0|0" \
  "$(q "select (select count(*) from staging.leads where channel = 'other'), (select count(*) from staging.contracts where plan = 'unknown')")"
check_eq "staging has exactly the canonical regions" "midwest,north,northeast,south,southeast,unknown" \
  "$(q "select string_agg(distinct region, ',' order by region) from staging.leads")"
check_eq "staging.leads carries no contact data" 0 \
  "$(q "select count(*) from information_schema.columns where table_schema = 'staging' and column_name in ('name', 'email', 'phone')")"
check_eq "funnel: leads, contracts and revenue add up to staging" \
  "$(q "select (select count(*) from staging.leads) || '|' || count(*) || '|' || sum(amount) from staging.contracts")" \
  "$(q "select sum(leads) || '|' || sum(contracts) || '|' || sum(revenue) from funnel_data_mart.funnel")"
check_eq "funnel per channel and region equals a count over staging" "" \
  "$(q "(select channel, region, sum(leads) from funnel_data_mart.funnel group by 1, 2
         except select channel, region, count(*) from staging.leads group by 1, 2)
        union all (select channel, region, count(*) from staging.leads group by 1, 2
         except select channel, region, sum(leads) from funnel_data_mart.funnel group by 1, 2)")"
check_eq "originations add up to staging.contracts" \
  "$(q "select count(*) || '|' || sum(amount) from staging.contracts")" \
  "$(q "select sum(contracts) || '|' || sum(amount) from origination_mart.originations")"
check_eq "the monthly_summary view adds up to the table" \
  "$(q "select sum(contracts) from origination_mart.originations")" "$(q "select sum(contracts) from origination_mart.monthly_summary")"
check_eq "the streamed sales per region agree with the batch path" "" \
  "$(q "(select region, count(*), sum(amount) from staging.contracts group by 1
         except select region, sum(contracts), sum(amount) from sales_mart.sales_per_region group by 1)
        union all (select region, sum(contracts), sum(amount) from sales_mart.sales_per_region group by 1
         except select region, count(*), sum(amount) from staging.contracts group by 1)")"
check_eq "thousands of rows" t "$(q "select (select count(*) from raw.leads) > 5000 and (select count(*) from raw.events) > 5000 and (select count(*) from staging.contracts) > 500")"
digest="select md5(string_agg(t::text, ',' order by t::text)) from (select * from funnel_data_mart.funnel) t
        union all select md5(string_agg(t::text, ',' order by t::text)) from (select * from raw.leads) t"
pg_createdb ${DB}_again
direct_psql ${DB}_again -q -v ON_ERROR_STOP=1 -f "$EX/warehouse.sql" >/dev/null 2>&1
check_eq "warehouse.sql is deterministic (a second load, same rows)" "$(q "$digest")" "$(direct_psql ${DB}_again -Atc "$digest")"
pg_admin postgres -c "DROP DATABASE ${DB}_again WITH (FORCE)" >/dev/null

# ---- the policy and the committed configuration
check "policy check" "$MARTGATE_BIN" policy check "$EX/policy"
check "policy check --strict: the example has no part that does nothing" "$MARTGATE_BIN" policy check --strict "$EX/policy"
# the same policy with a group nothing names: a warning, and --strict fails on it
lint=$T_DIR/lint-policy
cp -r "$EX/policy" "$lint"
printf '{"groups": {"forgotten": {"members": ["nobody-*"]}}}\n' >"$lint/zz-forgotten.json"
rc=0; out=$("$MARTGATE_BIN" policy check "$lint" 2>&1) || rc=$?
check_eq "policy check: a warning alone exits 0" "0" "$rc"
check_match "policy check: the unused group is named with its file and line" \
  'warning: .*zz-forgotten.json:1:[0-9]+: groups.forgotten: no rule' "$out"
rc=0; out=$("$MARTGATE_BIN" policy check --strict "$lint" 2>&1) || rc=$?
check_eq "policy check --strict: a warning exits 1" "1" "$rc"
check_match "policy check --strict says why it fails" '1 warning \(--strict: failing\)' "$out"
out=$("$MARTGATE_BIN" policy test "$EX/policy" "$EX/tests.json" 2>&1) || true
check_match "policy test: every case of tests.json passes" '^[0-9]+ passed, 0 failed$' "$(tail -1 <<<"$out")"
st=$T_DIR/state
mkdir -p "$st/secrets"
ln -s "$MG_CERTS" "$st/certs"
openssl rand -out "$st/secrets/jwt-hs256.key" 32
(umask 077; openssl rand -hex 32 >"$st/secrets/hash-mask.key")
cp "$MG_SVC_PASS_FILE" "$st/secrets/warehouse.pass"
sed -e "s|@PORT@|$(free_port)|g" -e "s|@METRICS_PORT@|$(free_port)|g" -e "s|@WAREHOUSE_PORT@|$MG_PG_PORT|g" -e "s|@STATE_DIR@|$st|g" \
    -e "s|@EXAMPLE_DIR@|$EX|g" "$EX/martgate.json" >"$st/martgate.json"
check "examples/passei-direto/martgate.json, rendered, passes serve --check" \
  "$MARTGATE_BIN" serve --config "$st/martgate.json" --check

# ---- through martgate
MG_CFG_EXTRA="\"policy\": \"$EX/policy\", \"deny_hint\": \"ask #data-governance\",
  \"audit\": {\"file\": \"$T_DIR/audit.jsonl\", \"warehouse\": {\"database\": \"$DB\", \"flush_interval_ms\": 200}}"
mg_start $DB || h_die "martgate did not start"
wait_until 10 grep -q "catalog of database \"$DB\"" "$MG_LOG" || h_log "catalog not read yet"
wait_until 10 grep -q 'audit warehouse: connected' "$MG_LOG" || h_log "audit sink not connected yet"

# as USER GROUPS CLAIM psql-args...: psql through martgate as that person
as() {
  local user=$1 groups=$2 claim=$3; shift 3
  local tok
  tok=$(mg_token --sub "$user" ${groups:+--groups "$groups"} ${claim:+--claim "$claim"} --ttl 10m)
  PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$user sslmode=verify-full sslrootcert=$MG_CA" "$@" 2>&1 || true
}
ENG=(ana data-engineering ""); SCI=(carla data-science ""); ORIG=(olga squad-origination "")
SALES=(sam squad-sales region=southeast); GOV=(gil governance ""); NOBODY=(ivo "" ""); MB=(metabase-svc "" "")
denied_by_policy() { grep -q 'ERROR:  42501: permission denied by policy' <<<"$1"; }

TABLES=(raw.leads raw.contracts raw.events staging.leads staging.contracts funnel_data_mart.funnel
        origination_mart.originations origination_mart.monthly_summary sales_mart.sales_per_region
        governance.audit_events)
# matrix PERSONA-ARRAY-NAME LABEL ALLOWED-SCHEMAS-REGEX
matrix() {
  local -n who=$1
  local t out
  for t in "${TABLES[@]}"; do
    out=$(as "${who[@]}" -c "select count(*) from $t")
    if [[ ${t%%.*} =~ ^($3)$ ]]; then
      if grep -q '^ERROR' <<<"$out"; then fail "$2 reads $t" "denied, expected allowed" "$out"
      else ok "$2 reads $t"; fi
    else
      if denied_by_policy "$out"; then ok "$2 cannot read $t"
      else fail "$2 cannot read $t" "expected a 42501 policy denial" "$out"; fi
    fi
  done
}
matrix ENG "data engineer" "raw|staging|funnel_data_mart|origination_mart|sales_mart"
matrix SCI "data scientist" "raw|staging|funnel_data_mart|origination_mart|sales_mart"
matrix ORIG "origination analyst" "origination_mart"
matrix SALES "sales analyst" "sales_mart|funnel_data_mart"
matrix GOV "governance" "governance"
matrix NOBODY "intern without groups" "NONE"
matrix MB "metabase-svc without a role" "funnel_data_mart|origination_mart|sales_mart"

# ---- data science: e-mail hashed, phone's last 4, other columns in clear
check_eq "scientist: raw.leads masked, row for row" \
  "$(direct_psql $DB -Atc "select id, name, email, case when phone is null then null else '***' || right(phone, 4) end, region from raw.leads" | mg_hmac_field "$MG_HASH_KEY" 3 | LC_ALL=C sort)" \
  "$(as "${SCI[@]}" -c "select id, name, email, phone, region from raw.leads" | LC_ALL=C sort)"
out=$(as "${SCI[@]}" -c "select count(*) from raw.leads where email like '%@%' or phone ~ '[0-9]{5}'")
check_eq "scientist: no clear e-mail or phone can be found by filtering" 0 "$out"
check_eq "engineer: raw.leads in clear" \
  "$(direct_psql $DB -Atc "select email, phone from raw.leads order by id, email, phone limit 20")" \
  "$(as "${ENG[@]}" -c "select email, phone from raw.leads order by id, email, phone limit 20")"
check_match "scientist: COPY raw.leads TO STDOUT would skip the masks: refused" '42501' "$(as "${SCI[@]}" -c 'copy raw.leads to stdout')"

# ---- sales: the funnel rows of the token's region only
for region in southeast north; do
  check_eq "sales ($region): the funnel equals the direct query filtered by region" \
    "$(direct_psql $DB -Atc "select * from funnel_data_mart.funnel where region = '$region' order by day, channel, region")" \
    "$(as sam squad-sales region=$region -c "select * from funnel_data_mart.funnel order by day, channel, region")"
done
check_eq "sales: asking for another region gives nothing more" "southeast" \
  "$(as "${SALES[@]}" -c "select string_agg(distinct region, ',') from funnel_data_mart.funnel where region <> 'southeast' or true")"
check_match "sales without a region claim: the funnel is refused" "needs claim 'region'" \
  "$(as sam squad-sales "" -c "select count(*) from funnel_data_mart.funnel")"
check_eq "sales: sales_per_region unfiltered" "$(q "select count(*) from sales_mart.sales_per_region")" \
  "$(as "${SALES[@]}" -c "select count(*) from sales_mart.sales_per_region")"

# ---- writes
out=$(as "${ENG[@]}" -v ON_ERROR_STOP=1 -c "create table staging.t_example_scratch as select lead_id from staging.leads limit 3" \
      -c "insert into staging.t_example_scratch values (0)" -c "drop table staging.t_example_scratch")
check_nomatch "engineer writes staging (create, insert, drop)" '^ERROR' "$out"
for w in "SCI|delete from raw.leads" "ORIG|update origination_mart.originations set amount = 0" \
         "SALES|insert into sales_mart.sales_per_region select * from sales_mart.sales_per_region limit 1" \
         "ENG|delete from governance.audit_events" "GOV|delete from governance.audit_events" \
         "MB|truncate funnel_data_mart.funnel"; do
  IFS='|' read -r who sql <<<"$w"
  declare -n p=$who
  out=$(as "${p[@]}" -c "$sql")
  if denied_by_policy "$out"; then ok "${p[0]} cannot write: $sql"; else fail "${p[0]} cannot write: $sql" "expected a 42501 policy denial" "$out"; fi
  unset -n p
done

# ---- Metabase impersonation
out=$(as "${MB[@]}" -c "set role metabase_origination" \
  -c "-- Metabase:: userID: 7 queryType: MBQL queryHash: 1a2b3c
select count(*) from origination_mart.originations" \
  -c "select count(*) from sales_mart.sales_per_region" -c "set role none" -c "select count(*) from sales_mart.sales_per_region" \
  -c "set role metabase_sales" -c "select count(*) from funnel_data_mart.funnel" -c "reset role" -c "set role postgres")
check_match "impersonated origination role reads origination" "^$(q "select count(*) from origination_mart.originations")\$" "$out"
check_eq "impersonation: sales refused, funnel refused (the role carries no region claim), role postgres refused" "3 1" \
  "$(grep -c 'permission denied by policy' <<<"$out") $(grep -c "needs claim 'region'" <<<"$out")"
check_match "SET ROLE NONE returns to the service account's own access" "^$(q "select count(*) from sales_mart.sales_per_region")\$" "$out"
check_match "the intern cannot impersonate" 'not an impersonator' "$(as "${NOBODY[@]}" -c "set role metabase_origination")"

# ---- the audit trail, in the file and in the warehouse
wait_until 10 grep -q '"end_user":"metabase:7"' "$T_DIR/audit.jsonl" || true
check_match "audit file names the Metabase user and the impersonated role" \
  '"impersonated_role":"metabase_origination".*"end_user":"metabase:7"' "$(grep 'origination_mart.originations' "$T_DIR/audit.jsonl" || true)"
sleep 0.5
out=$(as "${GOV[@]}" -c "select count(*) > 50, count(*) filter (where decision = 'deny') > 20, bool_or(end_user = 'metabase:7') from governance.audit_events")
check_eq "governance reads the audit table through martgate" "t|t|t" "$out"
check_match "audit --summary runs over the file" 'Statements by user, dataset and decision' \
  "$("$MARTGATE_BIN" audit --summary "$T_DIR/audit.jsonl" 2>&1)"

mg_stop
h_done

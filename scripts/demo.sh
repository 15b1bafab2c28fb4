#!/usr/bin/env bash
# The README's first command: martgate in front of the Passei Direto warehouse
# (examples/passei-direto), and a tour of what each persona gets through it.
#
#   bash scripts/demo.sh           install what is missing, build, start a
#                                  throwaway warehouse and martgate, tour, stop
#   bash scripts/demo.sh --keep    the same, then leave everything running and
#                                  print how to connect (psql, Metabase)
#   bash scripts/demo.sh --stop    stop what --keep left running
#
# State (certificates, signing key, tokens, rendered config, logs, audit log)
# lives in $MARTGATE_DEMO_DIR (default /tmp/martgate-demo); the warehouse's
# data directory is recorded there too. Nothing secret is written into the
# repository. With MARTGATE_BIN set, that binary is used and the install and
# build steps are skipped. MARTGATE_DEMO_PORT picks the listen port (default
# 6432, or a free one when 6432 is taken).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
EXAMPLE=$REPO/examples/passei-direto
STATE=${MARTGATE_DEMO_DIR:-/tmp/martgate-demo}
DB=passei
ISS=https://idp.passeidireto.example/
AUD=martgate
KID=passei-hs256
GIVEN_BIN=${MARTGATE_BIN:-}      # before the harness sets its default

case $STATE in
  /?*) ;;
  *) echo "MARTGATE_DEMO_DIR must be an absolute path other than /" >&2; exit 2 ;;
esac

mode=run
case ${1:-} in
  "") ;;
  --keep) mode=keep ;;
  --stop) mode=stop ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: bash scripts/demo.sh [--keep | --stop]" >&2; exit 2 ;;
esac

if [ -t 1 ]; then BOLD=$'\033[1m'; CYAN=$'\033[1;36m'; DIM=$'\033[2m'; RED=$'\033[31m'; OFF=$'\033[0m'
else BOLD=""; CYAN=""; DIM=""; RED=""; OFF=""; fi
h1() { printf '\n%s══ %s %s\n' "$CYAN" "$*" "$OFF"; }
h2() { printf '\n%s── %s%s\n' "$BOLD" "$*" "$OFF"; }
note() { printf '%s%s%s\n' "$DIM" "$*" "$OFF"; }
step() { printf '• %s\n' "$*"; }

# ------------------------------------------------------------------ stop --
# Stops what a demo (this run or an earlier --keep) started, as recorded in
# $STATE/demo.env, then removes the state. Only our own pids are signalled.
stop_demo() {
  [ -f "$STATE/demo.env" ] || return 0
  local MARTGATE_PID="" MG_PG_BASE="" MG_PG_DATA=""
  # shellcheck disable=SC1091
  . "$STATE/demo.env"
  if [ -n "$MARTGATE_PID" ] && kill -0 "$MARTGATE_PID" 2>/dev/null &&
     tr '\0' ' ' <"/proc/$MARTGATE_PID/cmdline" 2>/dev/null | grep -q "serve --config $STATE/martgate.json"; then
    kill -TERM "$MARTGATE_PID" 2>/dev/null || true
    wait_until 15 pid_gone "$MARTGATE_PID" || kill -KILL "$MARTGATE_PID" 2>/dev/null || true
    step "martgate (pid $MARTGATE_PID) stopped"
  fi
  if [ -n "$MG_PG_DATA" ] && [ -d "$MG_PG_DATA" ]; then
    # tests/lib/harness.sh's pg_stop: pg_ctl as the unprivileged owner, then removes $MG_PG_BASE
    MG_PG_BASE=$MG_PG_BASE MG_PG_DATA=$MG_PG_DATA pg_stop || true
    step "warehouse ($MG_PG_DATA) stopped"
  fi
  # only what the demo made (MARTGATE_DEMO_DIR may name an existing directory)
  rm -rf "${STATE:?}/certs" "$STATE/secrets" "$STATE/tokens" "$STATE/audit"
  rm -f "$STATE/demo.env" "$STATE/martgate.json" "$STATE/martgate.log"
  rmdir "$STATE" 2>/dev/null || true
}

# The harness: pg_start/pg_stop/pg_createdb/direct_psql/free_port/port_open...
# (it runs PostgreSQL as an unprivileged user when we are root).
# shellcheck disable=SC1091
. "$REPO/tests/lib/harness.sh"

if [ $mode = stop ]; then
  if [ -f "$STATE/demo.env" ]; then stop_demo; echo "demo stopped; its files in $STATE removed"
  else echo "no demo state in $STATE: nothing to stop"; fi
  exit 0
fi

if [ -f "$STATE/demo.env" ]; then
  # shellcheck disable=SC1091
  if (. "$STATE/demo.env"; [ -n "${MARTGATE_PID:-}" ] && kill -0 "$MARTGATE_PID" 2>/dev/null); then
    echo "a demo is already running (state in $STATE): bash scripts/demo.sh --stop first" >&2
    exit 1
  fi
  echo "cleaning up the state of an earlier demo in $STATE"
  stop_demo
fi

START=$(date +%s)
if [ -n "$GIVEN_BIN" ]; then
  MARTGATE_BIN=$GIVEN_BIN
  note "using MARTGATE_BIN=$MARTGATE_BIN (install and build skipped)"
else
  h1 "Installing what is missing and building"
  bash scripts/install-deps.sh
  step "building build/martgate (scripts/build.sh)"
  if ! build_out=$(bash scripts/build.sh 2>&1); then
    printf '%s\n' "$build_out" | tail -40 >&2
    echo "the build failed" >&2
    exit 1
  fi
  MARTGATE_BIN=$REPO/build/martgate
fi
export MARTGATE_BIN
MG=$MARTGATE_BIN

finished=0
on_exit() {
  local rc=$?
  if [ $mode = run ] || [ "$finished" -eq 0 ]; then
    if [ "$finished" -eq 0 ]; then
      echo "${RED}demo failed (exit $rc); the last lines of martgate's log:${OFF}" >&2
      tail -5 "$STATE/martgate.log" 2>/dev/null >&2 || true
    fi
    h1 "Stopping everything the demo started"
    if [ -n "${MG_PG_DATA:-}" ] && ! grep -q '^MG_PG_DATA=' "$STATE/demo.env" 2>/dev/null; then
      printf 'MG_PG_BASE=%s\nMG_PG_DATA=%s\n' "$MG_PG_BASE" "$MG_PG_DATA" >>"$STATE/demo.env"
    fi
    stop_demo
  fi
  return $rc
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- set up --
h1 "Setting up: certificates, signing key, warehouse, martgate"
mkdir -p "$STATE"
chmod 0700 "$STATE"
: >"$STATE/demo.env"
bash certs/make-dev-certs.sh "$STATE/certs" >/dev/null
step "development CA and server certificate in $STATE/certs (certs/make-dev-certs.sh)"
(umask 077; mkdir -p "$STATE/secrets" "$STATE/tokens" "$STATE/audit"
 openssl rand -out "$STATE/secrets/jwt-hs256.key" 32
 openssl rand -hex 32 >"$STATE/secrets/hash-mask.key")
step "a fresh HS256 signing key in $STATE/secrets/jwt-hs256.key, and a demo hash mask key in $STATE/secrets/hash-mask.key (mode 600)"

export MG_CERTS=$STATE/certs MG_CA=$STATE/certs/ca.crt
pg_start                                        # sets MG_PG_BASE, MG_PG_PORT, MG_SVC_USER...
H_PG_OWNED=0                                    # stopped by stop_demo, not by the harness
cat >"$STATE/demo.env" <<EOF
MG_PG_BASE=$MG_PG_BASE
MG_PG_DATA=$MG_PG_DATA
EOF
MG_SVC_PASS=$(cat "$MG_SVC_PASS_FILE")
export MG_SVC_PASS
(umask 077; cp "$MG_SVC_PASS_FILE" "$STATE/secrets/warehouse.pass")
step "PostgreSQL 15 warehouse on 127.0.0.1:$MG_PG_PORT (only martgate's service role $MG_SVC_USER has a password)"

pg_createdb $DB
t0=$(now_ms)
direct_psql $DB -q -v ON_ERROR_STOP=1 -f "$EXAMPLE/warehouse.sql" >/dev/null
step "examples/passei-direto/warehouse.sql loaded in $(( $(now_ms) - t0 )) ms: $(direct_psql $DB -Atc "
  SELECT format('raw.leads %s rows (%s leads), raw.contracts %s, raw.events %s; staging.leads %s, staging.contracts %s; funnel %s rows, originations %s, sales_per_region %s',
    (SELECT count(*) FROM raw.leads), (SELECT count(DISTINCT id) FROM raw.leads), (SELECT count(*) FROM raw.contracts),
    (SELECT count(*) FROM raw.events), (SELECT count(*) FROM staging.leads), (SELECT count(*) FROM staging.contracts),
    (SELECT count(*) FROM funnel_data_mart.funnel), (SELECT count(*) FROM origination_mart.originations),
    (SELECT count(*) FROM sales_mart.sales_per_region))")"

PORT=${MARTGATE_DEMO_PORT:-6432}
port_open "$PORT" && PORT=$(free_port)
METRICS_PORT=9187
port_open "$METRICS_PORT" && METRICS_PORT=$(free_port)
sed -e "s|@PORT@|$PORT|g" -e "s|@METRICS_PORT@|$METRICS_PORT|g" -e "s|@WAREHOUSE_PORT@|$MG_PG_PORT|g" -e "s|@STATE_DIR@|$STATE|g" \
    -e "s|@EXAMPLE_DIR@|$EXAMPLE|g" "$EXAMPLE/martgate.json" >"$STATE/martgate.json"
"$MG" serve --config "$STATE/martgate.json" --check >/dev/null
nohup "$MG" serve --config "$STATE/martgate.json" >>"$STATE/martgate.log" 2>&1 </dev/null &
MARTGATE_PID=$!
echo "MARTGATE_PID=$MARTGATE_PID" >>"$STATE/demo.env"
if ! wait_until 15 grep -q 'audit warehouse: connected' "$STATE/martgate.log" ||
   ! wait_until 15 grep -q "catalog of database \"$DB\"" "$STATE/martgate.log"; then
  tail -20 "$STATE/martgate.log" >&2
  echo "martgate did not come up" >&2
  exit 1
fi
step "martgate (pid $MARTGATE_PID) on 127.0.0.1:$PORT with $STATE/martgate.json"
note "  (examples/passei-direto/martgate.json with its @PLACEHOLDERS@ filled in; policy: examples/passei-direto/policy/)"

# ---------------------------------------------------------------- personas --
# user|groups|claims|who
PERSONAS=(
  "ana|data-engineering||data engineer"
  "carla|data-science||data scientist"
  "olga|squad-origination||origination analyst"
  "sam|squad-sales|region=southeast|sales analyst, region southeast"
  "ivo|||intern, no group"
)
EXTRA=("gil|governance||governance reviewer" "metabase-svc|||Metabase service account")
TTL=10m
[ $mode = keep ] && TTL=8h
declare -A TOKEN WHO
for p in "${PERSONAS[@]}" "${EXTRA[@]}"; do
  IFS='|' read -r user groups claims who <<<"$p"
  args=(--key "$STATE/secrets/jwt-hs256.key" --kid "$KID" --iss "$ISS" --aud "$AUD" --sub "$user" --ttl "$TTL")
  [ -n "$groups" ] && args+=(--groups "$groups")
  [ -n "$claims" ] && args+=(--claim "$claims")
  TOKEN[$user]=$(timeout 10 "$MG" token "${args[@]}")
  WHO[$user]=$who
  (umask 077; printf '%s\n' "${TOKEN[$user]}" >"$STATE/tokens/$user.jwt")
done
step "a JWT per persona (martgate token ... --sub USER --groups G [--claim region=...]) in $STATE/tokens/"

conninfo() { echo "host=127.0.0.1 port=$PORT dbname=$DB user=$1 sslmode=verify-full sslrootcert=$STATE/certs/ca.crt"; }
# psql_as USER psql-args...: psql through martgate as that persona
psql_as() {
  local user=$1; shift
  PGPASSWORD=${TOKEN[$user]} timeout 20 psql -X -P pager=off "$(conninfo "$user")" "$@" 2>&1 || true
}
indent() { sed -e '/^$/d' -e 's/^/    /'; }
# ask QUESTION SQL: the same question as every persona
ask() {
  h2 "$1"
  printf '%s%s%s\n' "$DIM" "$2" "$OFF" | fold -s -w 110 | indent
  local p user groups claims who
  for p in "${PERSONAS[@]}"; do
    IFS='|' read -r user groups claims who <<<"$p"
    printf '\n  %s%s%s (%s):\n' "$BOLD" "$user" "$OFF" "$who"
    psql_as "$user" -c "$2" | indent
  done
}

cat <<EOF

${BOLD}The personas${OFF} (groups and claims come from each one's token; the policy in
examples/passei-direto/policy/ says what each group may do):
  ana    data-engineering       read + write on raw, staging and every mart
  carla  data-science           read on raw, staging and every mart; raw.leads e-mail and phone masked
  olga   squad-origination      read on origination_mart only
  sam    squad-sales            read on sales_mart; funnel_data_mart rows of his region claim (southeast)
  ivo    (no group)             nothing: there is no catch-all rule
  gil    governance             read on the audit trail, governance.audit_events
EOF

# ---------------------------------------------------------------- the tour --
h1 "The tour: the same questions, asked as each persona through psql"

ask "1. How many leads arrived per region in June 2026? (raw.leads, as landed from Kafka)" \
"SELECT region, count(*) AS leads FROM raw.leads WHERE created_at::timestamptz >= '2026-06-01 00:00-03' AND created_at::timestamptz < '2026-07-01 00:00-03' GROUP BY region ORDER BY leads DESC LIMIT 5"
note "  raw is as landed: the same region under several spellings; staging.leads has them normalised."

ask "2. Funnel conversion by channel, January-June 2026 (funnel_data_mart.funnel)" \
"SELECT channel, sum(leads) AS leads, sum(contracts) AS contracts, round(100.0 * sum(contracts) / sum(leads), 1) AS conversion_pct, string_agg(DISTINCT region, ',') AS regions FROM funnel_data_mart.funnel GROUP BY channel ORDER BY channel"
note "  sam's query was rewritten: the funnel became a subquery filtered to his token's region:"
"$MG" policy explain --policy "$EXAMPLE/policy" --user sam --groups squad-sales --claim region=southeast \
  "SELECT channel, sum(leads) FROM funnel_data_mart.funnel GROUP BY channel" | sed -n '/^rewritten SQL:/,$p' | indent

ask "3. Originations by plan, April-June 2026 (origination_mart.originations)" \
"SELECT plan, sum(contracts) AS contracts, sum(amount) AS amount_brl, round(sum(amount) / sum(contracts), 2) AS avg_ticket FROM origination_mart.originations WHERE month >= '2026-04-01' GROUP BY plan ORDER BY amount_brl DESC"

ask "4. Sales per region in June 2026 (sales_mart.sales_per_region, written by the stream)" \
"SELECT region, sum(contracts) AS contracts, sum(amount) AS amount_brl FROM sales_mart.sales_per_region WHERE window_start >= '2026-06-01 00:00-03' GROUP BY region ORDER BY amount_brl DESC"

ask "5. A peek at raw leads' contact data (raw.leads)" \
"SELECT id, name, email, phone FROM raw.leads ORDER BY id LIMIT 3"
note "  carla sees a keyed hash (HMAC-SHA256) of email: still joinable, and no guess can be hashed to compare; and the phone's last 4 digits."

h2 "6. Writes: only data engineering writes, and nobody rewrites the audit trail"
for q in "ana|CREATE TABLE staging.lead_scores AS SELECT lead_id, 0.5 AS score FROM staging.leads LIMIT 10" \
         "ana|DROP TABLE staging.lead_scores" \
         "carla|DELETE FROM raw.leads WHERE id = 1" \
         "olga|UPDATE origination_mart.originations SET amount = 0"; do
  IFS='|' read -r user sql <<<"$q"
  printf '\n  %s%s%s (%s): %s%s%s\n' "$BOLD" "$user" "$OFF" "${WHO[$user]}" "$DIM" "$sql" "$OFF"
  psql_as "$user" -c "$sql" | indent
done

h2 "7. A few ways around a SQL-parsing proxy, tried by the origination analyst"
for sql in 'SELECT count(*) FROM RAW.Leads' \
           'SELECT count(*) FROM "raw"."leads"' \
           'SELECT count(*) FROM /* hello */ raw . /* there */ leads' \
           'SELECT o.region, s.amount FROM origination_mart.originations o JOIN sales_mart.sales_per_region s USING (region)' \
           'WITH x AS (SELECT * FROM sales_mart.sales_per_region) SELECT count(*) FROM x' \
           "SELECT 1; SELECT email FROM raw.leads" \
           "SELECT query_to_xml('SELECT * FROM raw.leads', true, true, '')" \
           "SET search_path = raw"; do
  printf '\n  %s%s%s\n' "$DIM" "$sql" "$OFF"
  psql_as olga -c "$sql" | grep -E '^(ERROR|DETAIL)' | indent || true
done

# ---------------------------------------------------------- impersonation --
h1 "Metabase connection impersonation: the service account switches roles"
note "Metabase Pro/Enterprise connects once as metabase-svc and sends SET ROLE <role> before a"
note "person's queries (and SET ROLE NONE after). The policy maps roles to groups and lets only"
note "metabase-svc switch (examples/passei-direto/policy/50-metabase.json)."
echo
PGPASSWORD=${TOKEN[metabase-svc]} timeout 20 psql -X -P pager=off -e "$(conninfo metabase-svc)" \
  -c "SELECT count(*) AS funnel_rows FROM funnel_data_mart.funnel" \
  -c "SET ROLE metabase_origination" \
  -c "-- Metabase:: userID: 7 queryType: MBQL queryHash: 5c2b1f0e
SELECT plan, sum(contracts) AS contracts FROM origination_mart.originations WHERE month = '2026-06-01' GROUP BY plan ORDER BY plan" \
  -c "SELECT count(*) AS funnel_rows FROM funnel_data_mart.funnel" \
  -c "SET ROLE NONE" \
  -c "SELECT count(*) AS funnel_rows FROM funnel_data_mart.funnel" \
  -c "SET ROLE postgres" 2>&1 | indent || true
printf '\n  %s%s%s (%s) tries the same switch:\n' "$BOLD" ivo "$OFF" "${WHO[ivo]}"
psql_as ivo -c "SET ROLE metabase_origination" | indent

# ------------------------------------------------------------------- audit --
h1 "The audit trail"
sleep 1.2     # the warehouse copy is flushed every 500 ms
h2 "gil (governance) reviews it through martgate: governance.audit_events"
psql_as gil -c "SELECT coalesce(end_user, user_name) AS who, count(*) FILTER (WHERE decision = 'allow') AS allowed, count(*) FILTER (WHERE decision = 'rewrite') AS rewritten, count(*) FILTER (WHERE decision = 'deny') AS denied FROM governance.audit_events WHERE event = 'statement' GROUP BY 1 ORDER BY 1" | indent
note "  (metabase:7 is the Metabase user named in the query's -- Metabase:: remark)"
h2 "martgate audit --summary $STATE/audit/audit.jsonl"
"$MG" audit --summary --top 5 "$STATE/audit/audit.jsonl" | indent

# ----------------------------------------------------------------- metrics --
h1 "Operations: readiness and Prometheus metrics on 127.0.0.1:$METRICS_PORT"
h2 "curl http://127.0.0.1:$METRICS_PORT/readyz"
curl -s "http://127.0.0.1:$METRICS_PORT/readyz" | indent
h2 "curl http://127.0.0.1:$METRICS_PORT/metrics (logins, decisions, denials by dataset)"
curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
  grep -E '^martgate_(logins_total|statements_total|denials_total|decision_seconds_count)' | grep -v ' 0$' | indent

finished=1
if [ $mode = keep ]; then
  trap - EXIT
  h1 "Left running (bash scripts/demo.sh --stop stops it)"
  cat <<EOF
martgate   127.0.0.1:$PORT (pid $MARTGATE_PID), database "$DB"; log $STATE/martgate.log
warehouse  127.0.0.1:$MG_PG_PORT, $MG_PG_DATA (reached only through martgate)
metrics    http://127.0.0.1:$METRICS_PORT/metrics, /healthz, /readyz
audit      $STATE/audit/audit.jsonl    ($MG audit --follow $STATE/audit/audit.jsonl)
           and the table governance.audit_events (gil reads it)
policy     $EXAMPLE/policy/   (edit, then: kill -HUP $MARTGATE_PID)

psql as each persona (tokens valid $TTL, also in $STATE/tokens/):
EOF
  for p in "${PERSONAS[@]}" "${EXTRA[@]}"; do
    IFS='|' read -r user groups claims who <<<"$p"
    printf '\n  # %s\n  PGPASSWORD=%s psql "%s"\n' "$who" "${TOKEN[$user]}" "$(conninfo "$user")"
  done
  cat <<EOF

Metabase (Admin settings > Databases > Add database; see docs/metabase.md):
  Database type      PostgreSQL
  Host / Port        127.0.0.1 / $PORT   (the dev certificate names localhost, 127.0.0.1 and ::1)
  Database name      $DB
  Username           metabase-svc         (the token's subject; or a persona, e.g. sam)
  Password           the token: $STATE/tokens/metabase-svc.jwt
  Use a secure connection (SSL): on; SSL Mode: verify-full; SSL root certificate: $STATE/certs/ca.crt
  Impersonation (Pro/Enterprise): user attribute with one of the roles metabase_data_science,
                     metabase_origination, metabase_sales, metabase_governance
EOF
fi
what="done"
[ $mode = keep ] && what=ready
printf '\n%sdemo %s in %d s%s\n' "$BOLD" "$what" $(( $(date +%s) - START )) "$OFF"

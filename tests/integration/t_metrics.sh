#!/usr/bin/env bash
# The operations listener (issue 14): /healthz, /readyz and /metrics served
# by martgate's evhttp, scraped by a real Prometheus (Debian's) while the test
# logs in, fails logins, runs denied statements and a pgbench run; the values
# read back through Prometheus' HTTP API must be what the test did (exact
# counts of logins by result and of denials by dataset). promtool checks the
# exposition; the bearer token is required; /readyz turns 503, saying why,
# when the warehouse stops accepting connections, and 200 again after; a
# real HAProxy (Debian's) with `option httpchk GET /readyz` takes martgate out
# of its backend then, and back in after, and relays psql to it meanwhile.
. "$(dirname "$0")/../lib/harness.sh"
h_init metrics
need_martgate
for tool in prometheus promtool curl jq pgbench haproxy; do
  command -v $tool >/dev/null || h_die "$tool is missing (scripts/install-deps.sh installs it)"
done
DB=t_metrics
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA raw; CREATE TABLE raw.secret (a int); INSERT INTO raw.secret VALUES (1);
CREATE SCHEMA mart; CREATE TABLE mart.t (a int); INSERT INTO mart.t VALUES (1), (2);
CREATE TABLE public.accounts (aid int PRIMARY KEY, abalance int);
INSERT INTO public.accounts SELECT g, 0 FROM generate_series(1, 1000) g;
SQL
cat >"$T_DIR/policy.json" <<'JSON'
{"datasets": {"raw": {"schemas": ["raw"]}, "mart": {"schemas": ["mart", "public"]}},
 "rules": [{"id": "analysts-read", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["mart"]},
            "access": "read"}]}
JSON
MPORT=$(free_port)
(umask 077; openssl rand -hex 32 >"$T_DIR/metrics.token")
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\", \"metrics\": {\"listen\": \"127.0.0.1:$MPORT\",
  \"token_file\": \"$T_DIR/metrics.token\", \"ready_warehouse_seconds\": 4},
  \"audit\": {\"file\": \"$T_DIR/audit.jsonl\"}" mg_start $DB ||
  h_die "martgate did not start"
URL=http://127.0.0.1:$MPORT
TOKEN=$(cat "$T_DIR/metrics.token")
code() { curl -s -o "$T_DIR/body" -w '%{http_code}' "$@" || true; }
ready_is() { [ "$(code "$URL/readyz")" = "$1" ]; }

# ---- health and readiness ---------------------------------------------------
check_eq "/healthz answers 200" 200 "$(code "$URL/healthz")"
check_eq "... with a JSON status" ok "$(jq -r .status "$T_DIR/body" 2>&1)"
wait_until 10 ready_is 200 || true
check_eq "/readyz answers 200 once the warehouse accepted a connection (martgate's probe)" 200 "$(code "$URL/readyz")"
check_eq "... every check ok" "true ok ok ok" \
  "$(jq -r '[.ready, .checks.policy, .checks["warehouse t_metrics"], .checks.audit] | map(tostring) | join(" ")' "$T_DIR/body" 2>&1)"
check_eq "an unknown path is 404" 404 "$(code "$URL/nothing")"
check_eq "POST is refused (evhttp: 501 Not Implemented)" 501 "$(code -X POST "$URL/metrics")"

# ---- the exposition -----------------------------------------------------------
check_eq "/metrics without the bearer token: 401" 401 "$(code "$URL/metrics")"
check_eq "... with a wrong one: 401" 401 "$(code -H "Authorization: Bearer ${TOKEN%?}x" "$URL/metrics")"
check_eq "... with it: 200" 200 "$(code -H "Authorization: Bearer $TOKEN" "$URL/metrics")"
ctype=$(curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $TOKEN" "$URL/metrics")
check_match "the text exposition format 0.0.4" '^text/plain; version=0\.0\.4' "$ctype"
lint=$(promtool check metrics <"$T_DIR/body" 2>&1); rc=$?
if [ $rc -eq 0 ] && [ -z "$lint" ]; then ok "promtool check metrics: no problem"
else fail "promtool check metrics: no problem" "rc $rc" "$lint"; fi
check_match "build info names the libraries" '^martgate_build_info\{version="[0-9.]+",libpg_query="15\.[0-9]+",openssl="OpenSSL [0-9]' "$(cat "$T_DIR/body")"
check_match "the policy's hash" '^martgate_policy_info\{sha256="[0-9a-f]{16}"\} 1$' "$(cat "$T_DIR/body")"

# ---- a real Prometheus scrapes it ----------------------------------------------
PPORT=$(free_port)
cat >"$T_DIR/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: martgate
    authorization: {type: Bearer, credentials_file: $T_DIR/metrics.token}
    static_configs: [{targets: ["127.0.0.1:$MPORT"]}]
EOF
promtool check config "$T_DIR/prometheus.yml" >/dev/null 2>&1 || fail "promtool check config" "the test's config is wrong"
h_bg prometheus --config.file="$T_DIR/prometheus.yml" --storage.tsdb.path="$T_DIR/prom" \
  --web.listen-address=127.0.0.1:$PPORT --log.level=warn >"$T_DIR/prometheus.log" 2>&1
prom_ready() { curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null; }
wait_until 30 prom_ready || h_die "Prometheus did not start: $(tail -5 "$T_DIR/prometheus.log")"
# promql EXPR: the value of a one-series instant query ("" when none)
promql() {
  curl -s --get "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" |
    jq -r '.data.result[0].value[1] // empty'
}
target_up() { [ "$(promql 'up{job="martgate"}')" = 1 ]; }
wait_until 20 target_up || fail "Prometheus scrapes martgate (up = 1)" "not up" \
  "$(curl -s "http://127.0.0.1:$PPORT/api/v1/targets" | jq -c '.data.activeTargets[0].lastError')"
base_ok=$(promql 'martgate_logins_total{result="ok"}')
check_eq "no login yet" 0 "$base_ok"

# what the test does: 5 logins reading, 3 with a bad token, one session with
# 4 denied statements (dataset raw) and one allowed, then pgbench (2 clients)
conninfo="host=127.0.0.1 port=$MG_PORT dbname=$DB user=$MG_USER sslmode=verify-full sslrootcert=$MG_CA"
for i in 1 2 3 4 5; do PGPASSWORD=$MG_TOKEN psql -X -Atc "select count(*) from mart.t" "$conninfo" >/dev/null 2>&1; done
for i in 1 2 3; do PGPASSWORD=not-a-token psql -X -Atc "select 1" "$conninfo" >/dev/null 2>&1 || true; done
printf 'select * from raw.secret;\nselect a from raw.secret;\nselect count(*) from mart.t;\ntable raw.secret;\nselect 1 from raw.secret;\n' |
  PGPASSWORD=$MG_TOKEN psql -X -q "$conninfo" >/dev/null 2>&1 || true
printf '\\set aid random(1, 1000)\nSELECT abalance FROM public.accounts WHERE aid = :aid;\n' >"$T_DIR/bench.sql"
PGPASSWORD=$MG_TOKEN PGSSLMODE=verify-full PGSSLROOTCERT=$MG_CA timeout 60 pgbench -n -c 2 -T 3 -f "$T_DIR/bench.sql" \
  -h 127.0.0.1 -p "$MG_PORT" -U "$MG_USER" $DB >"$T_DIR/pgbench.out" 2>&1 || true
check_match "pgbench ran through martgate" 'number of transactions actually processed: [1-9]' "$(cat "$T_DIR/pgbench.out")"
txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$T_DIR/pgbench.out")
logins_logged=$(grep -c 'login ok' "$MG_LOG" || true)

# Prometheus has the values once a scrape that began after them is in
# (and after the last session's end, which martgate handles just after)
sleep 0.5
done_at=$(date +%s.%N)
scraped() { awk -v t="$(promql 'timestamp(up{job="martgate"})')" -v d="$done_at" 'BEGIN { exit !(t != "" && t > d) }'; }
wait_until 20 scraped || fail "a scrape after the test's work" "none in 20 s"
check_eq "logins ok through Prometheus: each one martgate logged (5 + 1 + pgbench's $((logins_logged - 6)))" \
  "$logins_logged" "$(promql 'martgate_logins_total{result="ok"}')"
[ "$logins_logged" -ge 8 ] && ok "... at least the 8 the test made" || fail "... at least the 8 the test made" "$logins_logged"
check_eq "logins refused for the token: exactly 3" 3 "$(promql 'martgate_logins_total{result="token"}')"
check_eq "denials of dataset raw: exactly 4" 4 "$(promql 'martgate_denials_total{dataset="raw"}')"
check_eq "statements denied: exactly 4" 4 "$(promql 'martgate_statements_total{decision="deny",database="t_metrics"}')"
allowed=$(promql 'martgate_statements_total{decision="allow",database="t_metrics"}')
if [ -n "$allowed" ] && [ -n "$txns" ] && [ "$allowed" -ge $((txns + 6)) ]; then
  ok "statements allowed: $allowed, at least pgbench's $txns and the test's 6"
else fail "statements allowed count pgbench's and the test's" "allowed '$allowed', pgbench '$txns'"; fi
check_eq "each decision is timed once (decision_seconds_count = statements)" 0 \
  "$(promql 'sum(martgate_statements_total) - sum(martgate_decision_seconds_count)')"
check_eq "warehouse connections opened: one per login" "$logins_logged" \
  "$(promql 'martgate_warehouse_connections_total{database="t_metrics"}')"
b=$(promql 'martgate_received_bytes_total{from="warehouse"}')
[ -n "$b" ] && [ "$b" -gt 1000 ] && ok "bytes from the warehouse counted ($b)" || fail "bytes from the warehouse counted" "'$b'"
w=$(promql 'martgate_audit_records_written_total')
[ -n "$w" ] && [ "$w" -gt "$txns" ] && ok "audit records written counted ($w)" || fail "audit records written counted" "'$w'"
check_eq "the audit queue is not full" 0 "$(promql 'martgate_audit_queue_records >= martgate_audit_queue_capacity_records' | wc -w)"
check_eq "client sessions are gauged by state: none left" "" "$(promql 'sum(martgate_client_sessions{state="ready"})')"

# ---- readiness follows the warehouse, and HAProxy follows readiness -----------
HPORT=$(free_port)
cat >"$T_DIR/haproxy.cfg" <<HAP
global
  stats socket $T_DIR/haproxy.sock mode 600 level admin
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend pg
  bind 127.0.0.1:$HPORT
  default_backend martgate
backend martgate
  option httpchk GET /readyz
  http-check expect status 200
  server mg1 127.0.0.1:$MG_PORT check port $MPORT inter 500ms fall 2 rise 2
HAP
haproxy_start "$T_DIR/haproxy.cfg" "$HPORT" >"$T_DIR/why" || fail "HAProxy starts on the test's config" "$(cat "$T_DIR/why")"
hap_status() { haproxy_status "$T_DIR/haproxy.sock" martgate mg1; }   # mg1's status (UP, DOWN, ...)
hap_is() { [ "$(hap_status)" = "$1" ]; }
wait_until 15 hap_is UP || true
check_eq "HAProxy's httpchk of /readyz: martgate is UP" UP "$(hap_status)"
out=$(PGPASSWORD=$MG_TOKEN timeout 20 psql -X -Atc "select count(*) from mart.t" \
      "host=127.0.0.1 port=$HPORT dbname=$DB user=$MG_USER sslmode=verify-full sslrootcert=$MG_CA" 2>&1 || true)
check_eq "... and psql through HAProxy reaches the warehouse" 2 "$out"
pg_admin postgres -c "ALTER DATABASE $DB ALLOW_CONNECTIONS false" >/dev/null
wait_until 15 ready_is 503 || true
check_eq "/readyz is 503 once the warehouse refuses connections" 503 "$(code "$URL/readyz")"
check_match "... saying why" 'no connection accepted in the last 4 s: .*not currently accepting connections' \
  "$(jq -r '.checks["warehouse t_metrics"]' "$T_DIR/body" 2>&1)"
wait_until 10 hap_is DOWN || true
check_eq "... HAProxy takes martgate out of its backend" DOWN "$(hap_status)"
pg_admin postgres -c "ALTER DATABASE $DB ALLOW_CONNECTIONS true" >/dev/null
wait_until 15 ready_is 200 || true
check_eq "... and 200 again when it accepts them" 200 "$(code "$URL/readyz")"
wait_until 10 hap_is UP || true
check_eq "... HAProxy puts it back" UP "$(hap_status)"
check_eq "/healthz stayed 200 all along" 200 "$(code "$URL/healthz")"

if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_sanitizer_check
h_done

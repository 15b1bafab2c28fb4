#!/usr/bin/env bash
# The admin console (issue 14): psql to the pseudo-database "martgate" as a
# member of admin.groups; SHOW SESSIONS lists a live session (its user, end
# user from a Metabase remark, groups, database, last decision), SHOW STATS,
# SHOW DATABASES (no password), SHOW POLICY (the hash /metrics reports),
# SHOW CONFIG (no secret), RELOAD, KILL SESSION id (57P01 to that client, an
# audit record naming the operator); an unknown command is 42601; anyone
# else gets 3D000 as for any unknown database; the extended protocol is
# refused; every command is audited.
. "$(dirname "$0")/../lib/harness.sh"
h_init admin
need_martgate
DB=t_admin
pg_createdb $DB
direct_psql $DB -q -c "CREATE SCHEMA mart; CREATE TABLE mart.t (a int); INSERT INTO mart.t VALUES (1)" >/dev/null
cat >"$T_DIR/policy.json" <<'JSON'
{"datasets": {"mart": {"schemas": ["mart"]}},
 "rules": [{"id": "analysts-read", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["mart"]},
            "access": "read"}],
 "impersonators": [{"subjects": {"users": ["metabase-svc"]}, "roles": []}]}
JSON
MPORT=$(free_port)
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\", \"admin\": {\"groups\": [\"ops\"]},
  \"metrics\": {\"listen\": \"127.0.0.1:$MPORT\"}, \"audit\": {\"file\": \"$T_DIR/audit.jsonl\"}" mg_start $DB ||
  h_die "martgate did not start"
OPS=$(mg_token --sub olivia --groups ops --ttl 30m)
conn() { echo "host=127.0.0.1 port=$MG_PORT dbname=$1 user=$2 sslmode=verify-full sslrootcert=$MG_CA"; }
admin() { PGPASSWORD=$OPS timeout 20 psql -X -At -F '|' -v VERBOSITY=verbose "$(conn martgate olivia)" "$@" 2>&1 || true; }

# a session to look at: it stays open, reading, with a Metabase remark
mkfifo "$T_DIR/in"
(PGPASSWORD=$MG_TOKEN timeout 60 psql -X -At "$(conn $DB "$MG_USER")" <"$T_DIR/in" >"$T_DIR/victim.out" 2>&1) &
victim=$!
exec 7>"$T_DIR/in"
echo "-- Metabase:: userID: 7 queryType: native
select count(*) from mart.t;" >&7
victim_ready() { grep -q '^1$' "$T_DIR/victim.out"; }
wait_until 10 victim_ready || fail "the watched session ran its query" "$(cat "$T_DIR/victim.out")"

out=$(admin -c "SHOW SESSIONS")
line=$(grep "|$MG_USER|" <<<"$out" | head -1)
check_match "SHOW SESSIONS lists the live session: user, groups, database, state, last decision" \
  "^[0-9]+\|$MG_USER\|[^|]*\|analysts\|127\.0\.0\.1:[0-9]+\|$DB\|psql\|ready\|20[0-9-]+T[0-9:]+Z\|allow\|[0-9]+$" "$line"
check_match "... and the console's own session" "\|olivia\|\|ops\|.*\|martgate\|psql\|admin\|" "$out"
vid=$(cut -d'|' -f1 <<<"$line")

out=$(admin -c "SHOW STATS")
check_match "SHOW STATS: the counters /metrics serves" '^martgate_logins_total\|result="ok"\|[0-9]+$' "$out"
check_match "... decisions by database" "^martgate_statements_total\|decision=\"allow\",database=\"$DB\"\|[1-9]" "$out"

out=$(admin -c "SHOW DATABASES")
check_match "SHOW DATABASES: the warehouse, its live sessions, ready" "^$DB\|host=127\.0\.0\.1 .*\|1\|yes\|$" "$out"
check_nomatch "... no password" "$(cat "$MG_SVC_PASS_FILE")" "$out"

out=$(admin -c "SHOW POLICY")
hash=$(curl -s "http://127.0.0.1:$MPORT/metrics" | sed -n 's/^martgate_policy_info{sha256="\([0-9a-f]*\)"} 1$/\1/p')
check_match "SHOW POLICY: path and the SHA-256 /metrics reports" "^$T_DIR/policy\.json\|$hash\|" "$out"
[ -n "$hash" ] || fail "... /metrics has the hash" "none"

out=$(admin -c "SHOW CONFIG")
check_match "SHOW CONFIG: the running configuration" '^admin\.database\|martgate$' "$out"
check_match "... secrets as (set)" '^hash_mask_key\|\(set\)$' "$out"
check_nomatch "... never the secrets themselves" "$(head -c 16 "$MG_DIR/hash-mask.key")|$(cat "$MG_SVC_PASS_FILE")" "$out"

out=$(admin -c "SHOW NONSENSE")
check_match "an unknown command: 42601 with a hint" '42601.*does not know "SHOW NONSENSE".*SHOW HELP' "$(tr '\n' ' ' <<<"$out")"
out=$(admin -c "SHOW HELP")
check_match "SHOW HELP lists KILL SESSION" '^KILL SESSION id\|' "$out"
out=$(admin -c "show sessions; show policy")
check_match "several commands in one Query, case-insensitive" "\|$DB\|.*$T_DIR/policy\.json" "$(tr '\n' ' ' <<<"$out")"

n=$(grep -c 'configuration reloaded' "$MG_LOG" || true)
out=$(admin -c "RELOAD")
check_eq "RELOAD reloads" "RELOAD" "$out"
mg_reloaded_since "$n" && ok "... martgate logged the reload" || fail "... martgate logged the reload" "no log line"

out=$(admin -c "KILL SESSION 999999")
check_match "KILL SESSION of no session: 42704" '42704' "$out"
out=$(admin -c "KILL SESSION $vid")
check_eq "KILL SESSION id" "KILL" "$out"
sleep 0.3
echo "select 2;" >&7   # psql reads the FATAL when it sends its next query
exec 7>&-
wait "$victim" 2>/dev/null || true
check_match "... the client got 57P01, naming the operator" \
  'terminating connection due to administrator command.*Ended from martgate.s admin console by olivia' "$(tr '\n' ' ' <"$T_DIR/victim.out")"
out=$(admin -c "SHOW SESSIONS")
check_nomatch "... and the session is gone" "^$vid\|" "$out"

# ---- who may not -------------------------------------------------------------
out=$(PGPASSWORD=$MG_TOKEN timeout 20 psql -X -At -v VERBOSITY=verbose "$(conn martgate "$MG_USER")" -c "SHOW SESSIONS" 2>&1 || true)
check_match "a principal in no admin group: 3D000, as any unknown database" 'FATAL:  database "martgate" does not exist' "$out"
wire=$(H_PW=$OPS PYTHONPATH=$H_PY timeout 20 /usr/bin/python3 - "$MG_PORT" "$MG_CA" <<'PY' 2>&1 || true
import os, sys
from pgwire import Conn, msg, cstr, error_fields
c = Conn("127.0.0.1", int(sys.argv[1])).login("olivia", "martgate", os.environ["H_PW"], None, tls_ca=sys.argv[2])
c.send(msg("P", cstr("") + cstr("SHOW SESSIONS") + b"\0\0") + msg("S"))
t, p = c.read_msg()
print(t, error_fields(p).get("S"), error_fields(p).get("C"), error_fields(p).get("M"))
PY
)
check_match "the extended protocol: FATAL 08P01, saying the console speaks the simple protocol" \
  '^E FATAL 08P01 the admin console speaks the simple query protocol only' "$wire"

long=$(printf 'SHOW SESSIONS%*s' 9000 '')
out=$(admin -c "$long")
check_match "a Query over the console's 8 KiB: FATAL 08P01" '08P01.*admin command too long' "$(tr '\n' ' ' <<<"$out")"
out=$(admin -c "SHOW HELP")
check_match "... and the console still answers" '^SHOW SESSIONS\|' "$out"

# ---- the audit -----------------------------------------------------------------
sleep 1.2
recs=$(jq -c 'select(.event == "admin")' "$T_DIR/audit.jsonl" 2>&1)
check_match "every admin command is an audit record naming the operator" '"user":"olivia".*"command":"SHOW SESSIONS".*"result":"ok"' "$recs"
check_match "... the kill names its target" "\"command\":\"KILL SESSION $vid\".*\"result\":\"ok\".*\"target_session\":$vid,\"target_user\":\"$MG_USER\"" "$recs"
check_match "... an unknown command too" '"command":"SHOW NONSENSE".*"result":"unknown command"' "$recs"
check_match "... and the login" '"command":"login","result":"ok"' "$recs"

if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_sanitizer_check
h_done

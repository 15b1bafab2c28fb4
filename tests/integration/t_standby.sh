#!/usr/bin/env bash
# Warehouse standbys and failover (issue 15): a real streaming standby made by
# pg_basebackup from a private primary. A database entry names the primary by
# a multi-host conninfo (target_session_attrs=read-write) and the standby by
# standby_conninfo: principals the policy never lets write land on the
# standby (pg_is_in_recovery()), writers and those who may impersonate a
# writer's role on the primary. Then the primary stops: a session that was on
# it gets a clear error, not a hang; the standby is promoted, and new
# sessions reach it with no configuration change (writers through the
# multi-host conninfo, readers through martgate's fallback from the standby
# conninfo that finds no standby any more).
unset MG_PG_PORT   # a primary of its own: this test stops it
. "$(dirname "$0")/../lib/harness.sh"
h_init standby
need_martgate
command -v pg_basebackup >/dev/null || [ -x "$PGBIN/pg_basebackup" ] || h_die "pg_basebackup is missing"
PRIMARY_PORT=$MG_PG_PORT
DB=t_standby
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA mart; CREATE TABLE mart.t (a int); INSERT INTO mart.t VALUES (1), (2);
SQL

# ---- the standby --------------------------------------------------------------
pg_standby_start >"$T_DIR/why" || h_die "$(cat "$T_DIR/why")"
on() { PGOPTIONS='-c client_min_messages=warning' timeout 10 psql -X -qAt -h "$MG_PG_SOCK" -p "$1" -U pgadmin -d "$2" -c "$3" 2>/dev/null; }
check_eq "the standby is in recovery" t "$(on $STANDBY_PORT postgres 'select pg_is_in_recovery()')"
wait_until 20 bash -c "[ \"\$(PGOPTIONS='-c client_min_messages=warning' psql -X -qAt -h '$MG_PG_SOCK' -p $STANDBY_PORT -U pgadmin -d $DB -c 'select count(*) from mart.t' 2>/dev/null)\" = 2 ]" ||
  fail "the standby replays the primary" "mart.t not on the standby"

# ---- martgate ------------------------------------------------------------------
cat >"$T_DIR/policy.json" <<'JSON'
{"datasets": {"mart": {"schemas": ["mart"]}},
 "rules": [{"id": "eng", "subjects": {"groups": ["eng"]}, "objects": {"datasets": ["mart"]}, "access": "write"},
           {"id": "analysts", "subjects": {"groups": ["analysts", "bi"]}, "objects": {"datasets": ["mart"]}, "access": "read"}],
 "roles": {"bi_eng": {"groups": ["eng"]}},
 "impersonators": [{"subjects": {"users": ["bi-writer"]}, "roles": ["bi_eng"]}]}
JSON
hosts="host=127.0.0.1,127.0.0.1 port=$PRIMARY_PORT,$STANDBY_PORT"
common="dbname=$DB user=$MG_SVC_USER sslmode=require connect_timeout=3"
MG_CFG_DATABASES="    \"$DB\": {\"conninfo\": \"$hosts $common target_session_attrs=read-write\",
      \"standby_conninfo\": \"host=127.0.0.1 port=$STANDBY_PORT $common target_session_attrs=standby\",
      \"password_file\": \"svc.pass\"}" \
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\"" mg_start $DB || h_die "martgate did not start"
ENG=$(mg_token --sub erin --groups eng --ttl 1h)
ANA=$(mg_token --sub ana --groups analysts --ttl 1h)
BIW=$(mg_token --sub bi-writer --groups bi --ttl 1h)
as() { # USER SQL
  local tok
  case $1 in erin) tok=$ENG ;; ana) tok=$ANA ;; *) tok=$BIW ;; esac
  PGPASSWORD=$tok timeout 20 psql -X -qAt -v ON_ERROR_STOP=1 "$(tgt_conninfo $DB "user=$1")" -c "$2" 2>&1
}
where="select pg_is_in_recovery()::text || ' ' || inet_server_port()"
check_eq "a reader lands on the standby" "true $STANDBY_PORT" "$(as ana "$where")"
check_eq "and reads" "2" "$(as ana "select count(*) from mart.t")"
check_eq "a writer lands on the primary" "false $PRIMARY_PORT" "$(as erin "$where")"
check_eq "and writes" "" "$(as erin "insert into mart.t values (3)")"
check_eq "who may impersonate a writer's role lands on the primary" "false $PRIMARY_PORT" "$(as bi-writer "$where")"
check_match "the log says where each session went" 'login ok database=t_standby .*warehouse=standby' "$(cat "$MG_LOG")"
check_match "and the primary's too" 'login ok database=t_standby .*warehouse=primary' "$(cat "$MG_LOG")"

# ---- the primary stops ------------------------------------------------------------
MG_TOKEN=$ENG MG_USER=erin held_open $DB
held_query "select 'before ' || inet_server_port();"
wait_until 10 grep -q "before $PRIMARY_PORT" "$T_DIR/held.out" || fail "held writer session" "no answer"
as_pg "$PGBIN/pg_ctl" -D "$MG_PG_DATA" -m fast -w -t 20 stop >/dev/null 2>&1
H_PG_OWNED=0   # stopped here; its directory goes with MG_PG_BASE
t0=$(now_ms)
held_query "select 'after';"
out=$(held_close)
elapsed=$(( $(now_ms) - t0 ))
check_nomatch "the session on the stopped primary gets no answer" '^after$' "$out"
check_match "it gets a clear error" '(terminat|closed|connection|administrator)' "$out"
[ "$elapsed" -lt 12000 ] && ok "and no hang (${elapsed} ms)" || fail "no hang" "${elapsed} ms" "$out"

as_pg "$PGBIN/pg_ctl" -D "$STANDBY" -w -t 30 promote >/dev/null 2>&1 || fail "promote" "pg_ctl promote failed"
wait_until 20 bash -c "[ \"\$(PGOPTIONS='-c client_min_messages=warning' psql -X -qAt -h '$MG_PG_SOCK' -p $STANDBY_PORT -U pgadmin -d postgres -c 'select pg_is_in_recovery()' 2>/dev/null)\" = f ]" ||
  fail "the standby is promoted" "still in recovery"
check_eq "a new writer session reaches the new primary" "false $STANDBY_PORT" "$(as erin "$where")"
check_eq "and writes there" "4" "$(as erin "insert into mart.t values (4); select count(*) from mart.t")"
check_eq "a reader falls back to the primary when no standby answers" "false $STANDBY_PORT" "$(as ana "$where")"
check_match "and the log says so" 'no standby of database "t_standby" answered .*connecting to the primary' "$(cat "$MG_LOG")"
mg_stop
rm -rf "$MG_PG_BASE"   # stopped by hand above: the harness no longer owns it
h_done

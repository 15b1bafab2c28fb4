#!/usr/bin/env bash
# Restarts that drop nothing (issue 15): with "so_reuseport": true a second
# martgate binds the same port while the first still serves; SIGTERM to the
# first closes its listener (the kernel hands the connections queued on it to
# the other: net.ipv4.tcp_migrate_req), lets its logins in progress and its
# busy sessions finish, closes its idle ones with 57P01, and exits 0. Client
# loops connecting every few milliseconds through the switch see no refused
# or failed connection, and a transaction in flight on the old process
# commits.
. "$(dirname "$0")/../lib/harness.sh"
h_init restart
need_martgate
DB=t_restart
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 -c "CREATE TABLE public.t (a int)" >/dev/null
MIGRATE=/proc/sys/net/ipv4/tcp_migrate_req
[ -w "$MIGRATE" ] || h_die "$MIGRATE is not writable (run as root; Linux 5.14 or later)"
old_migrate=$(cat "$MIGRATE")
echo 1 >"$MIGRATE"
trap 'rc=$?; echo "$old_migrate" >"$MIGRATE"; (exit $rc); h_cleanup' EXIT

cat >"$T_DIR/policy.json" <<'JSON'
{"datasets": {"pub": {"schemas": ["public"]}},
 "rules": [{"id": "analysts", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["pub"]}, "access": "write"}]}
JSON
MG_CFG_SHUTDOWN_TIMEOUT=20 MG_CFG_EXTRA="\"so_reuseport\": true, \"policy\": \"$T_DIR/policy.json\"" mg_start $DB ||
  h_die "martgate did not start"
OLD_PID=$MG_PID OLD_LOG=$MG_LOG

# an idle session and a transaction in flight, both on the old process
held_open $DB
held_query "select 'idle ok';"
wait_until 10 grep -q "idle ok" "$T_DIR/held.out" || fail "idle session" "no answer"
PGPASSWORD=$MG_TOKEN timeout 60 psql -X -qAt -v ON_ERROR_STOP=1 "$(tgt_conninfo $DB)" >"$T_DIR/tx.out" 2>&1 <<'SQL' &
BEGIN;
INSERT INTO public.t VALUES (42);
SELECT pg_sleep(3);
COMMIT;
SQL
tx=$!
H_BG_PIDS+=("$tx")
wait_until 10 wh_sessions_are 1 $DB 'SELECT pg_sleep(3)%' || fail "transaction in flight" "not running on the warehouse"

# the new process on the same port
NEW_LOG=$MG_DIR/martgate-new.log
"$MARTGATE_BIN" serve --config "$MG_CONFIG" 2>>"$NEW_LOG" &
NEW_PID=$!
H_MG_PIDS+=("$NEW_PID")
wait_until 10 grep -q "ready (pid $NEW_PID)" "$NEW_LOG" ||
  h_die "the second martgate did not start on the same port: $(tail -5 "$NEW_LOG")"
ok "a second martgate listens on the same port"

# client loops through the switch
loop() { # N: connect, query, disconnect until the stop file appears
  local i=0 out
  while [ ! -e "$T_DIR/stop" ]; do
    out=$(PGPASSWORD=$MG_TOKEN timeout 10 psql -X -qAt "$(tgt_conninfo $DB)" -c "select 'ok'" 2>&1)
    if [ "$out" = ok ]; then
      echo ok
    elif grep -qx ok <<<"$out"; then   # answered, then told the old process is going (57P01)
      echo "ok-then-57P01"
    else
      echo "FAIL $(tr '\n' ' ' <<<"$out")"
    fi
    i=$((i + 1))
  done >"$T_DIR/loop.$1"
}
loops=()
for n in 1 2 3; do loop $n & loops+=($!); H_BG_PIDS+=($!); done
sleep 1
kill -TERM "$OLD_PID"
t0=$(now_ms)
wait "$tx" 2>/dev/null || true
check_eq "the transaction in flight on the old process commits" 1 \
  "$(direct_psql $DB -qAt -c "select count(*) from public.t where a = 42")"
check_nomatch "and its client saw no error before the end" 'ERROR' "$(cat "$T_DIR/tx.out")"
old_rc=0; wait "$OLD_PID" 2>/dev/null || old_rc=$?   # bounded by shutdown_timeout_seconds (20)
check_eq "the old process exits 0" 0 "$old_rc"
sleep 1.5
touch "$T_DIR/stop"
for pid in "${loops[@]}"; do wait "$pid" 2>/dev/null || true; done
held_query "select 'after the stop';"
idle_out=$(held_close)
check_match "the idle session on the old process got 57P01" 'terminating connection due to administrator command' "$idle_out"
check_nomatch "and ran nothing after it" 'after the stop' "$idle_out"
total=$(cat "$T_DIR"/loop.* | wc -l)
fails=$(cat "$T_DIR"/loop.* | grep -c '^FAIL' || true)
check_eq "no client connection failed through the switch ($total connections)" 0 "$fails"
h_log "$(cat "$T_DIR"/loop.* | grep -c 'ok-then-57P01' || true) connections were answered and then closed with 57P01 by the old process"
[ "$fails" -eq 0 ] || h_log "$(grep -h '^FAIL' "$T_DIR"/loop.* | sort | uniq -c | head -5)"
[ "$total" -ge 30 ] && ok "the loops connected throughout ($total)" || fail "the loops connected throughout" "$total"
old_logins=$(grep -c 'login ok' "$OLD_LOG" || true)
new_logins=$(grep -c 'login ok' "$NEW_LOG" || true)
[ "$new_logins" -gt 0 ] && ok "the new process took sessions ($new_logins; the old $old_logins)" ||
  fail "the new process took sessions" "none"
check_match "the old process said it drained" 'SIGTERM: not accepting connections' "$(cat "$OLD_LOG")"
check_eq "the new process serves after the switch" ok \
  "$(PGPASSWORD=$MG_TOKEN timeout 10 psql -X -qAt "$(tgt_conninfo $DB)" -c "select 'ok'" 2>&1)"

# without so_reuseport the port stays exclusive
MG_CFG_EXTRA="\"so_reuseport\": false" mg_write_config "$MG_DIR/exclusive.json" $DB
rc=0; timeout 10 "$MARTGATE_BIN" serve --config "$MG_DIR/exclusive.json" 2>"$T_DIR/excl.log" || rc=$?
check_eq "without so_reuseport a second process cannot bind the port" 1 "$rc"
check_match "and says why" "cannot listen on 127.0.0.1:$MG_PORT" "$(cat "$T_DIR/excl.log")"
h_done

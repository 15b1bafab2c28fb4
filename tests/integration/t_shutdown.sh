#!/usr/bin/env bash
# SIGTERM/SIGINT: martgate stops accepting at once, lets a running query finish,
# exits 0; past shutdown_timeout_seconds it cuts the remaining sessions, exits,
# and leaves nothing running on the warehouse.
. "$(dirname "$0")/../lib/harness.sh"
h_init shutdown
need_martgate
DB=t_shutdown
pg_createdb $DB


# ---- graceful: the running query finishes, new sessions are refused
MG_CFG_SHUTDOWN_TIMEOUT=10 mg_start $DB || h_die "martgate did not start"
PGPASSWORD=$MG_TOKEN timeout 30 psql -X -At "$(tgt_conninfo $DB)" -c "select pg_sleep(2), 'finished'" >"$T_DIR/q1.out" 2>&1 </dev/null &
q1=$!; H_BG_PIDS+=("$q1")
wait_until 10 wh_sessions_are 1 $DB 'select pg_sleep(2)%' || true
pid=$MG_PID
t0=$(now_ms)
kill -TERM "$pid"
sleep 0.5
out=$(pgwire_login "$MG_PORT" "$MG_USER" "$MG_TOKEN" $DB --query "select 1" --timeout 3 2>&1 || true)
if grep -q '^ROW 1$' <<<"$out"; then fail "after SIGTERM: new sessions refused" "a new session ran a query" "$out"
else ok "after SIGTERM: new sessions refused ($(head -1 <<<"$out"))"; fi
wait "$q1" 2>/dev/null || true
check_match "after SIGTERM: the running query finished" '^\|finished$' "$(cat "$T_DIR/q1.out")"
rc=0
if wait_until 15 pid_gone $pid; then wait "$pid" || rc=$?; else rc=timeout; fi
elapsed=$(( $(now_ms) - t0 ))
check_eq "graceful stop: exit status 0" 0 "$rc"
if [ "$elapsed" -lt 9000 ]; then ok "graceful stop: exited once the session finished (${elapsed} ms)"
else fail "graceful stop: exited once the session finished" "took ${elapsed} ms (the query needed 2 s)"; fi
MG_PID=""
if wait_until 5 wh_sessions_are 0 $DB; then
  ok "graceful stop: no warehouse session left"
else fail "graceful stop: no warehouse session left" "$(wh_sessions $DB) left"; fi

# ---- timeout: a query that would run 30 s is cut after shutdown_timeout_seconds
MG_CFG_SHUTDOWN_TIMEOUT=2 mg_start $DB || h_die "martgate did not restart"
PGPASSWORD=$MG_TOKEN timeout 40 psql -X -At "$(tgt_conninfo $DB)" -c "select pg_sleep(30), 'finished'" >"$T_DIR/q2.out" 2>&1 </dev/null &
q2=$!; H_BG_PIDS+=("$q2")
wait_until 10 wh_sessions_are 1 $DB 'select pg_sleep(30)%' || true
pid=$MG_PID
t0=$(now_ms)
kill -TERM "$pid"
rc=0
if wait_until 10 pid_gone $pid; then wait "$pid" || rc=$?; else rc=timeout; fi
elapsed=$(( $(now_ms) - t0 ))
MG_PID=""
if [ "$rc" != timeout ] && [ "$elapsed" -le 4500 ]; then ok "shutdown timeout 2 s: exited after ${elapsed} ms (status $rc)"
else fail "shutdown timeout 2 s: exited in time" "status $rc after ${elapsed} ms"; fi
wait_until 5 pid_gone $q2 || true
wait "$q2" 2>/dev/null || true
check_nomatch "shutdown timeout: the cut session did not pretend to finish" 'finished' "$(cat "$T_DIR/q2.out")"
if wait_until 8 wh_sessions_are 0 $DB; then
  ok "shutdown timeout: the warehouse query was stopped too (no session left)"
else fail "shutdown timeout: the warehouse query was stopped too (no session left)" \
  "still on the warehouse 8 s after martgate exited" "$(pg_admin postgres -c "select pid, state, query from pg_stat_activity where datname = '$DB'")"; fi

# ---- SIGINT, nothing running: prompt exit 0
mg_start $DB || h_die "martgate did not restart"
pid=$MG_PID
t0=$(now_ms)
kill -INT "$pid"
rc=0
if wait_until 5 pid_gone $pid; then wait "$pid" || rc=$?; else rc=timeout; fi
MG_PID=""
check_eq "SIGINT with no sessions: exit 0 within 5 s" 0 "$rc"
if port_open "$MG_PORT"; then fail "the listening socket is closed after exit" "port $MG_PORT still open"; else ok "the listening socket is closed after exit"; fi
h_done

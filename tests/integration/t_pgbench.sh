#!/usr/bin/env bash
# pgbench through martgate: -i (COPY-based load), then select-only (-S) and the
# default TPC-B-like script in the simple, extended and prepared protocols, plus
# a reconnect-per-transaction run (-C) that exercises the login path.
. "$(dirname "$0")/../lib/harness.sh"
h_init pgbench
DB=t_pgbench
pg_createdb $DB
mg_start $DB || h_die "martgate did not start"
command -v pgbench >/dev/null || h_die "pgbench not found"

tgt_env
out=$(timeout 120 pgbench -i -s 1 -q $DB 2>&1) && rc=0 || rc=$?
if [ $rc -eq 0 ] && grep -q '^done in' <<<"$out"; then ok "pgbench -i"; else fail "pgbench -i" "exit $rc" "$out"; fi
check_eq "pgbench -i loaded 100000 accounts" 100000 "$(direct_psql $DB -Atc 'select count(*) from pgbench_accounts' 2>&1)"

# run_pgbench NAME CLIENTS TX ARGS...: all transactions processed, none failed.
run_pgbench() {
  local name=$1 clients=$2 tx=$3; shift 3
  local out rc=0 want=$((clients * tx))
  out=$(timeout 120 pgbench -n -c "$clients" -j 2 -t "$tx" "$@" $DB 2>&1) || rc=$?
  if [ $rc -eq 0 ] && grep -q "number of transactions actually processed: $want/$want" <<<"$out" \
     && grep -q "number of failed transactions: 0 " <<<"$out"; then
    ok "$name ($(grep -o 'tps = [0-9.]*' <<<"$out" | head -1))"
  else
    fail "$name" "exit $rc, expected $want/$want transactions and 0 failed" "$out"
  fi
}
history_before=$(direct_psql $DB -Atc 'select count(*) from pgbench_history' 2>&1) || true
for mode in simple extended prepared; do
  run_pgbench "select-only -M $mode" 4 300 -S -M $mode
  run_pgbench "TPC-B-like -M $mode" 4 100 -M $mode
done
history_after=$(direct_psql $DB -Atc 'select count(*) from pgbench_history' 2>&1) || true
check_eq "TPC-B writes reached the warehouse (pgbench_history rows)" 1200 "$(( ${history_after:-0} - ${history_before:-0} ))"
run_pgbench "select-only, new connection per transaction (-C)" 4 25 -S -C -M extended
check_eq "balances consistent (sum of deltas)" "t" "$(direct_psql $DB -Atc \
  'select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)' 2>&1)"

if [ "$MG_TARGET" = martgate ]; then
  if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
fi
h_done

#!/usr/bin/env bash
# Runs every integration test against one PostgreSQL 15 started for the whole
# run: each tests/integration/t_*.sh (the Java/pgjdbc tests are t_jdbc.sh), or
# only those named on the command line (run.sh basic auth). Ends with exactly one
# line "N passed, N failed"; exits 1 if anything failed.
#
#   MARTGATE_BIN=path/to/martgate   default build/martgate
#   MG_TARGET=direct                run the same tests against the warehouse itself
#   MG_KEEP_TMP=1                   keep temporary directories (logs, configs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${MARTGATE_BIN:=build/martgate}"
case $MARTGATE_BIN in /*) ;; *) MARTGATE_BIN=$repo/$MARTGATE_BIN ;; esac
export MARTGATE_BIN

. "$repo/tests/lib/harness.sh"
if [ "$MG_TARGET" = martgate ] && ! have_martgate; then
  echo "run.sh: $MARTGATE_BIN not found or not executable; build it first (or MG_TARGET=direct)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

started=$(now_ms)
h_init run
trap - ERR          # run.sh counts; only the tests report "aborted"
# Everything the tests need to share the run's PostgreSQL, certificates and
# pgwire.py; their temporary directories go under ours.
export MG_PG_BASE MG_PG_SOCK MG_PG_DATA MG_PG_PORT MG_SVC_USER MG_SVC_PASS_FILE MG_CERTS
export MG_RUN_DIR=$T_DIR
echo "# PostgreSQL $(pg_admin postgres -c 'show server_version') on 127.0.0.1:$MG_PG_PORT; target: $MG_TARGET$([ "$MG_TARGET" = martgate ] && echo " ($MARTGATE_BIN)")"

tests=()
if [ $# -gt 0 ]; then
  for t in "$@"; do tests+=("$here/t_${t#t_}"); tests[-1]=${tests[-1]%.sh}.sh; done
else
  for t in "$here"/t_*.sh; do tests+=("$t"); done
fi

passed=0 failed=0 skipped=0
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  if [ ! -f "$t" ]; then echo "not ok - $name: no such test"; failed=$((failed + 1)); continue; fi
  t0=$(now_ms)
  rc=0
  timeout --kill-after=10 300 bash "$t" >"$T_DIR/$name.out" 2>&1 </dev/null || rc=$?
  cat "$T_DIR/$name.out"
  p=$(grep -c '^ok - ' "$T_DIR/$name.out" || true)
  f=$(grep -c '^not ok - ' "$T_DIR/$name.out" || true)
  s=$(grep -c '^skip - ' "$T_DIR/$name.out" || true)
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "not ok - $name: timed out after 300 s"
    else echo "not ok - $name: exited $rc without reporting a failure"; fi
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "# $name took $(( ($(now_ms) - t0) / 1000 )) s"
done

# Nothing may outlive its test: no martgate from this run, no warehouse session.
stray=$(pgrep -f -- "--config $T_DIR/" || true)
if [ -n "$stray" ]; then
  echo "not ok - run: martgate processes left running: $stray"; failed=$((failed + 1))
  for pid in $stray; do kill -KILL "$pid" 2>/dev/null || true; done
else
  echo "ok - run: no martgate process left running"; passed=$((passed + 1))
fi
if wait_until 10 bash -c "[ \"\$(PGOPTIONS='-c client_min_messages=warning' timeout 5 psql -X -qAt -h '$MG_PG_SOCK' -p '$MG_PG_PORT' -U pgadmin -d postgres -c \"select count(*) from pg_stat_activity where usename = '$MG_SVC_USER'\")\" = 0 ]"; then
  echo "ok - run: no warehouse session left open"; passed=$((passed + 1))
else
  echo "not ok - run: warehouse sessions left open"; failed=$((failed + 1))
  pg_admin postgres -c "select pid, datname, state, left(query, 60) from pg_stat_activity where usename = '$MG_SVC_USER'" | sed 's/^/#   /'
fi

echo "# $skipped skipped; $(( ($(now_ms) - started) / 1000 )) s in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && exit 0
exit 1

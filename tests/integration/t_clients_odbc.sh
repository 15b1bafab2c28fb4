#!/usr/bin/env bash
# psqlODBC through unixODBC (driven by pyodbc) through martgate as a writer,
# compared with the warehouse, with default settings and with
# UseDeclareFetch=1 (results read through a WITH HOLD cursor declared, fetched
# and closed by psqlODBC, the same cursor name after an error too): types,
# parameters, errors with their SQLSTATE, transactions and savepoints,
# executemany (fast_executemany off and on), 10^6 rows by fetchmany, cancel.
. "$(dirname "$0")/../lib/harness.sh"
h_init clients_odbc
need_martgate
PY=/usr/bin/python3
ODBC_DRIVER=/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so
[ -f "$ODBC_DRIVER" ] || h_die "$ODBC_DRIVER not found (odbc-postgresql; scripts/install-deps.sh installs it)"
$PY -c "import pyodbc" 2>/dev/null || h_die "$PY cannot import pyodbc (python3-pyodbc)"
DB=t_clients_odbc
pg_createdb $DB
mg_start_writer $DB || h_die "martgate did not start"
prog=$(dirname "$0")/clients/odbc_fidelity.py

for mode in default declarefetch; do
  t0=$(now_ms)
  d=$(timeout 120 $PY "$prog" $mode 127.0.0.1 "$MG_PG_PORT" $DB "$MG_SVC_USER" "$MG_SVC_PASS" "$MG_CA" "fid_$mode" 2>"$T_DIR/$mode.direct.err" || true)
  t1=$(now_ms)
  m=$(timeout 120 $PY "$prog" $mode 127.0.0.1 "$MG_PORT" $DB writer "$WTOK" "$MG_CA" "fid_$mode" 2>"$T_DIR/$mode.mg.err" || true)
  t2=$(now_ms)
  h_log "$mode: $((t1 - t0)) ms directly, $((t2 - t1)) ms through martgate"
  transcript_compare "$mode" "$d" "$m"
  [ -s "$T_DIR/$mode.mg.err" ] && h_log "$mode through martgate: $(tail -3 "$T_DIR/$mode.mg.err")"
  check_match "$mode: 10^6 rows fetched and summed" "^== $mode million: 1000000 500000500000$" "$m"
  check_match "$mode: a cancel ends the statement at once" "^== $mode cancel-time: fast$" "$m"
  check_match "$mode: a good statement after an error runs" "^== $mode stmt-1: \[\(43, \)\]$" "$m"
  check_match "$mode: ... and after three more errors" "^== $mode stmt-6: \[\(44, \)\]$" "$m"
  check_match "$mode: the parser's error with the server's SQLSTATE" "^== $mode stmt-5: ERROR 42601 " "$m"
done

if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_sanitizer_check
h_done

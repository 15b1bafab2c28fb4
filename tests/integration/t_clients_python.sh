#!/usr/bin/env bash
# Python's drivers through martgate as a writer, compared with the warehouse:
# asyncpg, psycopg 3 (pipeline mode too) and psycopg2 (Debian's packages) run
# clients/python_fidelity.py once directly and once through martgate; each
# scenario's transcript (rows, types, errors with their fields, COPY both ways,
# cursors, prepared statements past the drivers' caching thresholds, 10^6
# rows, cancellation, the bulk paths) must be the same, and a few answers
# must be what they must be.
. "$(dirname "$0")/../lib/harness.sh"
h_init clients_python
need_martgate
PY=/usr/bin/python3
for mod in asyncpg psycopg psycopg2; do
  $PY -c "import $mod" 2>/dev/null || h_die "$PY cannot import $mod (python3-$mod; scripts/install-deps.sh installs it)"
done
DB=t_clients_python
pg_createdb $DB
mg_start_writer $DB || h_die "martgate did not start"
prog=$(dirname "$0")/clients/python_fidelity.py

for driver in asyncpg psycopg psycopg2; do
  t0=$(now_ms)
  d=$(timeout 120 $PY "$prog" $driver 127.0.0.1 "$MG_PG_PORT" $DB "$MG_SVC_USER" "$MG_SVC_PASS" "$MG_CA" "fid_$driver" 2>"$T_DIR/$driver.direct.err" || true)
  t1=$(now_ms)
  m=$(timeout 120 $PY "$prog" $driver 127.0.0.1 "$MG_PORT" $DB writer "$WTOK" "$MG_CA" "fid_$driver" 2>"$T_DIR/$driver.mg.err" || true)
  t2=$(now_ms)
  echo "$m" >"$T_DIR/$driver.mg.out"
  h_log "$driver: $(( (t1 - t0) )) ms directly, $(( (t2 - t1) )) ms through martgate"
  transcript_compare "$driver" "$d" "$m"
  [ -s "$T_DIR/$driver.mg.err" ] && h_log "$driver through martgate: $(tail -3 "$T_DIR/$driver.mg.err")"
  # what must be, whatever the warehouse says
  check_match "$driver: 10^6 rows counted, summed and fetched" "^== $driver million: 1000000 500000500000 1000000 500000500000$" "$m"
  check_match "$driver: a cancel ends the statement at once" "^== $driver cancel-time: fast$" "$m"
  check_match "$driver: a unique violation with its DETAIL" "^== $driver error-1: ERROR 23505 .*Key \\(a\\)=\\(1\\) already exists" "$m"
  check_match "$driver: a parser error with its HINT" "^== $driver error-4: ERROR 42601 .*For example, FROM \\(SELECT \\.\\.\\.\\) \\[AS\\] foo" "$m"
  check_match "$driver: UTF8 however the driver spells it" "^== $driver connect: UTF8 $DB$" "$m"
done
check_match "asyncpg's copy_records_to_table (Parse, Describe, Flush, then COPY ... FROM STDIN binary)" \
  '^== asyncpg copy-in: COPY 5000$' "$(cat "$T_DIR/asyncpg.mg.out")"
check_match "psycopg pipeline: an error inside it ends the batch, the insert before it rolled back with it" '^== psycopg pipeline-after: 0$' \
  "$(cat "$T_DIR/psycopg.mg.out")"
check_match "psycopg executemany in a pipeline meets a duplicate key: the error, and the session goes on" \
  '^== psycopg pipeline-executemany: ERROR 23505 ' "$(cat "$T_DIR/psycopg.mg.out")"
check_match "asyncpg's pool reset (UNLISTEN * among it) keeps the connection" \
  '^== asyncpg pool-reset: the same connection again$' "$(cat "$T_DIR/asyncpg.mg.out")"

if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_sanitizer_check
h_done

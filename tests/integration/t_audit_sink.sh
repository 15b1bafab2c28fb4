#!/usr/bin/env bash
# The audit trail's warehouse sink against a real PostgreSQL: the table is
# created, every record lands once with its columns filled; with the warehouse
# stopped records spool locally and are replayed in order when it is back;
# records still spooled at shutdown are sent by the next start. Counts of
# records submitted, lines in the audit file and rows in the table must match.
#
# Drives the sink through `test_audit sink-driver` (tests/unit/test_audit.c),
# so it needs no session code. It stops and starts PostgreSQL, so it always
# runs its own server, never the one run.sh shares between tests.
unset MG_PG_PORT MG_PG_BASE MG_PG_SOCK MG_PG_DATA
. "$(dirname "$0")/../lib/harness.sh"
: "${MG_AUDIT_DRIVER:=$H_REPO/build/test_audit}"
h_init audit_sink
if [ ! -x "$MG_AUDIT_DRIVER" ]; then
  skip "all" "$MG_AUDIT_DRIVER not built (cmake --build build --target test_audit, or set MG_AUDIT_DRIVER)"
  h_done
fi
DB=t_audit_sink
pg_createdb $DB
TABLE=governance.audit_events

cat >"$T_DIR/audit.json" <<EOF
{"audit": {"file": "audit.jsonl", "query_text": "normalized", "fsync_interval_ms": 200,
           "warehouse": {"conninfo": "$(direct_conninfo $DB)", "password_env": "MG_SVC_PASS",
                         "table": "$TABLE", "batch_size": 100, "flush_interval_ms": 100,
                         "spool_file": "spool.jsonl"}}}
EOF

# The driver as a coprocess: one command in, one answer line out.
drv_start() {
  coproc DRV { exec "$MG_AUDIT_DRIVER" sink-driver "$T_DIR/audit.json" 2>>"$T_DIR/driver.err"; }
  DRV_PID=$DRV_PID
  H_BG_PIDS+=("$DRV_PID")
}
drv() { # COMMAND: prints the driver's answer
  local line=""
  echo "$1" >&"${DRV[1]}"
  read -t 120 -r line <&"${DRV[0]}" || line="(no answer)"
  echo "$line"
}
drv_close() {
  local line=""
  echo close >&"${DRV[1]}"
  read -t 60 -r line <&"${DRV[0]}" || line="(no answer)"
  wait "$DRV_PID" 2>/dev/null || true
  echo "$line"
}
rows() { pg_admin $DB -c "select count(*) from $TABLE ${1:-}"; }
pg_down() { as_pg "$PGBIN/pg_ctl" -D "$MG_PG_DATA" -m fast -w -t 30 stop >/dev/null; }
pg_up() { as_pg "$PGBIN/pg_ctl" -D "$MG_PG_DATA" -l "$MG_PG_BASE/postgresql.log" -w -t 30 start >/dev/null; }

# ---- healthy warehouse: table created, rows and columns right
drv_start
check_eq "submit 1000" ok "$(drv "submit 1000 a")"
check_eq "all inserted" "pending 0" "$(drv "wait 30")"
check_eq "the table was created" 1 "$(pg_admin $DB -c "select count(*) from pg_tables where schemaname = 'governance' and tablename = 'audit_events'")"
check_eq "1000 rows" 1000 "$(rows)"
check_eq "columns filled from the record" "statement|driver|{g}|5432|allow|a|{s.t}|{d}|SELECT * FROM s.t WHERE x = \$1|t" \
  "$(pg_admin $DB -c "select event, user_name, groups, client_port, decision, rule, relations, datasets, query, fingerprint is not null from $TABLE where statement_index = 7")"
check_eq "the record column holds the whole record" "a" "$(pg_admin $DB -c "select record->>'session' from $TABLE where statement_index = 7")"

# ---- warehouse down: records spool; back up: replayed in order
pg_down
check_eq "submit 500 while the warehouse is down" ok "$(drv "submit 500 b")"
sleep 2
st=$(drv stats)
check_match "while down: 500 pending, not connected" "pending 500 connected 0" "$st"
spooled=$(wc -l <"$T_DIR/spool.jsonl")
check_eq "while down: the records are in the spool file" 500 "$spooled"
pg_up
check_eq "back up: everything replayed" "pending 0" "$(drv "wait 90")"
check_eq "1500 rows" 1500 "$(rows)"
check_eq "replayed in order (insertion order = submission order)" 0 \
  "$(pg_admin $DB -c "select count(*) from (select rule, statement_index, lag(rule) over w as prule, lag(statement_index) over w as pidx from $TABLE window w as (order by id)) x where prule is not null and not ((rule = prule and statement_index = pidx + 1) or (rule = 'b' and prule = 'a' and statement_index = 0 and pidx = 999))")"
check_eq "the spool is empty again" 0 "$(wc -c <"$T_DIR/spool.jsonl")"
check_match "the counters /metrics reports: 500 spooled, 500 replayed" "spooled 500 replayed 500$" "$(drv stats)"

# ---- down at shutdown: the spool keeps the records for the next start
pg_down
check_eq "submit 300 while down" ok "$(drv "submit 300 c")"
check_eq "close while down" closed "$(drv_close)"
check_eq "the spool kept 300 records" 300 "$(wc -l <"$T_DIR/spool.jsonl")"
check_match "the driver said where they are" "300 records are not in the warehouse yet; they are kept in" "$(cat "$T_DIR/driver.err")"
pg_up
drv_start
check_eq "next start: spool replayed" "pending 0" "$(drv "wait 60")"
check_eq "1800 rows" 1800 "$(rows)"
check_eq "300 rows from the spool" 300 "$(rows "where rule = 'c'")"
check_eq "no duplicates" 1800 "$(pg_admin $DB -c "select count(distinct record_id) from $TABLE")"

# ---- a record the warehouse refuses costs only itself, and is logged
check_eq "submit 10, a bad one, 10" "ok ok ok" "$(drv "submit 10 d") $(drv submit-bad) $(drv "submit 10 e")"
check_eq "the good ones inserted" "pending 0" "$(drv "wait 30")"
check_eq "1820 rows" 1820 "$(rows)"
check_match "the refused record is logged" "the warehouse refused a record \(22007" "$(cat "$T_DIR/driver.err")"
check_eq "close" closed "$(drv_close)"

# ---- the audit file and the table hold the same records
check_eq "audit file lines = records submitted" 1821 "$(wc -l <"$T_DIR/audit.jsonl")"
check_eq "table rows = audit file lines but the refused one" "$(( $(wc -l <"$T_DIR/audit.jsonl") - 1 ))" "$(rows)"
check_nomatch "no other error in the driver's log" "could not be kept|out of memory|cannot write" "$(cat "$T_DIR/driver.err")"

# ---- through martgate itself: psql sessions, SIGUSR1 rotation, SIGTERM drain
if [ "$MG_TARGET" != martgate ] || ! have_martgate; then
  skip "martgate end to end" "no martgate binary ($MARTGATE_BIN) or MG_TARGET=$MG_TARGET"
  h_done
fi
E2E=t_audit_e2e
pg_createdb $E2E
AF=$T_DIR/mg-audit.jsonl
MG_CFG_EXTRA="\"audit\": {\"file\": \"$AF\", \"fsync_interval_ms\": 0,
  \"warehouse\": {\"database\": \"$E2E\", \"table\": \"governance.e2e_events\", \"flush_interval_ms\": 100,
                  \"spool_file\": \"$T_DIR/mg-spool.jsonl\"}}" mg_start $E2E || h_die "martgate did not start"
tgt_psql $E2E -q -c "CREATE TABLE t (id int, email text)" >/dev/null 2>&1
tgt_psql $E2E -q -c "INSERT INTO t VALUES (1, 'secret@example.com')" -c "INSERT INTO t VALUES (2, 'other@example.com')" >/dev/null 2>&1
mv "$AF" "$AF.1"
kill -USR1 "$MG_PID"
for i in 1 2 3 4 5; do tgt_psql $E2E -Atc "SELECT count(*) FROM t WHERE email = 'secret@example.com'" >/dev/null 2>&1; done
mg_stop 15
check_eq "martgate stopped cleanly" 0 "$MG_EXIT"
all=$(cat "$AF.1" "$AF" 2>/dev/null)
check_eq "rotation: both files have records" "yes" "$([ -s "$AF.1" ] && [ -s "$AF" ] && echo yes || echo no)"
check_eq "one statement record per statement (1 + 2 + 5)" 8 "$(grep -c '"event":"statement"' <<<"$all")"
check_eq "a session_start and a session_end per session (7)" "7 7" \
  "$(grep -c '"event":"session_start"' <<<"$all") $(grep -c '"event":"session_end"' <<<"$all")"
check_nomatch "no literal in the log (normalized)" "secret@example.com" "$all"
check_match "normalized text" 'INSERT INTO t VALUES \(\$1, \$2\)' "$all"
check_eq "every line is a JSON object" "$(wc -l <<<"$all")" "$(python3 -c 'import json,sys; print(sum(1 for l in sys.stdin if isinstance(json.loads(l), dict)))' <<<"$all")"
check_eq "the warehouse has every record of the files" "$(wc -l <<<"$all")" \
  "$(pg_admin $E2E -c "select count(*) from governance.e2e_events")"

# ---- a full queue (the audit file a FIFO nobody reads: a hung disk): every
# statement waits (when_full block) or is refused (deny), Execute of a
# statement prepared earlier too, and martgate's memory stays bounded
cat >"$T_DIR/full.py" <<'PY'
# full.py MODE PID: session A prepares while there is room; session B fills
# the queue; then A binds and executes what it prepared
import os, sys, struct, time, socket, pgwire
from pgwire import msg, cstr, summarize
mode, pid = sys.argv[1], sys.argv[2]
def rss():
    return int(open("/proc/%s/status" % pid).read().split("VmRSS:")[1].split()[0])
a = pgwire.target_login(os.environ["DB"], timeout=30)
a.send(msg("P", cstr("big") + cstr("select $1::text /* " + "c" * 60000 + " */") + struct.pack("!HI", 1, 25)) + msg("S"))
a.until_ready()
b = pgwire.target_login(os.environ["DB"], timeout=30)
refused = None
for i in range(200):
    b.settimeout(3)
    try:
        r = summarize(b.query("select %d" % i))
    except socket.timeout:
        refused = "query %d waits" % i
        break
    if r and r[0].startswith("ERROR"):
        refused = "query %d: %s" % (i, r[0][:60])
        break
print("queries", refused)
before = rss()
exe = msg("B", cstr("") + cstr("big") + struct.pack("!HHI", 0, 1, 1) + b"v" + struct.pack("!H", 0)) + msg("E", cstr("") + struct.pack("!I", 0))
a.settimeout(3)
try:
    a.send(exe * 200 + msg("S"))
    out = summarize(a.until_ready())
    print("executes", out[0][:70] if out else "none", "errors", sum(1 for l in out if l.startswith("ERROR")))
except socket.timeout:
    print("executes wait")
print("rss growth kB", rss() - before)
PY
for mode in deny block; do
  FIFO=$T_DIR/audit-$mode.fifo; rm -f "$FIFO"; mkfifo "$FIFO"
  ( exec 3<"$FIFO"; sleep 120 ) &
  holder=$!; H_BG_PIDS+=("$holder")
  MG_CFG_EXTRA="\"audit\": {\"file\": \"$FIFO\", \"queue_size\": 16, \"when_full\": \"$mode\", \"fsync_interval_ms\": 0}" \
    mg_start $E2E || h_die "martgate did not start"
  out=$(DB=$E2E PYT_TIMEOUT=60 pyf "$T_DIR/full.py" $mode "$MG_PID" 2>&1 || true)
  if [ $mode = deny ]; then
    check_match "full queue, deny: a Query is refused with 53400" '^queries query [0-9]+: ERROR 53400' "$out"
    check_match "full queue, deny: Execute of a prepared statement refused with 53400 too" '^executes ERROR 53400' "$out"
  else
    check_match "full queue, block: a Query waits" '^queries query [0-9]+ waits' "$out"
    check_match "full queue, block: an Execute waits too" '^executes wait' "$out"
  fi
  growth=$(sed -n 's/^rss growth kB //p' <<<"$out")
  check "full queue, $mode: memory stays bounded (grew ${growth:-?} kB)" test "${growth:-999999}" -lt 20000
  kill "$holder" 2>/dev/null || true
  cat "$FIFO" >/dev/null 2>&1 &   # let the writer drain so martgate can stop
  mg_stop 20
done
h_done

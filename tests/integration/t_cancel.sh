#!/usr/bin/env bash
# Query cancel through martgate: psql's Ctrl-C (libpq PQcancel, a plaintext
# CancelRequest) stops pg_sleep(30) within a second; a raw CancelRequest with
# the key from BackendKeyData does too (plaintext and inside TLS); a wrong key or
# pid does nothing; the session goes on after a cancel.
. "$(dirname "$0")/../lib/harness.sh"
h_init cancel
DB=t_cancel
pg_createdb $DB
mg_start $DB || h_die "martgate did not start"
export DB

# ---- psql: SIGINT makes psql send a CancelRequest
PGPASSWORD="$(tgt_password)" timeout 40 psql -X "$(tgt_conninfo $DB)" -c "select pg_sleep(30)" \
  >"$T_DIR/psql-cancel.out" 2>&1 </dev/null &
pid=$!
H_BG_PIDS+=("$pid")
# wait until the query is running on the warehouse
wait_until 10 wh_sessions_are 1 $DB 'select pg_sleep(30)%' || true
t0=$(now_ms)
kill -INT "$pid" 2>/dev/null || true
rc=0; wait_until 10 pid_gone "$pid" || true; wait "$pid" 2>/dev/null || rc=$?
elapsed=$(( $(now_ms) - t0 ))
out=$(cat "$T_DIR/psql-cancel.out")
check_match "psql Ctrl-C cancels pg_sleep(30)" 'canceling statement due to user request' "$out"
if [ "$elapsed" -le 1500 ]; then ok "psql cancel took ${elapsed} ms (<= 1500)"; else fail "psql cancel took ${elapsed} ms" "more than 1.5 s" "$out"; fi

# ---- raw CancelRequest: right key, wrong key, wrong pid, inside TLS
cat >"$T_DIR/cancel.py" <<'PY'
import os, time, threading, pgwire
R = pgwire.Report()
DB = os.environ["DB"]
PORT = int(os.environ["MG_PORT"])

def timed_query(c, sql):
    t0 = time.monotonic()
    m = c.query(sql)
    return time.monotonic() - t0, m

def cancel_after(delay, pid, key, tls):
    def run():
        time.sleep(delay)
        pgwire.send_cancel("127.0.0.1", PORT, pid, key, tls_ca=os.environ["MG_CA"] if tls else None)
    th = threading.Thread(target=run); th.start(); return th

for tls in (False, True):
    label = "inside TLS" if tls else "plaintext, as libpq sends it"
    try:
        c = pgwire.target_login(DB)
        th = cancel_after(0.5, c.pid, c.key, tls)
        took, m = timed_query(c, "select pg_sleep(30)")
        th.join()
        err = pgwire.first_error(m)
        R.check("CancelRequest (%s) cancels pg_sleep(30) with 57014" % label, err is not None and err.get("C") == "57014",
                pgwire.summarize(m))
        R.check("CancelRequest (%s) took %.0f ms after sending (<= 1000)" % (label, (took - 0.5) * 1000), took - 0.5 <= 1.0,
                "query ran %.2f s" % took)
        rows = pgwire.summarize(c.query("select 'after cancel'"))
        R.check("session goes on after a cancel (%s)" % label, rows[0] == "ROW after cancel", rows)
        c.terminate()
    except Exception as e:
        R.check("CancelRequest (%s)" % label, False, repr(e))

for label, dp, dk in (("wrong key", 0, 1), ("wrong pid", 1, 0), ("zero pid and key", None, None)):
    try:
        c = pgwire.target_login(DB)
        pid, key = (0, 0) if dp is None else ((c.pid + dp) & 0x7fffffff, (c.key + dk) & 0xffffffff)
        if key >= 0x80000000:
            key -= 0x100000000
        th = cancel_after(0.3, pid, key, False)
        took, m = timed_query(c, "select pg_sleep(1.5), 'finished'")
        th.join()
        rows = pgwire.summarize(m)
        R.check("CancelRequest with a %s does nothing" % label, rows and rows[0] == "ROW |finished" and took >= 1.4,
                "%r after %.2f s" % (rows, took))
        c.terminate()
    except Exception as e:
        R.check("CancelRequest with a %s does nothing" % label, False, repr(e))

# A cancel for session A never touches session B.
try:
    a = pgwire.target_login(DB)
    b = pgwire.target_login(DB)
    th = cancel_after(0.3, a.pid, a.key, False)
    took, m = timed_query(b, "select pg_sleep(1.2), 'b finished'")
    th.join()
    R.check("cancelling an idle session A leaves session B's query alone", pgwire.summarize(m)[0] == "ROW |b finished",
            pgwire.summarize(m))
    R.check("keys differ between sessions", (a.pid, a.key) != (b.pid, b.key), (a.pid, a.key))
    a.terminate(); b.terminate()
except Exception as e:
    R.check("cancel isolation between sessions", False, repr(e))
PY
rc=0
out=$(PYT_TIMEOUT=120 pyf "$T_DIR/cancel.py" 2>&1) || rc=$?
h_report_rc "cancel checks" $rc "$out"
if [ "$MG_TARGET" = martgate ]; then
  if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
fi
h_done

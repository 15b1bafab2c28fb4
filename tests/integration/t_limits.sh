#!/usr/bin/env bash
# Limits, crossed: max_clients (53300 for one too many, then room again),
# max_message_bytes (a clear error for a Query or Parse over the limit; just
# under it works; Bind, CopyData and results stream and are not cut by it),
# login_timeout_seconds (idle TCP, idle after TLS, idle at the password prompt,
# a slow-drip startup packet) and never a crash. Also 50 concurrent sessions.
. "$(dirname "$0")/../lib/harness.sh"
h_init limits
need_martgate
DB=t_limits
pg_createdb $DB
export DB

MG_CFG_MAX_CLIENTS=3 MG_CFG_MAX_MESSAGE=65536 MG_CFG_LOGIN_TIMEOUT=2 mg_start $DB || h_die "martgate did not start"

cat >"$T_DIR/limits.py" <<'PY'
import os, socket, struct, time, threading, pgwire
from pgwire import msg, cstr
R = pgwire.Report()
DB = os.environ["DB"]
PORT = int(os.environ["MG_PORT"])

def login():
    return pgwire.target_login(DB, timeout=5)

# ---- max_clients = 3
held = [login() for _ in range(3)]
try:
    c = login()
    R.check("4th session with max_clients=3 is refused", False, "it logged in")
    c.terminate()
except pgwire.PGError as e:
    R.check("4th session with max_clients=3 is refused with 53300", e.sqlstate == "53300", "%s %s" % (e.sqlstate, e.fields.get("M")))
    R.note("too many clients: %s %s" % (e.sqlstate, e.fields.get("M")))
except pgwire.Closed:
    R.check("4th session with max_clients=3 is refused with 53300", False, "closed without an ErrorResponse")
except Exception as e:
    R.check("4th session with max_clients=3 is refused with 53300", False, repr(e))
# a burst of 20 more: all refused, none hangs
results = []
def attempt():
    try:
        c = login(); results.append("in"); c.terminate()
    except pgwire.PGError as e:
        results.append(e.sqlstate)
    except Exception as e:
        results.append(type(e).__name__)
ts = [threading.Thread(target=attempt) for _ in range(20)]
[t.start() for t in ts]; [t.join(15) for t in ts]
R.check("a burst of 20 logins over the limit: all refused", results.count("in") == 0 and len(results) == 20, results)
rows = [pgwire.summarize(h.query("select 'held'"))[0] for h in held]
R.check("the 3 sessions within the limit still work", rows == ["ROW held"] * 3, rows)
held.pop().terminate()
time.sleep(0.3)
try:
    c = login()
    R.check("after one session ends there is room again", pgwire.summarize(c.query("select 1"))[0] == "ROW 1")
    held.append(c)
except Exception as e:
    R.check("after one session ends there is room again", False, repr(e))
for h in held:
    h.terminate()
time.sleep(0.3)

# ---- max_message_bytes = 65536
def over_limit(label, data, keep_going=True):
    c = login()
    sent = c.try_send(data)
    closed, msgs = c.wait_closed(5)
    err = pgwire.first_error(msgs)
    got = ("closed" if closed else "open") + ("" if sent else " (hung up while we were still sending)")
    if err:
        got += ", %s %s" % (err.get("C"), err.get("M"))
    R.check("%s over max_message_bytes: a clear error (54000 or 08P01)" % label,
            err is not None and err.get("C") in ("54000", "08P01") and err.get("M"), got)
    R.note("%s over the limit: %s" % (label, got))
    if not closed:
        try:
            rows = pgwire.summarize(c.query("select 'same session'"))
            R.note("%s: session kept after the error: %r" % (label, rows))
        except Exception as e:
            R.note("%s: session closed after the error (%r)" % (label, e))
    c.close()

pad = "x" * 100000
over_limit("Query of 100 kB", msg("Q", cstr("select '%s'" % pad)))
over_limit("Parse of 100 kB", msg("P", cstr("") + cstr("select '%s'" % pad) + struct.pack("!h", 0)) + msg("S"))
bind = cstr("") + cstr("") + struct.pack("!h", 0) + struct.pack("!h", 1) + struct.pack("!i", len(pad)) + pad.encode() + struct.pack("!h", 0)
# Bind, like CopyData and rows, is streamed and never held whole: the limit is
# about what martgate must hold to decide (Query, Parse, FunctionCall), so a
# large parameter goes through and gets its answer.
c = login()
c.try_send(msg("P", cstr("") + cstr("select length($1::text)") + struct.pack("!h", 0)) + msg("B", bind) + msg("E", cstr("") + struct.pack("!i", 0)) + msg("S"))
rows = pgwire.summarize(c.until_ready())
R.check("Bind with a 100 kB parameter streams through (not held, not limited)", any("100000" in str(r) for r in rows), repr(rows))
c.close()
c = login()
rows = pgwire.summarize(c.query("select length('%s')" % ("y" * 60000)))
R.check("a 60 kB Query (under the limit) works", rows and rows[0] == "ROW 60000", rows)
rows = pgwire.summarize(c.query("select repeat('z', 300000)"))
R.check("a 300 kB result row from the warehouse is not cut by the client limit", rows and len(rows[0]) == 4 + 300000, [r[:40] for r in rows])
c.terminate()

# ---- login_timeout_seconds = 2
def times_out(label, prepare, limit=4.5):
    t0 = time.monotonic()
    try:
        c = prepare()
        closed, msgs = c.wait_closed(8)
    except pgwire.Closed:
        closed, msgs = True, []
    took = time.monotonic() - t0
    R.check("login timeout (2 s) closes: %s (%.1f s)" % (label, took), closed and took <= limit,
            "closed=%s after %.1f s" % (closed, took))

def idle_tcp():
    return pgwire.Conn(port=PORT, timeout=5)
def idle_after_tls():
    c = pgwire.Conn(port=PORT, timeout=5); c.ssl_request(os.environ["MG_CA"]); return c
def idle_at_password():
    c = idle_after_tls(); c.startup(os.environ["MG_USER"], DB)
    t, p = c.read_msg()
    assert t == "R" and struct.unpack("!i", p[:4])[0] == 3, (t, p)
    return c
def slow_drip():
    c = idle_after_tls()
    pkt = pgwire.startup_packet({"user": os.environ["MG_USER"], "database": DB})
    def drip():
        try:
            for b in pkt[:12]:
                c.send(bytes([b])); time.sleep(0.5)
        except OSError:
            pass
    threading.Thread(target=drip, daemon=True).start()
    return c
times_out("idle TCP connection", idle_tcp)
times_out("idle after the TLS handshake", idle_after_tls)
times_out("idle at the password prompt", idle_at_password)
times_out("startup packet dripped a byte every 0.5 s", slow_drip)
c = login()
time.sleep(3.5)
try:
    rows = pgwire.summarize(c.query("select 'idle but logged in'"))
    R.check("a logged-in session idle past the login timeout is kept", rows[0] == "ROW idle but logged in", rows)
except Exception as e:
    R.check("a logged-in session idle past the login timeout is kept", False, repr(e))
c.terminate()
PY
rc=0
out=$(PYT_TIMEOUT=180 pyf "$T_DIR/limits.py" 2>&1) || rc=$?
h_report_rc "limit checks" $rc "$out"

# What people see when max_clients is reached: psql (libpq) and pgjdbc (Metabase).
held_open $DB
held_query "select 1;"
held2_fifo=$T_DIR/held2.fifo; mkfifo "$held2_fifo"
PGPASSWORD=$MG_TOKEN timeout 60 psql -X -qAt "$(tgt_conninfo $DB)" <"$held2_fifo" >/dev/null 2>&1 &
H_BG_PIDS+=($!)
exec {held2_fd}>"$held2_fifo"
(printf 'select 1;\n' >&"$held2_fd") 2>/dev/null || true
PGPASSWORD=$MG_TOKEN timeout 60 psql -X -qAt "$(tgt_conninfo $DB)" -c "select pg_sleep(20)" >/dev/null 2>&1 </dev/null &
sleeper=$!; H_BG_PIDS+=($sleeper)
wait_until 10 wh_sessions_are 3 $DB || true
out=$(tgt_psql $DB -Atc "select 1" 2>&1) || true
check_match "psql over max_clients shows the reason (too many clients)" 'too many' "$out"
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
if command -v javac >/dev/null && [ -f "$JAR" ] &&
   timeout 60 javac -cp "$JAR" -d "$T_DIR" "$(dirname "$0")/java/LoginProbe.java" >/dev/null 2>&1; then
  out=$(timeout 60 java -cp "$T_DIR:$JAR" LoginProbe "jdbc:postgresql://localhost:$MG_PORT/$DB" "$MG_USER" "$MG_TOKEN" "$MG_CA" 2>&1) || true
  check_match "pgjdbc over max_clients: SQLSTATE 53300 and the reason" '^SQLSTATE 53300: .*too many' "$out"
else
  fail "pgjdbc over max_clients" "javac or $JAR missing"
fi
(printf '\\q\n' >&"$held2_fd") 2>/dev/null || true
exec {held2_fd}>&-
kill -INT $sleeper 2>/dev/null || true      # psql cancels its query and exits
held_close >/dev/null
wait_until 10 wh_sessions_are 0 $DB || true
if mg_alive; then ok "martgate still running after the limits"; else fail "martgate still running after the limits" "it exited" "$(mg_log_tail)"; fi

# ---- 50 concurrent sessions with the default limits
mg_stop
mg_start $DB || h_die "martgate did not restart"
cat >"$T_DIR/many.py" <<'PY'
import os, threading, pgwire
R = pgwire.Report()
res = []
def one(i):
    try:
        c = pgwire.target_login(os.environ["DB"], timeout=20)
        res.append(pgwire.summarize(c.query("select %d, pg_sleep(0.2)" % i))[0] == "ROW %d|" % i)
        c.terminate()
    except Exception as e:
        res.append(repr(e))
ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
[t.start() for t in ts]; [t.join(40) for t in ts]
R.check("50 concurrent sessions each get their own answer", res.count(True) == 50, [r for r in res if r is not True][:5])
PY
rc=0
out=$(PYT_TIMEOUT=60 pyf "$T_DIR/many.py" 2>&1) || rc=$?
h_report_rc "concurrency check" $rc "$out"
if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi

# ---- connections that never log in hold at most max_pending_per_address
# slots from one address and max_pending_logins in all; logged-in sessions
# do not count, and the slots come back when those connections go
mg_stop
MG_CFG_MAX_PENDING=4 MG_CFG_MAX_PENDING_ADDR=2 MG_CFG_LOGIN_TIMEOUT=30 mg_start $DB || h_die "martgate did not restart"
cat >"$T_DIR/pending.py" <<'PY'
import os, socket, struct, time, pgwire
R = pgwire.Report()
PORT = int(os.environ["MG_PORT"])
def idle(src):
    s = socket.socket(); s.bind((src, 0)); s.connect(("127.0.0.1", PORT)); s.settimeout(3)
    return s
def refused(s):
    # martgate answers at once with an ErrorResponse and closes
    try:
        data = s.recv(4096)
    except socket.timeout:
        return "kept open"
    if not data:
        return "closed without an answer"
    f = pgwire.error_fields(data[5:]) if data[:1] == b"E" else {}
    return "%s %s" % (f.get("C"), f.get("M"))
def still_open(s):
    s.settimeout(0.5)
    try:
        return s.recv(1) == b"" and "closed" or "data"
    except socket.timeout:
        return "open"
a = [idle("127.0.0.1"), idle("127.0.0.1")]
time.sleep(0.3)
third = idle("127.0.0.1")
R.check("a 3rd connection from 127.0.0.1 not logged in: refused with 53300", refused(third).startswith("53300 sorry, too many connections waiting to log in"), refused(third))
R.check("the 2 idle ones are kept (within the login timeout)", [still_open(s) for s in a] == ["open", "open"], [still_open(s) for s in a])
try:
    pgwire.target_login(os.environ["DB"], timeout=5).terminate()
    R.check("a real login from 127.0.0.1 while it has 2 idle: refused", False, "logged in")
except pgwire.PGError as e:
    R.check("a real login from 127.0.0.1 while it has 2 idle: refused", e.sqlstate == "53300", e.sqlstate)
except Exception as e:
    R.check("a real login from 127.0.0.1 while it has 2 idle: refused", False, repr(e))
b = [idle("127.0.0.2"), idle("127.0.0.2")]
time.sleep(0.3)
R.check("another address gets its own 2", [still_open(s) for s in b] == ["open", "open"], [still_open(s) for s in b])
time.sleep(1.1)   # the log says it once a second
fifth = idle("127.0.0.3")
R.check("a 5th not logged in from a 3rd address: refused (4 in all)", refused(fifth).startswith("53300"), refused(fifth))
for s in a + b:
    s.close()
time.sleep(0.5)
held = []
try:
    for i in range(3):
        held.append(pgwire.target_login(os.environ["DB"], timeout=5))
    R.check("once they close: 3 logins from 127.0.0.1 in a row (logged-in sessions do not count)", True)
except Exception as e:
    R.check("once they close: 3 logins from 127.0.0.1 in a row (logged-in sessions do not count)", False, repr(e))
more = [idle("127.0.0.1"), idle("127.0.0.1")]
time.sleep(0.3)
R.check("... and 2 more may wait to log in beside them", [still_open(s) for s in more] == ["open", "open"], [still_open(s) for s in more])
rows = [pgwire.summarize(h.query("select 'in'"))[0] for h in held]
R.check("the logged-in sessions answer", rows == ["ROW in"] * 3, rows)
for h in held:
    h.terminate()
for s in more:
    s.close()
PY
rc=0
out=$(PYT_TIMEOUT=60 pyf "$T_DIR/pending.py" 2>&1) || rc=$?
h_report_rc "pending logins" $rc "$out"
check_match "the log says which limit refused them" 'refused a connection from 127.0.0.1: 2 connections from there not logged in yet \(limits.max_pending_per_address\)' "$(cat "$MG_LOG")"
check_match "... and the total" 'refused a connection from 127.0.0.3: 4 connections in all not logged in yet \(limits.max_pending_logins\)' "$(cat "$MG_LOG")"
if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_done

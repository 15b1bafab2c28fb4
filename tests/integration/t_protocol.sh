#!/usr/bin/env bash
# The wire protocol, byte for byte: scripted message sequences (simple and
# extended protocol, pipelining, named statements and portals, Execute with a
# row limit, COPY both ways, notifications, ParameterStatus, binary results,
# errors mid-pipeline) must get exactly the warehouse's own answer; malformed
# input (bad lengths, unknown message types, a startup packet split into many
# writes, SSLRequest with plaintext behind it, garbage) closes only that session;
# FunctionCall is refused with 42501; closed clients leave no warehouse session.
. "$(dirname "$0")/../lib/harness.sh"
h_init protocol
DB=t_protocol
pg_createdb $DB
direct_psql $DB -qc "create table fixed (id int primary key, v text); insert into fixed select g, 'v' || g from generate_series(1,10) g" >/dev/null
mg_start $DB || h_die "martgate did not start"
export DB

cat >"$T_DIR/protocol.py" <<'PY'
import os, socket, struct, time, random
import pgwire
from pgwire import msg, cstr, Closed, PGError

DB = os.environ["DB"]
R = pgwire.Report()
MARTGATE = os.environ.get("MG_TARGET", "martgate") == "martgate"

def parse(name, sql, types=()):
    return msg("P", cstr(name) + cstr(sql) + struct.pack("!h", len(types)) + b"".join(struct.pack("!i", t) for t in types))

def bind(portal, stmt, params=(), result_formats=()):
    b = cstr(portal) + cstr(stmt) + struct.pack("!h", 0) + struct.pack("!h", len(params))
    for p in params:
        b += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    b += struct.pack("!h", len(result_formats)) + b"".join(struct.pack("!h", f) for f in result_formats)
    return msg("B", b)

def execute(portal, maxrows=0):
    return msg("E", cstr(portal) + struct.pack("!i", maxrows))

def describe(kind, name):
    return msg("D", kind.encode() + cstr(name))

def close(kind, name):
    return msg("C", kind.encode() + cstr(name))

SYNC, FLUSH = msg("S"), msg("H")

def normalize(t, p):
    if t == "A":                      # NotificationResponse: sender pid differs
        return (t, b"<pid>" + p[4:])
    return (t, p)

def converse(c, steps):
    """steps: list of (bytes to send, number of ReadyForQuery to wait for, or
    ('msgs', n) to read exactly n messages)."""
    out = []
    for data, until in steps:
        if data:
            c.send(data)
        if isinstance(until, tuple):
            for _ in range(until[1]):
                out.append(normalize(*c.read_msg()))
        else:
            for _ in range(until):
                while True:
                    t, p = c.read_msg()
                    out.append(normalize(t, p))
                    if t == "Z":
                        break
    return out

FIXED = "select id, v from fixed order by id"
SETUP = "create temp table t (id int primary key, v text); insert into t select g, 'v' || g from generate_series(1,10) g"
SCENARIOS = {
  "simple query, several statements, error in the middle":
    [(msg("Q", cstr("select 1 as a; select 1/0; select 3")), 1)],
  "empty query":
    [(msg("Q", cstr("")), 1), (msg("Q", cstr(";")), 1)],
  "transaction status in ReadyForQuery":
    [(msg("Q", cstr("begin")), 1), (msg("Q", cstr("select 1/0")), 1), (msg("Q", cstr("select 1")), 1),
     (msg("Q", cstr("rollback")), 1)],
  "extended: unnamed statement with parameters":
    [(parse("", "select $1::int + 1 as x, $2::text as y", [23, 25]) + bind("", "", [b"41", None]) +
      describe("P", "") + execute("") + SYNC, 1)],
  "extended: pipeline, error in the middle skips to Sync":
    [(parse("", "select 1") + bind("", "") + execute("") +
      parse("", "select 1/0") + bind("", "") + execute("") +
      parse("", "select 3") + bind("", "") + execute("") + SYNC +
      parse("", "select 4") + bind("", "") + execute("") + SYNC, 2)],
  "extended: parse error skips Bind/Execute until Sync":
    [(parse("", "selec 1") + bind("", "") + execute("") + SYNC + msg("Q", cstr("select 'after'")), 2)],
  "extended: named statement and portal, row limit, PortalSuspended":
    [(parse("s1", FIXED) + describe("S", "s1") + SYNC, 1),
     (msg("Q", cstr("begin")), 1),
     (bind("p1", "s1") + describe("P", "p1") + execute("p1", 3) + execute("p1", 3) + SYNC, 1),
     (execute("p1", 0) + close("P", "p1") + close("S", "s1") + SYNC, 1),
     (msg("Q", cstr("commit")), 1),
     (bind("", "s1") + execute("") + SYNC, 1)],
  "extended: Flush delivers results before Sync":
    [(parse("f1", "select 42") + bind("", "f1") + execute("") + FLUSH, ("msgs", 4)), (SYNC, 1)],
  "extended: binary result format":
    [(parse("", "select 1::int4, 2::int8, 'x'::text, '2024-01-02 03:04:05+00'::timestamptz, 1.5::numeric") +
      bind("", "", [], [1]) + execute("") + SYNC, 1)],
  "extended: statement with many parameters":
    [(parse("", "select " + ", ".join("$%d::int" % i for i in range(1, 201))) +
      bind("", "", [str(i).encode() for i in range(1, 201)]) + execute("") + SYNC, 1)],
  "COPY FROM STDIN (simple), CopyData split oddly":
    [(msg("Q", cstr(SETUP)), 1),
     (msg("Q", cstr("copy t from stdin")), ("msgs", 1)),
     (msg("d", b"100\thundred\n101\t") + msg("d", b"hundred-one\n") + msg("d", b"102\t\\N\n") + msg("c"), 1),
     (msg("Q", cstr("select count(*), count(v) from t")), 1)],
  "COPY FROM STDIN, CopyFail":
    [(msg("Q", cstr(SETUP)), 1), (msg("Q", cstr("copy t from stdin")), ("msgs", 1)),
     (msg("d", b"200\tx\n") + msg("f", cstr("client gave up")), 1)],
  "COPY FROM STDIN, bad data":
    [(msg("Q", cstr(SETUP)), 1), (msg("Q", cstr("copy t from stdin")), ("msgs", 1)),
     (msg("d", b"300\tx\nnot-a-number\ty\n") + msg("c"), 1)],
  "COPY FROM STDIN via the extended protocol":
    [(msg("Q", cstr(SETUP)), 1),
     (parse("", "copy t from stdin") + bind("", "") + execute("") + SYNC, ("msgs", 3)),
     (msg("d", b"400\tfour hundred\n") + msg("c") + SYNC, 1)],
  "COPY TO STDOUT, text and binary":
    [(msg("Q", cstr("copy (select g, md5(g::text) from generate_series(1,500) g) to stdout")), 1),
     (msg("Q", cstr("copy (select g from generate_series(1,3) g) to stdout with (format binary)")), 1)],
  "NOTIFY and NotificationResponse":
    [(msg("Q", cstr("listen c1; notify c1, 'hello'; select pg_notify('c1', 'again')")), 1)],
  "ParameterStatus after SET":
    [(msg("Q", cstr("set application_name = 'zz'; set timezone = 'America/Sao_Paulo'; set datestyle = 'German'")), 1),
     (msg("Q", cstr("reset all")), 1)],
  "NoticeResponse from the warehouse":
    [(msg("Q", cstr("do $$ begin raise notice 'n1'; raise warning 'w1'; end $$; set client_min_messages = debug1; select 1")), 1)],
  "large row (3 MB DataRow) and many rows":
    [(msg("Q", cstr("select repeat('x', 3000000)")), 1),
     (msg("Q", cstr("select g from generate_series(1, 20000) g")), 1)],
  "SQL errors with position, detail, hint":
    [(msg("Q", cstr("select nmae from pg_class")), 1), (msg("Q", cstr("select * from\n  nosuch")), 1),
     (msg("Q", cstr("do $$ begin raise exception 'x' using detail = 'd', hint = 'h', errcode = '22000'; end $$")), 1)],
}

for name, steps in SCENARIOS.items():
    try:
        a = converse(pgwire.target_login(DB), steps)
    except Exception as e:
        R.check("same answer as the warehouse: " + name, False, "through the target: %r" % e)
        continue
    try:
        b = converse(pgwire.direct_login(DB), steps)
    except Exception as e:
        R.check("same answer as the warehouse: " + name, False, "direct (test bug?): %r" % e)
        continue
    if a == b:
        R.check("same answer as the warehouse: " + name, True)
    else:
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        R.check("same answer as the warehouse: " + name, False,
                "%d vs %d messages; first difference at #%d: target %r / direct %r" %
                (len(a), len(b), i, a[i] if i < len(a) else None, b[i] if i < len(b) else None))

# Initial ParameterStatus set equals the warehouse's
try:
    t = pgwire.target_login(DB)
    d = pgwire.direct_login(DB)
    tp = dict(t.params); dp = dict(d.params)
    for k in ("application_name",):
        tp.pop(k, None); dp.pop(k, None)
    R.check("initial ParameterStatus values are the warehouse's", tp == dp, "target %r / direct %r" % (tp, dp))
    R.check("BackendKeyData sent", t.pid is not None and t.key is not None, "none")
    t.terminate(); d.terminate()
except Exception as e:
    R.check("initial ParameterStatus values are the warehouse's", False, repr(e))

# ---------------------------------------------------------------- malformed --
held = pgwire.target_login(DB)

def still_serving(label):
    try:
        c = pgwire.target_login(DB, timeout=5)
        rows = pgwire.summarize(c.query("select 'fresh'"))
        c.terminate()
        ok = rows == ["ROW fresh", "CMD SELECT 1"]
    except Exception as e:
        ok, rows = False, repr(e)
    R.check("serving new sessions after: " + label, ok, rows)

def raw(tls=True):
    c = pgwire.Conn(port=int(os.environ["MG_PORT"]), timeout=5)
    if tls:
        c.ssl_request(os.environ["MG_CA"])
    return c

def expect_closed(label, c, seconds=5, want_state=None, or_error=None):
    closed, msgs = c.wait_closed(seconds)
    err = pgwire.first_error(msgs)
    note = "closed" if closed else "still open after %ds" % seconds
    if err:
        note += ", error %s %s" % (err.get("C"), err.get("M"))
    ok = closed and (want_state is None or err is None or err.get("C") in want_state)
    if not closed and or_error and err is not None and err.get("C") in or_error:
        ok, note = True, note + " (session kept after the error, as the server does)"
    R.check("closes the session: " + label, ok, note)
    c.close()
    still_serving(label)

def login_then(label, data, want_state=("08P01",), seconds=5, or_error=None):
    try:
        c = pgwire.target_login(DB)
    except Exception as e:
        R.check("closes the session: " + label, False, "login failed: %r" % e)
        return
    c.try_send(data)
    expect_closed(label, c, seconds, want_state, or_error)

# before login
c = raw(); c.send(struct.pack("!i", 3) + b"\0\0\0\0"); expect_closed("startup packet length 3", c)
c = raw(); c.send(struct.pack("!ii", 0x7fffffff, pgwire.PROTO_3) + b"user\0"); expect_closed("startup packet length 2 GB", c)
c = raw(); c.send(struct.pack("!ii", 100000000, pgwire.PROTO_3) + b"x" * 1000); expect_closed("startup packet length 100 MB", c)
c = raw(); c.send(pgwire.startup_packet({"user": "alice", "database": DB}, proto=0x00020000)); expect_closed("protocol version 2.0", c)
c = raw(); c.send(struct.pack("!ii", 20, pgwire.PROTO_3) + b"user\0alice\0data"); expect_closed("startup parameters not terminated", c)
c = raw(); c.send(struct.pack("!ii", 12, pgwire.CANCEL_REQUEST) + b"\0\0\0\1"); expect_closed("CancelRequest of the wrong length", c)
c = raw(tls=False); c.send(bytes(random.Random(7).getrandbits(8) for _ in range(1024))); expect_closed("1 KB of garbage instead of a startup packet", c)
c = raw(tls=False); c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); expect_closed("an HTTP request", c)
c = raw(tls=False); c.send(struct.pack("!ii", 8, pgwire.SSL_REQUEST) + b"\x16\x03\x01\x00\x05hello"); 
# SSLRequest with bytes behind it in the same packet: must not become a TLS session
c2 = pgwire.Conn(port=int(os.environ["MG_PORT"]), timeout=5)
c2.send(struct.pack("!ii", 8, pgwire.SSL_REQUEST) + pgwire.startup_packet({"user": os.environ.get("MG_USER", "alice"), "database": DB}))
try:
    first = c2.recv_exact(1)
except (Closed, socket.timeout):
    first = b""
verdict, why = True, "answer %r, then closed" % first
if first == b"S":
    # What PostgreSQL does: 'S', then a plaintext FATAL 08P01, then close.
    c2.settimeout(1)
    try:
        c2._fill()
    except (Closed, socket.timeout):
        pass
    if c2.buf:
        try:
            t, p = c2.read_msg()
            verdict, why = t == "E", "'S', then plaintext %r %s" % (t, pgwire.error_fields(p) if t == "E" else "")
        except Exception as e:
            verdict, why = True, "'S', then plaintext bytes and close: %r" % e
    else:
        try:
            c2.starttls(os.environ["MG_CA"])
            c2.settimeout(2)
            try:
                t, p = c2.read_msg()
                verdict, why = t != "R", "TLS completed, then %r (R means the injected startup packet was processed)" % t
            except socket.timeout:
                verdict, why = False, "TLS completed although plaintext was buffered behind the SSLRequest"
            except Closed:
                verdict, why = True, "'S', then closed after the handshake"
        except Exception as e:
            verdict, why = True, "'S', then the TLS handshake failed: %r" % e
R.check("SSLRequest with plaintext buffered behind it is rejected", verdict, why)
R.note("SSLRequest with plaintext behind it: " + why)
c2.close()
c.close()
still_serving("SSLRequest with plaintext behind it")

# GSSENCRequest is declined, then TLS works
try:
    c = pgwire.Conn(port=int(os.environ["MG_PORT"]), timeout=5)
    c.send(struct.pack("!ii", 8, pgwire.GSSENC_REQUEST))
    ans = c.recv_exact(1)
    if MARTGATE:
        R.check("GSSENCRequest answered 'N'", ans == b"N", ans)
    else:
        R.note("GSSENCRequest: the warehouse answered %r" % ans)
    if ans == b"N":
        direct = os.environ.get("MG_TARGET") == "direct"
        c.ssl_request(os.environ["MG_CA"])
        c.startup(os.environ["MG_SVC_USER"] if direct else os.environ["MG_USER"], DB)
        c.finish_login(os.environ["MG_SVC_PASS"] if direct else os.environ["MG_TOKEN"])
        R.check("login after a declined GSSENCRequest", pgwire.summarize(c.query("select 7"))[0] == "ROW 7")
        c.terminate()
except Exception as e:
    R.check("GSSENCRequest answered 'N', then TLS login", False, repr(e))

# a startup packet (and the SSLRequest) split across many writes
try:
    c = pgwire.Conn(port=int(os.environ["MG_PORT"]), timeout=10)
    for b in struct.pack("!ii", 8, pgwire.SSL_REQUEST):
        c.send(bytes([b])); time.sleep(0.01)
    assert c.recv_exact(1) == b"S"
    c.starttls(os.environ["MG_CA"])
    direct = os.environ.get("MG_TARGET") == "direct"
    pkt = pgwire.startup_packet({"user": os.environ["MG_SVC_USER"] if direct else os.environ["MG_USER"], "database": DB,
                                 "application_name": "split-writes"})
    for i in range(0, len(pkt), 3):
        c.send(pkt[i:i + 3]); time.sleep(0.01)
    c.finish_login(os.environ["MG_SVC_PASS"] if direct else os.environ["MG_TOKEN"])
    q = msg("Q", cstr("select current_setting('application_name')"))
    for b in q:
        c.send(bytes([b]))
    rows = pgwire.summarize(c.until_ready())
    R.check("startup packet split across many writes: login works", rows[0] == "ROW split-writes", rows)
    c.terminate()
except Exception as e:
    R.check("startup packet split across many writes: login works", False, repr(e))

# after login
login_then("message length 2 (below 4)", b"Q" + struct.pack("!i", 2) + b"select 1\0")
login_then("negative message length", b"Q" + struct.pack("!i", -5) + b"select 1\0")
login_then("message length 2 GB", b"Q" + struct.pack("!i", 0x7ffffff0) + b"select 1\0", want_state=("08P01", "54000"))
login_then("unknown message type 'z'", msg("z", b"abc"))
login_then("unknown message type 0x00", b"\0" + struct.pack("!i", 4))
login_then("second startup packet after login", pgwire.startup_packet({"user": "x", "database": DB}))
login_then("Query text not NUL-terminated", msg("Q", b"select 1"), seconds=3, or_error=("08P01",))
login_then("Execute with its portal name not terminated", msg("E", b"portal") + msg("S"), seconds=3, or_error=("08P01",))
if MARTGATE:
    # martgate must read the names of every Bind/Execute/Close to follow what
    # runs (guard): longer than its limit is refused, not skipped
    login_then("Bind with a 300-byte portal name (limit 256)",
               msg("B", cstr("p" * 300) + cstr("") + struct.pack("!hhh", 0, 0, 0)) + msg("S"))
    login_then("Close with a 257-byte statement name", msg("C", b"S" + cstr("s" * 257)) + msg("S"))
    login_then("Parse with a 257-byte statement name", msg("P", cstr("s" * 257) + cstr("select 1") + struct.pack("!h", 0)))
    try:
        c = pgwire.target_login(DB)
        c.send(msg("P", cstr("n" * 256) + cstr("select 'long name ok'") + struct.pack("!h", 0)) +
               msg("B", cstr("q" * 256) + cstr("n" * 256) + struct.pack("!hhh", 0, 0, 0)) +
               msg("E", cstr("q" * 256) + struct.pack("!i", 0)) + msg("S"))
        rows = pgwire.summarize(c.until_ready())
        R.check("names of 256 bytes are accepted", "ROW long name ok" in rows, rows)
        c.terminate()
    except Exception as e:
        R.check("names of 256 bytes are accepted", False, repr(e))
try:
    c = pgwire.target_login(DB)
    c.send(b"Q" + struct.pack("!i", 100))   # half a message, then hang up
    c.close()
    still_serving("client hangs up mid-message")
except Exception as e:
    R.check("client hangs up mid-message", False, repr(e))

# the held session never noticed any of this
try:
    rows = pgwire.summarize(held.query("select 'held'"))
    R.check("a session opened before the malformed input still works", rows[0] == "ROW held", rows)
    held.terminate()
except Exception as e:
    R.check("a session opened before the malformed input still works", False, repr(e))

# startup parameters that would change what the session is
try:
    c = pgwire.target_login(DB, params={"replication": "database"})
    rows = pgwire.summarize(c.query("IDENTIFY_SYSTEM"))
    R.check("replication=database does not give a walsender session", not rows or not rows[0].startswith("ROW"), rows)
    c.terminate()
except PGError as e:
    R.check("replication=database does not give a walsender session", True)
except Exception as e:
    R.check("replication=database does not give a walsender session", False, repr(e))

# FunctionCall ('F'): refused with 42501 by martgate, session goes on
if MARTGATE:
    try:
        c = pgwire.target_login(DB)
        # lo_creat(-1): oid 957; one int4 argument, text result format
        fc = msg("F", struct.pack("!i", 957) + struct.pack("!h", 0) + struct.pack("!h", 1) +
                 struct.pack("!i", 4) + struct.pack("!i", -1) + struct.pack("!h", 0))
        c.send(fc)
        m = c.until_ready()
        err = pgwire.first_error(m)
        R.check("FunctionCall refused with 42501", err is not None and err.get("C") == "42501", pgwire.summarize(m))
        R.check("FunctionCall refusal ends with ReadyForQuery", m[-1][0] == "Z", m[-1:])
        c.query("begin")
        c.send(fc)
        m = c.until_ready()
        R.check("FunctionCall in a transaction leaves it failed (like the server)", m[-1] == ("Z", b"E"), m[-1:])
        c.query("rollback")
        rows = pgwire.summarize(c.query("select count(*) from pg_largeobject_metadata"))
        R.check("session works after FunctionCall; nothing was called", rows[0] == "ROW 0", rows)
        c.terminate()
    except Exception as e:
        R.check("FunctionCall refused with 42501", False, repr(e))
PY
rc=0
out=$(PYT_TIMEOUT=240 pyf "$T_DIR/protocol.py" 2>&1) || rc=$?
h_report_rc "protocol checks" $rc "$out"

# Clients that go away leave no warehouse session behind.
wait_until 10 wh_sessions_are 0 $DB || true
base=$(wh_sessions $DB)
check_eq "no warehouse sessions left after the malformed sessions" 0 "$base"
out=$(pyt <<'PY' 2>&1 || true
import os, pgwire, time
c = pgwire.target_login(os.environ["DB"])
c.send(pgwire.msg("Q", pgwire.cstr("select pg_sleep(3)")))
time.sleep(0.3)
c.close()           # no Terminate: the client just vanishes mid-query
print("gone")
PY
)
check_eq "a client vanishing mid-query" "gone" "$out"
if wait_until 10 wh_sessions_are 0 $DB; then
  ok "its warehouse session ends too (within 10 s)"
else
  fail "its warehouse session ends too (within 10 s)" "still there" "$(pg_admin postgres -c "select pid, state, query from pg_stat_activity where datname = '$DB'")"
fi
if [ "$MG_TARGET" = martgate ]; then
  if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
fi
h_done

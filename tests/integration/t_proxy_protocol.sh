#!/usr/bin/env bash
# The PROXY protocol behind a real HAProxy (TCP mode; send-proxy-v2 and
# send-proxy): clients bound to 127.0.0.2 and 127.0.0.3 appear with those
# addresses in the audit (client_addr), the log and SHOW SESSIONS; TLS works
# through HAProxy (martgate terminates it after the header); the pending-login
# limit per address counts the real clients, not HAProxy; check-send-proxy
# health checks (v2 LOCAL) work. Refused, each with a log line and nothing
# else disturbed: a trusted address without a header, a header from an
# untrusted address, malformed, truncated (closed, or held past the login
# timeout), oversized headers.
. "$(dirname "$0")/../lib/harness.sh"
h_init proxy_protocol
need_martgate
command -v haproxy >/dev/null || h_die "haproxy is missing (scripts/install-deps.sh installs it)"
DB=t_proxy_protocol
pg_createdb $DB
direct_psql $DB -q -c "create table t(x int); insert into t values (1), (2)" >/dev/null

MG_CFG_LOGIN_TIMEOUT=4 MG_CFG_MAX_PENDING_ADDR=2 \
MG_CFG_EXTRA="\"proxy_protocol\": {\"trusted\": [\"127.0.0.1/32\"]}, \"admin\": {\"groups\": [\"ops\"]},
  \"audit\": {\"file\": \"$T_DIR/audit.jsonl\"}" mg_start $DB || h_die "martgate did not start"
OPS=$(mg_token --sub olivia --groups ops --ttl 30m)
export DB OPS MG_LOG

# ---- HAProxy: v2 and v1 frontends, each with check-send-proxy health checks --
HP2=$(free_port)
HP1=$(free_port)
# the check: the PROXY header (LOCAL for v2), then a GSSENCRequest that
# martgate answers 'N': UP only when martgate took the header
cat >"$T_DIR/haproxy.cfg" <<HAP
global
  stats socket $T_DIR/haproxy.sock mode 600 level admin
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe_v2
  bind 127.0.0.1:$HP2
  default_backend mg_v2
frontend fe_v1
  bind 127.0.0.1:$HP1
  default_backend mg_v1
backend mg_v2
  option tcp-check
  tcp-check send-binary 0000000804d21630
  tcp-check expect string N
  server mg 127.0.0.1:$MG_PORT send-proxy-v2 check check-send-proxy inter 500ms rise 1 fall 1
backend mg_v1
  option tcp-check
  tcp-check send-binary 0000000804d21630
  tcp-check expect string N
  server mg 127.0.0.1:$MG_PORT send-proxy check check-send-proxy inter 500ms rise 1 fall 1
HAP
haproxy_start "$T_DIR/haproxy.cfg" "$HP2" >"$T_DIR/why" || h_die "$(cat "$T_DIR/why")"
hap_status() { haproxy_status "$T_DIR/haproxy.sock" "$1" mg; }   # BACKEND: its server's status
hap_is() { [ "$(hap_status "$1")" = "$2" ]; }
wait_until 10 hap_is mg_v2 UP || true
wait_until 10 hap_is mg_v1 UP || true
check_eq "HAProxy's check-send-proxy health check (v2 LOCAL header, then GSSENCRequest): UP" UP "$(hap_status mg_v2)"
check_eq "... and with send-proxy (v1): UP" UP "$(hap_status mg_v1)"
sleep 1.2   # a few more checks
check_nomatch "the health checks are not refused" "refused" "$(cat "$MG_LOG")"
check_nomatch "... nor logged as a timeout" "timed out" "$(cat "$MG_LOG")"

# ---- psql through HAProxy, TLS verified --------------------------------------
for hp in "$HP2 v2" "$HP1 v1"; do
  set -- $hp
  out=$(PGPASSWORD=$MG_TOKEN timeout 20 psql -X -Atc "select count(*) from t" \
        "host=127.0.0.1 port=$1 dbname=$DB user=$MG_USER sslmode=verify-full sslrootcert=$MG_CA" 2>&1 || true)
  check_eq "psql through HAProxy ($2), TLS verify-full" 2 "$out"
done

# ---- clients at 127.0.0.2 / .3 through HAProxy ---------------------------------
cat >"$T_DIR/clients.py" <<'PY'
import json, os, socket, struct, sys, time, pgwire
R = pgwire.Report()
DB, CA, TOKEN, USER = os.environ["DB"], os.environ["MG_CA"], os.environ["MG_TOKEN"], os.environ["MG_USER"]
HP2, HP1, MGP = int(os.environ["HP2"]), int(os.environ["HP1"]), int(os.environ["MG_PORT"])
LOG = os.environ["MG_LOG"]

def login(port, src, user=USER, db=DB, password=TOKEN):
    c = pgwire.Conn("127.0.0.1", port, timeout=10, source=src)
    return c.login(user, db, password, tls_ca=CA)

def log_has(needle, since=0, wait=5.0):
    end = time.time() + wait
    while True:
        with open(LOG, errors="replace") as f:
            lines = f.read().splitlines()[since:]
        hit = [l for l in lines if needle(l)]
        if hit or time.time() > end:
            return hit
        time.sleep(0.1)

def log_len():
    with open(LOG, errors="replace") as f:
        return len(f.read().splitlines())

for port, src, ver in ((HP2, "127.0.0.2", "v2"), (HP1, "127.0.0.3", "v1")):
    try:
        c = login(port, src)
        rows = pgwire.summarize(c.query("select count(*) from t"))
        R.check("a client at %s through HAProxy (%s) logs in over TLS and queries" % (src, ver),
                c.tls and rows[:1] == ["ROW 2"], rows)
        local = c.sock.getsockname()
        c.terminate()
        hit = log_has(lambda l: "login ok" in l and ("client=%s:%d " % local) in l)
        R.check("... martgate's log names it %s:%d (its own address and port)" % local, bool(hit),
                "no 'login ok' line with client=%s:%d" % local)
    except Exception as e:
        R.check("a client at %s through HAProxy (%s) logs in over TLS and queries" % (src, ver), False, repr(e))

# SHOW SESSIONS lists a held session under its client's address
held = login(HP2, "127.0.0.2")
held.query("select 1")
adm = login(HP1, "127.0.0.3", user="olivia", db="martgate", password=os.environ["OPS"])
rows = pgwire.summarize(adm.query("SHOW SESSIONS"))
mine = "127.0.0.2:%d" % held.sock.getsockname()[1]
R.check("SHOW SESSIONS lists the held session at %s" % mine, any(mine in r for r in rows), rows)
R.check("... and the console's own at 127.0.0.3", any("127.0.0.3:" in r and "olivia" in r for r in rows), rows)
adm.terminate()

# max_pending_per_address (2): counted by the header's address, not HAProxy's
def idle(port, src):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.settimeout(3)
    return s
a = [idle(HP2, "127.0.0.2"), idle(HP2, "127.0.0.2")]
time.sleep(0.5)
third = idle(HP2, "127.0.0.2")
try:
    data = third.recv(4096)
except socket.timeout:
    data = b"(kept open)"
f = pgwire.error_fields(data[5:]) if data[:1] == b"E" else {}
R.check("a third idle connection from 127.0.0.2 through HAProxy is refused: 53300 (max_pending_per_address 2)",
        f.get("C") == "53300", data[:80])
R.check("... the log names 127.0.0.2", bool(log_has(lambda l: "refused a connection from 127.0.0.2:" in l and
        "max_pending_per_address" in l)), "no refusal line for 127.0.0.2")
b = idle(HP2, "127.0.0.3")
try:
    c = login(HP1, "127.0.0.3")
    R.check("... while 127.0.0.3 logs in through the same HAProxy (4 pending from it)",
            pgwire.summarize(c.query("select 1"))[:1] == ["ROW 1"])
    c.terminate()
except Exception as e:
    R.check("... while 127.0.0.3 logs in through the same HAProxy (4 pending from it)", False, repr(e))
for s in a + [third, b]:
    s.close()

# ---- refused headers, each on its own connection; the held session lives on ---
def raw(src, data, wait=2.0, close_after_send=False):
    """Connects straight to martgate from src, sends data; returns (closed, bytes, seconds)."""
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", MGP))
    t0 = time.time()
    if data:
        s.sendall(data)
    if close_after_send:
        s.close()
        return True, b"", 0.0
    s.settimeout(wait)
    got = b""
    try:
        while True:
            x = s.recv(4096)
            if not x:
                s.close()
                return True, got, time.time() - t0
            got += x
    except socket.timeout:
        s.close()
        return False, got, time.time() - t0
    except ConnectionResetError:
        s.close()
        return True, got, time.time() - t0

V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"
def v2hdr(vc, fam, body, length=None):
    return V2SIG + bytes([vc, fam]) + struct.pack("!H", len(body) if length is None else length) + body
good_v2_body = bytes([127, 0, 0, 9, 127, 0, 0, 1, 0x9c, 0x40, 0x19, 0x20])

cases = [
    ("a trusted address without a header (a startup packet)", "127.0.0.1",
     pgwire.startup_packet({"user": USER, "database": DB}), "no PROXY protocol header from a proxy_protocol.trusted"),
    ("a trusted address sending HTTP", "127.0.0.1", b"GET / HTTP/1.1\r\n\r\n", "no PROXY protocol header"),
    ("a malformed v1 header (bad source address)", "127.0.0.1", b"PROXY TCP4 1.2.3 127.0.0.1 1 2\r\n",
     "bad PROXY protocol header from a proxy_protocol.trusted address: v1 header: source address"),
    ("a malformed v1 header (bad port)", "127.0.0.1", b"PROXY TCP4 1.2.3.4 127.0.0.1 70000 2\r\n", "source port"),
    ("a malformed v2 header (version 3)", "127.0.0.1", v2hdr(0x31, 0x11, good_v2_body), "version 3"),
    ("a malformed v2 header (UDP)", "127.0.0.1", v2hdr(0x21, 0x12, good_v2_body), "address family 0x12"),
    ("a v2 header too short for its family", "127.0.0.1", v2hdr(0x21, 0x21, good_v2_body), "too short"),
    ("an oversized v2 header (length 65535, refused from its first 16 bytes)", "127.0.0.1",
     v2hdr(0x21, 0x11, b"", length=65535), "limit is 2048"),
    ("an oversized v1 header (no CRLF in 107 bytes)", "127.0.0.1", b"PROXY UNKNOWN " + b"x" * 200, "CRLF"),
    ("a v1 header from an untrusted address (127.0.0.5)", "127.0.0.5", b"PROXY TCP4 10.1.1.1 127.0.0.1 1 2\r\n",
     "a PROXY protocol header from an address that proxy_protocol.trusted does not list"),
    ("a v2 header from an untrusted address (127.0.0.5)", "127.0.0.5", v2hdr(0x21, 0x11, good_v2_body),
     "a PROXY protocol header from an address that proxy_protocol.trusted does not list"),
]
for name, src, data, reason in cases:
    n0 = log_len()
    closed, got, secs = raw(src, data)
    R.check("%s: closed at once" % name, closed and secs < 1.5, "closed=%s after %.1fs" % (closed, secs))
    hit = log_has(lambda l: reason in l and ("client=%s:" % src) in l, since=n0)
    R.check("... logged with the peer %s and the reason" % src, bool(hit), "no log line with '%s'" % reason)
    R.check("... the held session still answers", pgwire.summarize(held.query("select 7"))[:1] == ["ROW 7"])

# truncated: half a header, then the peer closes
for name, data in (("half a v1 header", b"PROXY TCP4 10.1."), ("half a v2 header", V2SIG[:9])):
    n0 = log_len()
    raw("127.0.0.1", data, close_after_send=True)
    hit = log_has(lambda l: "closed within its PROXY protocol header (%d bytes" % len(data) in l, since=n0)
    R.check("%s and a close: logged" % name, bool(hit), "no 'closed within its PROXY protocol header' line")
# truncated: half a header, then nothing until the login timeout (4 s)
for name, data in (("half a v1 header", b"PROXY TCP6 ::1 "), ("half a v2 header", v2hdr(0x21, 0x11, good_v2_body)[:20])):
    n0 = log_len()
    closed, got, secs = raw("127.0.0.1", data, wait=8)
    R.check("%s held: closed at the login timeout (4 s), not before, no hang" % name,
            closed and 3.5 <= secs <= 7, "closed=%s after %.1fs" % (closed, secs))
    R.check("... logged", bool(log_has(lambda l: "login timed out after 4 s in state proxy_header" in l, since=n0)))
R.check("the held session still answers after all of them", pgwire.summarize(held.query("select 8"))[:1] == ["ROW 8"])
held.terminate()

# an untrusted address without a header is an ordinary client
try:
    c = login(MGP, "127.0.0.5")
    R.check("an untrusted address (127.0.0.5) without a header logs in directly",
            pgwire.summarize(c.query("select 1"))[:1] == ["ROW 1"])
    c.terminate()
except Exception as e:
    R.check("an untrusted address (127.0.0.5) without a header logs in directly", False, repr(e))
PY
rc=0; out=$(HP2=$HP2 HP1=$HP1 pyf "$T_DIR/clients.py" 2>&1) || rc=$?
h_report_rc "clients.py" $rc "$out"

# psql straight to martgate from 127.0.0.1 (trusted: a header is required)
n0=$(grep -c "no PROXY protocol header from a proxy_protocol.trusted address" "$MG_LOG" || true)
rc=0; out=$(tgt_psql $DB -Atc "select 1" 2>&1) || rc=$?
check "psql straight from a trusted address is refused" test $rc -ne 0
# libpq 15 shows only "server sent an error response during SSL exchange"
check_match "... with an error response" "error response|PROXY protocol header was expected" "$out"
n1=$(grep -c "no PROXY protocol header from a proxy_protocol.trusted address" "$MG_LOG" || true)
check "... and a log line saying a header was expected" test "$n1" -gt "$n0"

# ---- the audit: client_addr is the header's -----------------------------------
audit_has() { [ -f "$T_DIR/audit.jsonl" ] && grep -q "$1" "$T_DIR/audit.jsonl"; }
wait_until 10 audit_has '"client_addr":"127.0.0.5"' || true
starts() { # ADDR: session_start records with that client_addr
  /usr/bin/python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "session_start" and r.get("client_addr") == sys.argv[2] and r.get("client_port", 0) > 0:
        n += 1
print(n)' "$T_DIR/audit.jsonl" "$1"
}
n2=$(starts 127.0.0.2); n3=$(starts 127.0.0.3); n5=$(starts 127.0.0.5); n1=$(starts 127.0.0.1)
check "audit: session_start records with client_addr 127.0.0.2 (through v2)" test "$n2" -ge 2
check "audit: ... 127.0.0.3 (through v1)" test "$n3" -ge 2
check "audit: ... 127.0.0.5 (direct, untrusted)" test "$n5" -ge 1
check_eq "audit: psql through HAProxy from 127.0.0.1 shows 127.0.0.1 (2 sessions)" 2 "$n1"

# ---- the negative control: a health check without the header is refused ----------
# (HAProxy sends the header on checks of a send-proxy server unless the check
# has its own port or address: "check port" here, without check-send-proxy)
cat >"$T_DIR/haproxy-bad.cfg" <<HAP
global
  stats socket $T_DIR/haproxy-bad.sock mode 600 level admin
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
backend mg_v2
  option tcp-check
  tcp-check send-binary 0000000804d21630
  tcp-check expect string N
  server mg 127.0.0.1:$MG_PORT send-proxy-v2 check port $MG_PORT inter 300ms rise 1 fall 1
HAP
n0=$(grep -c "no PROXY protocol header" "$MG_LOG" || true)
h_bg haproxy -db -f "$T_DIR/haproxy-bad.cfg" >"$T_DIR/haproxy-bad.log" 2>&1
bad_refused() { [ "$(grep -c "no PROXY protocol header" "$MG_LOG" || true)" -gt "$n0" ]; }
wait_until 10 bad_refused || true
check "a health check without the header (check port, no check-send-proxy) is refused: the control" bad_refused
check "martgate is alive" mg_alive
h_done

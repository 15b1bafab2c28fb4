#!/usr/bin/env bash
# Cancels across martgate instances (peer_id / peers, docs/scaling.md): two
# instances (peer_id 1 and 2, each listing the other with proxy_protocol)
# behind a real HAProxy (balance roundrobin, send-proxy-v2, both trusting
# 127.0.0.1/32). Twenty `select pg_sleep(30)` through HAProxy, ten cancelled
# by psql's Ctrl-C and ten by pgjdbc's Statement.cancel(): each ends with
# 57014 within 1 s, and the cancels crossed instances (to_peer metrics and log
# lines on both). A forged key (the right peer id, a wrong secret) cancels
# nothing; a key naming an unconfigured peer id does nothing; two instances
# whose configs disagree (C says id 2 is D, D is 3 and says id 2 is C) forward
# each cancel once, never back; a forwarded packet the test sends itself is
# not forwarded again (and inside TLS is refused); a peer that never answers
# holds at most 64 forwards, the rest dropped with a log line.
. "$(dirname "$0")/../lib/harness.sh"
h_init peers
need_martgate
command -v haproxy >/dev/null || h_die "haproxy is missing (scripts/install-deps.sh installs it)"
command -v curl >/dev/null || h_die "curl is missing"
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
command -v javac >/dev/null || h_die "javac not found (default-jdk-headless)"
[ -f "$JAR" ] || h_die "$JAR not found (libpostgresql-jdbc-java)"
DB=t_peers
pg_createdb $DB
mg_setup_keys
MG_TOKEN=$(mg_token --sub "$MG_USER" --groups analysts --ttl 1h)
export DB MG_TOKEN

# ---- the instances ------------------------------------------------------------
# mg_peer NAME PEER_ID PEERS_JSON: a martgate on a free port with its own
# config, log and metrics listener; sets P_<NAME>, M_<NAME>, L_<NAME>, PID_<NAME>.
declare -A PORT MPORT LOG PID
for n in A B C D; do PORT[$n]=$(free_port); MPORT[$n]=$(free_port); done
mg_peer() {
  local name=$1 id=$2 peers=$3
  LOG[$name]=$MG_DIR/$name.log
  MG_PORT=${PORT[$name]} MG_CFG_EXTRA="\"proxy_protocol\": {\"trusted\": [\"127.0.0.1/32\"]},
  \"metrics\": {\"listen\": \"127.0.0.1:${MPORT[$name]}\"}, \"peer_id\": $id, \"peers\": $peers" \
    mg_write_config "$MG_DIR/$name.json" $DB
  "$MARTGATE_BIN" serve --config "$MG_DIR/$name.json" 2>>"${LOG[$name]}" &
  PID[$name]=$!
  H_MG_PIDS+=("${PID[$name]}")
}
peer() { echo "{\"id\": $1, \"address\": \"127.0.0.1:${PORT[$2]}\", \"proxy_protocol\": true}"; }
# the black hole: a listener whose accept queue is full after one connection,
# so that further connects to it hang (SYNs dropped) until martgate's 2 s
BH=$(free_port)
h_bg /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(0)
time.sleep(280)' "$BH"
mg_peer A 1 "[$(peer 2 B)]"
mg_peer B 2 "[$(peer 1 A)]"
# disagreeing: C (peer_id 1) says id 2 is D; D says it is 3, and that id 2 is C
mg_peer C 1 "[$(peer 2 D), {\"id\": 4, \"address\": \"127.0.0.1:$BH\"}]"
mg_peer D 3 "[$(peer 2 C)]"
# a trusted address must send a PROXY header: readiness is the metrics port
for n in A B C D; do
  wait_until 10 port_open "${MPORT[$n]}" || h_die "martgate $n did not start: $(tail -5 "${LOG[$n]}")"
done
check_match "A logs its peering at start" "peer_id 1: cancels whose key names a peer go to it; peers: 2 at 127.0.0.1:${PORT[B]} \(PROXY header\)" "$(cat "${LOG[A]}")"

metric() { # INSTANCE RESULT: martgate_cancel_requests_total{result=RESULT}
  curl -s --max-time 5 "http://127.0.0.1:${MPORT[$1]}/metrics" |
    sed -n "s/^martgate_cancel_requests_total{result=\"$2\"} //p"
}
check_match "the metric has result=\"to_peer\"" '^[0-9]+$' "$(metric A to_peer)"

# ---- HAProxy, round robin over A and B ---------------------------------------
HP=$(free_port)
cat >"$T_DIR/haproxy.cfg" <<HAP
global
  stats socket $T_DIR/haproxy.sock mode 600 level admin
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend pg
  bind 127.0.0.1:$HP
  default_backend martgate
backend martgate
  balance roundrobin
  option tcp-check
  tcp-check send-binary 0000000804d21630
  tcp-check expect string N
  server a 127.0.0.1:${PORT[A]} send-proxy-v2 check check-send-proxy inter 1s rise 1 fall 2
  server b 127.0.0.1:${PORT[B]} send-proxy-v2 check check-send-proxy inter 1s rise 1 fall 2
HAP
haproxy_start "$T_DIR/haproxy.cfg" "$HP" >"$T_DIR/why" || h_die "$(cat "$T_DIR/why")"
hap_up() { # both servers UP in HAProxy's stats
  [ "$(haproxy_status "$T_DIR/haproxy.sock" martgate a)" = UP ] && [ "$(haproxy_status "$T_DIR/haproxy.sock" martgate b)" = UP ]
}
wait_until 15 hap_up || true
check "HAProxy sees both instances UP (check-send-proxy health checks)" hap_up

hp_conninfo() { echo "host=127.0.0.1 port=$HP dbname=$DB user=$MG_USER sslmode=verify-full sslrootcert=$MG_CA connect_timeout=5"; }
check_eq "psql through HAProxy" ok "$(PGPASSWORD=$MG_TOKEN timeout 20 psql -X -Atc "select 'ok'" "$(hp_conninfo)" 2>&1)"

# ---- ten psql Ctrl-C cancels through HAProxy ----------------------------------
worst_psql=0
for i in 1 2 3 4 5 6 7 8 9 10; do
  # every other round one more connection first: the sessions alternate
  # between A and B, so the cancels cross both ways
  if [ $((i % 2)) -eq 0 ]; then
    PGPASSWORD=$MG_TOKEN timeout 20 psql -X -Atc "select 1" "$(hp_conninfo)" >/dev/null 2>&1 || true
  fi
  PGPASSWORD=$MG_TOKEN timeout 40 psql -X -c '\set VERBOSITY verbose' -c "select pg_sleep(30)" "$(hp_conninfo)" \
    >"$T_DIR/psql-$i.out" 2>&1 </dev/null &
  pid=$!
  H_BG_PIDS+=("$pid")
  wait_until 10 wh_sessions_are 1 $DB 'select pg_sleep(30)%' || true
  # SIGINT to psql itself: timeout(1) would pass it on to psql twice (to
  # the child and to its process group), and psql sends a cancel for each
  psql_pid=$(pgrep -P "$pid" -x psql | head -1 || true)
  t0=$(now_ms)
  kill -INT "${psql_pid:-$pid}" 2>/dev/null || true
  wait_until 10 pid_gone "$pid" || true
  wait "$pid" 2>/dev/null || true
  ms=$(( $(now_ms) - t0 ))
  out=$(cat "$T_DIR/psql-$i.out")
  check_match "psql round $i: Ctrl-C ends pg_sleep(30) with 57014" 'ERROR: +57014: canceling statement due to user request' "$out"
  if [ "$ms" -le 1000 ]; then ok "psql round $i: ended ${ms} ms after SIGINT (<= 1000)"
  else fail "psql round $i: ended ${ms} ms after SIGINT" "more than 1 s" "$out"; fi
  if [ "$ms" -gt "$worst_psql" ]; then worst_psql=$ms; fi
done

# ---- ten pgjdbc Statement.cancel() through HAProxy ----------------------------
mkdir -p "$T_DIR/classes"
if ! out=$(timeout 120 javac -encoding UTF-8 -cp "$JAR" -d "$T_DIR/classes" "$(dirname "$0")/java/PeersCancel.java" 2>&1); then
  fail "javac PeersCancel.java" "failed" "$out"
else
  rc=0
  out=$(JT_HOST=127.0.0.1 JT_PORT=$HP JT_DB=$DB JT_USER=$MG_USER JT_PASSWORD=$MG_TOKEN JT_CA=$MG_CA JT_ROUNDS=10 \
        timeout 180 java -Xss1m -Xmx256m -cp "$T_DIR/classes:$JAR" PeersCancel 2>&1) || rc=$?
  worst_jdbc=0
  while IFS= read -r line; do
    case $line in
      "ok "*) ok "${line#ok * - }" ;;
      "not ok "*) line=${line#not ok * - }; fail "${line%% | *}" "${line#* | }" ;;
      "CANCEL_MS "*) set -- $line; if [ "$3" -gt "$worst_jdbc" ]; then worst_jdbc=$3; fi ;;
      *) [ -n "$line" ] && echo "#   $line" ;;
    esac
  done <<<"$out"
  grep -q '^# peers-cancel: done' <<<"$out" || fail "PeersCancel" "did not finish (exit $rc)" "$(tail -20 <<<"$out")"
  [ "$(grep -c '^CANCEL_MS ' <<<"$out")" -eq 10 ] || fail "PeersCancel: ten rounds timed" "$(grep -c '^CANCEL_MS ' <<<"$out") of them"
  h_log "worst cancel: psql ${worst_psql} ms, pgjdbc ${worst_jdbc} ms (of 20)"
fi

# ---- did they cross? ------------------------------------------------------------
ta=$(metric A to_peer); tb=$(metric B to_peer)
fa=$(metric A forwarded); fb=$(metric B forwarded)
h_log "to_peer: A $ta, B $tb; cancelled on the warehouse: A $fa, B $fb"
check "cancels crossed from B to A (B's to_peer > 0)" test "${tb:-0}" -gt 0
check "cancels crossed from A to B (A's to_peer > 0)" test "${ta:-0}" -gt 0
check_eq "each of the 20 reached the warehouse once: forwarded A + B" 20 "$(( ${fa:-0} + ${fb:-0} ))"
for n in A B; do
  check_match "$n's log: a cancel sent to its peer" "cancel request from 127\.0\.0\.1:[0-9]+ sent to peer [12] " "$(cat "${LOG[$n]}")"
  check_match "$n's log: a cancel that came through the other instance" "cancel request from 127\.0\.0\.1:[0-9]+ came through a peer martgate instance" "$(cat "${LOG[$n]}")"
done

# ---- raw keys: forged, unconfigured peer, forwarded packets, the loop, the bound
cat >"$T_DIR/raw.py" <<'PY'
import os, socket, ssl, struct, threading, time, urllib.request, pgwire
R = pgwire.Report()
DB, CA, TOKEN, USER = os.environ["DB"], os.environ["MG_CA"], os.environ["MG_TOKEN"], os.environ["MG_USER"]
PORT = {n: int(os.environ["PORT_" + n]) for n in "ABCD"}
MPORT = {n: int(os.environ["MPORT_" + n]) for n in "ABCD"}
LOG = {n: os.environ["LOG_" + n] for n in "ABCD"}
CANCEL, FORWARDED = 80877102, (1234 << 16) | 5690
SRC = "127.0.0.5"   # not in proxy_protocol.trusted: straight to an instance, no header

def metric(n, result):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % MPORT[n], timeout=5).read().decode()
    for l in body.splitlines():
        if l.startswith('martgate_cancel_requests_total{result="%s"} ' % result):
            return int(l.split()[-1])
    return None

def counts():
    return {(n, r): metric(n, r) for n in "ABCD" for r in ("forwarded", "refused", "to_peer")}

def delta(before, after):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}

def log_count(n, needle):
    with open(LOG[n], errors="replace") as f:
        return sum(needle in l for l in f)

def login(n):
    return pgwire.Conn("127.0.0.1", PORT[n], timeout=10, source=SRC).login(USER, DB, TOKEN, tls_ca=CA)

def send(n, pid, key, code=CANCEL, tls=False):
    """One cancel packet on a fresh connection; waits for martgate to close it."""
    c = pgwire.Conn("127.0.0.1", PORT[n], timeout=5, source=SRC)
    if tls:
        c.ssl_request(CA)
    c.send(struct.pack("!IIII", 16, code, pid & 0xffffffff, key & 0xffffffff))
    closed, msgs = c.wait_closed(5)
    c.close()
    return closed, msgs

def with_peer(pid, peer):
    return (pid & ~(0xff << 23)) | (peer << 23)

def settle(seconds=1.0):
    time.sleep(seconds)

def sleeps_through(c, sql, send_it, delay=0.3):
    """Runs sql on c while send_it() runs after delay; (rows, seconds)."""
    th = threading.Thread(target=lambda: (time.sleep(delay), send_it()))
    th.start()
    t0 = time.monotonic()
    m = c.query(sql)
    took = time.monotonic() - t0
    th.join()
    return pgwire.summarize(m), took

a = login("A")
R.check("a session on A straight from 127.0.0.5 has a key with A's peer id (1)", (a.pid >> 23) & 0xff == 1, hex(a.pid))
b = login("B")
R.check("... and one on B with B's (2)", (b.pid >> 23) & 0xff == 2, hex(b.pid))
R.check("the keys are positive int32s", 0 < a.pid < 2**31 and 0 < b.pid < 2**31, (a.pid, b.pid))

# the right key, sent to the other instance directly (no balancer): cancelled
c0 = counts()
rows, took = sleeps_through(a, "select pg_sleep(30)", lambda: send("B", a.pid, a.key))
R.check("A's key sent to B cancels A's pg_sleep(30) with 57014", rows[:1] and rows[0].startswith("ERROR 57014"), rows)
R.check("... within 1 s of the cancel (%.0f ms)" % ((took - 0.3) * 1000), took - 0.3 <= 1.0, "%.2f s" % took)
settle(0.3)
d = delta(c0, counts())
R.check("... counted once: B to_peer +1, A forwarded +1, nothing else", d == {("B", "to_peer"): 1, ("A", "forwarded"): 1}, d)

# a forged key: A's peer id and pid, a wrong secret, sent to B: forwarded once, refused by A
c0 = counts()
rows, took = sleeps_through(a, "select pg_sleep(1.5), 'finished'", lambda: send("B", a.pid, a.key ^ 0x5a5a5a5a))
R.check("a forged key (A's pid, wrong secret) sent to B cancels nothing", rows[:1] == ["ROW |finished"] and took >= 1.4,
        "%r after %.2f s" % (rows, took))
settle(0.3)
d = delta(c0, counts())
R.check("... B sent it to A once, A refused it", d == {("B", "to_peer"): 1, ("A", "refused"): 1}, d)
c0 = counts()
rows, took = sleeps_through(a, "select pg_sleep(1.5), 'finished'", lambda: send("A", a.pid, a.key ^ 1))
R.check("... and sent to A itself cancels nothing either", rows[:1] == ["ROW |finished"] and took >= 1.4, rows)
settle(0.3)
R.check("... refused by A, not forwarded", delta(c0, counts()) == {("A", "refused"): 1}, delta(c0, counts()))

# a key naming a peer id nobody configured (9): nothing at all
c0 = counts()
n0 = log_count("A", "which peers does not list")
rows, took = sleeps_through(a, "select pg_sleep(1.5), 'finished'", lambda: send("A", with_peer(a.pid, 9), a.key))
R.check("a key naming peer 9 (not configured) sent to A does nothing", rows[:1] == ["ROW |finished"] and took >= 1.4, rows)
settle(0.3)
d = delta(c0, counts())
R.check("... refused like a wrong key, no connection to anyone", d == {("A", "refused"): 1}, d)
R.check("... logged (rate-limited): 'a key naming peer 9, which peers does not list'",
        log_count("A", "a key naming peer 9, which peers does not list") > 0 and log_count("A", "which peers does not list") == n0 + 1)
# a key naming the receiver's own id that no session has: refused as today
c0 = counts()
send("A", with_peer(b.pid, 1), b.key)
settle(0.3)
R.check("a key with A's own id that no session has: refused by A, not forwarded", delta(c0, counts()) == {("A", "refused"): 1},
        delta(c0, counts()))

# a forwarded packet sent by the test: handled like a cancel, never forwarded again
c0 = counts()
rows, took = sleeps_through(a, "select pg_sleep(30)", lambda: send("A", a.pid, a.key, code=FORWARDED))
R.check("a raw forwarded cancel with A's key, sent to A, cancels (57014)", rows[:1] and rows[0].startswith("ERROR 57014"), rows)
settle(0.3)
R.check("... counted as forwarded to the warehouse", delta(c0, counts()) == {("A", "forwarded"): 1}, delta(c0, counts()))
c0 = counts()
rows, took = sleeps_through(b, "select pg_sleep(1.5), 'finished'", lambda: send("A", b.pid, b.key, code=FORWARDED))
R.check("a raw forwarded cancel with B's (right) key sent to A is not forwarded to B: B's query finishes",
        rows[:1] == ["ROW |finished"] and took >= 1.4, rows)
settle(0.3)
d = delta(c0, counts())
R.check("... A refused it (matches no session here), no to_peer anywhere", d == {("A", "refused"): 1}, d)
R.check("... logged as a forwarded one", log_count("A", "matches no session (forwarded by a peer instance)") > 0)
c0 = counts()
closed, msgs = send("A", a.pid, a.key, code=FORWARDED, tls=True)
errs = [pgwire.error_fields(p) for t, p in msgs if t == "E"]
R.check("a forwarded cancel inside TLS is refused with 08P01", closed and errs and errs[0].get("C") == "08P01", msgs)
settle(0.3)
R.check("... and counts as no cancel", delta(c0, counts()) == {}, delta(c0, counts()))
rows = pgwire.summarize(a.query("select 'a still here'"))
R.check("A's session goes on after all of it", rows == ["ROW a still here", "CMD SELECT 1"], rows)

# two instances whose configs disagree: C (1) says 2 is D; D (3) says 2 is C.
# A key naming 2 would go C -> D -> C -> ... if a forwarded cancel were
# forwarded again: each goes exactly once.
c0 = counts()
nc, nd = log_count("C", "sent to peer 2"), log_count("D", "sent to peer 2")
for i in range(5):
    send("C", (2 << 23) | (1000 + i), 12345)
    send("D", (2 << 23) | (2000 + i), 12345)
settle(1.5)
d = delta(c0, counts())
want = {("C", "to_peer"): 5, ("D", "to_peer"): 5, ("C", "refused"): 5, ("D", "refused"): 5}
R.check("disagreeing peers: 5 cancels for id 2 to C and 5 to D: each sent on once and refused by the other, no storm",
        d == want, d)
settle(1.0)
R.check("... and nothing more after another second", delta(c0, counts()) == want, delta(c0, counts()))
R.check("... C logged sending to peer 2 (rate-limited, at most once a second)", 1 <= log_count("C", "sent to peer 2") - nc <= 5)
R.check("... so did D", 1 <= log_count("D", "sent to peer 2") - nd <= 5)

# the bound: a peer that never answers (id 4 on C, the black hole) holds at
# most 64 forwards for their 2 s; the rest are dropped with a log line
c0 = counts()
t0 = time.monotonic()
for i in range(100):
    send("C", (4 << 23) | (3000 + i), 1)
sent_for = time.monotonic() - t0
R.check("100 cancels for a peer that does not answer are taken at once (%.2f s)" % sent_for, sent_for < 1.8)
R.check("... beyond 64 in flight they are dropped with a log line",
        log_count("C", "for peer 4 dropped: 64 already on their way to peers") >= 1)
settle(2.5)
R.check("... the rest give up after 2 s, logged", log_count("C", "for peer 4 (127.0.0.1:") >= 1 and
        log_count("C", "not delivered: no answer to the connect within 2000 ms") >= 1)
d = delta(c0, counts())
R.check("... at most the one the black hole's queue took was written (to_peer <= 1)", d.get(("C", "to_peer"), 0) <= 1, d)
cc = login("C")
rows, took = sleeps_through(cc, "select pg_sleep(30)", lambda: send("C", cc.pid, cc.key))
R.check("C still cancels its own sessions after that (57014)", rows[:1] and rows[0].startswith("ERROR 57014"), rows)
cc.terminate()
a.terminate()
b.terminate()
PY
rc=0
out=$(PORT_A=${PORT[A]} PORT_B=${PORT[B]} PORT_C=${PORT[C]} PORT_D=${PORT[D]} \
      MPORT_A=${MPORT[A]} MPORT_B=${MPORT[B]} MPORT_C=${MPORT[C]} MPORT_D=${MPORT[D]} \
      LOG_A=${LOG[A]} LOG_B=${LOG[B]} LOG_C=${LOG[C]} LOG_D=${LOG[D]} \
      PYT_TIMEOUT=150 pyf "$T_DIR/raw.py" 2>&1) || rc=$?
h_report_rc "raw.py" $rc "$out"

# ---- a reload that changes the peers: C forwards id 2 to A from then on -------------
sed -i "s/\"address\": \"127.0.0.1:${PORT[D]}\"/\"address\": \"127.0.0.1:${PORT[A]}\"/" "$MG_DIR/C.json"
nr=$(grep -c 'configuration reloaded' "${LOG[C]}" || true)
kill -HUP "${PID[C]}"
reloaded() { [ "$(grep -c 'configuration reloaded' "${LOG[C]}" || true)" -gt "$nr" ]; }
wait_until 10 reloaded || true
check "C reloaded its config" reloaded
ra=$(metric A refused)
PYTHONPATH=$H_PY timeout 20 /usr/bin/python3 - "${PORT[C]}" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5, source_address=("127.0.0.5", 0))
s.sendall(struct.pack("!IIII", 16, 80877102, (2 << 23) | 77, 1))
s.recv(16)
PY
sleep 0.5
check_eq "after the reload C sends id 2's cancels to the new address (A refuses the unknown key)" $(( ${ra:-0} + 1 )) "$(metric A refused)"

for n in A B C D; do
  if pid_alive "${PID[$n]}"; then ok "martgate $n still running"; else fail "martgate $n still running" "it exited" "$(tail -20 "${LOG[$n]}")"; fi
done
h_done

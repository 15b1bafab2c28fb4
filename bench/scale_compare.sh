#!/usr/bin/env bash
# scale_compare.sh: martgate's worker threads and cancel round trips (issue 15),
# on this machine, in one run.
#
# Throughput: pgbench select-only (-S), 64 clients, -M simple / prepared,
# against the warehouse direct, PgBouncer (session mode) and one martgate per
# BENCH_WORKERS value ("workers": N); every round runs each mode against each
# target (order rotated per round); prints tps per round, the median, the
# median as a ratio of direct and of PgBouncer, each martgate's median as a
# ratio of the first workers value's, and the proxy's CPU per transaction.
# Cancels: a session runs `select pg_sleep(30)`; once the warehouse shows it
# active, the client opens a connection, sends a CancelRequest, and the time
# until the session receives the 57014 ErrorResponse is one sample.
# BENCH_CANCELS samples each: direct, through each martgate, and through
# HAProxy (roundrobin, send-proxy-v2) in front of two martgate instances that
# peer (peer_id 1 and 2): every other sample opens one more connection through
# HAProxy, so about half the cancels land on the other instance and cross
# (counted per sample from the instances' to_peer metric).
#
# Settings (environment):
#   MARTGATE_BIN          default build/martgate
#   BENCH_ROUNDS=5        rounds
#   BENCH_SECONDS=5       seconds per pgbench run
#   BENCH_CLIENTS=64      pgbench clients (-c); BENCH_THREADS=2 (-j)
#   BENCH_SCALE=10        pgbench -i scale
#   BENCH_MODES="simple prepared"  pgbench -M modes (extended too, if wanted)
#   BENCH_WORKERS="1 2"   a martgate target mg-wN for each value
#   BENCH_TLS=0           1: clients use TLS to every target; 0: plaintext
#                         (martgate with allow_plaintext)
#   BENCH_CANCELS=20      cancel samples per target (0 skips them)
#   BENCH_SKIP_TPS=1      only the cancels
# Never run by the tests. Takes ~ ROUNDS x MODES x (2 + WORKERS) x (SECONDS + 1)
# plus a minute.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
: "${MARTGATE_BIN:=build/martgate}"
case $MARTGATE_BIN in /*) ;; *) MARTGATE_BIN=$repo/$MARTGATE_BIN ;; esac
export MARTGATE_BIN
ROUNDS=${BENCH_ROUNDS:-5}
SECS=${BENCH_SECONDS:-5}
CLIENTS=${BENCH_CLIENTS:-64}
THREADS=${BENCH_THREADS:-2}
SCALE=${BENCH_SCALE:-10}
TLS=${BENCH_TLS:-0}
CANCELS=${BENCH_CANCELS:-20}
read -r -a modes <<<"${BENCH_MODES:-simple prepared}"
read -r -a workers <<<"${BENCH_WORKERS:-1 2}"
# PgBouncer keeps its CLIENTS server connections after its clients leave, the
# warehouse may still be ending the previous run's backends: room for three sets
export MG_PG_MAX_CONNECTIONS=$((3 * CLIENTS + 40))
export H_TIMEOUT=$((SECS + 120))

. "$repo/tests/lib/harness.sh"
h_init scale
for tool in pgbench pgbouncer haproxy; do command -v $tool >/dev/null || { echo "bench: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }; done
have_martgate || { echo "bench: $MARTGATE_BIN not found (build it first)" >&2; exit 1; }
DB=bench
pg_createdb $DB
echo "# $(nproc) CPUs; $(pg_admin postgres -c 'show server_version'), max_connections $MG_PG_MAX_CONNECTIONS; $(pgbouncer --version | head -1); $(haproxy -v | head -1 | cut -d' ' -f1-3); client TLS: $([ "$TLS" = 1 ] && echo on || echo off)"

SSLMODE=disable
[ "$TLS" = 1 ] && SSLMODE=verify-full
PLAIN=$([ "$TLS" = 1 ] && echo false || echo true)
PGB_CLIENT_TLS=$([ "$TLS" = 1 ] && echo 1 || true) pgb_start $DB
declare -A PORT TOKEN PID
targets=(direct pgbouncer)
for w in "${workers[@]}"; do
  MG_WORKERS=$w MG_CFG_ALLOW_PLAINTEXT=$PLAIN MG_CFG_WAREHOUSE_SSLMODE=disable \
    MG_CFG_MAX_PENDING_ADDR=$((CLIENTS + 16)) mg_start $DB
  PORT[mg-w$w]=$MG_PORT; TOKEN[mg-w$w]=$MG_TOKEN; PID[mg-w$w]=$MG_PID
  targets+=("mg-w$w")
done
echo "# warehouse 127.0.0.1:$MG_PG_PORT, PgBouncer :$PGB_PORT$(for w in "${workers[@]}"; do printf ', martgate workers=%s :%s' "$w" "${PORT[mg-w$w]}"; done)"

# conninfo for a target
target_env() {
  unset PGSERVICE
  export PGHOST=127.0.0.1 PGSSLMODE=$SSLMODE PGSSLROOTCERT=$MG_CA PGCONNECT_TIMEOUT=10 PGDATABASE=$DB
  case $1 in
    direct)    export PGPORT=$MG_PG_PORT PGUSER=$MG_SVC_USER PGPASSWORD=$MG_SVC_PASS ;;
    pgbouncer) export PGPORT=$PGB_PORT PGUSER=$MG_SVC_USER PGPASSWORD=$MG_SVC_PASS ;;
    mg-w*)     export PGPORT=${PORT[$1]} PGUSER=$MG_USER PGPASSWORD=${TOKEN[$1]} ;;
  esac
}
# the proxy's own CPU time (user + system of all its threads, clock ticks)
proxy_pid() { case $1 in pgbouncer) echo "$PGB_PID" ;; mg-w*) echo "${PID[$1]}" ;; esac; }
proc_ticks() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
HZ=$(getconf CLK_TCK)

if [ -z "${BENCH_SKIP_TPS:-}" ]; then
  echo "# pgbench -i -s $SCALE"
  (target_env direct; PGSSLMODE=disable pgbench -i -q -s "$SCALE" >/dev/null 2>&1)
  pg_admin $DB -c "vacuum analyze" >/dev/null
  for t in "${targets[@]}"; do (target_env "$t"; pgbench -n -S -c "$CLIENTS" -j "$THREADS" -T 1 >/dev/null 2>&1) || true; done

  results=$T_DIR/results
  : >"$results"
  for r in $(seq 1 "$ROUNDS"); do
    order=("${targets[@]:$(( (r - 1) % ${#targets[@]} ))}" "${targets[@]:0:$(( (r - 1) % ${#targets[@]} ))}")
    for m in "${modes[@]}"; do
      for t in "${order[@]}"; do
        pid=$(proxy_pid "$t"); t0=$(proc_ticks "$pid")
        out=$(target_env "$t"; timeout $((SECS + 60)) pgbench -n -S -M "$m" -c "$CLIENTS" -j "$THREADS" -T "$SECS" 2>&1) || true
        t1=$(proc_ticks "$pid")
        tps=$(grep -o 'tps = [0-9.]*' <<<"$out" | head -1 | cut -d' ' -f3)
        txns=$(grep -o 'number of transactions actually processed: [0-9]*' <<<"$out" | grep -o '[0-9]*$' || echo 0)
        cpu=$(awk -v d=$((t1 - t0)) -v n="${txns:-0}" -v hz="$HZ" -v p="$pid" \
          'BEGIN { if (p == "" || n == 0) print "-"; else printf "%.1f", d * 1e6 / hz / n }')
        failed=$(grep -o 'number of failed transactions: [0-9]*' <<<"$out" | grep -o '[0-9]*$' || echo "?")
        if [ -z "$tps" ]; then echo "# round $r $m $t: pgbench failed: $(tail -2 <<<"$out" | tr '\n' ' ')"; tps=0; fi
        echo "$m $t $r $tps $failed $cpu" >>"$results"
        printf '# round %d  %-9s %-10s %10.0f tps (failed %s, proxy CPU %s us/txn)\n' "$r" "$m" "$t" "$tps" "$failed" "$cpu"
      done
    done
  done
fi

# ---- cancel round trips
if [ "$CANCELS" -gt 0 ]; then
  # two peering instances behind HAProxy (as in tests/integration/t_peers.sh)
  declare -A PP MP
  for n in 1 2; do PP[$n]=$(free_port); MP[$n]=$(free_port); done
  for n in 1 2; do
    o=$((3 - n))
    MG_PORT=${PP[$n]} MG_CFG_ALLOW_PLAINTEXT=$PLAIN MG_CFG_WAREHOUSE_SSLMODE=disable \
    MG_CFG_EXTRA="\"proxy_protocol\": {\"trusted\": [\"127.0.0.1/32\"]}, \"metrics\": {\"listen\": \"127.0.0.1:${MP[$n]}\"},
  \"peer_id\": $n, \"peers\": [{\"id\": $o, \"address\": \"127.0.0.1:${PP[$o]}\", \"proxy_protocol\": true}]" \
      mg_write_config "$MG_DIR/peer$n.json" $DB
    "$MARTGATE_BIN" serve --config "$MG_DIR/peer$n.json" 2>>"$MG_DIR/peer$n.log" &
    H_MG_PIDS+=($!)
  done
  # a trusted address must send a PROXY header: readiness is the metrics port
  for n in 1 2; do wait_until 10 port_open "${MP[$n]}" || { echo "bench: peer $n did not start: $(tail -3 "$MG_DIR/peer$n.log")" >&2; exit 1; }; done
  HP=$(free_port)
  # no health checks: both servers stay UP, so the round robin strictly alternates
  cat >"$T_DIR/haproxy.cfg" <<HAP
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
  server mg1 127.0.0.1:${PP[1]} send-proxy-v2
  server mg2 127.0.0.1:${PP[2]} send-proxy-v2
HAP
  haproxy_start "$T_DIR/haproxy.cfg" "$HP" >"$T_DIR/why" || { echo "bench: $(cat "$T_DIR/why")" >&2; exit 1; }
  # port_open's connection took one turn of the round robin; no matter

  cat >"$T_DIR/cancel.py" <<'PY'
# cancel.py LABEL PORT USER PASSWORD TLS N [METRICS_PORT,...]: N samples of
# "LABEL MS CROSSED" (CROSSED: 1/0 from the to_peer metric deltas, - without)
import os, socket, struct, sys, time, urllib.request, pgwire
label, port, user, pw, tls, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1", int(sys.argv[6])
mports = [int(p) for p in sys.argv[7].split(",")] if len(sys.argv) > 7 else []
db, ca = os.environ["DB"], os.environ["MG_CA"]
SQL = "select pg_sleep(30)"
mon = pgwire.Conn(port=int(os.environ["MG_PG_PORT"]), unix_dir=os.environ["MG_PG_SOCK"])
mon.startup("pgadmin", "postgres")
mon.finish_login(None)

def running():
    return "ROW 1" in pgwire.summarize(mon.query(
        "select count(*) from pg_stat_activity where state = 'active' and query = '%s'" % SQL))

def to_peer():
    total = 0
    for mp in mports:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mp, timeout=5).read().decode()
        total += sum(int(l.split()[-1]) for l in body.splitlines()
                     if l.startswith('martgate_cancel_requests_total{result="to_peer"} '))
    return total

def login():
    return pgwire.Conn("127.0.0.1", port, timeout=10).login(user, db, pw, tls_ca=ca if tls else None, tls=tls)

for i in range(n):
    s = login()
    s.send(pgwire.msg("Q", pgwire.cstr(SQL)))
    end = time.monotonic() + 10
    while not running() and time.monotonic() < end:
        time.sleep(0.002)
    if mports and i % 2 == 1:
        login().terminate()          # one more turn of the round robin
    before = to_peer() if mports else 0
    t0 = time.perf_counter()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(struct.pack("!iiii", 16, 80877102, s.pid, s.key))
    code = None
    try:
        while True:
            t, p = s.read_msg()
            if t == "E":
                t1 = time.perf_counter()
                code = pgwire.error_fields(p).get("C")
                break
    except (socket.timeout, pgwire.Closed):
        pass
    c.close()
    if code != "57014":
        print("# %s sample %d: no 57014 (got %s)" % (label, i, code), flush=True)
        s.close()
        continue
    s.until_ready()
    s.terminate()
    crossed = "-"
    if mports:
        time.sleep(0.02)
        crossed = "1" if to_peer() > before else "0"
    print("%s %.3f %s" % (label, (t1 - t0) * 1000, crossed), flush=True)
PY
  cres=$T_DIR/cancels
  : >"$cres"
  plain=$([ "$TLS" = 1 ] && echo 1 || echo 0)
  runc() { DB=$DB PYTHONPATH=$H_PY timeout 300 /usr/bin/python3 "$T_DIR/cancel.py" "$@" | tee -a "$cres" | grep '^#' || true; }
  runc direct "$MG_PG_PORT" "$MG_SVC_USER" "$MG_SVC_PASS" "$plain" "$CANCELS"
  for w in "${workers[@]}"; do runc "mg-w$w" "${PORT[mg-w$w]}" "$MG_USER" "${TOKEN[mg-w$w]}" "$plain" "$CANCELS"; done
  runc haproxy "$HP" "$MG_USER" "$MG_TOKEN" "$plain" "$CANCELS" "${MP[1]},${MP[2]}"
fi

# ---- summary
echo
if [ -z "${BENCH_SKIP_TPS:-}" ]; then
  echo "pgbench -S, $CLIENTS clients, $THREADS threads, ${SECS}s x $ROUNDS rounds, client TLS $([ "$TLS" = 1 ] && echo on || echo off)"
  /usr/bin/python3 - "$results" "${targets[@]}" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
targets = sys.argv[2:]
mgs = [t for t in targets if t.startswith("mg-w")]
modes = list(dict.fromkeys(r[0] for r in rows))
print("%-9s %-10s %-40s %8s %8s %10s %8s %10s" % ("mode", "target", "tps per round", "median", "/direct", "/pgbouncer",
                                                "/" + mgs[0] if mgs else "", "CPU us/txn"))
for m in modes:
    v = {t: [float(r[3]) for r in rows if r[0] == m and r[1] == t] for t in targets}
    med = {t: statistics.median(v[t]) if v[t] else 0.0 for t in targets}
    for t in targets:
        cpu = [float(r[5]) for r in rows if r[0] == m and r[1] == t and r[5] != "-"]
        ratio = lambda o: "%.2f" % (med[t] / med[o]) if med.get(o) else "-"
        print("%-9s %-10s %-40s %8.0f %8s %10s %8s %10s" % (
            m, t, " ".join("%.0f" % x for x in v[t]), med[t], ratio("direct"), ratio("pgbouncer"),
            ratio(mgs[0]) if t.startswith("mg-w") else "", "%.1f" % statistics.median(cpu) if cpu else "-"))
PY
fi
if [ "$CANCELS" -gt 0 ]; then
  echo
  echo "cancel round trip: CancelRequest connection opened -> 57014 ErrorResponse on the session (ms)"
  /usr/bin/python3 - "$cres" <<'PY'
import math, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
def line(name, xs):
    xs = sorted(xs)
    if not xs:
        print("%-32s %3d" % (name, 0)); return
    p90 = xs[max(0, math.ceil(0.9 * len(xs)) - 1)]
    print("%-32s %3d %8.2f %8.2f %8.2f" % (name, len(xs), statistics.median(xs), p90, xs[-1]))
print("%-32s %3s %8s %8s %8s" % ("target", "n", "median", "p90", "max"))
names = {"direct": "direct (PostgreSQL)", "haproxy": "HAProxy + 2 peering martgates"}
for label in dict.fromkeys(r[0] for r in rows):
    xs = [float(r[1]) for r in rows if r[0] == label]
    line(names.get(label, "martgate workers=" + label[4:] if label.startswith("mg-w") else label), xs)
    if label == "haproxy":
        line("  same instance", [float(r[1]) for r in rows if r[0] == label and r[2] == "0"])
        line("  crossed to the peer", [float(r[1]) for r in rows if r[0] == label and r[2] == "1"])
PY
fi

#!/usr/bin/env bash
# pgbench_compare.sh: martgate's relay against the warehouse direct and against
# PgBouncer (session mode), on this machine, in one interleaved run.
#
# Throughput: pgbench select-only (-S), 8 clients, -M simple / extended /
# prepared; every round runs each mode against each target (order rotated per
# round); prints tps per round, the median, the median as a ratio of direct, and
# the proxy process's own CPU time per transaction (/proc/PID/stat; median).
# Memory: opens N idle logged-in sessions through martgate and through PgBouncer
# and reports the RSS growth per session (KiB), with and without client TLS.
#
# Settings (environment):
#   MARTGATE_BIN       default build/martgate
#   BENCH_ROUNDS=3     rounds
#   BENCH_SECONDS=5    seconds per pgbench run
#   BENCH_CLIENTS=8    pgbench clients (-c); BENCH_THREADS=2 (-j)
#   BENCH_SCALE=10     pgbench -i scale
#   BENCH_TLS=0        1: clients use TLS to all three targets (PostgreSQL ssl,
#                      PgBouncer client_tls, martgate); 0: plaintext everywhere
#                      (martgate with allow_plaintext) so only the relay differs
#   BENCH_SESSIONS=200 idle sessions for the memory figures (0 skips them)
#   BENCH_SKIP_TPS=1   only the memory figures
#   BENCH_POLICY=1     martgate enforces a policy (the pgbench tables in a
#                      readable dataset): every statement parsed and decided
#   BENCH_METRICS=1    one more target, mg+metrics: the same martgate with its
#                      operations listener on (metrics.listen), /metrics
#                      scraped every second during the run, to show its cost
#   BENCH_AUDIT=1      one more target, mg+audit: the same martgate with the
#                      audit log on (normalized query text), to measure its cost
# Never run by the tests. Takes ~ ROUNDS x 9 x SECONDS plus a minute.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
: "${MARTGATE_BIN:=build/martgate}"
case $MARTGATE_BIN in /*) ;; *) MARTGATE_BIN=$repo/$MARTGATE_BIN ;; esac
export MARTGATE_BIN
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-5}
CLIENTS=${BENCH_CLIENTS:-8}
THREADS=${BENCH_THREADS:-2}
SCALE=${BENCH_SCALE:-10}
TLS=${BENCH_TLS:-0}
SESSIONS=${BENCH_SESSIONS:-200}
# PgBouncer keeps its server connections after its clients leave: room for both
export MG_PG_MAX_CONNECTIONS=$((2 * SESSIONS + 60))
export H_TIMEOUT=$((SECS + 120))

. "$repo/tests/lib/harness.sh"
h_init bench
for tool in pgbench pgbouncer; do command -v $tool >/dev/null || { echo "bench: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }; done
DB=bench
pg_createdb $DB
echo "# $(nproc) CPUs; $(pg_admin postgres -c 'show server_version'); $(pgbouncer --version | head -1); client TLS: $([ "$TLS" = 1 ] && echo on || echo off)"

SSLMODE=disable
[ "$TLS" = 1 ] && SSLMODE=verify-full
if [ -n "${BENCH_POLICY:-}" ]; then
  cat >"$T_DIR/bench-policy.json" <<'JSON'
{
  "datasets": {"bench": {"schemas": ["public"], "description": "pgbench tables"}},
  "defaults": {"search_path": [{"schemas": ["public"]}]},
  "rules": [{"id": "analysts-read-bench", "subjects": {"groups": ["analysts"]},
             "objects": {"datasets": ["bench"]}, "access": "read"}]
}
JSON
  export MG_CFG_EXTRA="\"policy\": \"$T_DIR/bench-policy.json\""
fi
PGB_CLIENT_TLS=$([ "$TLS" = 1 ] && echo 1 || true) pgb_start $DB
have_mg=0
if have_martgate; then
  MG_CFG_ALLOW_PLAINTEXT=$([ "$TLS" = 1 ] && echo false || echo true) MG_CFG_WAREHOUSE_SSLMODE=disable \
    MG_CFG_MAX_CLIENTS=$((SESSIONS + 100)) mg_start $DB && have_mg=1
else
  echo "# $MARTGATE_BIN not found: measuring direct and PgBouncer only"
fi
if [ $have_mg -eq 1 ] && [ -n "${BENCH_AUDIT:-}" ]; then
  # a second martgate, the same but auditing every statement
  MG_A_PORT=$MG_PORT; MG_A_TOKEN=$MG_TOKEN; MG_A_PID=$MG_PID
  MG_CFG_EXTRA="${MG_CFG_EXTRA:+$MG_CFG_EXTRA, }\"audit\": {\"file\": \"$T_DIR/audit.jsonl\"}" \
  MG_CFG_ALLOW_PLAINTEXT=$([ "$TLS" = 1 ] && echo false || echo true) MG_CFG_WAREHOUSE_SSLMODE=disable \
    MG_CFG_MAX_CLIENTS=$((SESSIONS + 100)) mg_start $DB
  MG_AUD_PORT=$MG_PORT; MG_AUD_TOKEN=$MG_TOKEN
  MG_AUD_PID=$MG_PID
  MG_PORT=$MG_A_PORT; MG_TOKEN=$MG_A_TOKEN; MG_PID=$MG_A_PID
fi
if [ $have_mg -eq 1 ] && [ -n "${BENCH_METRICS:-}" ]; then
  MG_A_PORT=$MG_PORT; MG_A_TOKEN=$MG_TOKEN; MG_A_PID=$MG_PID
  MG_MET_HTTP=$(free_port)
  MG_CFG_EXTRA="${MG_CFG_EXTRA:+$MG_CFG_EXTRA, }\"metrics\": {\"listen\": \"127.0.0.1:$MG_MET_HTTP\"}" \
  MG_CFG_ALLOW_PLAINTEXT=$([ "$TLS" = 1 ] && echo false || echo true) MG_CFG_WAREHOUSE_SSLMODE=disable \
    MG_CFG_MAX_CLIENTS=$((SESSIONS + 100)) mg_start $DB
  MG_MET_PORT=$MG_PORT; MG_MET_TOKEN=$MG_TOKEN; MG_MET_PID=$MG_PID
  MG_PORT=$MG_A_PORT; MG_TOKEN=$MG_A_TOKEN; MG_PID=$MG_A_PID
  # a Prometheus-like scrape every second for the whole run
  h_bg bash -c "while sleep 1; do curl -s -o /dev/null http://127.0.0.1:$MG_MET_HTTP/metrics; done"
fi
echo "# martgate: $([ -n "${BENCH_POLICY:-}" ] && echo "policy enforced" || echo "no policy (relay only)")""$([ -n "${BENCH_AUDIT:-}" ] && echo "; mg+audit: the same with the audit log on")""$([ -n "${BENCH_METRICS:-}" ] && echo "; mg+metrics: the same with /metrics on, scraped every second")"
echo "# warehouse 127.0.0.1:$MG_PG_PORT, PgBouncer :$PGB_PORT${MG_PORT:+, martgate :$MG_PORT}"

# conninfo for a target
target_env() {
  unset PGSERVICE
  export PGHOST=127.0.0.1 PGSSLMODE=$SSLMODE PGSSLROOTCERT=$MG_CA PGCONNECT_TIMEOUT=10 PGDATABASE=$DB
  case $1 in
    direct)    export PGPORT=$MG_PG_PORT PGUSER=$MG_SVC_USER PGPASSWORD=$MG_SVC_PASS ;;
    pgbouncer) export PGPORT=$PGB_PORT PGUSER=$MG_SVC_USER PGPASSWORD=$MG_SVC_PASS ;;
    martgate)  export PGPORT=$MG_PORT PGUSER=$MG_USER PGPASSWORD=$MG_TOKEN ;;
    mg+audit)  export PGPORT=$MG_AUD_PORT PGUSER=$MG_USER PGPASSWORD=$MG_AUD_TOKEN ;;
    mg+metrics) export PGPORT=$MG_MET_PORT PGUSER=$MG_USER PGPASSWORD=$MG_MET_TOKEN ;;
  esac
}

# the proxy's own CPU time (user + system, clock ticks) and the ticks a second
proxy_pid() { case $1 in pgbouncer) echo "$PGB_PID" ;; martgate) echo "$MG_PID" ;; mg+audit) echo "${MG_AUD_PID:-}" ;; mg+metrics) echo "${MG_MET_PID:-}" ;; esac; }
proc_ticks() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{print $14 + $15}' "/proc/$1/stat" || echo 0; }
HZ=$(getconf CLK_TCK)

targets=(direct pgbouncer)
[ $have_mg -eq 1 ] && targets+=(martgate)
[ $have_mg -eq 1 ] && [ -n "${BENCH_AUDIT:-}" ] && targets+=(mg+audit)
[ $have_mg -eq 1 ] && [ -n "${BENCH_METRICS:-}" ] && targets+=(mg+metrics)
modes=(simple extended prepared)
# connect: a new session per transaction (pgbench -C, simple protocol), the
# login path: startup, JWT, the warehouse connect and its parse-settings check
[ "${BENCH_CONNECT:-1}" = 1 ] && modes+=(connect)

if [ -z "${BENCH_SKIP_TPS:-}" ]; then
  echo "# pgbench -i -s $SCALE"
  (target_env direct; PGSSLMODE=disable pgbench -i -q -s "$SCALE" >/dev/null 2>&1)
  pg_admin $DB -c "vacuum analyze" >/dev/null
  # warm up every path once
  for t in "${targets[@]}"; do (target_env "$t"; pgbench -n -S -c "$CLIENTS" -j "$THREADS" -T 1 >/dev/null 2>&1) || true; done

  results=$T_DIR/results
  : >"$results"
  for r in $(seq 1 "$ROUNDS"); do
    # rotate the target order each round so no target always runs first
    order=("${targets[@]:$(( (r - 1) % ${#targets[@]} ))}" "${targets[@]:0:$(( (r - 1) % ${#targets[@]} ))}")
    for m in "${modes[@]}"; do
      for t in "${order[@]}"; do
        pid=$(proxy_pid "$t"); t0=$(proc_ticks "$pid")
        margs=(-M "$m"); [ "$m" = connect ] && margs=(-M simple -C)
        out=$(target_env "$t"; timeout $((SECS + 60)) pgbench -n -S "${margs[@]}" -c "$CLIENTS" -j "$THREADS" -T "$SECS" 2>&1) || true
        t1=$(proc_ticks "$pid")
        tps=$(grep -o 'tps = [0-9.]*' <<<"$out" | head -1 | cut -d' ' -f3)
        txns=$(grep -o 'number of transactions actually processed: [0-9]*' <<<"$out" | grep -o '[0-9]*$' || echo 0)
        # microseconds of the proxy's CPU per transaction (direct: none)
        cpu=$(awk -v d=$((t1 - t0)) -v n="${txns:-0}" -v hz="$HZ" -v p="$pid" \
          'BEGIN { if (p == "" || n == 0) print "-"; else printf "%.1f", d * 1e6 / hz / n }')
        failed=$(grep -o 'number of failed transactions: [0-9]*' <<<"$out" | grep -o '[0-9]*$' || echo "?")
        if [ -z "$tps" ]; then echo "# round $r $m $t: pgbench failed: $(tail -2 <<<"$out" | tr '\n' ' ')"; tps=0; fi
        echo "$m $t $r $tps $failed $cpu" >>"$results"
        printf '# round %d  %-9s %-10s %10.0f tps (failed %s, proxy CPU %s us/txn)\n' "$r" "$m" "$t" "$tps" "$failed" "$cpu"
      done
    done
  done

  echo
  echo "pgbench -S, $CLIENTS clients, $THREADS threads, ${SECS}s x $ROUNDS rounds, client TLS $([ "$TLS" = 1 ] && echo on || echo off)"
  python3 - "$results" "${targets[@]}" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
targets = sys.argv[2:]
modes = [m for m in ["simple", "extended", "prepared", "connect"] if any(r[0] == m for r in rows)]
print("%-9s %-10s %-32s %10s %8s %10s %12s" % ("mode", "target", "tps per round", "median", "ratio", "/pgbouncer",
                                           "CPU us/txn"))
for m in modes:
    med = {}
    for t in targets:
        v = [float(r[3]) for r in rows if r[0] == m and r[1] == t]
        med[t] = statistics.median(v) if v else 0.0
    for t in targets:
        v = [float(r[3]) for r in rows if r[0] == m and r[1] == t]
        ratio = med[t] / med["direct"] if med.get("direct") else 0
        vs = med[t] / med["pgbouncer"] if med.get("pgbouncer") else 0
        cpu = [float(r[5]) for r in rows if r[0] == m and r[1] == t and len(r) > 5 and r[5] != "-"]
        cpus = "%.1f" % statistics.median(cpu) if cpu else "-"
        print("%-9s %-10s %-32s %10.0f %8.2f %10.2f %12s" % (m, t, " ".join("%.0f" % x for x in v), med[t], ratio, vs,
                                                         cpus))
    if "mg+metrics" in med and med.get("martgate"):
        print("%-9s metrics cost: %.1f%% of martgate's throughput" % (m, 100 * (1 - med["mg+metrics"] / med["martgate"])))
    if "mg+audit" in med and med.get("martgate"):
        print("%-9s audit cost: %.1f%% of martgate's throughput" % (m, 100 * (1 - med["mg+audit"] / med["martgate"])))
PY
fi

# ---- memory per idle session
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cat >"$T_DIR/hold.py" <<'PY'
# hold.py PORT USER PASSWORD DB N TLS(0/1) [HALF]: open N logged-in sessions,
# print READY, keep them until stdin closes. With HALF: after the first N/2,
# print HALF and wait for a line on stdin before the rest.
import sys, pgwire
port, user, pw, db, n, tls = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] == "1"
half = len(sys.argv) > 7
conns = []
for i in range(n):
    if half and i == n // 2:
        print("HALF", flush=True)
        sys.stdin.readline()
    c = pgwire.Conn(port=port, timeout=30)
    if tls:
        c.ssl_request(None)
    c.startup(user, db)
    c.finish_login(pw)
    c.query("select 1")
    conns.append(c)
print("READY", flush=True)
sys.stdin.read()
for c in conns:
    c.terminate()
PY
hold_ready() { grep -q READY "$1" || pid_gone "$2"; }   # OUT PID: ready, or gave up
hold_half() { grep -q HALF "$1" || pid_gone "$2"; }
# measure LABEL PID PORT USER PASSWORD TLS [WARM]
measure() {
  local label=$1 pid=$2 port=$3 user=$4 pw=$5 tls=$6 warm=${7:-1} before mid after fifo out
  fifo=$T_DIR/hold.$label.fifo; out=$T_DIR/hold.$label.out
  rm -f "$fifo"; mkfifo "$fifo"
  # WARM sessions at once first (one per event loop: each worker thread's
  # first session makes its malloc arena), so that one-time allocations are
  # not counted per session
  PYTHONPATH=$H_PY timeout 60 python3 "$T_DIR/hold.py" "$port" "$user" "$pw" $DB "$warm" "$tls" </dev/null >/dev/null 2>&1 || true
  sleep 0.5
  before=$(rss_kib "$pid")
  PYTHONPATH=$H_PY timeout 300 python3 "$T_DIR/hold.py" "$port" "$user" "$pw" $DB "$SESSIONS" "$tls" half <"$fifo" >"$out" 2>&1 &
  local hp=$!
  H_BG_PIDS+=("$hp")
  exec {wfd}>"$fifo"
  if ! wait_until 120 hold_half "$out" "$hp" || ! grep -q HALF "$out"; then
    echo "# $label: sessions did not open: $(tail -1 "$out")"; exec {wfd}>&-; wait "$hp" 2>/dev/null || true; return 0
  fi
  sleep 1
  mid=$(rss_kib "$pid")
  echo go >&"$wfd"
  if ! wait_until 120 hold_ready "$out" "$hp" || ! grep -q READY "$out"; then
    echo "# $label: sessions did not open: $(tail -1 "$out")"; exec {wfd}>&-; wait "$hp" 2>/dev/null || true; return 0
  fi
  sleep 1
  after=$(rss_kib "$pid")
  exec {wfd}>&-
  wait "$hp" 2>/dev/null || true
  printf '%-28s RSS %7d KiB -> %7d KiB with %d idle sessions: %6.1f KiB per session, %5.1f KiB each of the second %d\n' \
    "$label" "$before" "$after" "$SESSIONS" "$(awk -v a="$after" -v b="$before" -v n="$SESSIONS" 'BEGIN{print (a-b)/n}')" \
    "$(awk -v a="$after" -v m="$mid" -v n="$((SESSIONS - SESSIONS / 2))" 'BEGIN{print (a-m)/n}')" "$((SESSIONS - SESSIONS / 2))"
}
# martgate's event loops: MG_WORKERS, else its default (one per core, at most 32)
mg_loops=${MG_WORKERS:-$(nproc)}
[ "$mg_loops" -gt 32 ] && mg_loops=32
if [ "$SESSIONS" -gt 0 ]; then
  echo
  echo "memory: RSS growth for $SESSIONS idle, logged-in sessions"
  measure "pgbouncer (client TLS $([ "$TLS" = 1 ] && echo on || echo off))" "$PGB_PID" "$PGB_PORT" "$MG_SVC_USER" "$MG_SVC_PASS" "$([ "$TLS" = 1 ] && echo 1 || echo 0)"
  if [ $have_mg -eq 1 ]; then
    # a fresh martgate for each figure, so freed memory of the previous one is not reused
    mg_stop
    MG_CFG_ALLOW_PLAINTEXT=$([ "$TLS" = 1 ] && echo false || echo true) MG_CFG_WAREHOUSE_SSLMODE=disable \
      MG_CFG_MAX_CLIENTS=$((SESSIONS + 100)) mg_start $DB
    measure "martgate (client TLS $([ "$TLS" = 1 ] && echo on || echo off))" "$MG_PID" "$MG_PORT" "$MG_USER" "$MG_TOKEN" "$([ "$TLS" = 1 ] && echo 1 || echo 0)" "$mg_loops"
    if [ "$TLS" != 1 ]; then
      # the production shape: TLS on the client side
      mg_stop
      MG_CFG_WAREHOUSE_SSLMODE=disable MG_CFG_MAX_CLIENTS=$((SESSIONS + 100)) mg_start $DB
      measure "martgate (client TLS on)" "$MG_PID" "$MG_PORT" "$MG_USER" "$MG_TOKEN" 1 "$mg_loops"
    fi
  fi
fi

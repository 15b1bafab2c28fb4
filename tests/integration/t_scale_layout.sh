#!/usr/bin/env bash
# The reference layout of docs/scaling.md, from its own files
# (examples/scaling/martgate.json.in and haproxy.cfg.in, rendered on
# 127.0.0.1): a real HAProxy (roundrobin, send-proxy-v2, httpchk on /readyz)
# in front of two martgate instances (peer_id 1 and 2, two workers each)
# over a primary and a streaming standby made by pg_basebackup. Both
# instances are UP in HAProxy; readers land on the standby and writers on the
# primary through the balancer, and sessions reach both instances; ten
# cancels through the balancer end their pg_sleep(30) within a second, some
# crossing instances; the same policy file and one SIGHUP each narrow access
# on both; the audit of both instances lands in the one warehouse table, in
# order per (peer_id, session).
unset MG_PG_PORT   # a primary of its own, with a standby
. "$(dirname "$0")/../lib/harness.sh"
h_init scale_layout
need_martgate
command -v haproxy >/dev/null || h_die "haproxy is missing (scripts/install-deps.sh installs it)"
EX=$(cd "$(dirname "$0")/../../examples/scaling" && pwd)
PRIMARY_PORT=$MG_PG_PORT
DB=t_scale_layout
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA mart; CREATE TABLE mart.t (a int); INSERT INTO mart.t VALUES (1), (2);
SQL

# ---- the standby
pg_standby_start >"$T_DIR/why" || h_die "$(cat "$T_DIR/why")"

# ---- the two instances and HAProxy, from the example's templates
mg_setup_keys
SECRETS=$T_DIR/secrets
mkdir -p "$SECRETS" "$T_DIR/audit1" "$T_DIR/audit2"
cp "$MG_HS_SECRET" "$SECRETS/jwt-hs256.key"
cp "$MG_DIR/svc.pass" "$SECRETS/warehouse.pass"
cp "$MG_HASH_KEY" "$SECRETS/hash-mask.key"
write_policy() { # ANALYSTS_ACCESS: read, or none
  local analysts=""
  [ "$1" = read ] && analysts=', {"id": "analysts", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["mart"]}, "access": "read"}'
  cat >"$T_DIR/policy.json.new" <<JSON
{"datasets": {"mart": {"schemas": ["mart"]}},
 "rules": [{"id": "eng", "subjects": {"groups": ["eng"]}, "objects": {"datasets": ["mart"]}, "access": "write"}$analysts]}
JSON
  mv "$T_DIR/policy.json.new" "$T_DIR/policy.json"
}
write_policy read
declare -A PORT MPORT PID LOG
for n in 1 2; do PORT[$n]=$(free_port); MPORT[$n]=$(free_port); done
HP=$(free_port)
render_martgate() { # N OTHER
  sed -e "s|@LISTEN@|127.0.0.1:${PORT[$1]}|" -e "s|@PEER_ID@|$1|" -e "s|@OTHER_ID@|$2|" \
      -e "s|@OTHER_ADDRESS@|127.0.0.1:${PORT[$2]}|" -e "s|@TRUSTED_CIDR@|127.0.0.1/32|" \
      -e "s|@CERT_DIR@|$MG_CERTS|g" -e "s|@SECRETS_DIR@|$SECRETS|g" -e "s|@ISSUER@|$MG_ISS|" \
      -e "s|@AUDIENCE@|$MG_AUD|" -e "s|@PRIMARY@|127.0.0.1:$PRIMARY_PORT|g" \
      -e "s|@STANDBY@|127.0.0.1:$STANDBY_PORT|g" -e "s|@WAREHOUSE_DB@|$DB|g" \
      -e "s|@POLICY@|$T_DIR/policy.json|" -e "s|@AUDIT_DIR@|$T_DIR/audit$1|g" \
      -e "s|@METRICS_LISTEN@|127.0.0.1:${MPORT[$1]}|" "$EX/martgate.json.in"
}
for n in 1 2; do
  other=$((3 - n))
  render_martgate $n $other >"$T_DIR/martgate-$n.json"
  left=$(grep -o '@[A-Z_]*@' "$T_DIR/martgate-$n.json" | sort -u | tr '\n' ' ' || true)
  [ -z "$left" ] || h_die "martgate.json.in has tokens the test does not fill: $left"
  LOG[$n]=$T_DIR/martgate-$n.log
  "$MARTGATE_BIN" serve --config "$T_DIR/martgate-$n.json" 2>"${LOG[$n]}" &
  PID[$n]=$!
  H_MG_PIDS+=("${PID[$n]}")
done
for n in 1 2; do
  wait_until 20 grep -q "ready (pid ${PID[$n]})" "${LOG[$n]}" ||
    h_die "martgate $n did not start: $(tail -5 "${LOG[$n]}")"
done
sed -e "s|@STATS_SOCKET@|$T_DIR/haproxy.sock|" -e "s|@BIND@|127.0.0.1:$HP|" -e "s|@MG1@|127.0.0.1:${PORT[1]}|" \
    -e "s|@MG2@|127.0.0.1:${PORT[2]}|" -e "s|@MG1_METRICS_PORT@|${MPORT[1]}|" -e "s|@MG2_METRICS_PORT@|${MPORT[2]}|" \
    "$EX/haproxy.cfg.in" >"$T_DIR/haproxy.cfg"
haproxy_start "$T_DIR/haproxy.cfg" "$HP" >"$T_DIR/why" || h_die "$(cat "$T_DIR/why")"
servers_up() { # how many of the backend's two servers HAProxy has UP
  local n=0 m
  for m in mg1 mg2; do [ "$(haproxy_status "$T_DIR/haproxy.sock" martgate $m)" = UP ] && n=$((n + 1)); done
  echo $n
}
all_up() { [ "$(servers_up)" = 2 ]; }
wait_until 20 all_up || true
up=$(servers_up)
check_eq "both instances UP in HAProxy (httpchk on /readyz)" 2 "$up"

ENG=$(mg_token --sub erin --groups eng --ttl 1h)
ANA=$(mg_token --sub ana --groups analysts --ttl 1h)
via_lb() { # TOKEN USER SQL
  PGPASSWORD=$1 timeout 20 psql -X -qAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$HP dbname=analytics user=$2 sslmode=verify-full sslrootcert=$MG_CA" -c "$3" 2>&1 || true
}
logins() { # N: martgate_logins_total{result="ok"} of instance N
  curl -s "http://127.0.0.1:${MPORT[$1]}/metrics" | sed -n 's/^martgate_logins_total{result="ok"} //p'
}
where="select pg_is_in_recovery()::text || ' ' || inet_server_port()"
readers=""
for i in 1 2 3 4; do readers+="$(via_lb "$ANA" ana "$where")/"; done
check_eq "four readers through HAProxy land on the standby" \
  "true $STANDBY_PORT/true $STANDBY_PORT/true $STANDBY_PORT/true $STANDBY_PORT/" "$readers"
check_eq "a writer through HAProxy lands on the primary and writes" "false $PRIMARY_PORT" \
  "$(via_lb "$ENG" erin "insert into mart.t values (3); $where")"
l1=$(logins 1) l2=$(logins 2)
check "sessions reached both instances (logins: $l1 and $l2)" test "${l1:-0}" -ge 2 -a "${l2:-0}" -ge 2

# ---- cancels through the balancer
export HP ANA
out=$(pyt <<'PY' 2>&1
import os, threading, time, pgwire
R = pgwire.Report()
HP = int(os.environ["HP"])
cs = [pgwire.Conn("127.0.0.1", HP).login("ana", "analytics", os.environ["ANA"], tls_ca=os.environ["MG_CA"]) for _ in range(10)]
res = [None] * len(cs)
def run(i):
    m = cs[i].query("select pg_sleep(30)")
    res[i] = (time.monotonic(), pgwire.first_error(m))
ts = [threading.Thread(target=run, args=(i,)) for i in range(len(cs))]
for t in ts: t.start()
time.sleep(1.0)
# the balancer alternates: one connection more, so that the cancels do not
# line up with the logins and half of them land on the other instance
pgwire.Conn("127.0.0.1", HP).close()
sent = []
for c in cs:
    sent.append(time.monotonic())
    pgwire.send_cancel("127.0.0.1", HP, c.pid, c.key)
for t in ts: t.join(40)
R.check("ten cancels through HAProxy end pg_sleep(30) with 57014",
        all(r and r[1] and r[1].get("C") == "57014" for r in res), [r and r[1] for r in res])
worst = max((r[0] - s for r, s in zip(res, sent) if r), default=99)
R.check("... each within 1 s (worst %.0f ms)" % (worst * 1000), worst <= 1.0, worst)
R.check("... from sessions of both instances (peer ids in the keys)", {c.pid >> 23 for c in cs} == {1, 2},
        sorted({c.pid >> 23 for c in cs}))
for c in cs: c.terminate()
PY
)
h_report "$out"
to_peer=0
for n in 1 2; do
  v=$(curl -s "http://127.0.0.1:${MPORT[$n]}/metrics" | sed -n 's/^martgate_cancel_requests_total{result="to_peer"} //p')
  to_peer=$((to_peer + ${v:-0}))
done
check "some cancels crossed to the other instance (to_peer: $to_peer)" test "$to_peer" -ge 1

# ---- the same policy file, one SIGHUP each: narrowed on both
write_policy none
for n in 1 2; do
  c=$(grep -c 'configuration reloaded' "${LOG[$n]}" || true)
  kill -HUP "${PID[$n]}"
  wait_until 10 bash -c "[ \$(grep -c 'configuration reloaded' '${LOG[$n]}') -gt $c ]" || fail "instance $n reloads" "no log line"
done
denied=""
for i in 1 2 3 4; do denied+="$(via_lb "$ANA" ana "select count(*) from mart.t" | grep -o '^ERROR:  42501' | head -1)/"; done
check_eq "after the reload the analysts are denied mart (42501) on every instance" \
  "ERROR:  42501/ERROR:  42501/ERROR:  42501/ERROR:  42501/" "$denied"
check "... through both instances (logins grew on each)" test "$(logins 1)" -gt "$l1" -a "$(logins 2)" -gt "$l2"

# ---- the audit of both instances in the one warehouse table
for i in 1 2 3 4 5 6; do
  via_lb "$ENG" erin "select 1 as s1; select 2 as s2; select 3 as s3" >/dev/null
done
sleep 1
q="select coalesce(record->>'peer_id', '-') || ' ' || session_id || ' ' || btrim(query) from governance.audit_events
   where event = 'statement' and btrim(query) like 'select _ as s_' order by id"
rows=$(PGPASSWORD=$MG_SVC_PASS timeout 20 psql -X -qAt "$(direct_conninfo $DB)" -c "$q" 2>&1)
out=$(/usr/bin/python3 - "$rows" <<'PY'
import sys, collections
seq = collections.defaultdict(list)
for line in sys.argv[1].splitlines():
    peer, session, query = line.split(" ", 2)
    seq[(peer, session)].append(query)
peers = sorted({p for p, _ in seq})
ok = len(seq) == 6 and all(v == ["select 1 as s1", "select 2 as s2", "select 3 as s3"] for v in seq.values())
print(("PASS" if ok else "FAIL") + " the warehouse audit table has the six sessions' statements in order per (peer_id, session)" +
      ("" if ok else " | %r" % dict(seq)))
print(("PASS" if peers == ["1", "2"] else "FAIL") + " ... written by both instances (peer_id 1 and 2)" +
      ("" if peers == ["1", "2"] else " | %r" % peers))
PY
)
h_report "$out"
for n in 1 2; do check "instance $n still running" pid_alive "${PID[$n]}"; done
h_done

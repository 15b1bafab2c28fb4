#!/usr/bin/env bash
# Worker threads (issue 15), with "workers": 4: sessions spread over the four
# loops (SHOW SESSIONS' worker column, and the worker index in each cancel
# key); a CancelRequest that lands on another worker than the session's
# still cancels it within a second; max_clients and max_pending_per_address
# count across workers (exact refusals); KILL SESSION ends a session of
# another worker; /metrics sums every worker's logins exactly; a reload
# under pgbench loses no transaction, and a reload that narrows the policy
# holds for the next statement of a session on every worker; the audit keeps
# each session's statements in order.
. "$(dirname "$0")/../lib/harness.sh"
h_init workers
need_martgate
DB=t_workers
pg_createdb $DB
direct_psql $DB -q -c "CREATE SCHEMA mart; CREATE TABLE mart.t (a int); INSERT INTO mart.t VALUES (1)" >/dev/null
write_policy() { # ACCESS of the analysts to mart: read, or none
  local rules='[]'
  [ "$1" = read ] && rules='[{"id": "analysts-read", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["mart"]}, "access": "read"}]'
  cat >"$T_DIR/policy.json.new" <<JSON
{"datasets": {"mart": {"schemas": ["mart"]}}, "rules": $rules}
JSON
  mv "$T_DIR/policy.json.new" "$T_DIR/policy.json"
}
write_policy read
MPORT=$(free_port)
export MPORT
MG_WORKERS=4 MG_CFG_MAX_CLIENTS=12 MG_CFG_MAX_PENDING_ADDR=3 \
  MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\", \"admin\": {\"groups\": [\"ops\"]},
  \"metrics\": {\"listen\": \"127.0.0.1:$MPORT\"}, \"audit\": {\"file\": \"$T_DIR/audit.jsonl\", \"query_text\": \"full\"}" mg_start $DB ||
  h_die "martgate did not start"
check_match "martgate runs four worker threads" 'ready \(pid [0-9]+\), 4 worker threads' "$(cat "$MG_LOG")"
OPS=$(mg_token --sub olivia --groups ops --ttl 30m)
export DB OPS

out=$(pyt <<'PY' 2>&1
import os, re, socket, struct, threading, time, urllib.request, pgwire
R = pgwire.Report()
DB, PORT = os.environ["DB"], int(os.environ["MG_PORT"])

def admin():
    return pgwire.target_login("martgate", user="olivia", password=os.environ["OPS"])

def rows(c, sql):
    return [r[4:].split("|") for r in pgwire.summarize(c.query(sql)) if r.startswith("ROW ")]

def logins_ok():
    body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % os.environ["MPORT"], timeout=10).read().decode()
    m = re.search(r'^martgate_logins_total\{result="ok"\} (\d+)$', body, re.M)
    return int(m.group(1)) if m else -1

logins = 0
ops = admin(); logins += 1
sessions = []
for i in range(8):
    sessions.append(pgwire.target_login(DB)); logins += 1
# SHOW SESSIONS: client port -> worker
by_port = {}
for r in rows(ops, "SHOW SESSIONS"):
    by_port[int(r[4].rsplit(":", 1)[1])] = int(r[10])
workers = [by_port.get(c.sock.getsockname()[1], -1) for c in sessions]
R.check("SHOW SESSIONS lists every session with its worker", all(w >= 0 for w in workers), workers)
R.check("sessions spread over the four workers (least-loaded: 2 or 3 each with the console)",
        sorted(set(workers)) == [0, 1, 2, 3] and max(workers.count(k) for k in range(4)) <= 3, workers)
R.check("each cancel key carries the index of the worker that runs the session",
        all(((c.pid >> 18) & 31) == w for c, w in zip(sessions, workers)),
        [(c.pid >> 18 & 31, w) for c, w in zip(sessions, workers)])

# ---- cancels: every session runs pg_sleep(30), each cancelled by a fresh
# connection that the acceptor hands to whichever worker is least loaded
results = [None] * len(sessions)
def run(i):
    t0 = time.monotonic()
    m = sessions[i].query("select pg_sleep(30)")
    results[i] = (time.monotonic(), pgwire.first_error(m))
threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sessions))]
for t in threads: t.start()
time.sleep(1.0)
sent = []
for c in sessions:
    sent.append(time.monotonic())
    pgwire.send_cancel("127.0.0.1", PORT, c.pid, c.key)
for t in threads: t.join(40)
late = [round(r[0] - s, 2) for r, s in zip(results, sent) if r and r[0] - s > 1.0]
R.check("eight CancelRequests, on whichever worker they land, each cancel pg_sleep(30) with 57014",
        all(r and r[1] and r[1].get("C") == "57014" for r in results), [r and r[1] for r in results])
R.check("... each within 1 s of its CancelRequest", not late, late)
R.check("... and the sessions go on", all(pgwire.summarize(c.query("select 1")) == ["ROW 1", "CMD SELECT 1"] for c in sessions))
# a right pid with a wrong secret cancels nothing, whichever worker gets it
results[0] = None
t = threading.Thread(target=run, args=(0,)); t.start(); time.sleep(0.5)
pgwire.send_cancel("127.0.0.1", PORT, sessions[0].pid, sessions[0].key ^ 1)
pgwire.send_cancel("127.0.0.1", PORT, sessions[0].pid ^ (1 << 18), sessions[0].key)
time.sleep(1.0)
R.check("a wrong secret, or the right one under another worker's index, cancels nothing",
        results[0] is None and t.is_alive(), results[0])
pgwire.send_cancel("127.0.0.1", PORT, sessions[0].pid, sessions[0].key)
t.join(10)

# ---- max_clients = 12 across workers: 9 open, 3 more fit, the 13th is refused
extra = []
for i in range(3):
    extra.append(pgwire.target_login(DB)); logins += 1
try:
    pgwire.target_login(DB)
    R.check("the 13th session with max_clients=12 over four workers is refused with 53300", False, "it logged in")
except pgwire.PGError as e:
    R.check("the 13th session with max_clients=12 over four workers is refused with 53300", e.sqlstate == "53300",
            e.fields)
except pgwire.Closed:
    R.check("the 13th session with max_clients=12 over four workers is refused with 53300", False, "closed")
for c in extra: c.terminate()
time.sleep(0.5)

# ---- max_pending_per_address = 3 across workers: three silent connections
# from 127.0.0.2 (spread over the workers), the fourth refused at once
silent = [pgwire.Conn("127.0.0.1", PORT, source="127.0.0.2") for _ in range(3)]
time.sleep(0.3)
fourth = pgwire.Conn("127.0.0.1", PORT, source="127.0.0.2")
closed, msgs = fourth.wait_closed(5)
err = pgwire.first_error(msgs)
R.check("a 4th silent connection from 127.0.0.2 is refused with 53300 (max_pending_per_address=3)",
        closed and err is not None and err.get("C") == "53300", (closed, pgwire.summarize(msgs)))
other = pgwire.Conn("127.0.0.1", PORT, source="127.0.0.3")
closed, msgs = other.wait_closed(0.5)
R.check("... while 127.0.0.3 is not refused", not closed, pgwire.summarize(msgs))
for c in silent + [other]: c.close()

# ---- KILL SESSION of a session on another worker than the console's
mine = by_port.get(ops.sock.getsockname()[1], -1)
victim = next((c for c, w in zip(sessions, workers) if w != mine), None)
vid = next(r[0] for r in rows(ops, "SHOW SESSIONS") if int(r[4].rsplit(":", 1)[1]) == victim.sock.getsockname()[1])
tags = pgwire.summarize(ops.query("KILL SESSION %s" % vid))
closed, msgs = victim.wait_closed(5)
err = pgwire.first_error(msgs)
R.check("KILL SESSION ends a session that another worker runs (57P01)",
        tags == ["CMD KILL"] and err is not None and err.get("C") == "57P01", (tags, pgwire.summarize(msgs)))
sessions.remove(victim)

# ---- RELOAD from consoles on several workers at once (each waits on every
# worker while the others wait on it), and SHOW SESSIONS meanwhile: no deadlock
consoles = [admin() for _ in range(4)]; logins += 4
errs = []
def reload_loop(c, n):
    for _ in range(n):
        tags = pgwire.summarize(c.query("RELOAD; SHOW SESSIONS"))
        if "CMD RELOAD" not in tags:
            errs.append(tags)
ts = [threading.Thread(target=reload_loop, args=(c, 5)) for c in consoles]
t0 = time.monotonic()
for t in ts: t.start()
for t in ts: t.join(60)
R.check("four consoles, RELOAD and SHOW SESSIONS five times each at once, all answered (%.1f s)" % (time.monotonic() - t0),
        not any(t.is_alive() for t in ts) and not errs, errs[:3])
for c in consoles: c.terminate()

# ---- /metrics sums the four workers: exactly the logins made
time.sleep(0.2)
R.check("martgate_logins_total{result=\"ok\"} is the %d logins made, summed over the workers" % logins,
        logins_ok() == logins, logins_ok())
for c in sessions: c.terminate()
ops.terminate()
PY
)
h_report "$out"

# ---- a reload under pgbench: no transaction lost
tgt_env
cat >"$T_DIR/select.sql" <<'SQL'
select count(*) from mart.t;
SQL
pgbench_out=$T_DIR/pgbench.out
(timeout 60 pgbench -n -c 8 -j 2 -T 6 -f "$T_DIR/select.sql" $DB >"$pgbench_out" 2>&1; echo "rc=$?" >>"$pgbench_out") &
pgb=$!
H_BG_PIDS+=("$pgb")
reloads=0
for i in 1 2 3 4 5; do
  sleep 0.8
  mg_reload_wait && reloads=$((reloads + 1))
done
wait "$pgb" 2>/dev/null || true
check_eq "five reloads while pgbench runs on four workers" 5 "$reloads"
check_match "pgbench: every transaction done, none failed" 'number of failed transactions: 0 ' "$(cat "$pgbench_out")"
check_match "... and pgbench exits 0" '^rc=0$' "$(cat "$pgbench_out")"

# ---- a reload that narrows the policy: the next statement of a session on
# every worker is denied
mkfifo "$T_DIR/narrow.in"
pyt "$T_DIR/narrow.in" >"$T_DIR/narrow.out" 2>&1 <<'PY' &
import os, sys, pgwire
R = pgwire.Report()
DB = os.environ["DB"]
cs = [pgwire.target_login(DB) for _ in range(8)]
before = [pgwire.summarize(c.query("select count(*) from mart.t")) for c in cs]
R.check("eight sessions (two per worker) read mart.t before the reload",
        all(b == ["ROW 1", "CMD SELECT 1"] for b in before), before)
print("READY", flush=True)
open(sys.argv[1]).read()   # the shell narrows the policy and reloads, then writes here
after = [pgwire.first_error(c.query("select count(*) from mart.t")) for c in cs]
workers = sorted({(c.pid >> 18) & 31 for c in cs})
R.check("after a reload that takes mart from the analysts, each session's next statement is denied (42501), on workers %s" % workers,
        all(e is not None and e.get("C") == "42501" for e in after) and workers == [0, 1, 2, 3],
        [e and e.get("C") for e in after])
for c in cs: c.terminate()
PY
py=$!
H_BG_PIDS+=("$py")
wait_until 30 grep -q READY "$T_DIR/narrow.out" || fail "eight sessions before the narrowing" "$(cat "$T_DIR/narrow.out")"
write_policy none
mg_reload_wait || fail "reload" "not logged"
echo go >"$T_DIR/narrow.in"
wait "$py" || true
h_report "$(cat "$T_DIR/narrow.out")"

# ---- the audit: each session's statements in order
out=$(pyt <<'PY' 2>&1
import os, threading, pgwire
R = pgwire.Report()
DB = os.environ["DB"]
# logged in one after the other (max_pending_per_address is 3 here), then
# all at once
cs = [pgwire.target_login(DB) for _ in range(6)]
def one(k):
    c = cs[k]
    for i in range(20):
        c.query("select %d as seq_%d" % (i, k))
    c.terminate()
ts = [threading.Thread(target=one, args=(k,)) for k in range(6)]
for t in ts: t.start()
for t in ts: t.join(60)
R.check("six sessions ran 20 statements each", True)
PY
)
h_report "$out"
sleep 1
out=$(/usr/bin/python3 - "$T_DIR/audit.jsonl" <<'PY'
import json, re, sys, collections
seqs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    m = re.match(r"select (\d+) as seq_(\d+)$", r.get("query") or "")
    if r.get("event") == "statement" and m:
        seqs[r["session"]].append(int(m.group(1)))
ok = len(seqs) == 6 and all(v == list(range(20)) for v in seqs.values())
print("PASS" if ok else "FAIL", "the audit has each of the 6 sessions' 20 statements in order" +
      ("" if ok else " | %r" % dict(seqs)))
PY
)
h_report "$out"
check "martgate still running" mg_alive
h_done

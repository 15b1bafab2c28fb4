#!/usr/bin/env bash
# Decisions follow the session's state as the warehouse holds it, statement by
# statement within one session: the search_path however it changes (SET, SET
# LOCAL rolled back, a PREPAREd set_config run by EXECUTE, a protocol-level
# statement that sets it run by a later Execute), the principal (connection
# impersonation), the policy (reload). The decision memo (policy/decide_memo)
# allows a statement of a shape decided before (the same text but for its
# constants) without a parse, never across such a change; constants that look
# like names or injections do not change a shape's decision; the audit records
# of memoized statements are as complete as the others.
. "$(dirname "$0")/../lib/harness.sh"
h_init session_state
need_martgate
DB=t_session_state
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA a; CREATE SCHEMA b;
CREATE TABLE a.t (id int, v text); INSERT INTO a.t SELECT g, 'a' || g FROM generate_series(1, 10) g;
CREATE TABLE b.t (id int, v text); INSERT INTO b.t SELECT g, 'b' || g FROM generate_series(1, 10) g;
CREATE TABLE a.hidden (id int); INSERT INTO a.hidden VALUES (1);
CREATE TABLE b.hidden (id int, secret text); INSERT INTO b.hidden VALUES (1, 'TOP-SECRET');
CREATE TABLE b.m (id int, secret text); INSERT INTO b.m SELECT g, 'plain-' || g FROM generate_series(1, 3) g;
SQL
# a database whose own encoding is not UTF8: martgate's clients still talk UTF8
pg_admin postgres -c "DROP DATABASE IF EXISTS t_latin1 WITH (FORCE)" \
  -c "CREATE DATABASE t_latin1 OWNER $MG_SVC_USER ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
write_policy() { # GRANT_A(true/false)
  local a_rule=""
  [ "$1" = true ] && a_rule='{"id": "readers-a", "subjects": {"groups": ["readers"]}, "objects": {"datasets": ["a"]}, "access": "read"},'
  cat >"$T_DIR/policy.json" <<JSON
{
  "datasets": {"a": {"schemas": ["a"]}, "b": {"schemas": ["b"]}},
  "defaults": {"search_path": [{"schemas": ["a", "b"]}]},
  "rules": [
    {"id": "no-b-hidden", "subjects": {"groups": ["readers"]}, "objects": {"tables": ["b.hidden"]}, "access": "deny"},
    {"id": "analyst-m-masked", "subjects": {"groups": ["analyst-role"]}, "objects": {"tables": ["b.m"]}, "access": "read",
     "columns": {"secret": "redact"}},
    $a_rule
    {"id": "readers-b", "subjects": {"groups": ["readers"]}, "objects": {"datasets": ["b"]}, "access": "read"},
    {"id": "analyst-role", "subjects": {"groups": ["analyst-role"]}, "objects": {"datasets": ["b"]}, "access": "read"},
    {"id": "writers", "subjects": {"groups": ["writers"]}, "objects": {"tables": ["a.sink"]}, "access": "write"}
  ],
  "settings": {"deny": ["work_mem"]},
  "roles": {"only_b": {"groups": ["analyst-role"]}},
  "impersonators": [{"subjects": {"users": ["bi-svc"]}, "roles": ["only_b"]}]
}
JSON
}
write_policy true
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\", \"audit\": {\"file\": \"$T_DIR/audit.jsonl\", \"fsync_interval_ms\": 0}"
mg_start $DB t_latin1 || h_die "martgate did not start"

# ss.py: what the protocol-level checks below share (run as
# python3 - PORT TOKEN DB CA [USER]; PYTHONPATH has $H_PY and $T_DIR)
cat >"$T_DIR/ss.py" <<'PY'
import sys, struct, time, pgwire
from pgwire import msg, cstr, summarize, startup_packet
port, tok, db, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
user = sys.argv[5] if len(sys.argv) > 5 else "reader"
def connect(timeout=10):
    c = pgwire.Conn(port=port, timeout=timeout)
    c.ssl_request(ca)
    return c
def login(timeout=10, params=None):
    c = connect(timeout)
    c.startup(user, db, params)
    c.finish_login(tok)
    return c
def parse(name, sql):
    return msg("P", cstr(name) + cstr(sql) + struct.pack("!H", 0))
def bind(portal, stmt):
    return msg("B", cstr(portal) + cstr(stmt) + struct.pack("!HHH", 0, 0, 0))
def execute(portal, rows=0):
    return msg("E", cstr(portal) + struct.pack("!I", rows))
PY
# session USER GROUPS: psql reading statements from stdin, one session
session() {
  local tok
  tok=$(mg_token --sub "$1" ${2:+--groups "$2"} --ttl 10m)
  PGPASSWORD=$tok timeout "$H_TIMEOUT" psql -X -At -v VERBOSITY=verbose \
    "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$1 sslmode=verify-full sslrootcert=$MG_CA" 2>&1 || true
}
denial='ERROR:  42501: permission denied by policy'

# ---- startup parameters are checked as SET would be: a setting that makes the
# server read SQL differently from martgate is refused at login, in any form
refused_at_login() { # NAME OUTPUT
  if grep -q 'FATAL:  startup parameter refused' <<<"$2"; then ok "$1"
  else fail "$1" "expected a refusal at login" "$2"; fi
}
out=$(PGOPTIONS="-c standard_conforming_strings=off" session reader readers <<<"select 1;")
refused_at_login "startup standard_conforming_strings=off refused" "$out"
out=$(PGOPTIONS="-c standard_conforming_strings=on" session reader readers <<<"show standard_conforming_strings;")
check_match "startup standard_conforming_strings=on accepted" '^on$' "$out"
out=$(PGOPTIONS="-c work_mem=64MB" session reader readers <<<"select 1;")
refused_at_login "startup work_mem refused by the policy's settings.deny" "$out"
for enc in WIN932 SJIS SHIFT_JIS_2004 BIG5 LATIN1; do
  out=$(PGCLIENTENCODING=$enc session reader readers <<<"select 1;")
  refused_at_login "startup client_encoding $enc refused" "$out"
done
out=$(PGCLIENTENCODING=utf-8 session reader readers <<<"show client_encoding;")
check_match "startup client_encoding utf-8 accepted" '^UTF8$' "$out"
out=$(PGAPPNAME='a b\c' PGOPTIONS='-c statement_timeout=1234 -c DateStyle=ISO,\ DMY' session reader readers <<'SQL'
show application_name; show statement_timeout; show datestyle;
SQL
)
check_eq "spaces and backslashes in startup values arrive as sent" 'a b\c|1234ms|ISO, DMY' "$(tr '\n' '|' <<<"$out" | sed 's/|$//')"
out=$(PGDATABASE=t_latin1 timeout 30 env PGPASSWORD="$(mg_token --sub reader --groups readers --ttl 10m)" psql -X -At \
  "host=127.0.0.1 port=$MG_PORT dbname=t_latin1 user=reader sslmode=verify-full sslrootcert=$MG_CA" \
  -c "show server_encoding" -c "show client_encoding" -c "select 'ção'" 2>&1 || true)
check_eq "a LATIN1 database: the session is UTF8 unless the client says otherwise" 'LATIN1|UTF8|ção' "$(tr '\n' '|' <<<"$out" | sed 's/|$//')"
# control characters would let one value carry more -c settings to the server
tok=$(mg_token --sub reader --groups readers --ttl 10m)
out=$(PYTHONPATH=$H_PY:$T_DIR timeout 30 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" <<'PY' 2>&1
from ss import *
for name, params in [
        ("scs", {"standard_conforming_strings": "off"}),
        ("TimeZone", {"TimeZone": "UTC\f-c\fstandard_conforming_strings=off"}),
        ("DateStyle", {"DateStyle": "ISO\n-c\nwork_mem=1MB"}),
        ("options", {"options": "-c DateStyle=ISO\v-c\vstandard_conforming_strings=off"}),
        ("application_name", {"application_name": "x\t-c\tstandard_conforming_strings=off"})]:
    c = connect()
    try:
        c.startup(user, db, params)
        c.finish_login(tok)
        print(name, "LOGGED IN", pgwire.summarize(c.query("show standard_conforming_strings")))
    except pgwire.PGError as e:
        print(name, "refused", e.sqlstate, e.fields.get("M"))
    except Exception as e:
        print(name, "failed otherwise", repr(e))
    c.close()
PY
)
check_match "standard_conforming_strings=off refused with 42501" '^scs refused 42501 startup parameter refused' "$out"
check_nomatch "a control character in a startup value never reaches the warehouse" 'LOGGED IN' "$out"
check_eq "each such value refused at login with 22023" 4 "$(grep -c '^[A-Za-z_]* refused 22023 .*control character' <<<"$out")"

# ---- the same shape with other constants: allowed, each with its own answer
out=$(session reader readers <<'SQL'
select v from a.t where id = 3;
select v from a.t where id = 7;
select v from a.t where id = 11;
select count(*) from a.t where v = 'a1' or id = 2;
select count(*) from a.t where v = 'x'' OR 1=1; select * from b.hidden --' or id = 2;
select count(*) from a.t where v = 'b.hidden' or id = 2;
SQL
)
check_eq "one shape, other constants: each answered for its own" "a3 a7 2 1 1" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')"

# ---- search_path: an unqualified name resolves elsewhere after SET
out=$(session reader readers <<'SQL'
set search_path = a;
select count(*) from hidden where id = 1;
set search_path = b;
select count(*) from hidden where id = 2;
set search_path = a;
select count(*) from hidden where id = 3;
SQL
)
check_match "hidden resolves to a.hidden first: allowed" '^1' "$out"
check_match "after SET search_path = b the same shape is b.hidden: denied" "$denial.*b\\.hidden" "$out"
check_eq "back on a: allowed again" 2 "$(grep -c '^[01]$' <<<"$out")"

# SET twice: martgate learns the path after each SET has run, not before
out=$(session reader readers <<'SQL'
set search_path = a;
set search_path = b;
select * from hidden;
SQL
)
check_match "SET a; SET b; then hidden is b.hidden: denied" "$denial.*b\\.hidden" "$out"
check_nomatch "no row of b.hidden" 'TOP-SECRET' "$out"

# a PREPAREd set_config changes the path when EXECUTE runs it, not when prepared
out=$(session reader readers <<'SQL'
set search_path = a;
prepare p as select set_config('search_path', 'b', false);
select 'prepared', count(*) from hidden where id = 1;
execute p;
select * from hidden;
SQL
)
check_match "PREPARE alone changes nothing: a.hidden allowed" '^prepared\|1' "$out"
check_match "after EXECUTE p the path is b: hidden denied" "$denial.*b\\.hidden" "$out"
check_nomatch "no row of b.hidden through EXECUTE" 'TOP-SECRET' "$out"

# the extended protocol: a named statement that sets the path runs at each Execute
tok=$(mg_token --sub reader --groups readers --ttl 10m)
out=$(PYTHONPATH=$H_PY:$T_DIR timeout 30 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" <<'PY' 2>&1
from ss import *
c = login(timeout=10)
def bind_exec(portal, stmt):
    return bind(portal, stmt) + execute(portal)
print("parse", summarize(c.query("set search_path = a")))
c.send(msg("P", cstr("S1") + cstr("set search_path = b") + struct.pack("!H", 0)) + msg("S"))
print("prepared", summarize(c.until_ready()))
print("before", summarize(c.query("select count(*) from hidden where id = 1")))
c.send(bind_exec("", "S1") + msg("S"))
print("executed", summarize(c.until_ready()))
print("after", summarize(c.query("select * from hidden")))
# a named portal bound in a transaction, run after its statement is gone
print(summarize(c.query("set search_path = a")))
print("begin", summarize(c.query("begin")))
c.send(msg("P", cstr("") + cstr("set search_path = b") + struct.pack("!H", 0)) +
       msg("B", cstr("P1") + cstr("") + struct.pack("!HHH", 0, 0, 0)) + msg("S"))
print("bound", summarize(c.until_ready()))
c.send(msg("P", cstr("") + cstr("select 1") + struct.pack("!H", 0)) + msg("S"))
print("replaced", summarize(c.until_ready()))
print("in tx before", summarize(c.query("select count(*) from hidden where id = 1")))
c.send(msg("E", cstr("P1") + struct.pack("!I", 0)) + msg("S"))
print("portal", summarize(c.until_ready()))
print("in tx after", summarize(c.query("select * from hidden")))
PY
)
check_match "protocol: Parse of a SET alone changes nothing" "before \\['ROW 1'" "$out"
check_match "protocol: after Execute of it, hidden is b.hidden: denied" "after \\[.ERROR 42501 .*b\\.hidden" "$out"
check_match "protocol: a portal bound from it, before it runs: a.hidden allowed" "in tx before \\['ROW 1'" "$out"
check_match "protocol: the portal ran after its statement was replaced: hidden denied" "in tx after \\[.ERROR 42501 .*b\\.hidden" "$out"
check_nomatch "protocol: no row of b.hidden" 'TOP-SECRET' "$out"

# a prepared statement is parsed again by the server when search_path has
# changed: martgate decides it again too
out=$(session reader readers <<'SQL'
set search_path = a;
prepare hp as select 'hp', count(*) from hidden where id = 1;
execute hp;
set search_path = b;
execute hp;
set search_path = a;
execute hp;
SQL
)
check_match "PREPARE under a: EXECUTE reads a.hidden" '^hp\|1' "$out"
check_match "after SET search_path = b the same EXECUTE is denied (b.hidden)" \
  "$denial: prepared statement \"hp\".*b\\.hidden" "$out"
check_nomatch "no row of b.hidden through a statement prepared under a" 'TOP-SECRET' "$out"
check_eq "back on a: EXECUTE runs again" 2 "$(grep -c '^hp|1' <<<"$out")"

# a statement that sets search_path, run while martgate's SHOW search_path is in
# flight: nothing of the client passes until the answer is in
tok=$(mg_token --sub reader --groups readers --ttl 10m)
out=$(PYTHONPATH=$H_PY:$T_DIR timeout 60 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" <<'PY' 2>&1
from ss import *
c = login(timeout=10)
c.send(msg("P", cstr("SETB") + cstr("set search_path = b") + struct.pack("!H", 0)) + msg("S"))
c.until_ready()
leaks = denied = 0
for i in range(30):
    c.send(msg("Q", cstr("set search_path = a")))
    c.until_ready()
    # at once, behind the SET's ReadyForQuery: run SETB, then read hidden
    c.send(msg("B", cstr("") + cstr("SETB") + struct.pack("!HHH", 0, 0, 0)) + msg("E", cstr("") + struct.pack("!I", 0)) +
           msg("S") + msg("Q", cstr("select secret from hidden")))
    c.until_ready()
    rows = summarize(c.until_ready())
    leaks += any("TOP-SECRET" in r for r in rows)
    denied += any(r.startswith("ERROR 42501") for r in rows)
print("leaks", leaks, "denied", denied)
PY
)
check_eq "30 races of a path-setting Execute against martgate's SHOW: every read of hidden denied" "leaks 0 denied 30" "$out"

# what a session keeps of prepared statements is bounded (GUARD_MAX_KEPT = 10000)
tok=$(mg_token --sub reader --groups readers --ttl 10m)
out=$(PYTHONPATH=$H_PY:$T_DIR timeout 120 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" <<'PY' 2>&1
from ss import *
c = login(timeout=60)
parse1 = lambda name: parse(name, "select 1")
c.send(b"".join(parse1("K%d" % i) for i in range(10000)) + msg("S"))
first = summarize(c.until_ready())
print("10000", "ok" if not any(r.startswith("ERROR") for r in first) else first[:2])
c.send(parse1("K10000") + msg("S"))
print("10001", summarize(c.until_ready()))
print("prepare", summarize(c.query("prepare too_many as select 1")))
c.send(msg("C", b"S" + cstr("K0")) + parse1("K10000") + msg("S"))
print("after close", summarize(c.until_ready()))
print("still serving", summarize(c.query("select 'alive'")))
PY
)
check_match "10000 named statements kept" '^10000 ok' "$out"
check_match "the 10001st Parse refused with 54000" "^10001 \\[.ERROR 54000 this session keeps too many prepared statements" "$out"
check_match "a PREPARE beyond the limit refused with 54000" "^prepare \\[.ERROR 54000" "$out"
check_match "after a Close there is room again" "^after close \\[\\]" "$out"
check_match "the session still serves" "^still serving \\['ROW alive'" "$out"

# SET LOCAL in a transaction that rolls back: the path returns, so does the decision
out=$(session reader readers <<'SQL'
set search_path = a;
select count(*) from hidden where id = 1;
begin;
set local search_path = b;
select count(*) from hidden where id = 2;
rollback;
select 'after rollback', count(*) from hidden where id = 3;
SQL
)
check_match "SET LOCAL search_path = b: the same shape is denied" "$denial.*b\\.hidden" "$out"
check_match "after ROLLBACK the path is a again: allowed" '^after rollback\|0' "$out"

# ---- impersonation: the same shape decided for another principal
out=$(session bi-svc readers <<'SQL'
select count(*) from a.t where id = 1;
set role only_b;
select count(*) from a.t where id = 2;
reset role;
select 'back', count(*) from a.t where id = 3;
SQL
)
check_match "as the service account: a.t allowed" '^1$' "$out"
check_match "as role only_b the same shape is denied" "$denial.*a\\.t" "$out"
check_match "after RESET ROLE allowed again" '^back\|1' "$out"

# ---- what a session prepared before a change is decided again before it runs:
# SQL PREPARE/EXECUTE, DECLARE ... WITH HOLD/FETCH, and protocol-level
# statements bound again without a Parse (pgjdbc's statement cache does that)
cat >"$T_DIR/prepared.py" <<'PY'
# prepared.py PORT TOKEN DB CA USER: prepares as USER, prints READY, waits for
# a line on stdin (the change happens meanwhile), then runs each again
from ss import *
c = login(timeout=15)
def q(label, sql):
    print(label, summarize(c.query(sql)), flush=True)
def bind_exec(label, stmt):
    c.send(bind("", stmt) + execute("") + msg("S"))
    print(label, summarize(c.until_ready()), flush=True)
q("prepare", "prepare p as select v as pv from a.t where id = 1")
# names a client might give to what a refused Bind or Execute stands in with
for name in ['"\x01martgate: statement denied"', '"martgate: statement denied"', '"' + "martgate: statement denied" + "-" * 40 + '"']:
    q("decoy", "prepare %s as select v as pv from a.t where id = 9" % name)
    q("decoy", "begin; declare %s cursor with hold for select v as pv from a.t where id = 9; commit" % name)
q("declare", "begin; declare c cursor with hold for select v as pv from a.t where id = 2; commit")
c.send(msg("P", cstr("S_1") + cstr("select v as pv from a.t where id = 3") + struct.pack("!H", 0)) + msg("S"))
print("parse", summarize(c.until_ready()), flush=True)
bind_exec("bound-before", "S_1")
q("execute-before", "execute p")
print("READY", flush=True)
for line in sys.stdin:
    if line.strip() == "go":
        break
    q("sql", line.strip())
q("execute-after", "execute p")
q("fetch-after", "fetch all from c")
bind_exec("bound-after", "S_1")
q("fresh-after", "select v as pv from a.t where id = 4")
for line in sys.stdin:
    if line.strip() == "end":
        break
    q("sql", line.strip())
bind_exec("bound-last", "S_1")
q("execute-last", "execute p")
c.terminate()
PY
# run_prepared USER GROUPS BETWEEN AFTER [SCRIPT]: BETWEEN is a bash command run while the session waits
run_prepared() {
  local tok out
  tok=$(mg_token --sub "$1" --groups "$2" --ttl 10m)
  coproc PREP { PYTHONPATH=$H_PY:$T_DIR timeout 60 python3 "$T_DIR/${5:-prepared.py}" "$MG_PORT" "$tok" "$DB" "$MG_CA" "$1" 2>&1; }
  local pid=$PREP_PID
  H_BG_PIDS+=("$pid")
  exec {po}<&"${PREP[0]}" {pi}>&"${PREP[1]}"
  out=""
  while IFS= read -r -t 20 line <&$po; do out+="$line"$'\n'; [ "$line" = READY ] && break; done
  eval "$3"
  printf '%s\n' "$4" >&$pi
  cat <&$po >>"$T_DIR/prepared.out" &
  local cat_pid=$!
  exec {pi}>&-
  wait "$pid" 2>/dev/null || true
  wait "$cat_pid" 2>/dev/null || true
  printf '%s' "$out"
  cat "$T_DIR/prepared.out"
  rm -f "$T_DIR/prepared.out"
}
leaked() { grep -E "^$1 \\[.ROW a" <<<"$2" >/dev/null; }
# impersonation: prepared as the service account (reads a), run as role only_b (reads b only)
out=$(run_prepared bi-svc readers : $'set role only_b\ngo\nreset role\nend')
check_match "as the service account: prepared and bound" "^bound-before \\['ROW a3'" "$out"
check_match "after SET ROLE only_b: EXECUTE of a statement prepared before is denied" \
  "^execute-after \\[.ERROR 42501 permission denied by policy: prepared statement \"p\"" "$out"
check_match "after SET ROLE only_b: FETCH from a WITH HOLD cursor declared before is denied" \
  "^fetch-after \\[.ERROR 42501 permission denied by policy: cursor \"c\"" "$out"
check_match "after SET ROLE only_b: Bind of protocol statement S_1 (no Parse) is denied" \
  "^bound-after \\[.ERROR 42501 permission denied by policy: prepared statement \"S_1\"" "$out"
check_match "after SET ROLE only_b: a fresh query is denied too" "^fresh-after \\[.ERROR 42501" "$out"
for step in execute-after fetch-after bound-after; do
  if leaked $step "$out"; then fail "no row of a.t for only_b ($step)" "leaked" "$out"; else ok "no row of a.t for only_b ($step)"; fi
done
check_nomatch "a refused Bind or Execute never runs a statement or cursor the client named" "ROW a9" "$out"
check_match "after RESET ROLE the same statements run again" "^bound-last \\['ROW a3'" "$out"
check_match "after RESET ROLE EXECUTE runs again" "^execute-last \\['ROW a1'" "$out"

# a policy reload revoking a: what the session prepared before is refused
out=$(run_prepared reader readers 'write_policy false; mg_reload_wait || fail "policy reloaded" "martgate did not log the reload within 10 s"' $'go\nend')
check_match "before the reload: EXECUTE allowed" "^execute-before \\['ROW a1'" "$out"
check_match "after a reload revoking a: EXECUTE p denied" "^execute-after \\[.ERROR 42501 .*prepared statement \"p\"" "$out"
check_match "after a reload revoking a: FETCH from the cursor denied" "^fetch-after \\[.ERROR 42501 .*cursor \"c\"" "$out"
check_match "after a reload revoking a: Bind of S_1 denied" "^bound-after \\[.ERROR 42501 .*prepared statement \"S_1\"" "$out"
check_match "after a reload revoking a: a fresh query of the same shape denied" "^fresh-after \\[.ERROR 42501 .*a\\.t" "$out"
for step in execute-after fetch-after bound-after bound-last execute-last; do
  if leaked $step "$out"; then fail "no row of a.t after the reload ($step)" "leaked" "$out"; else ok "no row of a.t after the reload ($step)"; fi
done

write_policy true
mg_reload_wait || fail "policy reloaded" "martgate did not log the reload within 10 s"

# ---- what the warehouse skipped or refused: a Close or Parse in a batch that
# failed before it, a DEALLOCATE in a Query that failed before it. The guard
# learns it from the answers, so a statement prepared before the reload never
# runs under a name martgate thinks is closed or holds something else
cat >"$T_DIR/skipped.py" <<'PY'
from ss import *
c = login(timeout=15)
def batch(label, msgs):
    c.send(msgs + msg("S"))
    print(label, summarize(c.until_ready()), flush=True)
def close(name):
    return msg("C", b"S" + cstr(name))
batch("prepare", parse("s1", "select v as sv from a.t where id = 5") + parse("s2", "select v as sv2 from a.t where id = 7")
      + parse("", "select v as uv from a.t where id = 6"))
print("sql", summarize(c.query("prepare p3 as select v as pv3 from a.t where id = 8")), flush=True)
# protocol statements that run another (decided again at each Bind), and cursors
print("sql", summarize(c.query("prepare p4 as select v as pv4 from a.t where id = 4")), flush=True)
print("sql", summarize(c.query("begin; declare c7 cursor with hold for select v as cv7 from a.t; "
                               "declare c8 cursor with hold for select v as cv8 from a.t; commit")), flush=True)
batch("prepare-indirect", parse("W", "execute p4") + parse("F", "fetch 1 from c7"))
print("READY", flush=True)
for line in sys.stdin:
    if line.strip() == "go":
        break
batch("failed-batch", execute("no_such_portal") + close("s1") + parse("", "select 'u2' as one"))
batch("bind-W", bind("", "W") + execute(""))
batch("bind-F", bind("", "F") + execute(""))
batch("failed-close-c8", execute("no_such_portal") + msg("C", b"P" + cstr("c8")))
batch("bind-s1", bind("", "s1") + execute(""))
batch("parse-s1-again", parse("s1", "select 's1-new' as two") + bind("", "s1") + execute(""))
batch("bind-unnamed", bind("", "") + execute(""))
print("fetch-c8", summarize(c.query("fetch all from c8")), flush=True)
print("sql-failed-close", summarize(c.query("select 1/0; close c7")), flush=True)
print("fetch-c7", summarize(c.query("fetch all from c7")), flush=True)
batch("failed-parse", execute("no_such_portal") + parse("s2", "select 's2-new'"))
batch("bind-s2", bind("", "s2") + execute(""))
print("sql-failed", summarize(c.query("select 1/0; deallocate p3")), flush=True)
print("sql-prepare-p3", summarize(c.query("prepare p3 as select 'p3-new'")), flush=True)
print("execute-p3", summarize(c.query("execute p3")), flush=True)
batch("bind-p3", bind("", "p3") + execute(""))
print("deallocate-p3", summarize(c.query("deallocate p3")), flush=True)
print("prepare-p3-again", summarize(c.query("prepare p3 as select 'p3-third'")), flush=True)
print("execute-p3-again", summarize(c.query("execute p3")), flush=True)
# a Query inside a batch that failed before it: the warehouse skips it unanswered
c.send(parse("", "selec bad") + msg("Q", cstr("select 'in-batch'")) + msg("S"))
print("query-in-batch", summarize(c.until_ready()), summarize(c.query("select 'after'")), flush=True)
# ... also when the batch starts with a message martgate refuses itself
c = login(timeout=15)
c.send(bind("", "no_such_statement") + msg("Q", cstr("select 'in-batch-2'")) + msg("S"))
print("query-in-refused-batch", summarize(c.until_ready()), summarize(c.query("select 'after'")), flush=True)
PY
out=$(run_prepared reader readers 'write_policy false; mg_reload_wait || fail "policy reloaded" "martgate did not log the reload within 10 s"' $'go\nend' skipped.py)
check_match "before the reload: prepared" "^prepare \[\]" "$out"
for step in bind-s1 bind-unnamed bind-s2 execute-p3 bind-p3 execute-p3-again bind-W bind-F fetch-c8 fetch-c7; do
  if leaked $step "$out"; then fail "no row of a.t after the reload through a skipped Close or Parse ($step)" "leaked" "$out"
  else ok "no row of a.t after the reload through a skipped Close or Parse ($step)"; fi
done
check_match "a Close the warehouse skipped: the statement does not exist for the client (26000)" \
  "^bind-s1 \['ERROR 26000 prepared statement \"s1\" does not exist" "$out"
check_match "... and preparing that name again works: martgate closes the old one first" \
  "^parse-s1-again \['ROW s1-new'" "$out"
check_match "a Parse of the unnamed statement the warehouse skipped: the Bind runs the client's latest text" \
  "^bind-unnamed \['ROW u2'" "$out"
check_match "a named Parse the warehouse skipped: the Bind runs what the client last prepared, decided now" \
  "^bind-s2 \['ROW s2-new'" "$out"
check_match "a DEALLOCATE after a failing statement of its Query, then a PREPARE over it: the warehouse may hold either, EXECUTE refused" \
  "^execute-p3 \[.ERROR 42501 .*prepared statement \"p3\".*then declare or prepare it again" "$out"
check_match "... so is a Bind of it" "^bind-p3 \[.ERROR 42501 .*prepared statement \"p3\"" "$out"
check_match "DEALLOCATE and PREPARE again: it runs" "^execute-p3-again \['ROW p3-third'" "$out"
check_match "a Query inside an extended batch that failed before it is skipped, as the warehouse skips it; the session goes on" \
  "^query-in-batch \['ERROR 42601 syntax error at or near \"selec\"'\] \['ROW after', 'CMD SELECT 1'\]$" "$out"
check_nomatch "... and is never answered as if it ran" "ROW in-batch" "$out"
check_match "a Query behind a Bind martgate refused, before Sync: skipped too" \
  "^query-in-refused-batch \['ERROR 26000 prepared statement \"no_such_statement\" does not exist'\] \['ROW after', 'CMD SELECT 1'\]$" "$out"
check_match "a protocol statement 'execute p4' after the reload: refused, as EXECUTE p4 is" \
  "^bind-W \[.ERROR 42501 .*prepared statement \"W\".*prepared statement \"p4\"" "$out"
check_match "a protocol statement 'fetch 1 from c7' after the reload: refused" \
  "^bind-F \[.ERROR 42501 .*prepared statement \"F\".*cursor \"c7\"" "$out"
check_match "a cursor whose Close the warehouse skipped: FETCH refused" \
  "^fetch-c8 \[.ERROR 42501 .*cursor \"c8\".*cannot tell whether the warehouse still holds it" "$out"
check_match "a cursor whose CLOSE followed a failing statement: FETCH refused" \
  "^fetch-c7 \[.ERROR 42501 .*cursor \"c7\"" "$out"

write_policy true
mg_reload_wait || fail "policy reloaded" "martgate did not log the reload within 10 s"

# ---- more of what the warehouse does by name unseen (red team, round 2):
# two COPYs in one Query, a Parse'd DECLARE never run, a Parse'd PREPARE and
# DEALLOCATE run through portals, a portal bound before the reload
pg_admin $DB -c "CREATE TABLE IF NOT EXISTS a.sink (v text); GRANT ALL ON a.sink TO $MG_SVC_USER" >/dev/null
cat >"$T_DIR/byname.py" <<'PY'
from ss import *
c = login(timeout=15)
def batch(label, msgs):
    c.send(msgs + msg("S"))
    print(label, summarize(c.until_ready()), flush=True)
def q(label, sql):
    print(label, summarize(c.query(sql)), flush=True)
q("prepare-x", "prepare x as select v as xv from a.t where id = 7")
c.send(msg("Q", cstr("copy a.sink from stdin; copy a.sink from stdin")) + msg("d", b"bn-1\n") + msg("c") + msg("S")
       + msg("d", b"bn-2\n") + msg("c"))
print("two-copies", [m[0] for m in c.until_ready()], flush=True)
q("failing-deallocate", "select 1/0; deallocate x")
q("declare-c9", "declare c9 cursor with hold for select v as cv9 from a.t order by id")
batch("parse-declare-only", parse("D9", "declare c9 cursor with hold for select v from b.t order by id"))
batch("parse-prepare-deallocate", parse("P1", "prepare y as select v as yv from a.t order by id") + parse("P2", "deallocate y"))
q("prepare-y-harmless", "prepare y as select 'harmless' as yv")
batch("run-P2-P1", bind("", "P2") + execute("") + bind("", "P1") + execute(""))
q("begin", "begin")
batch("portal-p9", parse("s9", "select v as pv9 from a.t order by id") + bind("p9", "s9") + execute("p9", 1))
print("READY", flush=True)
for line in sys.stdin:
    if line.strip() == "go":
        break
batch("portal-p9-after", execute("p9", 3))
q("rollback", "rollback")
q("fetch-c9-after", "fetch 3 from c9")
q("execute-y-after", "execute y")
q("execute-x-after", "execute x")
q("sink", "select count(*) from a.sink where v like 'bn-%'")
c.terminate()
PY
out=$(run_prepared writer writers,readers 'write_policy false; mg_reload_wait || fail "policy reloaded" "martgate did not log the reload within 10 s"' $'go\nend' byname.py)
check_match "two COPYs in one Query, both ended in one write: one ReadyForQuery" "^two-copies \['G', 'C', 'G', 'C', 'Z'\]" "$out"
check_match "... and the failing Query after them is seen to fail" "^execute-x-after \[.ERROR 42501 .*prepared statement \"x\"" "$out"
check_match "a Parse'd DECLARE never run does not replace the cursor's text: FETCH refused after the reload" \
  "^fetch-c9-after \[.ERROR 42501 .*cursor \"c9\"" "$out"
check_match "a Parse'd DEALLOCATE and PREPARE take effect when they run: EXECUTE y refused after the reload" \
  "^execute-y-after \[.ERROR 42501 .*prepared statement \"y\"" "$out"
check_match "a portal bound before the reload may not run on" \
  "^portal-p9-after \[.ERROR 42501 permission denied by policy: portal \"p9\" was bound under another policy" "$out"
for step in portal-p9-after fetch-c9-after execute-y-after execute-x-after; do
  if grep -E "^$step \[.ROW a" <<<"$out" >/dev/null; then fail "no row of a.t after the reload ($step)" "leaked" "$out"
  else ok "no row of a.t after the reload ($step)"; fi
done
write_policy true
mg_reload_wait || fail "policy reloaded" "martgate did not log the reload within 10 s"

# ---- a protocol-level statement bound after the principal changed is
# prepared again as the new principal's decision forwards it (pgjdbc keeps
# server-prepared statements across Metabase's SET ROLE): masked for role
# only_b, plain again after RESET ROLE, without the client preparing it again
tok=$(mg_token --sub bi-svc --groups readers --ttl 10m)
out=$(PYTHONPATH=$H_PY:$T_DIR timeout 60 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" bi-svc <<'PY' 2>&1
from ss import *
c = login(timeout=15)
types = struct.pack("!HI", 1, 23)   # one int4 parameter
c.send(msg("P", cstr("S_m") + cstr("select id, secret from b.m where id <= $1 order by id") + types) + msg("S"))
print("parse", summarize(c.until_ready()))
def run(label):
    # no parameter formats, one parameter "2" as text, no result formats
    c.send(msg("B", cstr("") + cstr("S_m") + struct.pack("!HHI", 0, 1, 1) + b"2" + struct.pack("!H", 0))
           + execute("") + msg("S"))
    print(label, summarize(c.until_ready()), flush=True)
run("plain")
c.query("set role only_b")
run("masked")
c.query("set role only_b")
run("masked-again")
c.query("reset role")
run("plain-again")
c.terminate()
PY
)
check_match "as the service account: the statement's rows as stored" "^plain \['ROW 1\|plain-1', 'ROW 2\|plain-2', 'CMD SELECT 2'\]" "$out"
check_match "after SET ROLE only_b: the same Bind runs it masked (prepared again by martgate)" \
  "^masked \['ROW 1\|[^p]*', 'ROW 2\|[^p]*', 'CMD SELECT 2'\]" "$out"
check_nomatch "... and no plain value reaches only_b" "^masked.*plain-" "$out"
check_match "SET ROLE only_b again: still masked" "^masked-again \['ROW 1\|[^p]*', 'ROW 2\|[^p]*', 'CMD SELECT 2'\]" "$out"
check_nomatch "... still no plain value" "^masked-again.*plain-" "$out"
check_match "after RESET ROLE: as stored again" "^plain-again \['ROW 1\|plain-1', 'ROW 2\|plain-2', 'CMD SELECT 2'\]" "$out"

# ---- every run of what was prepared or declared is recorded, with what runs:
# a SQL PREPARE bound by the protocol, a DECLAREd cursor executed as a portal,
# a name reused after DEALLOCATE
tok=$(mg_token --sub reader --groups readers --ttl 10m)
PYTHONPATH=$H_PY:$T_DIR timeout 60 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" <<'PY' >"$T_DIR/runs.out" 2>&1 || true
from ss import *
c = login(timeout=10)
def run(portal_msgs):
    c.send(portal_msgs + msg("S"))
    return summarize(c.until_ready())
c.query("prepare runs_p as select v as runs_p_col from a.t where id < 3")
for i in range(3):
    print("bind", run(bind("", "runs_p") + execute("")))
c.query("begin")
c.query("declare runs_c cursor for select v as runs_c_col from b.t where id < 4")
print("cursor", run(execute("runs_c")))
c.query("commit")
c.send(msg("P", cstr("runs_s") + cstr("select 'harmless' as runs_s_col") + struct.pack("!H", 0)) + msg("S"))
c.until_ready()
c.query("deallocate runs_s")
c.query("prepare runs_s as select v as runs_s_real from a.t where id < 5")
print("reused", run(bind("", "runs_s") + execute("")))
c.terminate()
PY

# ---- a client that writes its password with its startup packet, and one that
# sends a statement and Terminate in one write and hangs up: the statement
# runs, as without martgate, and its record says it was interrupted
pg_admin $DB -c "CREATE TABLE IF NOT EXISTS a.sink (v text); GRANT ALL ON a.sink TO $MG_SVC_USER" >/dev/null
tok=$(mg_token --sub writer --groups writers --ttl 10m)
out=$(PYTHONPATH=$H_PY:$T_DIR timeout 30 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" writer <<'PY' 2>&1
from ss import *
c = connect(timeout=5)
c.send(startup_packet({"user": user, "database": db}) + msg("p", tok.encode() + b"\0"))
t0 = time.time()
while True:   # the password request is already answered: read on to ReadyForQuery
    t, p = c.read_msg()
    if t == "E":
        print("login failed", pgwire.error_fields(p))
        sys.exit(1)
    if t == "Z":
        break
print("pipelined login %.1f s" % (time.time() - t0))
c.send(msg("Q", cstr("insert into a.sink values ('after-terminate')")) + msg("X"))
c.close()
print("sent")
PY
)
check_match "startup packet and password in one write: logged in at once" '^pipelined login 0\.[0-9] s' "$out"
wait_until 10 test "$(pg_admin $DB -Atc "select count(*) from a.sink where v = 'after-terminate'")" = 1 || true
check_eq "a statement sent with Terminate in one write runs on the warehouse" 1 \
  "$(pg_admin $DB -Atc "select count(*) from a.sink where v = 'after-terminate'")"

# ---- COPY FROM STDIN through the extended protocol, as libpq sends it: a
# Sync right behind the Execute (the warehouse ignores it while it reads COPY
# data) and one after CopyDone; every answer after it still belongs to its
# request
tok=$(mg_token --sub writer --groups writers,readers --ttl 10m)
out=$(PYTHONPATH=$H_PY:$T_DIR timeout 30 python3 - "$MG_PORT" "$tok" "$DB" "$MG_CA" writer <<'PY' 2>&1
from ss import *
c = login(timeout=10)
c.send(parse("", "copy a.sink from stdin") + bind("", "") + execute("") + msg("S"))
t = None
while t != "G":
    t, p = c.read_msg()
c.send(msg("d", b"copied-1\ncopied-2\n") + msg("c") + msg("S"))
print("copy", [m[0] for m in c.until_ready()])
print("after", summarize(c.query("select count(*) from a.sink where v like 'copied-%'")))
c.send(parse("", "select 'next' as n") + bind("", "") + execute("") + msg("S"))
print("extended-after", summarize(c.until_ready()))
# the same with CopyData, CopyDone and both Syncs in one write
c.send(parse("", "copy a.sink from stdin") + bind("", "") + execute("") + msg("S") + msg("d", b"copied-3\n")
       + msg("c") + msg("S"))
print("copy-one-write", [m[0] for m in c.until_ready()])
print("after-one-write", summarize(c.query("select count(*) from a.sink where v like 'copied-%'")))
print("error-after", summarize(c.query("select 1/0")))
print("last", summarize(c.query("select 'last'")))
c.terminate()
PY
) || true
check_match "extended COPY with libpq's two Syncs: one ReadyForQuery" "^copy \['C', 'Z'\]" "$out"
check_match "... the rows are in" "^after \['ROW 2', 'CMD SELECT 1'\]" "$out"
check_match "... and the next extended query gets its own answer" "^extended-after \['ROW next', 'CMD SELECT 1'\]" "$out"
check_match "all of it in one write: the same" "^copy-one-write \['1', '2', 'G', 'C', 'Z'\]" "$out"
check_match "... rows in" "^after-one-write \['ROW 3', 'CMD SELECT 1'\]" "$out"
check_match "... an error after it is the error of its own query" "^error-after \['ERROR 22012 division by zero'\]" "$out"
check_match "... and the query after that answers" "^last \['ROW last', 'CMD SELECT 1'\]" "$out"

# ---- the audit records of memoized statements (SIGTERM drains the log)
mg_stop
check_eq "its record: interrupted, not 'not executed'" 1 \
  "$(grep 'insert into a.sink' "$T_DIR/audit.jsonl" | grep '"interrupted":true' | grep -vc '"not_executed"')"
runs=$(grep '"event":"statement"' "$T_DIR/audit.jsonl" | grep 'runs_' || true)
check_eq "each protocol run of a SQL PREPARE recorded with its rows and relations" 3 \
  "$(grep 'runs_p_col' <<<"$runs" | grep '"rows":2' | grep -c '"relations":\["a.t"\]')"
check_eq "a DECLAREd cursor run as a portal recorded with its rows" 1 \
  "$(grep 'runs_c_col' <<<"$runs" | grep '"rows":3' | grep -c '"relations":\["b.t"\]')"
check_eq "a name reused after DEALLOCATE recorded with what ran" 1 \
  "$(grep 'runs_s_real' <<<"$runs" | grep '"rows":4' | grep -c '"relations":\["a.t"\]')"
check_eq "the statement deallocated unrun left no record of a run" 0 "$(grep -c 'runs_s_col' <<<"$runs")"
recs=$(grep '"event":"statement"' "$T_DIR/audit.jsonl" | grep 'from a.t where id = \$1' || true)
check_eq "three statements of one shape, three records" 3 "$(grep -c 'select v from a.t where id = \$1' <<<"$recs")"
check_eq "each record complete (decision, rule, relation, dataset, rows, sqlstate)" 3 \
  "$(grep 'select v from a.t where id = \$1' <<<"$recs" | grep '"decision":"allow"' | grep '"rule":"readers-a"' |
     grep '"relations":\["a.t"\]' | grep '"datasets":\["a"\]' | grep '"sqlstate":"00000"' | grep -c '"rows":[01]')"
check_eq "one fingerprint for the shape" 1 \
  "$(grep 'select v from a.t where id = \$1' <<<"$recs" | grep -o '"fingerprint":"[0-9a-f]*"' | sort -u | wc -l)"
check_nomatch "no constant of them in the log" "b\\.hidden --|'a1'|= 7" "$(cat "$T_DIR/audit.jsonl")"
h_done

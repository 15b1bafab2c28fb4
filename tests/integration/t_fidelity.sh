#!/usr/bin/env bash
# A writer (write on every dataset, pg_temp too) cannot tell martgate from the
# warehouse: the same SQL script, run directly as the service role and through
# martgate as the writer, prints the same thing (results, errors with their
# SQLSTATE, position and HINT), for what clients were seen to trip on: renames,
# COMMENT ON CONSTRAINT, sequences, temporary tables, RESET ROLE in a
# transaction, syntax errors martgate answers itself, psqlODBC's
# BEGIN/DECLARE/FETCH after an error, EXECUTE/FETCH of names that do not
# exist, a denied statement in an aborted transaction, a syntax error in one
# (the server's parser answers before its transaction check), asyncpg's pool
# reset (UNLISTEN). Then the wire: a Query after Parse/Describe/Flush
# (asyncpg's COPY) and after a failed Parse of the same batch, a pipeline that
# goes on sending after its error and before its Sync (psycopg's executemany),
# encodings spelt as clients spell them, and a superuser setting the service
# role was granted (lc_messages) at startup.
. "$(dirname "$0")/../lib/harness.sh"
h_init fidelity
need_martgate
DB=t_fidelity
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA ro;
CREATE TABLE ro.t (id serial PRIMARY KEY, v text);
INSERT INTO ro.t (v) VALUES ('a'), ('b');
CREATE SEQUENCE ro.sq;
SQL
cat >"$T_DIR/policy.json" <<'JSON'
{"datasets": {"everything": {"schemas": ["*"]}, "ro": {"schemas": ["ro"]}},
 "rules": [
   {"id": "writer", "subjects": {"groups": ["writers"]},
    "objects": {"datasets": ["everything"], "schemas": ["pg_temp"]}, "access": "write"},
   {"id": "narrow", "subjects": {"groups": ["narrow"]}, "objects": {"schemas": ["scratch"]}, "access": "write"},
   {"id": "reader", "subjects": {"groups": ["readers", "narrow"]}, "objects": {"datasets": ["ro"]}, "access": "read"}]}
JSON
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\"" mg_start $DB || h_die "martgate did not start"
WTOK=$(mg_token --sub writer --groups writers --ttl 1h)
RTOK=$(mg_token --sub reader --groups readers --ttl 1h)
NTOK=$(mg_token --sub narrow --groups narrow --ttl 1h)
mg_conn() { # USER TOKEN [extra conninfo]
  echo "host=127.0.0.1 port=$MG_PORT dbname=$DB user=$1 password=$2 sslmode=verify-full sslrootcert=$MG_CA connect_timeout=5 ${3:-}"
}
as_writer() { timeout 60 psql -X "$(mg_conn writer "$WTOK")" "$@"; }
as_reader() { timeout 60 psql -X "$(mg_conn reader "$RTOK")" "$@"; }

# ---- the same script both ways ---------------------------------------------
cat >"$T_DIR/script.sql" <<'SQL'
\set ON_ERROR_STOP 0
\set SHOW_CONTEXT never
CREATE SCHEMA w;
CREATE TABLE w.t (id serial PRIMARY KEY, v text, CONSTRAINT v_not_empty CHECK (v <> ''));
ALTER TABLE w.t RENAME TO t2;
ALTER TABLE w.t2 RENAME TO t;
CREATE INDEX t_v ON w.t (v);
ALTER INDEX w.t_v RENAME TO t_v2;
CREATE VIEW w.v AS SELECT id, v FROM w.t;
ALTER VIEW w.v RENAME TO v2;
CREATE SEQUENCE w.sq;
ALTER SEQUENCE w.sq RENAME TO sq2;
ALTER TABLE w.t RENAME CONSTRAINT v_not_empty TO v_nonempty;
COMMENT ON CONSTRAINT v_nonempty ON w.t IS 'no empty v';
SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'v_nonempty';
SELECT nextval('w.sq2');
SELECT setval('w.sq2'::regclass, 41);
SELECT nextval('w.sq2'), currval('w.sq2');
INSERT INTO w.t (v) VALUES ('x'), ('y') RETURNING id;
SELECT currval(pg_get_serial_sequence('w.t', 'id'));
CREATE TEMP TABLE scratch (a int);
INSERT INTO scratch VALUES (1), (2);
SELECT count(*) FROM scratch;
BEGIN; RESET ROLE; SELECT 1 AS still_here; COMMIT;
SET client_encoding = 'utf_8';
SHOW client_encoding;
SET client_encoding = 'Unicode';
SELECT U&'wrong: \061';
SELECT E'\u00';
SELECT * FROM (SELECT 1);
SELECT 1 LIMIT 1, 2;
SELECT 1 +;
BEGIN;declare "SQL_CUR1" cursor with hold for select 1/0;fetch 10 in "SQL_CUR1";
ROLLBACK;
BEGIN;declare "SQL_CUR1" cursor with hold for select 43;fetch 10 in "SQL_CUR1";
close "SQL_CUR1";
COMMIT;
PREPARE p1 AS SELECT 1/;
EXECUTE p1;
PREPARE p2 AS SELECT 42; EXECUTE p2;
PREPARE p2 AS SELECT 43;
EXECUTE p2;
DEALLOCATE p2;
DEALLOCATE p2;
EXECUTE p2;
BEGIN; DECLARE c1 CURSOR FOR SELECT 1/0; FETCH c1; ROLLBACK;
FETCH c1;
BEGIN; SELECT 1/0; FETCH c1; EXECUTE p1; DO $$BEGIN END$$; ROLLBACK;
BEGIN; DECLARE c2 CURSOR WITH HOLD FOR SELECT 7; COMMIT;
DECLARE c2 CURSOR WITH HOLD FOR SELECT 8;
FETCH c2;
CLOSE c2;
SELECT pg_advisory_unlock_all();CLOSE ALL;UNLISTEN *;RESET ALL;
BEGIN; SELECT 1/0;
SELEC 1;
ROLLBACK;
DROP SCHEMA w CASCADE;
SQL
direct_out=$(PGPASSWORD=$MG_SVC_PASS timeout 60 psql -X "$(direct_conninfo $DB)" -f "$T_DIR/script.sql" 2>&1 | sed 's/^psql:[^:]*:[0-9]*: //')
mg_out=$(as_writer -f "$T_DIR/script.sql" 2>&1 | sed 's/^psql:[^:]*:[0-9]*: //')
check_match "the script ran directly" 'DROP SCHEMA' "$direct_out"
if [ "$direct_out" = "$mg_out" ]; then
  ok "the writer's script prints the same through martgate as directly ($(grep -c . <<<"$direct_out") lines)"
else
  fail "the writer's script prints the same through martgate as directly" "they differ" \
    "$(diff <(echo "$direct_out") <(echo "$mg_out") | head -40)"
fi
codes() { sed -n 's/^\(ERROR\|FATAL\):  \([0-9A-Z]\{5\}\)$/\2/p;s/^\(ERROR\|FATAL\):  \([0-9A-Z]\{5\}\): .*/\2/p'; }
direct_codes=$(PGPASSWORD=$MG_SVC_PASS timeout 60 psql -X -v VERBOSITY=sqlstate "$(direct_conninfo $DB)" -f "$T_DIR/script.sql" 2>&1 | sed 's/^psql:[^:]*:[0-9]*: //' | codes | tr '\n' ' ')
mg_codes=$(as_writer -v VERBOSITY=sqlstate -f "$T_DIR/script.sql" 2>&1 | sed 's/^psql:[^:]*:[0-9]*: //' | codes | tr '\n' ' ')
check_eq "the same SQLSTATEs, in order" "$direct_codes" "$mg_codes"
# the expected ones, against the server's own answers, so both cannot be wrong alike
check_match "syntax errors with the server's SQLSTATE (22025 for E'\\u00', 42601 for U&)" \
  '^42601 22025 42601 42601 42601 22012 25P02 42601 26000 42P05 26000 26000 22012 25P02 34000 22012 25P02 25P02 25P02 42P03 22012 42601 $' "$mg_codes"
check_match "the HINT of the parser's errors" 'HINT:  Unicode escapes must be \\XXXX or \\\+XXXXXX\.' "$mg_out"

# ---- what only a writer may do ---------------------------------------------
out=$(as_reader -v VERBOSITY=verbose -c "SELECT nextval('ro.sq')" 2>&1 || true)
check_match "nextval of a sequence the principal only reads: denied (42501)" '42501' "$out"
out=$(as_reader -Atc "SELECT count(*) FROM ro.t" 2>&1 || true)
check_eq "the reader reads its dataset" 2 "$out"
out=$(as_reader -v VERBOSITY=verbose -c "CREATE TEMP TABLE tmp_r (a int)" 2>&1 || true)
check_match "a temporary table for a principal with no write rule on pg_temp: denied" '42501' "$out"
out=$(timeout 60 psql -X -At "$(mg_conn narrow "$NTOK")" -c "CREATE TEMP TABLE tmp_n AS SELECT v FROM ro.t" \
      -c "INSERT INTO tmp_n VALUES ('c')" -c "SELECT count(*) FROM tmp_n" 2>&1 || true)
check_match "a temporary table for a principal with a write rule elsewhere (defaults.temp_tables)" '^3$' "$out"
out=$(as_writer -v VERBOSITY=verbose -c "SELECT nextval(('ro' || '.sq')::regclass)" 2>&1 || true)
check_match "nextval of a sequence named at run time: denied" '42501.*not named by a constant' "$out"

# ---- the wire ---------------------------------------------------------------
wire() { # USER TOKEN: the same exchange, printed as message types and tags
  H_PW=$2 PYTHONPATH=$H_PY timeout 60 /usr/bin/python3 - "$3" "$4" "$5" "$1" <<'PY'
import os, sys
from pgwire import Conn, msg, cstr, summarize, error_fields
port, db, ca, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def login(params=None):
    return Conn("127.0.0.1", port).login(user, db, os.environ["H_PW"], params, tls_ca=ca)
def show(label, msgs):
    out = []
    for t, p in msgs:
        if t == "E":
            out.append("E:" + error_fields(p).get("C", "?"))
        elif t == "C":
            out.append("C:" + p.rstrip(b"\0").decode())
        elif t == "D":
            out.append("D")
        elif t in "12tTnGZ3":
            out.append(t)
    print(label, " ".join(out), flush=True)
def until(c, n):   # read until n ReadyForQuery
    got = []
    while n:
        t, p = c.read_msg()
        got.append((t, p))
        if t == "Z":
            n -= 1
    return got
c = login()
c.query("CREATE TABLE IF NOT EXISTS public.copied (a int, b text)")
# Parse, Describe, Flush, then a Query: asyncpg's copy_records_to_table
c.send(msg("P", cstr("") + cstr("SELECT a, b FROM public.copied") + b"\0\0") + msg("D", b"S\0") + msg("H"))
first = [c.read_msg() for _ in range(3)]
c.send(msg("Q", cstr("COPY public.copied (a, b) FROM STDIN")))
got = []
while True:
    t, p = c.read_msg()
    got.append((t, p))
    if t == "G":
        break
c.send(msg("d", b"1\tone\n2\ttwo\n") + msg("c"))
got += until(c, 1)
c.send(msg("S"))
got += until(c, 1)
show("copy-after-flush", first + got)
show("copied", c.query("SELECT a, b FROM public.copied ORDER BY a"))
# a failed Parse, then a Query in the same batch (skipped), then Sync
c.send(msg("P", cstr("") + cstr("SELECT 1/") + b"\0\0") + msg("H"))
c.send(msg("Q", cstr("INSERT INTO public.copied VALUES (3, 'skipped')")) + msg("S"))
show("query-after-failed-parse", until(c, 1))
show("after", c.query("SELECT count(*) FROM public.copied"))
# a pipeline: an error read, more requests sent before the Sync (skipped by
# the warehouse, answered by nothing), then the Sync and a new batch
bind, execute = msg("B", cstr("") + cstr("") + b"\0\0\0\0\0\0"), msg("E", cstr("") + b"\0\0\0\0")
c.send(msg("P", cstr("") + cstr("INSERT INTO public.copied VALUES (1, 'dup')") + b"\0\0") + bind + execute +
       msg("P", cstr("") + cstr("SELECT 1/0") + b"\0\0") + bind + execute + msg("H"))
got = []
while not got or got[-1][0] != "E":
    got.append(c.read_msg())
c.send(bind + execute + msg("P", cstr("s1") + cstr("SELECT 1") + b"\0\0") + bind + msg("D", b"P\0") + execute +
       msg("C", b"Ss1\0") + msg("S"))
got += until(c, 1)
show("pipeline-after-error", got)
c.send(msg("P", cstr("") + cstr("SELECT count(*) FROM public.copied") + b"\0\0") + bind + execute + msg("S"))
show("pipeline-then", until(c, 1))
# a syntax error in a failed transaction: the parser answers first (42601)
c.query("BEGIN")
c.query("SELECT 1/0")
c.send(msg("P", cstr("") + cstr("SELEC 1") + b"\0\0") + msg("S"))
show("parse-in-failed-tx", until(c, 1))
c.send(msg("P", cstr("") + cstr("SELECT 1") + b"\0\0") + msg("S"))
show("parse-ok-in-failed-tx", until(c, 1))
c.query("ROLLBACK")
c.query("DROP TABLE public.copied")
c.terminate()
# encodings as clients spell them
for enc in ["'utf-8'", "unicode", "UTF_8", "LATIN1"]:
    try:
        c = login({"client_encoding": enc})
        show("client_encoding=" + enc, c.query("SHOW client_encoding"))
        c.terminate()
    except Exception as e:
        print("client_encoding=" + enc, "refused", getattr(e, "fields", {}).get("C", type(e).__name__), flush=True)
PY
}
direct_wire=$(wire "$MG_SVC_USER" "$MG_SVC_PASS" "$MG_PG_PORT" $DB "$MG_CA" 2>&1 || true)
mg_wire=$(wire writer "$WTOK" "$MG_PORT" $DB "$MG_CA" 2>&1 || true)
for label in copy-after-flush copied query-after-failed-parse after pipeline-after-error pipeline-then \
             parse-in-failed-tx parse-ok-in-failed-tx "client_encoding='utf-8'" client_encoding=unicode \
             client_encoding=UTF_8; do
  d=$(grep -F "$label " <<<"$direct_wire" | head -1 || true)
  m=$(grep -F "$label " <<<"$mg_wire" | head -1 || true)
  if [ -n "$d" ] && [ "$d" = "$m" ]; then ok "wire: $d"
  else fail "wire: $label as directly" "direct: ${d:-nothing}; martgate: ${m:-nothing}" "$mg_wire"; fi
done
check_match "a Query after Parse/Describe/Flush runs its COPY" '^copied T D D C:SELECT 2 Z$' "$mg_wire"
check_match "a Query after a failed Parse of its batch is skipped, as the warehouse skips it" \
  '^query-after-failed-parse E:42601 Z$' "$mg_wire"
check_match "requests sent after a pipeline's error, before its Sync, are skipped; the next batch runs" \
  '^pipeline-after-error 1 2 C:INSERT 0 1 1 E:22012 Z$' "$mg_wire"
check_match "... the next batch runs" '^pipeline-then 1 2 D C:SELECT 1 Z$' "$mg_wire"
check_match "a syntax error in a failed transaction is the parser's 42601, another statement's 25P02" \
  '^parse-in-failed-tx E:42601 Z$' "$mg_wire"
check_match "... another statement's 25P02" '^parse-ok-in-failed-tx E:25P02 Z$' "$mg_wire"
check_match "an encoding other than UTF-8 is still refused at startup" '^client_encoding=LATIN1 refused' "$mg_wire"
check_match "... which the warehouse itself would take" '^client_encoding=LATIN1 T D C:SHOW Z' "$direct_wire"

# ---- a superuser setting the service role was granted ------------------------
PGOPTIONS='-c lc_messages=C' PGPASSWORD=$MG_SVC_PASS timeout 30 psql -X "$(direct_conninfo $DB)" -c 'select 1' >/dev/null 2>&1 &&
  fail "lc_messages at startup is refused to the service role before the grant" "it was accepted"
pg_admin postgres -qc "GRANT SET ON PARAMETER lc_messages TO $MG_SVC_USER" >/dev/null
mg_stop
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\"" mg_start $DB || h_die "martgate did not start again"
out=$(PGOPTIONS='-c lc_messages=C' as_writer -Atc 'show lc_messages' 2>&1 || true)
check_eq "lc_messages at startup, once the service role may set it (GRANT SET ON PARAMETER)" C "$out"
out=$(PGOPTIONS='-c lc_messages=C' PGPASSWORD=$MG_SVC_PASS timeout 30 psql -X -Atc 'show lc_messages' "$(direct_conninfo $DB)" 2>&1 || true)
check_eq "... as the warehouse takes it from the service role" C "$out"
out=$(PGOPTIONS='-c timezone_abbreviations=India' as_writer -Atc 'show timezone_abbreviations' 2>&1 || true)
check_eq "timezone_abbreviations at startup" India "$out"
out=$(PGOPTIONS='-c log_min_messages=debug5' as_writer -Atc 'select 1' 2>&1 || true)
check_match "a superuser setting not granted is still refused at startup" "startup parameter refused" "$out"
pg_admin postgres -qc "REVOKE SET ON PARAMETER lc_messages FROM $MG_SVC_USER" >/dev/null

if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
h_sanitizer_check
h_done

#!/usr/bin/env bash
# psql through martgate: queries and results, transactions, notices and
# notifications, session parameters, warehouse errors intact (compared with the
# warehouse's own answer), \copy both ways, large results, unknown database.
. "$(dirname "$0")/../lib/harness.sh"
h_init basic
DB=t_basic
pg_createdb $DB
mg_start $DB || h_die "martgate did not start"

direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) CHECK (price >= 0),
                    tags text[], doc jsonb, raw bytea, at timestamptz);
INSERT INTO items VALUES
  (1, 'plain', 1.50, '{a,b}', '{"k": [1, 2]}', '\x00ff10', '2024-01-02 03:04:05+00'),
  (2, E'tab\there', 0, NULL, NULL, NULL, NULL),
  (3, E'new\nline and \\ backslash', 99999999.99, '{"x y",NULL}', '"s"', '\x', 'infinity'),
  (4, 'ünïcødé ☃ 日本', 2.25, '{}', '[]', '\x5c', '1999-12-31 23:59:59.999999+00');
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int, parent_id int REFERENCES parent(id));
CREATE TABLE ledger (id serial PRIMARY KEY, v int NOT NULL);
CREATE FUNCTION boom(x int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF x > 1 THEN
    RAISE EXCEPTION 'boom % too big', x USING ERRCODE = 'P0042', DETAIL = 'detail text', HINT = 'hint text';
  END IF;
  RETURN x;
END $$;
SQL

# same_as_direct NAME PSQL-ARGS...: stdout+stderr through martgate equal the
# warehouse's own, and not empty.
same_as_direct() {
  local name=$1; shift
  local a b
  a=$(tgt_psql $DB "$@" 2>&1 || true)
  b=$(direct_psql $DB "$@" 2>&1 || true)
  if [ -z "$b" ]; then fail "$name" "direct answer is empty (test bug)"
  elif [ "$a" == "$b" ]; then ok "$name"
  else fail "$name" "differs from the warehouse's answer" "--- direct:" "$b" "--- through martgate:" "$a"; fi
}
# same_as_direct_stdin NAME PSQL-ARGS... <<SQL: the same, for a script on stdin.
same_as_direct_stdin() {
  local name=$1; shift
  cat >"$T_DIR/stdin.sql"
  same_as_direct "$name" "$@" -f "$T_DIR/stdin.sql"
}

# ---- queries
check_eq "select 1" 1 "$(tgt_psql $DB -Atc 'select 1' 2>&1)"
same_as_direct "types round trip (text)" -Ac "select * from items order by id"
same_as_direct "expanded aligned output" -xc "select * from items where id = 4"
same_as_direct "multi-statement query" -Atc "select 1; select 'two'; select 3 as three"
same_as_direct "no-row result" -Ac "select * from items where false"
same_as_direct "DDL and DML command tags" -c "create temp table tt(a int); insert into tt select generate_series(1,5); update tt set a = a + 1; delete from tt where a > 3; drop table tt"
same_as_direct "SQL-level PREPARE/EXECUTE" -Atc "prepare p(int) as select name from items where id = \$1; execute p(1); execute p(4); deallocate p"

big_t=$(tgt_psql $DB -Atc "select g, md5(g::text) from generate_series(1,200000) g" 2>&1 | md5sum) || true
big_d=$(direct_psql $DB -Atc "select g, md5(g::text) from generate_series(1,200000) g" 2>&1 | md5sum) || true
check_eq "200000-row result identical" "$big_d" "$big_t"
check_eq "5 MB single value" "5000001" "$(tgt_psql $DB -Atc "select repeat('x', 5000000)" 2>&1 | wc -c)"

# ---- transactions
out=$(tgt_psql $DB -qAt -v ON_ERROR_STOP=1 <<'SQL' 2>&1
begin; insert into ledger(v) values (1); rollback;
select count(*) from ledger;
begin; insert into ledger(v) values (2); insert into ledger(v) values (3); commit;
select string_agg(v::text, ',' order by v) from ledger;
begin; insert into ledger(v) values (4); savepoint s; insert into ledger(v) values (5); rollback to savepoint s; commit;
select string_agg(v::text, ',' order by v) from ledger;
SQL
) || true
check_eq "commit, rollback, savepoint" $'0\n2,3\n2,3,4' "$out"
check_eq "committed rows visible to the warehouse" "2,3,4" "$(direct_psql $DB -Atc "select string_agg(v::text, ',' order by v) from ledger")"
same_as_direct_stdin "failed transaction (25P02) then rollback" <<'SQL'
\set VERBOSITY verbose
begin;
select 1/0;
select 1;
rollback;
select 'after';
SQL

# ---- notices, notifications, parameters
out=$(tgt_psql $DB -Atc "do \$\$ begin raise notice 'hello %', 42; raise warning 'careful'; end \$\$" 2>&1) || true
check_match "NoticeResponse relayed (notice)" '^NOTICE:  hello 42$' "$out"
check_match "NoticeResponse relayed (warning)" '^WARNING:  careful$' "$out"
out=$(tgt_psql $DB -At <<'SQL' 2>&1
listen chan;
notify chan, 'payload 1';
select pg_notify('chan', 'payload 2');
SQL
) || true
check_match "NotificationResponse relayed (NOTIFY)" 'notification "chan" with payload "payload 1" received' "$out"
check_match "NotificationResponse relayed (pg_notify)" 'notification "chan" with payload "payload 2" received' "$out"
out=$(PGAPPNAME=mg-basic-test tgt_psql $DB -Atc "show application_name" 2>&1) || true
check_eq "application_name from the startup packet" "mg-basic-test" "$out"
out=$(PGOPTIONS="-c statement_timeout=4321" tgt_psql $DB -Atc "show statement_timeout" 2>&1) || true
check_eq "startup options (-c statement_timeout) passed to the warehouse" "4321ms" "$out"
same_as_direct "SET then SHOW in one session" -Atc "set datestyle = 'SQL, DMY'; show datestyle; select '2024-01-02'::date"

# ---- warehouse errors arrive intact: SQLSTATE, message, detail, hint, position, context
err_case() { # NAME SQLSTATE SQL
  local name=$1 state=$2 sql=$3 out
  out=$(printf '\\set VERBOSITY verbose\n%s\n' "$sql" | tgt_psql $DB 2>&1 || true)
  if grep -q "ERROR:  $state:" <<<"$out"; then ok "error $name carries $state"
  else fail "error $name carries $state" "SQLSTATE missing" "$out"; fi
  printf '\\set VERBOSITY verbose\n%s\n' "$sql" >"$T_DIR/err.sql"
  same_as_direct "error $name intact (message, detail, position...)" -f "$T_DIR/err.sql"
}
err_case "syntax" 42601 "select * fromm items;"
err_case "undefined table (position)" 42P01 "select id,
       name
  from no_such_table where id = 1;"
err_case "undefined column (hint)" 42703 "select nmae from items;"
err_case "division by zero" 22012 "select 1/0;"
err_case "unique violation (detail, constraint)" 23505 "insert into items(id, name) values (1, 'dup');"
err_case "not-null violation" 23502 "insert into items(id, name) values (10, null);"
err_case "check violation" 23514 "insert into items(id, name, price) values (11, 'neg', -1);"
err_case "foreign key violation" 23503 "insert into child values (1, 12345);"
err_case "invalid input syntax" 22P02 "select 'abc'::int;"
err_case "plpgsql raise (detail, hint, context)" P0042 "select boom(5);"
err_case "statement timeout" 57014 "set statement_timeout = 50; select pg_sleep(2);"
err_case "unicode in message" 42P01 "select * from \"tábla ☃\";"
out=$(tgt_psql $DB -Atc "select 'still alive after errors'" 2>&1) || true
check_eq "session works after errors" "still alive after errors" "$out"

# ---- \copy out and in
for fmt in "text" "csv, header true" "binary"; do
  tgt_psql $DB -qc "\\copy items to '$T_DIR/out-t.dat' with (format $fmt)" >/dev/null 2>&1 || true
  direct_psql $DB -qc "\\copy items to '$T_DIR/out-d.dat' with (format $fmt)" >/dev/null 2>&1 || true
  if [ -s "$T_DIR/out-d.dat" ] && cmp -s "$T_DIR/out-d.dat" "$T_DIR/out-t.dat"; then ok "\\copy out ($fmt) byte-identical"
  else fail "\\copy out ($fmt) byte-identical" "files differ" "$(cmp "$T_DIR/out-d.dat" "$T_DIR/out-t.dat" 2>&1)"; fi
  rm -f "$T_DIR/out-t.dat" "$T_DIR/out-d.dat"
done
direct_psql $DB -qc "create table bulk (id int, t text, n numeric, b bytea)" >/dev/null
python3 - "$T_DIR/bulk.tsv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1, 100001):
        t = "\\N" if i % 97 == 0 else "row %d \\t tab \\\\ bs ü" % i
        f.write("%d\t%s\t%d.%02d\t\\\\x%06x\n" % (i, t, i, i % 100, i))
PY
out=$(tgt_psql $DB -c "\\copy bulk from '$T_DIR/bulk.tsv'" 2>&1) || true
check_eq "\\copy in 100000 rows (command tag)" "COPY 100000" "$out"
sum_sql="select count(*), count(t), md5(string_agg(id::text || coalesce(t,'-') || n::text || encode(b,'hex'), ',' order by id)) from bulk"
check_eq "\\copy in data arrived intact" "$(python3 - "$T_DIR/bulk.tsv" <<'PY'
import sys, hashlib
parts = []
n = nn = 0
for line in open(sys.argv[1], encoding="utf-8"):
    i, t, num, b = line.rstrip("\n").split("\t")
    n += 1
    if t == "\\N":
        t = "-"
    else:
        nn += 1
        t = t.replace("\\t", "\t").replace("\\\\", "\\")
    parts.append(i + t + num + b[3:])
print("%d|%d|%s" % (n, nn, hashlib.md5(",".join(parts).encode()).hexdigest()))
PY
)" "$(direct_psql $DB -Atc "$sum_sql" 2>&1)"
tgt_psql $DB -qc "\\copy bulk to '$T_DIR/bulk-back.tsv'" >/dev/null 2>&1 || true
direct_psql $DB -qc "\\copy bulk to '$T_DIR/bulk-back-d.tsv'" >/dev/null 2>&1 || true
if [ -s "$T_DIR/bulk-back-d.tsv" ] && cmp -s "$T_DIR/bulk-back-d.tsv" "$T_DIR/bulk-back.tsv"; then ok "\\copy out 100000 rows identical"
else fail "\\copy out 100000 rows identical" "differs"; fi
printf '1\tok\t1\t\\\\x00\n2\tok\tnot-a-number\t\\\\x00\n' >"$T_DIR/bad.tsv"
cat >"$T_DIR/badcopy.sql" <<SQL
\\set VERBOSITY verbose
create temp table b2 (like bulk);
\\copy b2 from '$T_DIR/bad.tsv'
select 'after', count(*) from b2;
SQL
same_as_direct "\\copy in with bad data: error and CONTEXT intact, session goes on" -At -f "$T_DIR/badcopy.sql"
same_as_direct_stdin "COPY FROM STDIN in a script" -At <<'SQL'
create temp table s (a int, b text);
copy s from stdin;
1	one
2	two
\.
select * from s order by a;
copy (select * from s order by a) to stdout with (format csv);
SQL

# ---- unknown database: 3D000
expect_sqlstate "unknown database -> 3D000" 3D000 \
  pgwire_login "$MG_PORT" "$(tgt_user)" "$(tgt_password)" no_such_db
out=$(tgt_psql no_such_db -Atc "select 1" 2>&1 || true)
check_match "unknown database: psql says so" 'database "no_such_db" does not exist|no_such_db' "$out"

# ---- the warehouse ends the session: the client is told, martgate goes on
out=$(tgt_psql $DB -c '\set VERBOSITY verbose' -c "select pg_terminate_backend(pg_backend_pid())" 2>&1 || true)
check_match "backend terminated: client gets 57P01 or a closed connection" '57P01|terminating connection|server closed the connection' "$out"
check_eq "serving after a backend was terminated" 1 "$(tgt_psql $DB -Atc 'select 1' 2>&1)"

# ---- FunctionCall ('F') is refused with 42501 (libpq large objects use it)
echo "large object" >"$T_DIR/lo.txt"
if [ "$MG_TARGET" = direct ]; then
  out=$(tgt_psql $DB -c "\\lo_import '$T_DIR/lo.txt'" 2>&1 || true)
  check_match "FunctionCall works on the warehouse itself (lo_import)" '^lo_import [0-9]+' "$out"
else
  out=$(tgt_psql $DB -c '\set VERBOSITY verbose' -c "\\lo_import '$T_DIR/lo.txt'" 2>&1 || true)
  check_match "FunctionCall (psql \\lo_import) refused with 42501" '42501' "$out"
  check_eq "session and martgate fine after FunctionCall" 1 "$(tgt_psql $DB -Atc 'select 1' 2>&1)"
  check_eq "no large object was created" 0 "$(direct_psql $DB -Atc 'select count(*) from pg_largeobject_metadata' 2>&1)"
fi

if [ "$MG_TARGET" = martgate ]; then
  if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi
fi
h_done

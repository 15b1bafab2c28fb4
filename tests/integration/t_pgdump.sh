#!/usr/bin/env bash
# pg_dump through martgate is byte-equal to pg_dump direct: plain format,
# custom format (restored to SQL) and directory format with 2 parallel jobs
# (synchronized snapshots across sessions). Nothing is stripped: the restrict
# key (pg_dump >= 15.14 makes a random one) is fixed on both sides instead.
. "$(dirname "$0")/../lib/harness.sh"
h_init pgdump
DB=t_pgdump
pg_createdb $DB
pg_admin postgres -c "DROP ROLE IF EXISTS mg_dump_reader" -c "CREATE ROLE mg_dump_reader NOLOGIN" >/dev/null
mg_start $DB || h_die "martgate did not start"

direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA sales;
CREATE TYPE sales.status AS ENUM ('new', 'won', 'lost');
CREATE DOMAIN sales.money_pos AS numeric(12,2) CHECK (VALUE >= 0);
CREATE SEQUENCE sales.ticket_seq START 1000 INCREMENT 7;
CREATE TABLE sales.customers (
  id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE, region char(2) DEFAULT 'sp',
  tags text[], profile jsonb, photo bytea, created timestamptz DEFAULT now(), ip inet, span int4range);
CREATE TABLE sales.deals (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id bigint REFERENCES sales.customers(id) ON DELETE CASCADE,
  status sales.status NOT NULL DEFAULT 'new', amount sales.money_pos, ticket int DEFAULT nextval('sales.ticket_seq'),
  note text, CHECK (amount IS NULL OR amount < 1e9));
CREATE INDEX deals_status_idx ON sales.deals (status) WHERE status <> 'lost';
CREATE INDEX customers_lower_name ON sales.customers (lower(name));
CREATE VIEW sales.open_deals AS SELECT d.id, c.name, d.amount FROM sales.deals d JOIN sales.customers c ON c.id = d.customer_id WHERE d.status = 'new';
CREATE MATERIALIZED VIEW sales.totals AS SELECT status, count(*) AS n, sum(amount) AS total FROM sales.deals GROUP BY status;
CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, 'touched'); RETURN NEW; END $$;
CREATE TRIGGER deals_touch BEFORE INSERT ON sales.deals FOR EACH ROW EXECUTE FUNCTION sales.touch();
COMMENT ON TABLE sales.deals IS 'Deals, ünïcødé comment ☃';
COMMENT ON COLUMN sales.customers.email IS 'contact';
GRANT USAGE ON SCHEMA sales TO mg_dump_reader;
GRANT SELECT ON sales.open_deals TO mg_dump_reader;
INSERT INTO sales.customers (name, email, tags, profile, photo, created, ip, span)
SELECT 'customer ' || g || CASE WHEN g % 10 = 0 THEN E' tab\there\nnewline \\ ü' ELSE '' END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'c' || g || '@example.com' END,
       ARRAY['t' || (g % 5), NULL], jsonb_build_object('g', g, 'even', g % 2 = 0),
       decode(md5(g::text), 'hex'), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
       ('10.0.' || (g % 250) || '.' || (g % 200))::inet, int4range(g, g + 10)
FROM generate_series(1, 20000) g;
INSERT INTO sales.deals (customer_id, status, amount)
SELECT (g % 20000) + 1, (ARRAY['new','won','lost'])[(g % 3) + 1]::sales.status, (g % 1000) * 1.25
FROM generate_series(1, 30000) g;
REFRESH MATERIALIZED VIEW sales.totals;
CREATE TABLE public.wide AS SELECT g AS id, repeat(md5(g::text), 40) AS blob FROM generate_series(1, 2000) g;
SQL

dump_cmp() { # NAME FILE-DIRECT FILE-TARGET
  if [ ! -s "$2" ]; then fail "$1" "direct dump is empty (test bug)"
  elif cmp -s "$2" "$3"; then ok "$1 ($(wc -c <"$2") bytes)"
  else fail "$1" "dumps differ" "$(diff "$2" "$3" | head -30)"; fi
}
D=$T_DIR/dumps; mkdir -p "$D"
RK=(--restrict-key=martgatetest)
grep -q -- --restrict-key <<<"$(pg_dump --help)" || RK=()

(direct_env; timeout 120 pg_dump "${RK[@]}" -d $DB -f "$D/direct.sql") 2>"$D/direct.err" || true
(tgt_env; timeout 120 pg_dump "${RK[@]}" -d $DB -f "$D/target.sql") 2>"$D/target.err" || true
check_eq "pg_dump through martgate: no errors" "" "$(cat "$D/target.err")"
dump_cmp "plain pg_dump byte-equal to direct" "$D/direct.sql" "$D/target.sql"
check_match "dump has the data" 'COPY sales\.deals .* FROM stdin;' "$(cat "$D/target.sql")"

(direct_env; timeout 120 pg_dump -Fc -d $DB -f "$D/direct.dump") 2>>"$D/direct.err" || true
(tgt_env; timeout 120 pg_dump -Fc -d $DB -f "$D/target.dump") 2>"$D/target.err" || true
check_eq "pg_dump -Fc through martgate: no errors" "" "$(cat "$D/target.err")"
timeout 60 pg_restore "${RK[@]}" -f "$D/direct-fc.sql" "$D/direct.dump" 2>/dev/null || true
timeout 60 pg_restore "${RK[@]}" -f "$D/target-fc.sql" "$D/target.dump" 2>&1 || true
dump_cmp "custom-format dump restores to the same SQL" "$D/direct-fc.sql" "$D/target-fc.sql"

(direct_env; timeout 120 pg_dump -Fd -j 2 -d $DB -f "$D/direct.dir") 2>>"$D/direct.err" || true
(tgt_env; timeout 120 pg_dump -Fd -j 2 -d $DB -f "$D/target.dir") 2>"$D/target.err" || true
check_eq "pg_dump -Fd -j 2 (synchronized snapshots) through martgate: no errors" "" "$(cat "$D/target.err")"
timeout 60 pg_restore "${RK[@]}" -f "$D/direct-fd.sql" "$D/direct.dir" 2>/dev/null || true
timeout 60 pg_restore "${RK[@]}" -f "$D/target-fd.sql" "$D/target.dir" 2>&1 || true
dump_cmp "directory-format parallel dump restores to the same SQL" "$D/direct-fd.sql" "$D/target-fd.sql"

# The dump restores (through martgate) into a fresh database and dumps again the same.
pg_createdb t_pgdump_restore
if [ "$MG_TARGET" = martgate ]; then mg_stop; mg_start $DB t_pgdump_restore || h_die "martgate did not restart"; fi
out=$(tgt_psql t_pgdump_restore -q -v ON_ERROR_STOP=1 -f "$D/direct.sql" 2>&1) && rc=0 || rc=$?
if [ $rc -eq 0 ]; then ok "plain dump restores through martgate (psql -f)"; else fail "plain dump restores through martgate (psql -f)" "exit $rc" "$out"; fi
(direct_env; timeout 120 pg_dump "${RK[@]}" -d t_pgdump_restore -f "$D/restored.sql") 2>/dev/null || true
dump_cmp "restored database dumps the same" "$D/direct.sql" "$D/restored.sql"
h_done

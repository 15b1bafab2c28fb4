#!/usr/bin/env bash
# Metabase on a PostgreSQL connection, through martgate (issue 6): pgjdbc with
# Metabase's connection properties and checkout, a DatabaseMetaData sync, the
# catalog queries of Metabase's PostgreSQL driver, MBQL and native queries
# carrying Metabase's remark, cursor fetch, read-only mode and connection
# impersonation, once per persona of the reference policy
# (tests/unit/fixtures/policy/passei); then the audit log names the Metabase
# user and the impersonated role. The Java side is
# tests/integration/java/MetabaseSync.java (compiled here against
# /usr/share/java/postgresql.jar); each of its "ok" / "not ok" lines is a check.
. "$(dirname "$0")/../lib/harness.sh"
h_init metabase
need_martgate
JAR=${PGJDBC_JAR:-/usr/share/java/postgresql.jar}
command -v javac >/dev/null || h_die "javac not found (default-jdk-headless)"
[ -f "$JAR" ] || h_die "$JAR not found (libpostgresql-jdbc-java)"
DB=t_metabase
POLICY=$H_REPO/tests/unit/fixtures/policy/passei
AUDIT=$T_DIR/audit.jsonl

# The passei-style warehouse: keys (also across schemas, and from a visible
# table to hidden ones), comments, a view, a materialized view, an index, an enum.
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA raw; CREATE SCHEMA staging; CREATE SCHEMA funnel_data_mart;
CREATE SCHEMA origination_mart; CREATE SCHEMA sales_mart; CREATE SCHEMA shared_mart;

CREATE TABLE raw.leads (id int PRIMARY KEY, created_at timestamptz NOT NULL, name text, email text, phone text,
                        channel text, region text, payload jsonb);
COMMENT ON TABLE raw.leads IS 'leads as landed from the leads topic (PII)';
COMMENT ON COLUMN raw.leads.email IS 'the lead''s e-mail address';
INSERT INTO raw.leads SELECT g, timestamptz '2026-10-01 00:00+00' + g * interval '97 minutes', 'Lead ' || g,
  'lead' || g || '@example.com', '+55 11 9' || (1000 + g), (ARRAY['organic','paid','referral'])[1 + g % 3],
  (ARRAY['north','south','east','west'])[1 + g % 4], jsonb_build_object('utm', 'c' || g % 5)
  FROM generate_series(1, 300) g;
CREATE TABLE raw.contracts (id int PRIMARY KEY, lead_id int NOT NULL REFERENCES raw.leads (id), signed_at timestamptz,
                            amount numeric(12,2), plan text, region text);
COMMENT ON TABLE raw.contracts IS 'contracts as landed from the contracts topic';
INSERT INTO raw.contracts SELECT id / 3, id, created_at + interval '2 days', 100 + (id * 37) % 900,
  (ARRAY['basic','gold','platinum'])[1 + id % 5 % 3], region FROM raw.leads WHERE id % 3 = 0;
CREATE TABLE raw.credentials (id int PRIMARY KEY, secret text);
COMMENT ON TABLE raw.credentials IS 'service credentials: never for squads';
INSERT INTO raw.credentials VALUES (1, 's3cr3t'), (2, 'hunter2');

CREATE TABLE staging.leads (id int PRIMARY KEY, created_at timestamptz NOT NULL, channel text, region text);
COMMENT ON TABLE staging.leads IS 'typed, de-duplicated leads';
INSERT INTO staging.leads SELECT id, created_at, channel, region FROM raw.leads;
CREATE TABLE staging.contracts (id int PRIMARY KEY, lead_id int NOT NULL REFERENCES staging.leads (id), signed_at timestamptz,
                                amount numeric(12,2), plan text, region text);
INSERT INTO staging.contracts SELECT * FROM raw.contracts;

CREATE TABLE funnel_data_mart.funnel (day date, squad text, region text, leads int NOT NULL, contracts int NOT NULL,
                                      PRIMARY KEY (day, squad, region));
COMMENT ON TABLE funnel_data_mart.funnel IS 'lead to contract funnel per day, squad and region';
COMMENT ON COLUMN funnel_data_mart.funnel.leads IS 'new leads that day';
INSERT INTO funnel_data_mart.funnel SELECT d::date, s, r, (extract(day FROM d)::int * 7 + si * 3 + ri) % 50,
  ((extract(day FROM d)::int * 7 + si * 3 + ri) % 50) / 3
  FROM generate_series(date '2026-10-01', date '2026-10-30', interval '1 day') d,
       unnest(ARRAY['origination','sales']) WITH ORDINALITY AS sq(s, si),
       unnest(ARRAY['north','south','east']) WITH ORDINALITY AS rg(r, ri);
CREATE TABLE funnel_data_mart.leads (id int PRIMARY KEY, staging_lead_id int REFERENCES staging.leads (id),
                                     owner_email text, team text, squad text, region text, stage text);
COMMENT ON TABLE funnel_data_mart.leads IS 'leads in the funnel, with their owner';
INSERT INTO funnel_data_mart.leads SELECT g, g, (ARRAY['sam','olga','otto','sam'])[1 + g % 4],
  (ARRAY['squad-sales','squad-origination'])[1 + g % 2], (ARRAY['origination','sales'])[1 + g % 2],
  (ARRAY['north','south','east'])[1 + g % 3], (ARRAY['new','contacted','qualified','won','lost'])[1 + g % 5]
  FROM generate_series(1, 60) g;

CREATE TABLE origination_mart.plans (id int PRIMARY KEY, name text NOT NULL UNIQUE);
COMMENT ON TABLE origination_mart.plans IS 'subscription plans';
INSERT INTO origination_mart.plans VALUES (1, 'basic'), (2, 'gold'), (3, 'platinum');
CREATE TABLE origination_mart.originations (id serial PRIMARY KEY, month date NOT NULL, region text NOT NULL,
                                            plan_id int NOT NULL REFERENCES origination_mart.plans (id), n int NOT NULL);
COMMENT ON TABLE origination_mart.originations IS 'originations per month, region and plan';
COMMENT ON COLUMN origination_mart.originations.n IS 'contracts originated';
CREATE INDEX originations_region_idx ON origination_mart.originations (region);
INSERT INTO origination_mart.originations (month, region, plan_id, n)
  SELECT make_date(2026, m, 1), r, p, (m * 5 + ri * 3 + p) % 17 + 1
  FROM generate_series(1, 10) m, unnest(ARRAY['north','south','east']) WITH ORDINALITY AS rg(r, ri), generate_series(1, 3) p
  ORDER BY 1, 2, 3;
CREATE VIEW origination_mart.by_region AS SELECT region, sum(n) AS n FROM origination_mart.originations GROUP BY region;
COMMENT ON VIEW origination_mart.by_region IS 'originations per region';
CREATE MATERIALIZED VIEW origination_mart.monthly AS SELECT month, sum(n) AS n FROM origination_mart.originations GROUP BY month;
COMMENT ON MATERIALIZED VIEW origination_mart.monthly IS 'originations per month';

CREATE TABLE shared_mart.customers (id int PRIMARY KEY, email text, cpf text, phone text, birth_date date, salary numeric, name text);
COMMENT ON TABLE shared_mart.customers IS 'customers (PII, masked for squads)';
INSERT INTO shared_mart.customers VALUES
  (1, 'ann@example.com', '12345678901', '555-1234', '1990-01-02', 9000, 'Ann'),
  (2, 'bob@example.com', '98765432100', '555-9876', '1985-05-06', 7000, 'Bob'),
  (3, 'cid@example.com', '11122233344', NULL, '1979-12-31', 8000, 'Cid'),
  (4, 'dee@example.com', '55566677788', '555-0000', NULL, 6500, 'Dee');
CREATE TABLE shared_mart.calendar (day date PRIMARY KEY, is_weekend boolean NOT NULL);
INSERT INTO shared_mart.calendar SELECT d::date, extract(isodow FROM d) >= 6
  FROM generate_series(date '2026-10-01', date '2026-10-31', interval '1 day') d;
CREATE TABLE public.countries (code char(2) PRIMARY KEY, name text NOT NULL);
INSERT INTO public.countries VALUES ('BR', 'Brazil'), ('PT', 'Portugal'), ('US', 'United States');

CREATE TYPE sales_mart.order_status AS ENUM ('open', 'paid', 'refunded');
CREATE TABLE sales_mart.sales_per_region (region text PRIMARY KEY, amount numeric(14,2) NOT NULL);
COMMENT ON TABLE sales_mart.sales_per_region IS 'sales per region (streaming)';
INSERT INTO sales_mart.sales_per_region VALUES ('north', 1000.50), ('south', 2000.25), ('east', 1500.00);
CREATE TABLE sales_mart.orders (id int PRIMARY KEY, region text NOT NULL REFERENCES sales_mart.sales_per_region (region),
                                customer_id int REFERENCES shared_mart.customers (id), amount numeric(12,2) NOT NULL,
                                status sales_mart.order_status NOT NULL, ordered_at date);
COMMENT ON COLUMN sales_mart.orders.status IS 'order status';
INSERT INTO sales_mart.orders SELECT g, (ARRAY['north','south','east'])[1 + g % 3], 1 + g % 4, 10 * g + 0.5,
  (ARRAY['open','paid','paid','refunded'])[1 + g % 4]::sales_mart.order_status, date '2026-10-01' + g % 30
  FROM generate_series(1, 60) g;
ANALYZE raw.leads, raw.contracts, staging.leads, staging.contracts, funnel_data_mart.funnel, funnel_data_mart.leads,
  origination_mart.originations, sales_mart.orders, shared_mart.customers;
SQL

# the squads' Metabase connections log in with these service tokens; zed's
# remarks are only claims (end_user_claimed), not the end user
MG_CFG_EXTRA="\"policy\": \"$POLICY\", \"audit\": {\"file\": \"$AUDIT\", \"query_text\": \"full\", \"fsync_interval_ms\": 0, \"end_user_from\": [\"olga\", \"sam\", \"ana\", \"metabase-*\"]}"
mg_start $DB || h_die "martgate did not start"
wait_until 10 grep -q 'catalog of database' "$MG_LOG" || h_log "catalog not read yet"

tok() { mg_token --sub "$1" ${2:+--groups "$2"} --claim region=north --ttl 10m; }
mkdir -p "$T_DIR/classes"
if ! out=$(timeout 120 javac -encoding UTF-8 -cp "$JAR" -d "$T_DIR/classes" "$(dirname "$0")"/java/Metabase*.java 2>&1); then
  h_die "javac failed: $out"
fi

rc=0
out=$(MB_HOST=localhost MB_PORT=$MG_PORT MB_DB=$DB MB_CA=$MG_CA \
      MB_HASH_KEY_FILE=$MG_HASH_KEY MB_DIRECT_PORT=$MG_PG_PORT MB_DIRECT_USER=$MG_SVC_USER MB_DIRECT_PASSWORD=$MG_SVC_PASS \
      MB_TOKEN_ANA=$(tok ana data-engineers) MB_TOKEN_CARLA=$(tok carla data-scientists) \
      MB_TOKEN_OLGA=$(tok olga squad-origination) MB_TOKEN_SAM=$(tok sam squad-sales) \
      MB_TOKEN_ZED=$(tok zed) MB_TOKEN_SVC=$(tok metabase-svc) \
      timeout 240 java -Xss1m -Xmx256m -XX:TieredStopAtLevel=1 -cp "$T_DIR/classes:$JAR" MetabaseSync 2>&1) || rc=$?
while IFS= read -r line; do
  case $line in
    "ok "*) ok "${line#ok * - }" ;;
    "not ok "*) line=${line#not ok * - }; fail "${line%% | *}" "${line#* | }" ;;
    *) [ -n "$line" ] && echo "#   $line" ;;
  esac
done <<<"$out"
grep -q '^# metabase: ' <<<"$out" || fail "java program" "did not finish (exit $rc)" "$(tail -20 <<<"$out")"
if mg_alive; then ok "martgate still running"; else fail "martgate still running" "it exited" "$(mg_log_tail)"; fi

# ---- the audit log: SIGTERM drains the queue, then read it
mg_stop
check_eq "martgate exits 0 on SIGTERM" 0 "$MG_EXIT"
cat >"$T_DIR/audit_check.py" <<'PY'
import hashlib, json, sys
from pgwire import Report
rep = Report()
recs, bad = [], 0
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        recs.append(json.loads(line))
    except ValueError:
        bad += 1
rep.check("audit: every line is a JSON object", bad == 0 and recs, "%d bad lines of %d" % (bad, bad + len(recs)))

def h(label):
    return hashlib.sha256(("martgate-metabase-test:" + label).encode()).hexdigest()
def stmts(label):
    return [r for r in recs if r.get("event") == "statement" and h(label) in (r.get("query") or "")]
def show(rs):
    keys = ("user", "end_user", "end_user_claimed", "decision", "rule", "sqlstate", "impersonated_role", "effective_groups", "rewritten", "query")
    return [{k: r.get(k) for k in keys if k in r} for r in rs[:3]]
def match(value, want):
    return want(value) if callable(want) else value == want
def expect(name, label, n_min=1, **want):
    rs = stmts(label)
    wrong = [r for r in rs if not all(match(r.get(k), v) for k, v in want.items())]
    rep.check("audit: " + name, len(rs) >= n_min and not wrong,
              "%d records (want >= %d), %d not matching %r: %r" % (len(rs), n_min, len(wrong), want, show(wrong or rs)))

starts = [r for r in recs if r.get("event") == "session_start"]
# pgjdbc sends ApplicationName as "SET application_name = '...'" right after login
# (not in the startup packet unless assumeMinServerVersion >= 9.0): the
# statements that follow it are the Metabase session's.
rs = stmts("orig-count") + stmts("imp-orig") + stmts("sales-leads")
rep.check("audit: Metabase's statements carry its application_name (sent by pgjdbc with SET after login)",
          rs and all((r.get("application_name") or "").startswith("Metabase v") for r in rs),
          sorted({(r.get("user"), r.get("application_name")) for r in rs}))
ends = [r for r in recs if r.get("event") == "session_end"]
rep.check("audit: every session that started has ended", len(ends) == len(starts) and starts,
          "%d session_start, %d session_end" % (len(starts), len(ends)))

allowed = lambda v: v in ("allow", "rewrite")
expect("MBQL executions name the Metabase user (6 executions, named statement after prepareThreshold)", "orig-count", 6,
       end_user="metabase:7", user="olga", decision=allowed, sqlstate="00000")
expect("query_text full keeps Metabase's remark", "orig-count", 1,
       query=lambda q: (q or "").startswith("-- Metabase:: userID: 7 queryType: MBQL queryHash: " + h("orig-count")))
expect("row-filtered MBQL: rewrite, metabase:7", "orig-funnel", 1, end_user="metabase:7", decision="rewrite", rewritten=True,
       rule="squad-origination-funnel")
expect("masked MBQL: rewrite, metabase:7", "orig-customers", 1, end_user="metabase:7", decision="rewrite")
expect("denied MBQL: deny 42501, metabase:7, names the relation", "orig-denied-sales", 1, end_user="metabase:7", decision="deny",
       sqlstate="42501", relations=lambda v: "sales_mart.sales_per_region" in (v or []))
expect("native query names the Metabase user", "orig-native", 1, end_user="metabase:7", decision=allowed)
expect("cursor-fetched query names the Metabase user", "orig-cursor", 1, end_user="metabase:7")
expect("read-only transaction query names the Metabase user", "orig-ro", 1, end_user="metabase:7")
expect("a remark without userID names no end user", "orig-fieldvalues", 1, end_user=None)
expect("sales' row-filtered MBQL: metabase:9", "sales-leads", 1, end_user="metabase:9", user="sam", decision="rewrite")
expect("a remark from a login audit.end_user_from does not name: only claimed", "nobody-denied-orig", 1,
       end_user=None, end_user_claimed="metabase:11", user="zed", decision="deny")
expect("engineer's MBQL: metabase:3", "engineer-raw-join", 1, end_user="metabase:3", user="ana", decision=allowed)
is_orig = lambda v: isinstance(v, list) and "squad-origination" in v
expect("impersonated MBQL carries impersonated_role and the role's groups (6 checkouts)", "imp-orig", 6,
       end_user="metabase:12", user="metabase-svc", impersonated_role="metabase_origination", effective_groups=is_orig,
       decision=allowed)
expect("impersonated denial carries impersonated_role", "imp-denied-raw", 1, impersonated_role="metabase_origination",
       decision="deny", end_user="metabase:12")
expect("impersonated masked query: rewrite with impersonated_role", "imp-customers", 1,
       impersonated_role="metabase_origination", decision="rewrite")
expect("after SET ROLE NONE: no impersonated_role", "imp-after-none", 1, impersonated_role=None, decision="deny",
       user="metabase-svc")
expect("as metabase_sales: impersonated_role metabase_sales", "imp-sales", 1, impersonated_role="metabase_sales", decision=allowed)

# pgjdbc sends Metabase's "SET ROLE r;" through Parse/Bind/Execute, without the
# trailing semicolon; the impersonation test checks out 7 times with metabase_origination.
def setrole(user, text):
    return [r for r in recs if r.get("event") == "statement" and r.get("user") == user
            and (r.get("query") or "").strip().rstrip(";") == text]
rs = setrole("metabase-svc", "SET ROLE metabase_origination")
rep.check("audit: each of the impersonator's SET ROLE metabase_origination recorded as allowed (7)",
          len(rs) == 7 and all(r.get("decision") == "allow" for r in rs), "%d records: %r" % (len(rs), show(rs)))
rs = setrole("metabase-svc", "SET ROLE NONE")
rep.check("audit: the impersonator's SET ROLE NONE recorded (2)", len(rs) == 2 and all(r.get("decision") == "allow" for r in rs),
          "%d records: %r" % (len(rs), show(rs)))
rs = setrole("metabase-svc", 'SET ROLE "metabase-admin"')
rep.check("audit: SET ROLE to an unmapped role recorded as denied", rs and all(r.get("decision") == "deny" for r in rs), show(rs))
rs = setrole("olga", "SET ROLE metabase_sales")
rep.check("audit: a non-impersonator's SET ROLE recorded as denied (42501)",
          rs and all(r.get("decision") == "deny" and r.get("sqlstate") == "42501" for r in rs), show(rs))
PY
rc=0
out=$(pyf "$T_DIR/audit_check.py" "$AUDIT" 2>&1) || rc=$?
h_report_rc "audit check script" "$rc" "$out"
h_done

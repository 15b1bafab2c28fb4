#!/usr/bin/env bash
# `martgate audit report --html`: a real audit trail (allowed, denied and
# restricted reads, a failed login, named applications) written by martgate,
# plus a hand-made older file whose user and query carry HTML, made into the
# report page; the page is rendered in headless Chromium over the DevTools
# protocol (tests/integration/audit_report_cdp.py, --remote-debugging-pipe):
# no console message, no request but the file, no script, audit text shown
# as text, and every data-k number equal to `martgate audit --summary --json`
# on the same files and filters. Screenshots go to /tmp/martgate-artefacts/.
. "$(dirname "$0")/../lib/harness.sh"
h_init audit_report
need_martgate
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
PY=/usr/bin/python3
CDP=$H_REPO/tests/integration/audit_report_cdp.py
ART=/tmp/martgate-artefacts
DB=t_audit_report
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 -c "
  CREATE SCHEMA pii; CREATE TABLE pii.people (id int, email text); INSERT INTO pii.people VALUES (1, 'a@b.c');
  CREATE SCHEMA open_data; CREATE TABLE open_data.t (id int); INSERT INTO open_data.t VALUES (1), (2);
  CREATE SCHEMA raw; CREATE TABLE raw.events (id int); INSERT INTO raw.events VALUES (1);" >/dev/null

cat >"$T_DIR/policy.json" <<'JSON'
{"datasets": {"pii": {"schemas": ["pii"], "classification": "restricted"},
              "open": {"schemas": ["open_data"], "classification": "public"},
              "raw": {"schemas": ["raw"], "classification": "internal"}},
 "rules": [{"id": "analysts-read", "subjects": {"groups": ["analysts"]},
            "objects": {"datasets": ["open", "pii"]}, "access": "read"},
           {"id": "dba-catalog", "subjects": {"groups": ["dba"]},
            "objects": {"datasets": ["pg_sensitive"]}, "access": "read"}]}
JSON
check "the policy loads" "$MARTGATE_BIN" policy check "$T_DIR/policy.json"
AUDIT=$T_DIR/audit.jsonl
MG_CFG_EXTRA="\"policy\": \"$T_DIR/policy.json\",
  \"audit\": {\"file\": \"$AUDIT\", \"query_text\": \"normalized\", \"fsync_interval_ms\": 0}"
mg_start $DB

as_user() { # USER GROUPS APP SQL
  local tok
  tok=$(mg_token --sub "$1" --groups "$2" --ttl 10m)
  MG_USER=$1 MG_TOKEN=$tok PGAPPNAME=$3 tgt_psql $DB -Atc "$4" 2>&1 || true
}
# alice (analysts): two restricted reads, one open read, one denial whose query carries a <script>
as_user alice analysts report-test "select count(*) from pii.people" >/dev/null
as_user alice analysts report-test "select email from pii.people" >/dev/null
as_user alice analysts report-test "select count(*) from open_data.t" >/dev/null
out=$(as_user alice analysts report-test "select * from raw.events /* <script>alert(1)</script> */")
check_match "alice is denied raw" 'permission denied by policy' "$out"
# bob (sales): denied pii and raw
out=$(as_user bob sales bi-tool "select * from pii.people")
check_match "bob is denied pii" 'permission denied by policy' "$out"
as_user bob sales bi-tool "select * from raw.events" >/dev/null
# carol (dba): reads pg_stat_activity (pg_sensitive)
check_match "carol reads pg_stat_activity" '^[0-9]+$' "$(as_user carol dba psql "select count(*) from pg_stat_activity")"
# a failed login
rc=0; out=$(PGPASSWORD=not-a-token timeout "$H_TIMEOUT" psql -X "$(tgt_conninfo $DB)" -Atc "select 1" 2>&1) || rc=$?
check_eq "a bad token is refused" 2 "$rc"
mg_stop   # every record written and flushed
check_match "the audit has a login_failed record" '"event":"login_failed"' "$(cat "$AUDIT")"

# an older, hand-made file: another day, HTML in the user name and the query
cat >"$T_DIR/older.jsonl" <<'JSONL'
{"ts":"2026-12-01T09:00:00.000001Z","event":"session_start","session":"x1","user":"<img src=x onerror=alert(2)>","groups":["<b>g</b>"],"application_name":"app \"quoted\" & 'single'"}
{"ts":"2026-12-01T09:00:01.000001Z","event":"statement","session":"x1","user":"<img src=x onerror=alert(2)>","groups":["<b>g</b>"],"decision":"deny","rule":"default","datasets":["raw"],"fingerprint":"00ff00ff00ff00ff","reason":"no rule grants <read> on raw","query":"SELECT 1 /* <script>alert(1)</script> */ FROM raw.events"}
{"ts":"2026-12-01T09:00:02.000001Z","event":"statement","session":"x1","user":"<img src=x onerror=alert(2)>","groups":["<b>g</b>"],"decision":"rewrite","datasets":["pii"],"fingerprint":"11aa","query":"SELECT email FROM pii.people"}
{"ts":"2026-12-01T09:00:03.000001Z","event":"login_failed","reason":"token <expired>"}
JSONL
FILES=("$T_DIR/older.jsonl" "$AUDIT")

# ---- the numbers themselves (--summary --json)
sum=$("$MARTGATE_BIN" audit --summary --json --policy "$T_DIR/policy.json" "${FILES[@]}")
jqs() { jq -c "$1" <<<"$sum"; }
check_eq "restricted datasets: the policy's, then pg_sensitive" '["pii","pg_sensitive"]' "$(jqs .restricted_datasets)"
check_eq "restricted reads: alice 2 pii, carol 1 pg_sensitive, the older user 1 pii (bob's denials are not reads)" \
  '[["<img src=x onerror=alert(2)>","pii",1],["alice","pii",2],["carol","pg_sensitive",1]]' \
  "$(jqs '[.restricted_reads[] | [.user, .dataset, .count]] | sort_by(.[0])')"
check_eq "denials by dataset: raw 3, pii 1" '{"pii":1,"raw":3}' "$(jqs '.deny_by_dataset' | jq -cS .)"
check_eq "denials by group" '{"<b>g</b>":1,"analysts":1,"sales":2}' "$(jqs '.deny_by_group' | jq -cS .)"
check_eq "login failures: 2, one of them the older file's" '2 1' \
  "$(jqs '[(.login_failures_by_reason | add), .login_failures_by_reason["token <expired>"]] | map(tostring) | join(" ")' | tr -d '"')"
check_eq "sessions by application" '[4,2,1]' \
  "$(jqs '[.sessions_by_application["report-test"], .sessions_by_application["bi-tool"], .sessions_by_application["psql"]]')"
check_eq "two days; the older one has 1 rewrite and 1 deny" '[2,{"day":"2026-12-01","allow":0,"rewrite":1,"deny":1}]' \
  "$(jqs '[(.by_day_decision | length), .by_day_decision[0]]')"
check_eq "the existing keys are still there" '["by_user_dataset_decision","events","records","top_denied_fingerprints"]' \
  "$(jqs '[keys[] | select(. == "records" or . == "events" or . == "by_user_dataset_decision" or . == "top_denied_fingerprints")]')"

# ---- the page
render() { # NAME PAGE SUMMARY: the CDP checks, one ok/not ok each
  local line
  if [ -z "$CHROMIUM" ]; then skip "$1: render in Chromium" "chromium not installed (scripts/install-deps.sh)"; return; fi
  rc=0; out=$(timeout 120 "$PY" "$CDP" "$CHROMIUM" "$2" "$3" "$T_DIR/$1.png" 2>&1) || rc=$?
  [ $rc -eq 0 ] || fail "$1: render in Chromium" "exit $rc" "$out"
  while IFS= read -r line; do
    case $line in
      "ok "*) ok "$1: ${line#ok }" ;;
      "not ok "*) fail "$1: ${line#not ok }" "" ;;
    esac
  done <<<"$out"
  mkdir -p "$ART"
  cp "$T_DIR/$1.png" "$ART/$1.png" 2>/dev/null || true
  cp "$T_DIR/$1-print.png" "$ART/$1-print.png" 2>/dev/null || true
}
PAGE=$T_DIR/audit-report.html
rc=0; out=$("$MARTGATE_BIN" audit report --html "$PAGE" --policy "$T_DIR/policy.json" "${FILES[@]}" 2>&1) || rc=$?
check_eq "audit report --html exits 0" "0 " "$rc $out"
echo "$sum" >"$T_DIR/summary.json"
html=$(cat "$PAGE")
check_nomatch "no http:// or https:// src or href" '(src|href)=["'"'"']?https?://' "$html"
check_nomatch "no http:// or https:// anywhere" 'https?://' "$html"
check_nomatch "no <script element (audit text is escaped)" '<script' "$html"
check_match "the query's <script> is escaped" '&lt;script&gt;alert\(1\)&lt;/script&gt;' "$html"
check_match "the user's <img> is escaped" '&lt;img src=x onerror=alert\(2\)&gt;' "$html"
check_match "quotes are escaped" 'app &quot;quoted&quot; &amp; &#39;single&#39;' "$html"
check_match "a number is marked with its key" '<td class="n" data-k="deny_by_dataset.raw">3</td>' "$html"
check_match "the page names the restricted datasets" '<code>pii</code>, <code>pg_sensitive</code>' "$html"
check_match "inline CSS for print" '@media print' "$html"
render audit-report "$PAGE" "$T_DIR/summary.json"
# the comparison can fail: one number changed in a copy of the page is caught
if [ -n "$CHROMIUM" ]; then
  sed 's|data-k="deny_by_dataset.raw">3<|data-k="deny_by_dataset.raw">4<|' "$PAGE" >"$T_DIR/tampered.html"
  out=$(timeout 120 "$PY" "$CDP" "$CHROMIUM" "$T_DIR/tampered.html" "$T_DIR/summary.json" "$T_DIR/tampered.png" 2>&1 || true)
  check_match "a tampered number is reported" "not ok the page's numbers equal .*deny_by_dataset.raw page 4 json 3" "$out"
fi

# ---- without --policy: restricted datasets unknown, only pg_sensitive
PAGE2=$T_DIR/audit-report-nopolicy.html
"$MARTGATE_BIN" audit report --html "$PAGE2" "${FILES[@]}"
"$MARTGATE_BIN" audit --summary --json "${FILES[@]}" >"$T_DIR/summary-nopolicy.json"
check_match "no policy: the page says so" 'no policy given: restricted datasets unknown' "$(cat "$PAGE2")"
check_eq "no policy: only pg_sensitive is restricted (raw and staging are not assumed)" \
  '["pg_sensitive"] false [["carol","pg_sensitive",1]]' \
  "$(jq -c '.restricted_datasets, .restricted_datasets_known, [.restricted_reads[] | [.user, .dataset, .count]]' "$T_DIR/summary-nopolicy.json" | tr '\n' ' ' | sed 's/ $//')"
render audit-report-nopolicy "$PAGE2" "$T_DIR/summary-nopolicy.json"

# ---- filters apply to both alike
PAGE3=$T_DIR/audit-report-filtered.html
"$MARTGATE_BIN" audit report --html "$PAGE3" --policy "$T_DIR/policy.json" --decision deny --since 2026-12-02 "${FILES[@]}"
"$MARTGATE_BIN" audit --summary --json --policy "$T_DIR/policy.json" --decision deny --since 2026-12-02 "${FILES[@]}" \
  >"$T_DIR/summary-filtered.json"
check_eq "filtered: 3 denials, all today" '3 1' "$(jq -r '"\(.records) \(.by_day_decision | length)"' "$T_DIR/summary-filtered.json")"
render audit-report-filtered "$PAGE3" "$T_DIR/summary-filtered.json"

# ---- usage
rc=0; out=$("$MARTGATE_BIN" audit --html "$T_DIR/x.html" "$AUDIT" 2>&1) || rc=$?
check_eq "--html without report is a usage error" 2 "$rc"
rc=0; out=$("$MARTGATE_BIN" audit report "$AUDIT" 2>&1) || rc=$?
check_eq "report without --html is a usage error" "2" "$rc"
check_match "and says what is missing" 'html OUT.html is required' "$out"
echo '{"datasets": 1}' >"$T_DIR/bad-policy.json"
rc=0; out=$("$MARTGATE_BIN" audit report --html "$T_DIR/x.html" --policy "$T_DIR/bad-policy.json" "$AUDIT" 2>&1) || rc=$?
check_eq "a policy that does not load: exit 1" 1 "$rc"
check_match "naming the policy" 'bad-policy.json' "$out"
rc=0; out=$("$MARTGATE_BIN" audit report --html /nonexistent-dir/x.html "$AUDIT" 2>&1) || rc=$?
check_eq "an unwritable OUT: exit 1" 1 "$rc"
check_match "naming the file" '/nonexistent-dir/x.html' "$out"
check_match "the usage names the report" 'audit report --html OUT.html' "$("$MARTGATE_BIN" audit --help)"
h_done

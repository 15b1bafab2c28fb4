#!/usr/bin/env bash
# The governance review tools (issue 16): `martgate policy matrix` (the
# example's effective access, its exceptions, HTML with nothing fetched,
# --catalog against a real warehouse listing the schemas no dataset covers)
# and `martgate policy diff` (changes stated as effective access: a rule moved
# above the one that shadowed it, a row filter lifted or changed, a mask added
# or removed, a group that gains a member, an impersonator, a function lifted
# from the deny list, a search_path; exit 0/1/2/3; Markdown and JSON; one side
# read from Git with --git REV[:PATH]).
. "$(dirname "$0")/../lib/harness.sh"
h_init policy_review
need_martgate
command -v jq >/dev/null || h_die "jq is missing (scripts/install-deps.sh installs it)"
command -v git >/dev/null || h_die "git is missing (scripts/install-deps.sh installs it)"
EX=$(cd "$(dirname "$0")/../.." && pwd)/examples/passei-direto/policy
MG=$MARTGATE_BIN

# ---- matrix of the reference example ---------------------------------------
rc=0; out=$("$MG" policy matrix --format json "$EX") || rc=$?
check_eq "matrix json exits 0" 0 "$rc"
cell() { jq -r --arg s "$1" --arg d "$2" '.subjects[] | select(.kind + " " + .name == $s) | .access[$d].code' <<<"$out"; }
check_eq "squad-sales reads the funnel filtered" "R+f" "$(cell "group squad-sales" funnel)"
check_eq "squad-sales reads sales" "R" "$(cell "group squad-sales" sales)"
check_eq "squad-sales has no raw" "-" "$(cell "group squad-sales" raw)"
check_eq "data-engineering writes raw" "W" "$(cell "group data-engineering" raw)"
check_eq "data-engineering reads pg_sensitive" "R" "$(cell "group data-engineering" pg_sensitive)"
check_eq "governance reads the audit" "R" "$(cell "group governance" audit)"
check_eq "the Metabase sales role is squad-sales" "R+f" "$(cell "role metabase_sales" funnel)"
check_eq "everyone else reads nothing" "" "$(jq -r '.subjects[] | select(.kind == "everyone") | .access[] | select(.code != "-") | .code' <<<"$out")"
check_eq "raw.leads is the data scientists' masked exception" \
  "raw.leads read, masks email hash; phone last4" \
  "$(jq -r '.subjects[] | select(.name == "data-science") | .exceptions[] | .object + " " + .access' <<<"$out")"
check_eq "only the masked table is an exception" 2 "$(jq '[.subjects[].exceptions[]] | length' <<<"$out")"

rc=0; out=$("$MG" policy matrix "$EX") || rc=$?
check_eq "matrix terminal exits 0" 0 "$rc"
check_match "terminal grid row" 'group squad-sales +- +- +R\+f +- +R ' "$out"
rc=0; html=$("$MG" policy matrix --format html "$EX") || rc=$?
check_eq "matrix html exits 0" 0 "$rc"
check_match "html is a table" '<th>funnel</th>' "$html"
check_nomatch "html fetches nothing" '(src|href)=' "$html"
check_match "html cells carry the whole access" 'title="read, row filter region = \$\{claims.region\} \(rule squad-sales-funnel-own-region\)">R\+f<' "$html"
rc=0; md=$("$MG" policy matrix --format markdown "$EX") || rc=$?
check_match "markdown table" '^\| group squad-sales \| - \| - \| R\+f' "$md"
rc=0; "$MG" policy matrix --format pdf "$EX" 2>"$T_DIR/err" || rc=$?
check_eq "unknown format refused" 2 "$rc"

# ---- matrix --catalog -------------------------------------------------------
DB=t_policy_review
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
CREATE SCHEMA raw; CREATE TABLE raw.events (a int); CREATE TABLE raw.secrets (a int);
CREATE SCHEMA mart; CREATE TABLE mart.sales (a int); CREATE VIEW mart.v AS SELECT 1 AS a;
CREATE SCHEMA orphan; CREATE TABLE orphan.forgotten (a int);
CREATE SCHEMA empty_one;
SQL
mkdir -p "$T_DIR/cat"
cat >"$T_DIR/cat/p.json" <<'JSON'
{"datasets": {"raw": {"schemas": ["raw"]}, "mart": {"schemas": ["mart"]}},
 "rules": [{"id": "no-secrets", "subjects": {"groups": ["analysts"]}, "objects": {"tables": ["raw.secrets"]}, "access": "deny"},
           {"id": "analysts", "subjects": {"groups": ["analysts"]}, "objects": {"datasets": ["raw", "mart"]}, "access": "read"}]}
JSON
rc=0; out=$(PGPASSWORD=$MG_SVC_PASS "$MG" policy matrix --format json --catalog "$(direct_conninfo $DB)" "$T_DIR/cat/p.json") || rc=$?
check_eq "matrix --catalog exits 0" 0 "$rc"
check_eq "uncovered schemas are listed" "empty_one orphan public" "$(jq -r '.uncovered_schemas | join(" ")' <<<"$out")"
check_eq "a real table's exception" "raw.secrets none" \
  "$(jq -r '.subjects[] | select(.name == "analysts") | .exceptions[] | .object + " " + .access' <<<"$out")"
rc=0; "$MG" policy matrix --catalog "host=127.0.0.1 port=1 connect_timeout=2" "$T_DIR/cat/p.json" >/dev/null 2>"$T_DIR/err" || rc=$?
check_eq "an unreachable catalog fails" 1 "$rc"
check_match "and says why" 'policy matrix: --catalog: .*(refused|connect)' "$(cat "$T_DIR/err")"

# ---- diff -------------------------------------------------------------------
# diff_case NAME EXPECTED_RC OLD NEW [ERE the output must hold]
diff_case() {
  local name=$1 want=$2 old=$3 new=$4 ere=${5:-} rc=0 out
  out=$("$MG" policy diff "$old" "$new" 2>&1) || rc=$?
  if [ "$rc" != "$want" ]; then fail "diff: $name" "exit $rc, wanted $want" "$out"; return; fi
  if [ -n "$ere" ] && ! grep -Eq -- "$ere" <<<"$out"; then fail "diff: $name" "no /$ere/ in the output" "$out"; return; fi
  ok "diff: $name"
}
pol() { mkdir -p "$T_DIR/$1"; cat >"$T_DIR/$1/p.json"; }
diff_case "a policy against itself" 0 "$EX" "$EX" 'no change of access, 0 changes'

cp -r "$EX" "$T_DIR/nofunnel"
jq '.rules |= map(select(.id != "squad-sales-funnel-own-region"))' "$EX/40-squad-sales.json" >"$T_DIR/nofunnel/40-squad-sales.json"
rc=0; out=$("$MG" policy diff --format json "$EX" "$T_DIR/nofunnel") || rc=$?
check_eq "removing the funnel rule narrows" 1 "$rc"
check_eq "exactly squad-sales and its Metabase role lose the funnel" \
  "group squad-sales funnel_data_mart.* funnel narrows none|role metabase_sales funnel_data_mart.* funnel narrows none" \
  "$(jq -r '[.changes[] | "\(.subject) \(.object) \(.dataset) \(.effect) \(.after)"] | join("|")' <<<"$out")"
check_eq "json says narrows" "narrows 1" "$(jq -r '"\(.result) \(.exit)"' <<<"$out")"
rc=0; out=$("$MG" policy diff --format markdown "$T_DIR/nofunnel" "$EX") || rc=$?
check_eq "adding it back widens" 2 "$rc"
check_match "markdown names the widening" '^\| widens \| group squad-sales \|' "$out"
check_match "markdown heading" '^### martgate policy diff: access widens' "$out"

pol shadow-a <<'JSON'
{"datasets": {"raw": {"schemas": ["raw"]}},
 "rules": [{"id": "deny-raw", "subjects": {"groups": ["sci"]}, "objects": {"datasets": ["raw"]}, "access": "deny"},
           {"id": "read-raw", "subjects": {"groups": ["sci"]}, "objects": {"datasets": ["raw"]}, "access": "read"}]}
JSON
pol shadow-b <<'JSON'
{"datasets": {"raw": {"schemas": ["raw"]}},
 "rules": [{"id": "read-raw", "subjects": {"groups": ["sci"]}, "objects": {"datasets": ["raw"]}, "access": "read"},
           {"id": "deny-raw", "subjects": {"groups": ["sci"]}, "objects": {"datasets": ["raw"]}, "access": "deny"}]}
JSON
diff_case "moving a rule above the one that shadowed it widens" 2 "$T_DIR/shadow-a" "$T_DIR/shadow-b" \
  'widens +group sci +raw\.\* +raw +none \(rule deny-raw\) +read \(rule read-raw\)'
diff_case "and back narrows" 1 "$T_DIR/shadow-b" "$T_DIR/shadow-a" 'narrows +group sci'

pol filt-a <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read", "row_filter": "region = ${claims.region}"}]}
JSON
pol filt-b <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read", "row_filter": "region = ${claims.region} OR true"}]}
JSON
pol filt-none <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read"}]}
JSON
pol mask <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read", "columns": {"email": "redact"}}]}
JSON
diff_case "a changed row filter widens (it cannot be shown to narrow)" 2 "$T_DIR/filt-a" "$T_DIR/filt-b" 'OR true'
diff_case "a lifted row filter widens" 2 "$T_DIR/filt-a" "$T_DIR/filt-none" 'widens +group g'
diff_case "an added row filter narrows" 1 "$T_DIR/filt-none" "$T_DIR/filt-a" 'narrows +group g'
diff_case "an added mask narrows" 1 "$T_DIR/filt-none" "$T_DIR/mask" 'masks email redact'
diff_case "a removed mask widens" 2 "$T_DIR/mask" "$T_DIR/filt-none" 'widens'

pol grp-a <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}}, "groups": {"g": {"members": ["ana"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read"}]}
JSON
pol grp-b <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}}, "groups": {"g": {"members": ["ana", "bob"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read"}]}
JSON
diff_case "a group that gains a member widens for that user" 2 "$T_DIR/grp-a" "$T_DIR/grp-b" 'widens +user bob +m\.\*'

pol imp-a <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read"}],
 "roles": {"bi_g": {"groups": ["g"]}}}
JSON
pol imp-b <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read"}],
 "roles": {"bi_g": {"groups": ["g"]}}, "impersonators": [{"subjects": {"users": ["bi-svc"]}, "roles": ["bi_*"]}]}
JSON
diff_case "a new impersonator widens" 2 "$T_DIR/imp-a" "$T_DIR/imp-b" 'widens +user bi-svc +impersonates +none +bi_g'

pol fn-a <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}}, "functions": {"deny": ["public.http_*"]},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read"}]}
JSON
pol fn-b <<'JSON'
{"datasets": {"m": {"schemas": ["m"]}}, "defaults": {"search_path": [{"subjects": {"groups": ["g"]}, "schemas": ["m"]}]},
 "rules": [{"id": "r", "subjects": {"groups": ["g"]}, "objects": {"datasets": ["m"]}, "access": "read"}]}
JSON
diff_case "a function lifted from the deny list widens" 2 "$T_DIR/fn-a" "$T_DIR/fn-b" 'widens +policy +functions\.deny public\.http_\* +present +removed'
cp -r "$T_DIR/fn-b" "$T_DIR/fn-c"
jq 'del(.defaults)' "$T_DIR/fn-b/p.json" >"$T_DIR/fn-c/p.json"
diff_case "a changed search_path alone exits 1" 1 "$T_DIR/fn-b" "$T_DIR/fn-c" "changes +group g +search_path +m +''"

echo '{"rules": [{"id": 1}]}' | pol broken
diff_case "a side that does not load is an error" 3 "$EX" "$T_DIR/broken" 'does not load'
diff_case "a missing side is an error" 3 "$EX" "$T_DIR/nowhere" ''

# ---- diff --git -------------------------------------------------------------
REPO=$T_DIR/repo
mkdir -p "$REPO"
cp -r "$EX" "$REPO/policy"
(cd "$REPO" && git init -q && git add policy && git -c user.name=t -c user.email=t@example.com commit -qm base) ||
  h_die "git repository setup failed"
cp "$T_DIR/nofunnel/40-squad-sales.json" "$REPO/policy/40-squad-sales.json"
rc=0; out=$(cd "$REPO" && "$MG" policy diff --git HEAD:policy policy) || rc=$?
check_eq "--git REV:PATH against the working tree" 1 "$rc"
check_match "--git names the change" 'narrows +group squad-sales +funnel_data_mart' "$out"
rc=0; out=$(cd "$REPO/policy" && "$MG" policy diff --git HEAD .) || rc=$?
check_eq "--git REV takes the other side's path (from a subdirectory)" 1 "$rc"
rc=0; out=$(cd "$REPO" && "$MG" policy diff --git HEAD:policy --git HEAD:policy) || rc=$?
check_eq "both sides from Git" 0 "$rc"
rc=0; out=$(cd "$REPO" && "$MG" policy diff --git nosuchrev:policy policy 2>&1) || rc=$?
check_eq "an unknown revision is an error" 3 "$rc"
check_match "and says so" 'git archive could not read policy at nosuchrev' "$out"
rc=0; out=$(cd "$T_DIR" && "$MG" policy diff --git HEAD:policy "$EX" 2>&1) || rc=$?
check_eq "--git outside a repository is an error" 3 "$rc"
check_eq "no temporary side is left behind" "" "$(find /tmp -maxdepth 1 -name 'martgate-diff.*' -newer "$T_DIR/cat/p.json" 2>/dev/null)"

# ---- the governance CI example (examples/passei-direto/ci) ------------------
CI=$(cd "$(dirname "$0")/../.." && pwd)/examples/passei-direto/ci/policy-review.sh
GOV=$T_DIR/gov
mkdir -p "$GOV"
cp -r "$EX" "$GOV/policy"
cp "$EX/../tests.json" "$GOV/tests.json"
(cd "$GOV" && git init -q -b main && git add . && git -c user.name=t -c user.email=t@example.com commit -qm base) ||
  h_die "governance repository setup failed"
review() { (cd "$GOV" && MARTGATE=$MG BASE=main AUDIT="${1:-none/*}" REPORT=$T_DIR/review.md bash "$CI" >/dev/null 2>&1); }
rc=0; review || rc=$?
check_eq "ci: an unchanged policy has nothing to approve" 0 "$rc"
check_match "ci: the report says every test passed" '[0-9]+ passed, 0 failed' "$(cat "$T_DIR/review.md")"
check_match "ci: and no change of access" 'no change of access' "$(cat "$T_DIR/review.md")"
jq '.datasets.scratch = {"schemas": ["scratch"]} | .rules += [{"id": "sales-scratch", "subjects": {"groups": ["squad-sales"]},
    "objects": {"datasets": ["scratch"]}, "access": "write"}]' "$EX/40-squad-sales.json" >"$GOV/policy/40-squad-sales.json"
rc=0; review || rc=$?
check_eq "ci: a widening needs a reviewer (exit 2)" 2 "$rc"
check_match "ci: the report's diff names it" '\| widens \| group squad-sales \| scratch\.\\\* \| scratch \| none \| write' "$(cat "$T_DIR/review.md")"
echo '{"rules": [' >"$GOV/policy/40-squad-sales.json"
rc=0; review || rc=$?
check_eq "ci: a policy that does not load is broken (exit 1)" 1 "$rc"
check_match "ci: the report shows the error" 'does not pass `policy check --strict`' "$(cat "$T_DIR/review.md")"
cp "$EX/40-squad-sales.json" "$GOV/policy/40-squad-sales.json"

h_done

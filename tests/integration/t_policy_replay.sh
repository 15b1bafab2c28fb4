#!/usr/bin/env bash
# `martgate policy replay`: the tour of scripts/demo.sh (examples/passei-direto,
# every persona through psql, Metabase impersonation) leaves an audit log whose
# statement records carry search_path and claims; replayed under the same
# policy nothing changes (exit 0), and under a copy without squad-sales' funnel
# rule exactly sam's funnel statements turn allowed -> denied (exit 1), by user
# and dataset, in text and JSON, from a plain or a gzip'd log. Records without
# query text, or without search_path naming a table without a schema, are
# counted as not replayable.
. "$(dirname "$0")/../lib/harness.sh"
h_init policy_replay
need_martgate
EX=$H_REPO/examples/passei-direto
command -v jq >/dev/null || h_die "jq is not installed (scripts/install-deps.sh)"

# ---- the tour, with its own warehouse and martgate (as a user runs it)
demo=$T_DIR/demo
run_demo() {
  env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 MARTGATE_BIN="$MARTGATE_BIN" MARTGATE_DEMO_DIR="$demo" \
    MARTGATE_DEMO_PORT="$(free_port)" ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS"} \
    ${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} ${LSAN_OPTIONS:+LSAN_OPTIONS="$LSAN_OPTIONS"} \
    timeout 300 bash "$H_REPO/scripts/demo.sh" "$@"
}
rc=0; run_demo --keep >"$T_DIR/demo.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || { tail -20 "$T_DIR/demo.out"; run_demo --stop >/dev/null 2>&1 || true; h_die "scripts/demo.sh --keep failed (exit $rc)"; }
sleep 1.5   # fsync_interval_ms: the last records reach the file
AUDIT=$T_DIR/audit.jsonl
cp "$demo/audit/audit.jsonl" "$AUDIT"
run_demo --stop >/dev/null 2>&1 || true
ok "scripts/demo.sh ran its tour and left an audit log ($(grep -c '"event":"statement"' "$AUDIT") statement records)"

# ---- the new audit fields
check_eq "every statement record has a search_path array" 0 \
  "$(jq -c 'select(.event == "statement" and (.search_path | type) != "array")' "$AUDIT" | wc -l)"
check_eq "sam's statement records carry the claim his row filter reads, and only it" '{"region":"southeast"}' \
  "$(jq -c 'select(.event == "statement" and .user == "sam") | .claims' "$AUDIT" | sort -u)"
check_eq "no other record carries claims (no other persona's policy reads one)" "" \
  "$(jq -c 'select(.claims != null and .user != "sam") | .user' "$AUDIT" | sort -u)"
check_match "an unqualified name was decided with the session's search_path" '"search_path":\["staging"' \
  "$(grep '"user":"carla".*"event":"statement"' "$AUDIT" | sed -n 1p)"

# ---- column lists for the masks, from the same warehouse.sql
DB=t_policy_replay
pg_createdb $DB
direct_psql $DB -q -v ON_ERROR_STOP=1 -f "$EX/warehouse.sql" >/dev/null 2>&1 || h_die "warehouse.sql does not load"
COLS=$T_DIR/columns.json
direct_psql $DB -Atc "select json_object_agg(t, c) from (select table_schema || '.' || table_name as t,
  json_agg(column_name::text order by ordinal_position) as c from information_schema.columns
  where table_schema not in ('pg_catalog', 'information_schema') group by 1) x" >"$COLS"
check_match "columns file" '"raw.leads"' "$(cat "$COLS")"

# ---- the same policy: no change
rc=0; out=$("$MARTGATE_BIN" policy replay --policy "$EX/policy" --columns-from "$COLS" "$AUDIT" 2>&1) || rc=$?
check_eq "unchanged policy: exit 0" 0 "$rc"
check_match "unchanged policy: no decision changes" '^replayed [0-9]+ of [0-9]+ statement records .*: no decision changes$' "$out"
check_nomatch "unchanged policy: every record replayed" 'could not be replayed' "$out"
rc=0; out=$("$MARTGATE_BIN" policy replay --policy "$EX/policy" "$AUDIT" 2>&1) || rc=$?
check_eq "without --columns-from: still exit 0" 0 "$rc"
check_match "without --columns-from: the masked reads are not replayable, and say why" \
  'records? could not be replayed: [0-9]+ masked columns whose list is unknown \(give --columns-from\)' "$out"

# ---- the proposal: squad-sales' funnel rule removed
NEW=$T_DIR/proposed
cp -r "$EX/policy" "$NEW"
jq '.rules |= map(select(.id != "squad-sales-funnel-own-region"))' "$EX/policy/40-squad-sales.json" >"$NEW/40-squad-sales.json"
check_eq "the proposal lacks exactly that rule" 1 "$(jq '.rules | length' "$NEW/40-squad-sales.json")"
want=$(jq -c 'select(.event == "statement" and .user == "sam" and .decision != "deny" and (.datasets | index("funnel")))' "$AUDIT" | wc -l)
want_fp=$(jq -r 'select(.event == "statement" and .user == "sam" and .decision != "deny" and (.datasets | index("funnel"))) | .fingerprint' "$AUDIT" | sort -u | wc -l)
[ "$want" -gt 0 ] || h_die "the tour has no allowed funnel statement of sam"
rc=0; out=$("$MARTGATE_BIN" policy replay --policy "$NEW" --columns-from "$COLS" "$AUDIT" 2>&1) || rc=$?
check_eq "proposal: exit 1 (decisions change)" 1 "$rc"
check_match "proposal: names the breakage by dataset, user count and the most frequent statement" \
  "dataset funnel: this change breaks $want statement records? \($want_fp distinct\) of 1 user; the most frequent .* is: SELECT .*funnel_data_mart\.funnel" "$out"
check_match "proposal: sam, with the new reason" "no rule gives sam read on funnel_data_mart.funnel" "$out"
check_nomatch "proposal: nothing newly allowed, no rewrite changes" '^(newly allowed|rewrite changes)' "$out"
rc=0; js=$("$MARTGATE_BIN" policy replay --policy "$NEW" --columns-from "$COLS" --json "$AUDIT" 2>&1) || rc=$?
check_eq "--json: exit 1 too" 1 "$rc"
check_eq "--json: exactly sam's funnel statements, allowed -> denied" \
  "newly_denied|$want|$want_fp|1|funnel|sam|$want|deny" \
  "$(jq -r '[(.changes | length | tostring)] as $n | .changes[0] | [.change, .records, .distinct, .users, (.datasets | map(.dataset) | join(",")), (.datasets[0].users | map(.user) | join(",")), .datasets[0].users[0].records, .datasets[0].users[0].example.new] | map(tostring) | join("|")' <<<"$js")"
check_eq "--json: one kind of change only, and the total" "1|$want" "$(jq -r '"\(.changes | length)|\(.changed.records)"' <<<"$js")"

# ---- gzip'd, and records that cannot be replayed
gzip -c "$AUDIT" >"$T_DIR/audit.jsonl.gz"
rc=0; jsgz=$("$MARTGATE_BIN" policy replay --policy "$NEW" --columns-from "$COLS" --json "$T_DIR/audit.jsonl.gz" 2>&1) || rc=$?
check_eq "a gzip'd log gives the same report" "$js" "$jsgz"
ODD=$T_DIR/odd.jsonl
cp "$AUDIT" "$ODD"
rec=$(jq -c -n 'first(inputs | select(.event == "statement" and .user == "ana"))' "$AUDIT")
jq -c '.session = 9001 | del(.query)' <<<"$rec" >>"$ODD"                              # query_text none
jq -c '.session = 9002 | del(.search_path) | .query = "SELECT count(*) FROM leads"' <<<"$rec" >>"$ODD"   # an older audit
jq -c '.session = 9003 | .query = null | .query_unparsable = true' <<<"$rec" >>"$ODD"
echo 'not json' >>"$ODD"
rc=0; out=$("$MARTGATE_BIN" policy replay --policy "$EX/policy" --columns-from "$COLS" "$ODD" 2>&1) || rc=$?
check_eq "odd records: still no change (exit 0)" 0 "$rc"
check_match "a record without query text is counted as not replayable" '1 no query text \(query_text none\)' "$out"
check_match "a record without search_path naming a table without a schema is not replayable" \
  '1 no search_path in the record \(an older audit\) and a table named without a schema' "$out"
check_match "a record whose text did not parse is not replayable" '1 no query text \(it did not parse when recorded\)' "$out"
check_match "the total of those" '^3 records could not be replayed' "$out"
check_match "a bad line is reported with file:line" "odd.jsonl:[0-9]+: .*skipped" "$out"

# ---- errors
rc=0; out=$("$MARTGATE_BIN" policy replay --policy "$NEW" 2>&1) || rc=$?
check_eq "no AUDIT file: usage error, exit 2" 2 "$rc"
rc=0; out=$("$MARTGATE_BIN" policy replay --policy "$NEW" "$T_DIR/nope.jsonl" 2>&1) || rc=$?
check_eq "an unreadable file: exit 3" 3 "$rc"
check_match "an unreadable file is named" 'nope.jsonl: No such file' "$out"
rc=0; out=$("$MARTGATE_BIN" policy replay --policy "$T_DIR/nope" "$AUDIT" 2>&1) || rc=$?
check_eq "a policy that does not load: exit 3" 3 "$rc"
h_done

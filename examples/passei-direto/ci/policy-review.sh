#!/usr/bin/env bash
# policy-review.sh: what a governance repository runs on each pull request
# that touches the policy (docs/policy.md, "Reviewing a change in CI").
#
#   1. martgate policy check --strict   the policy loads, nothing in it is dead
#   2. martgate policy test             the team's decision cases still hold
#   3. martgate policy diff             effective access against the base branch
#   4. martgate policy replay           last week's audit decided again under it
#
# It writes one Markdown report (to post on the pull request) and exits:
#   0  nothing to approve (no change of access, or it only narrows, and no
#      recorded statement would be decided differently)
#   1  the policy is broken: check or test failed, or a tool failed
#   2  a reviewer must approve: access widens, or statements of the audit
#      would now be decided differently (the report names them)
#
# Settings (environment): MARTGATE (the binary, default martgate on PATH),
# POLICY (default policy), TESTS (default tests.json, skipped when absent),
# BASE (the base revision, default origin/main), AUDIT (audit files, plain or
# gzip, space-separated globs; default audit/*.jsonl*; replay is skipped when
# none match), REPORT (default policy-review.md).
set -uo pipefail
MARTGATE=${MARTGATE:-martgate}
POLICY=${POLICY:-policy}
TESTS=${TESTS:-tests.json}
BASE=${BASE:-origin/main}
AUDIT=${AUDIT:-audit/*.jsonl*}
REPORT=${REPORT:-policy-review.md}
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

section() { printf '\n## %s\n\n' "$1" >>"$REPORT"; }
fenced() { { echo '```'; cat "$1"; echo '```'; } >>"$REPORT"; }
broken() { status=1; }
needs_review() { [ "$status" -eq 1 ] || status=2; }

printf '# Policy review: %s against %s\n' "$POLICY" "$BASE" >"$REPORT"

section "Check (--strict)"
if "$MARTGATE" policy check --strict "$POLICY" >"$tmp/check" 2>&1; then
  echo "The policy loads; no warnings." >>"$REPORT"
else
  echo "**The policy does not pass \`policy check --strict\`:**" >>"$REPORT"; broken
fi
fenced "$tmp/check"

section "Decision tests"
if [ -f "$TESTS" ]; then
  if "$MARTGATE" policy test "$POLICY" "$TESTS" >"$tmp/test" 2>&1; then
    echo "$(tail -1 "$tmp/test")." >>"$REPORT"
  else
    echo "**Decision tests fail:**" >>"$REPORT"; fenced "$tmp/test"; broken
  fi
else
  echo "No $TESTS in this repository." >>"$REPORT"
fi

section "Change of access"
rc=0
"$MARTGATE" policy diff --format markdown --git "$BASE:$POLICY" "$POLICY" >"$tmp/diff" 2>"$tmp/diff.err" || rc=$?
case $rc in
  0|1) cat "$tmp/diff" >>"$REPORT" ;;
  2) cat "$tmp/diff" >>"$REPORT"; needs_review ;;
  *) echo "**policy diff failed (exit $rc):**" >>"$REPORT"; fenced "$tmp/diff.err"; broken ;;
esac

section "Replay of the audit"
# shellcheck disable=SC2206  # the globs are meant to expand
files=($AUDIT)
existing=()
for f in "${files[@]}"; do [ -f "$f" ] && existing+=("$f"); done
if [ ${#existing[@]} -eq 0 ]; then
  echo "No audit files match \`$AUDIT\`: replay skipped." >>"$REPORT"
else
  rc=0
  "$MARTGATE" policy replay --policy "$POLICY" "${existing[@]}" >"$tmp/replay" 2>&1 || rc=$?
  case $rc in
    0) echo "Every statement of ${#existing[@]} audit file(s) is decided as it was." >>"$REPORT"; fenced "$tmp/replay" ;;
    1) echo "**Statements of the audit would be decided differently:**" >>"$REPORT"; fenced "$tmp/replay"; needs_review ;;
    *) echo "**policy replay failed (exit $rc):**" >>"$REPORT"; fenced "$tmp/replay"; broken ;;
  esac
fi

case $status in
  0) verdict="nothing to approve" ;;
  1) verdict="the policy is broken" ;;
  *) verdict="a reviewer must approve" ;;
esac
printf '\n---\nResult: **%s** (exit %d)\n' "$verdict" "$status" >>"$REPORT"
echo "policy-review: $verdict; report in $REPORT"
exit $status

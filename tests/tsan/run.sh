#!/usr/bin/env bash
# ThreadSanitizer run (issue 15): the integration tests that exercise the
# worker threads' shared parts (login storms and limits, cancels across
# workers, reload under pgbench, the admin console and /metrics reading every
# worker, drain and restart) against build-tsan/martgate with "workers": 4.
# ThreadSanitizer writes each report it finds to a file; every report is a
# failure. A control first: a program with a known data race, built with the
# same compiler flags, must be reported, or this run proves nothing.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin=${TSAN_BIN:-$root/build-tsan/martgate}
tests=${TSAN_TESTS:-"t_workers t_cancel t_peers t_limits t_reload t_pgbench t_admin t_metrics t_shutdown t_restart"}
dir=$(mktemp -d /tmp/martgate-tsan.XXXXXX)
chmod 755 "$dir"
pass=0
fail=0
ok() { echo "ok - tsan: $1"; pass=$((pass + 1)); }
not_ok() { echo "not ok - tsan: $1"; fail=$((fail + 1)); }

# ---- the control: a race ThreadSanitizer must see
cat >"$dir/race.c" <<'C'
#include <pthread.h>
static int shared;
static void *bump(void *arg) { (void)arg; for (int i = 0; i < 1000; i++) shared++; return 0; }
int main(void) { pthread_t t; pthread_create(&t, 0, bump, 0); bump(0); pthread_join(t, 0); return shared == 0; }
C
if cc -fsanitize=thread -g -O1 -o "$dir/race" "$dir/race.c" -lpthread 2>"$dir/race.err"; then
  TSAN_OPTIONS="log_path=$dir/control exitcode=0" "$dir/race" || true
  if grep -qs "WARNING: ThreadSanitizer: data race" "$dir"/control.*; then
    ok "the control's data race is reported (the detector works here)"
  else
    not_ok "the control's data race was not reported: this run would prove nothing"
  fi
else
  not_ok "cannot build the control: $(tail -3 "$dir/race.err")"
fi

[ -x "$bin" ] || { not_ok "no ThreadSanitizer binary at $bin (scripts/build.sh --tsan)"; echo "$pass passed, $fail failed"; exit 1; }
syms=$(nm -u "$bin" 2>/dev/null)   # (not piped into grep -q: pipefail and SIGPIPE)
if grep -q __tsan_func_entry <<<"$syms"; then ok "$bin is instrumented"; else not_ok "$bin has no ThreadSanitizer instrumentation"; fi

# ---- the integration tests, four workers, every report to a file
# shellcheck disable=SC2086
TSAN_OPTIONS="log_path=$dir/report second_deadlock_stack=1 history_size=4" MG_WORKERS=4 MARTGATE_BIN="$bin" \
  bash tests/integration/run.sh $tests 2>&1 | tee "$dir/integration.log"
rc=${PIPESTATUS[0]}
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$dir/integration.log" | tail -1)
p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' <<<"$line")
pass=$((pass + ${p:-0}))
fail=$((fail + ${f:-0}))
[ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && not_ok "the integration run exited $rc"

reports=$(ls "$dir"/report.* 2>/dev/null | wc -l)
if [ "$reports" -eq 0 ]; then
  ok "ThreadSanitizer reported nothing over: $tests"
else
  not_ok "ThreadSanitizer wrote $reports reports; the first:"
  for r in "$dir"/report.*; do sed 's/^/#   /' "$r" | head -60; break; done
  mkdir -p /tmp/martgate-artefacts && cp "$dir"/report.* /tmp/martgate-artefacts/ 2>/dev/null || true
fi
rm -rf "$dir"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# The README's test command (and CI's): installs what is missing, builds twice
# (optimised with -Werror, and with AddressSanitizer + UndefinedBehaviorSanitizer),
# runs every cmocka unit test in both builds, then the integration suite (real
# PostgreSQL 15, psql, pgbench, pg_dump, pgjdbc) against both binaries, the
# concurrency part of it against a ThreadSanitizer build with four worker
# threads (tests/tsan/run.sh), then each libFuzzer target for a short while
# (tests/fuzz/run.sh).
# Ends with one line "total: N passed, N failed" adding up every check of every
# suite (a suite that dies before reporting counts as one failure).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/install-deps.sh || { echo "install-deps failed"; exit 1; }
bash scripts/build.sh --sanitize || { echo "build failed"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
total_pass=0
total_fail=0
failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run_suite() { # NAME CMD...
  local name=$1 rc p f
  shift
  echo "=== $name"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  # cmocka: "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s), listed below:"
  # integration: a last line "N passed, N failed"
  p=$(grep -o '\[  PASSED  \] [0-9]* test' "$log" | tail -1 | tr -dc '0-9')
  f=$(grep -o '\[  FAILED  \] [0-9]* test(s), listed' "$log" | tail -1 | tr -dc '0-9')
  if [ -z "$p" ]; then
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$log" | tail -1)
  fi
  p=${p:-0}
  f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1   # died (crash, sanitizer report) without counting its failure
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  [ "$rc" -eq 0 ] && [ "$f" -eq 0 ] || failed+=("$name")
}

for build in build build-asan; do
  for t in "$build"/test_*; do
    [ -x "$t" ] || continue
    run_suite "unit: $t" "$t"
  done
done

# the layer rules: crossing one fails the build (tests/layers/run.sh)
run_suite "layers: build" bash tests/layers/run.sh build

run_suite "policy tests: examples/passei-direto" build/martgate policy test \
  examples/passei-direto/policy examples/passei-direto/tests.json

for build in build-asan build; do
  run_suite "integration: $build/martgate" env MARTGATE_BIN="$root/$build/martgate" bash tests/integration/run.sh
done

# ThreadSanitizer over the worker threads' shared parts, workers=4
run_suite "tsan: build-tsan/martgate" bash tests/tsan/run.sh

# libFuzzer (clang) over SQL through the policy engine, startup packets,
# policy files and audit JSON, a short run each (FUZZ_SECONDS)
run_suite "fuzz: tests/fuzz" env FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash tests/fuzz/run.sh

echo
for f in "${failed[@]+"${failed[@]}"}"; do echo "FAILED suite: $f"; done
echo "total: ${total_pass} passed, ${total_fail} failed"
[ ${#failed[@]} -eq 0 ]

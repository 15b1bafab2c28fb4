#!/usr/bin/env bash
# tests/fuzz/run.sh: build the libFuzzer targets (tests/fuzz/fuzz_*.c) in
# build-fuzz/ with clang and run each one for FUZZ_SECONDS (default 30), one
# after another (two cores are enough), from seed corpora made at run time.
# Installs nothing, uses no network. Ends with one line `N passed, N failed`;
# a target passes when libFuzzer exits 0 (no crash, leak, timeout, invariant
# failure). Crashing inputs and logs stay in build-fuzz/fuzz-out/<target>/.
#
#   FUZZ_SECONDS=60 bash tests/fuzz/run.sh            # every target
#   bash tests/fuzz/run.sh fuzz_sql fuzz_jsonw        # some of them
#
# The CMake option MARTGATE_FUZZ builds the targets with
# -fsanitize=fuzzer,address,undefined and the martgate libraries they link
# with fuzzer-no-link,address,undefined (coverage and checks inside
# martgate's own code). UBSan findings are made fatal.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
BUILD=build-fuzz
OUT=$ROOT/$BUILD/fuzz-out
ALL_TARGETS=(fuzz_sql fuzz_startup fuzz_policy fuzz_jsonw fuzz_proxy_header)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

# ---- prerequisites ------------------------------------------------------
if ! command -v clang >/dev/null 2>&1 || ! clang --version >/dev/null 2>&1; then
  echo "fuzz: clang not found (the fuzz targets need clang with libFuzzer)" >&2
  exit 1
fi
arch=$(uname -m)
rtlib=$(clang -print-file-name="libclang_rt.fuzzer-$arch.a" 2>/dev/null || true)
if [ -z "$rtlib" ] || [ ! -f "$rtlib" ]; then
  rtdir=$(clang -print-runtime-dir 2>/dev/null || true)
  if [ -n "$rtdir" ] && [ -f "$rtdir/libclang_rt.fuzzer.a" ]; then
    rtlib=$rtdir/libclang_rt.fuzzer.a
  else
    echo "fuzz: libFuzzer runtime (libclang_rt.fuzzer-$arch.a) not found for $(clang --version | head -n1)" \
         "(Debian: libclang-rt-NN-dev)" >&2
    exit 1
  fi
fi
echo "fuzz: $(clang --version | head -n1), libFuzzer $rtlib"

# ---- build ----------------------------------------------------------------
mkdir -p "$OUT"
t0=$(date +%s)
CC=clang cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DMARTGATE_FUZZ=ON -DMARTGATE_WERROR=ON >"$OUT/configure.log" 2>&1 || {
  cat "$OUT/configure.log" >&2
  echo "fuzz: cmake configure failed" >&2
  exit 1
}
if ! cmake --build "$BUILD" -j2 --target "${TARGETS[@]}" >"$OUT/build.log" 2>&1; then
  tail -n 60 "$OUT/build.log" >&2
  echo "fuzz: build failed (full log: $OUT/build.log)" >&2
  exit 1
fi
t1=$(date +%s)
# clang warns differently from gcc: show what it says about martgate's own
# code, count what it says about system headers (only files rebuilt show up)
own=$(grep 'warning:' "$OUT/build.log" | grep -v '^/usr/' | sort -u || true)
sys=$(grep 'warning:' "$OUT/build.log" | grep -c '^/usr/' || true)
echo "fuzz: build took $((t1 - t0))s; clang warnings: $(printf '%s' "$own" | grep -c . || true) in martgate," \
     "$sys in system headers (log: $OUT/build.log)"
[ -z "$own" ] || printf '%s\n' "$own" | sed 's/^/fuzz:   /'

# ---- seed corpora -----------------------------------------------------------
SEEDS=$(mktemp -d "${TMPDIR:-/tmp}/martgate-fuzz.XXXXXX")
trap 'rm -rf "$SEEDS"' EXIT

seed_sql() {
  local dir=$SEEDS/fuzz_sql n=0 line
  mkdir -p "$dir"
  # {.sql = "..." lines of the analyser's corpus, C escapes undone crudely
  while IFS= read -r line; do
    n=$((n + 1))
    printf '%b' "${line//\\\"/\"}" >"$dir/corpus-$n.sql"
  done < <(sed -n 's/^[[:space:]]*{\.sql = "\(.*\)",[[:space:]]*$/\1/p' tests/unit/corpus_analyze.h)
  if command -v jq >/dev/null 2>&1; then
    while IFS= read -r line; do
      n=$((n + 1))
      printf '%s' "$line" >"$dir/decisions-$n.sql"
    done < <(jq -r '.cases[].sql | select(type == "string") | gsub("\n"; " ")' \
               tests/unit/fixtures/policy/decisions.json 2>/dev/null || true)
  fi
  printf '%s' "SELECT * FROM shared_mart.customers" >"$dir/mask.sql"
  printf '%s' "SELECT region FROM funnel_data_mart.leads WHERE id = 1" >"$dir/filter.sql"
}

seed_policy() {
  local dir=$SEEDS/fuzz_policy f
  mkdir -p "$dir"
  for f in tests/unit/fixtures/policy/passei/*.json; do cp "$f" "$dir/"; done
  # the whole reference policy as one document (the fuzzed loader reads one)
  if command -v jq >/dev/null 2>&1; then
    (cd tests/unit/fixtures/policy/passei && jq -s '.[0] + {rules: [.[] | .rules[]?]}' *.json) \
      >"$dir/passei-merged.json" 2>/dev/null || rm -f "$dir/passei-merged.json"
  fi
}

seed_startup() {
  local dir=$SEEDS/fuzz_startup
  mkdir -p "$dir"
  # packet bodies: what follows the 4-byte length
  printf '\x00\x03\x00\x00user\x00alice\x00database\x00dw\x00\x00' >"$dir/v3"
  printf '\x00\x03\x00\x00user\x00bob\x00database\x00dw\x00application_name\x00psql\x00options\x00-c search_path=raw\x00\x00' \
    >"$dir/v3-options"
  printf '\x04\xd2\x16\x2f' >"$dir/ssl"
  printf '\x04\xd2\x16\x30' >"$dir/gssenc"
  printf '\x04\xd2\x16\x2e\x00\x00\x30\x39\x12\x34\x56\x78' >"$dir/cancel"
  printf 'SERROR\x00C08P01\x00Mbad\x00\x00' >"$dir/error-fields"
}

seed_proxy_header() {
  local dir=$SEEDS/fuzz_proxy_header
  mkdir -p "$dir"
  printf 'PROXY TCP4 192.168.1.10 10.0.0.1 56324 6432\r\n\x00\x00\x00\x08\x04\xd2\x16\x2f' >"$dir/v1-tcp4"
  printf 'PROXY TCP6 2001:db8::1 ::1 65535 6432\r\n' >"$dir/v1-tcp6"
  printf 'PROXY UNKNOWN\r\n' >"$dir/v1-unknown"
  printf '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x12\x7f\x00\x00\x02\x7f\x00\x00\x01\x9c\x40\x19\x20\x01\x00\x03abc' >"$dir/v2-tcp4-tlv"
  printf '\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x24\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x9c\x40\x19\x20' >"$dir/v2-tcp6"
  printf '\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00' >"$dir/v2-local"
  printf '10.0.0.0/8' >"$dir/cidr4"
  printf '::ffff:127.0.0.0/104' >"$dir/cidr6"
}

seed_jsonw() {
  local dir=$SEEDS/fuzz_jsonw
  mkdir -p "$dir"
  printf 'hello, world' >"$dir/ascii"
  printf '\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x40\x8f\x40"q\\\n\t\x7f' >"$dir/escapes"
  printf 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf \xff' >"$dir/utf8"
}

# ---- run ------------------------------------------------------------------
passed=0
failed=0
for t in "${TARGETS[@]}"; do
  case $t in
    fuzz_sql|fuzz_policy|fuzz_proxy_header) max_len=4096 ;;   # a v2 header may take 2064
    *) max_len=1024 ;;
  esac
  case $t in
    fuzz_sql) seed_sql ;;
    fuzz_policy) seed_policy ;;
    fuzz_startup) seed_startup ;;
    fuzz_jsonw) seed_jsonw ;;
    fuzz_proxy_header) seed_proxy_header ;;
  esac
  corpus=$SEEDS/$t
  mkdir -p "$corpus"
  art=$OUT/$t
  mkdir -p "$art"
  log=$art/fuzz.log
  bin=$ROOT/$BUILD/$t
  nseeds=$(find "$corpus" -type f | wc -l)
  echo "fuzz: $t: ${FUZZ_SECONDS}s, $nseeds seeds, max_len $max_len"
  s0=$(date +%s)
  rc=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$bin" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 -max_len="$max_len" \
      -print_final_stats=1 -artifact_prefix="$art/" "$corpus" >"$log" 2>&1 || rc=$?
  s1=$(date +%s)
  stats=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok - $t ($((s1 - s0))s, $execs execs) $stats"
  else
    failed=$((failed + 1))
    echo "not ok - $t (exit $rc after $((s1 - s0))s) $stats"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_[a-z]+: invariant|.*runtime error:|artifact_prefix|Test unit written)' "$log" \
      | head -n 8 | sed 's/^/# /' || true
    grep -E '^ +#[0-9]+ 0x' "$log" | head -n 12 | sed 's/^/# /' || true
    echo "# log: $log"
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

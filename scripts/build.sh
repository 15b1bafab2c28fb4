#!/usr/bin/env bash
# Builds martgate: build/ (optimised, warnings are errors) and, with --sanitize,
# build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer) and build-tsan/
# (ThreadSanitizer, the daemon only: tests/tsan/run.sh runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMARTGATE_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
if [ "${1:-}" = "--sanitize" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMARTGATE_SANITIZE=ON -DMARTGATE_WERROR=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMARTGATE_TSAN=ON -DMARTGATE_WERROR=ON >/dev/null
  cmake --build build-tsan -j "$jobs" --target martgate
fi

#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this and nothing else):
#   1. scripts/deps.sh installs what is missing;
#   2. a normal build with -Werror and every ctest (unit, smoke, integration);
#   3. a second build with ASan+UBSan running the unit tests and the short smoke tests;
#   4. a short chaos run (scripts/chaos.sh, CHAOS_SETTLEMENTS default 5000);
#   5. each libFuzzer harness for FUZZ_SECONDS (default 10) when clang is there.
# Stops at the first failure with a non-zero exit. Keep the whole run under 20 minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
start=$SECONDS
step() { printf '\n== %s (%ds elapsed)\n' "$*" $((SECONDS - start)); }

step "dependencies"
scripts/deps.sh

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"

step "tests"
(cd build && ctest --output-on-failure -j"$JOBS")

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCORRIDOR_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"

step "unit and smoke tests under sanitizers"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j"$JOBS" -L 'unit|smoke')

step "chaos: three nodes, faults on every message, random SIGKILLs (short run)"
scripts/chaos.sh --settlements "${CHAOS_SETTLEMENTS:-5000}" --seed "${CHAOS_SEED:-1}"

step "chaos across hosts: network namespaces, link cuts (short run; skipped where not allowed)"
scripts/chaos.sh --hosts --settlements "${CHAOS_HOSTS_SETTLEMENTS:-1500}" --seed "${CHAOS_SEED:-1}"

step "fuzzing, ${FUZZ_SECONDS}s per harness"
scripts/fuzz.sh "$FUZZ_SECONDS"

printf '\nall tests passed in %ds\n' $((SECONDS - start))

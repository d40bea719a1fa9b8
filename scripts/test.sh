#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this and nothing else):
#   1. scripts/deps.sh installs what is missing;
#   2. scripts/lint.sh: clang-format and shellcheck;
#   3. a normal build (hardened RelWithDebInfo) with -Werror (CORRIDOR_WERROR) and every ctest
#      (unit, smoke, integration);
#   4. `cmake --install` into a temporary prefix: the program (PIE, full RELRO) and its
#      manual page, which groff renders without a warning;
#   5. a second build with ASan+UBSan running every ctest again but compat (which builds an old
#      commit and checks the wire format, not memory);
#   6. a short chaos run (scripts/chaos.sh, CHAOS_SETTLEMENTS default 5000);
#   7. each libFuzzer harness for FUZZ_SECONDS (default 10) when clang is there.
# Stops at the first failure with a non-zero exit. Keep the whole run under 20 minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
start=$SECONDS
step() { printf '\n== %s (%ds elapsed)\n' "$*" $((SECONDS - start)); }

step "dependencies"
scripts/deps.sh

step "lint: clang-format, shellcheck"
scripts/lint.sh

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORRIDOR_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"

step "tests"
(cd build && ctest --output-on-failure -j"$JOBS")

step "install: program and manual page"
check_install() { # PREFIX: installs the build there and checks what is installed
  local prefix="$1" bin="$1/bin/corridor" page="$1/share/man/man1/corridor.1" out
  cmake --install build --prefix "$prefix" >/dev/null || return 1
  [ -x "$bin" ] || { echo "test.sh: $bin not installed" >&2; return 1; }
  [ -f "$page" ] || { echo "test.sh: $page not installed" >&2; return 1; }
  "$bin" --help >/dev/null || { echo "test.sh: the installed corridor --help failed" >&2; return 1; }
  # Hardening (CMakeLists.txt): a position-independent executable with full RELRO.
  out="$(readelf -hldW "$bin")" || return 1
  grep -q 'Type:.*DYN' <<<"$out" || { echo "test.sh: $bin is not PIE" >&2; return 1; }
  grep -q GNU_RELRO <<<"$out" || { echo "test.sh: $bin has no RELRO" >&2; return 1; }
  grep -q BIND_NOW <<<"$out" || { echo "test.sh: $bin is not BIND_NOW" >&2; return 1; }
  if command -v groff >/dev/null 2>&1; then
    out="$(groff -man -ww -z "$page" 2>&1)"
    [ -z "$out" ] || { printf 'test.sh: groff warns about corridor.1:\n%s\n' "$out" >&2; return 1; }
  fi
  if command -v man >/dev/null 2>&1; then
    out="$(MANPATH="$prefix/share/man" man --warnings corridor 2>&1 >/dev/null)"
    [ -z "$out" ] || { printf 'test.sh: man corridor warns:\n%s\n' "$out" >&2; return 1; }
  fi
  echo "installed and checked: bin/corridor (PIE, RELRO, BIND_NOW), share/man/man1/corridor.1"
}
prefix="$(mktemp -d "${TMPDIR:-/tmp}/corridor-install.XXXXXX")"
check_install "$prefix" || { rm -rf "$prefix"; exit 1; }
rm -rf "$prefix"

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCORRIDOR_SANITIZE=ON -DCORRIDOR_WERROR=ON >/dev/null
cmake --build build-asan -j"$JOBS"

step "unit, smoke and integration tests under sanitizers"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j"$JOBS" -E '^compat$')

step "chaos: three nodes, faults on every message, random SIGKILLs (short run)"
scripts/chaos.sh --settlements "${CHAOS_SETTLEMENTS:-5000}" --seed "${CHAOS_SEED:-1}"

step "chaos across hosts: network namespaces, link cuts (short run; skipped where not allowed)"
scripts/chaos.sh --hosts --settlements "${CHAOS_HOSTS_SETTLEMENTS:-1500}" --seed "${CHAOS_SEED:-1}"

step "fuzzing, ${FUZZ_SECONDS}s per harness"
scripts/fuzz.sh "$FUZZ_SECONDS"

printf '\nall tests passed in %ds\n' $((SECONDS - start))

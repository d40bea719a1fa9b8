#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ (clang, ASan + UBSan) in build-fuzz/ and runs
# each one for SECONDS (default 60) from its seed corpus in tests/fuzz/corpus/<harness>/.
#
#   scripts/fuzz.sh [SECONDS]
#
# Each harness works on a copy of its seeds in a temporary directory, so the checked-in corpus
# is never written to; the seeds are also passed read-only as a second corpus directory.
# Prints one line per harness with the executions it reached. Exits non-zero if any harness
# crashes, leaks or trips a sanitizer (libFuzzer then leaves crash-*/leak-*/timeout-* files in
# build-fuzz/fuzz-artifacts/). Without clang it says so, prints "skipped" and exits 0.
# UBSan halts on its first report (UBSAN_OPTIONS=halt_on_error=1, with stack traces).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]   (a positive whole number of seconds; default 60)" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
seeds="$root/tests/fuzz/corpus"
artifacts="$build/fuzz-artifacts"

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang not found (scripts/deps.sh installs it); libFuzzer needs clang"
  echo "skipped"
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/corridor-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fuzz.sh: configuring and building $build"
if ! CC=clang cmake -S "$root" -B "$build" -DCORRIDOR_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >"$work/build.log" 2>&1 ||
  ! cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)" >>"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log" >&2
  echo "fuzz.sh: the fuzz build failed" >&2
  exit 1
fi
mkdir -p "$artifacts"

# The build passes -fno-sanitize-recover=all (CMakeLists.txt, CORRIDOR_FUZZ), so UBSan already
# aborts on its first report; these options keep that true for a build configured otherwise and
# print the stack of every report. Options the caller set come after ours and win.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

harnesses=()
for src in "$root"/tests/fuzz/fuzz_*.c; do
  harnesses+=("$(basename "$src" .c)")
done

failed=()
results=()
for name in "${harnesses[@]}"; do
  bin="$build/tests/fuzz/$name"
  if [ ! -x "$bin" ]; then
    echo "fuzz.sh: $bin was not built" >&2
    failed+=("$name")
    continue
  fi
  corpus="$work/$name"
  mkdir -p "$corpus"
  seed_dir="$seeds/$name"
  seed_args=()
  if [ -d "$seed_dir" ]; then
    cp -R "$seed_dir/." "$corpus/"
    seed_args=("$seed_dir")
  fi
  log="$work/$name.log"
  echo "fuzz.sh: running $name for ${seconds}s"
  status=0
  # ASan's leak checker runs inside libFuzzer (-detect_leaks=1 is its default).
  "$bin" "$corpus" "${seed_args[@]}" -max_total_time="$seconds" -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$name-" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  if [ -z "$execs" ]; then
    execs="$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
  fi
  if [ "$status" -ne 0 ]; then
    results+=("$(printf '%-22s FAILED (exit %d) after %s executions' "$name" "$status" "${execs:-?}")")
    failed+=("$name")
    echo "fuzz.sh: $name failed; the end of its log:" >&2
    tail -n 60 "$log" >&2
    cp "$log" "$artifacts/$name.log"
  else
    results+=("$(printf '%-22s ok, %s executions' "$name" "${execs:-?}")")
  fi
done

echo "fuzz.sh: results (${seconds}s each)"
printf '  %s\n' "${results[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs and logs in $artifacts)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#harnesses[@]} harnesses ran clean"

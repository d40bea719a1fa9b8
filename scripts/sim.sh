#!/usr/bin/env bash
# The deterministic simulator (tests/sim/sim.c): N seeded worlds of 2-5 real nodes (engines,
# ledgers, keys) in one process on a simulated network and clock; ends with "N passed, N
# failed"; a failed world prints the command that replays it bit for bit.
#   scripts/sim.sh --seeds N [--from S] [--nodes K] [--settlements M] [--jobs J] [--trace]
# Builds the `sim` target of build/ first (RelWithDebInfo; $CORRIDOR_BUILD names another
# build directory).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CORRIDOR_BUILD:-$root/build}"
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" --target sim -j2 >/dev/null
exec "$build/tests/sim/sim" "$@"

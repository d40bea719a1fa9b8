#!/usr/bin/env bash
# Corridor in one command: installs what is missing, builds, creates three banks on loopback
# (Russia, Iran, Kazakhstan) and links every pair with net debit caps.
# Starting the nodes and sending settlements arrive with `corridor run` and `corridor send`;
# until then the demo stops after the trust set-up and says so (exit 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null
CORRIDOR=build/corridor
WORK=$(mktemp -d /tmp/corridor-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

port=$((20000 + RANDOM % 10000))
for code in BKRURUMM BMJIIRTH KZKZKZKA; do
  "$CORRIDOR" init --home "$WORK/$code" --name "$code" --listen "tcp://127.0.0.1:$port" \
    --currencies RUB,IRR,KZT,USD >"$WORK/$code.card"
  echo "created $code: $(cut -c1-60 "$WORK/$code.card")..."
  port=$((port + 1))
done
link() {
  "$CORRIDOR" peer add --home "$WORK/$1" "$(cat "$WORK/$2.card")" --limit RUB=1000000 --limit USD=50000
  "$CORRIDOR" peer add --home "$WORK/$2" "$(cat "$WORK/$1.card")" --limit RUB=1000000 --limit USD=50000
}
link BKRURUMM BMJIIRTH
link BKRURUMM KZKZKZKA
link BMJIIRTH KZKZKZKA
echo
echo "three homes created and linked with caps of RUB 1,000,000 and USD 50,000 each way."
if ! "$CORRIDOR" --help | grep -q '^  run '; then
  echo "the node (corridor run) is not built yet: nothing more to demonstrate" >&2
  exit 1
fi

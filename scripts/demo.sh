#!/usr/bin/env bash
# Corridor in one command: installs what is missing, builds, starts three banks on loopback
# (Russia, Iran, Kazakhstan), links every pair with net debit caps, sends settlements in several
# currencies in every direction (some over a cap, to be rejected), waits for every outcome,
# prints each bank's positions, audits the three homes, stops the nodes. Exits non-zero if
# anything is off. Takes well under a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null
CORRIDOR=$PWD/build/corridor
WORK=$(mktemp -d /tmp/corridor-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; fi; done
  sleep 0.3
  for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "DEMO FAILED: $*" >&2; exit 1; }

BANKS=(BKRURUMM BMJIIRTH KZKZKZKA)
declare -A DESC=([BKRURUMM]="a Russian bank" [BMJIIRTH]="an Iranian bank" [KZKZKZKA]="a Kazakh bank")
port=$((20000 + RANDOM % 10000))
echo "== creating three banks"
for code in "${BANKS[@]}"; do
  "$CORRIDOR" init --home "$WORK/$code" --name "$code" --listen "tcp://127.0.0.1:$port" \
    --currencies RUB,IRR,KZT,USD >"$WORK/$code.card"
  echo "  $code (${DESC[$code]}) listens on 127.0.0.1:$port, and takes its stream on $((port + 1))"
  port=$((port + 2))
done
echo "== linking every pair: each grants the other a net debit cap of RUB 1,000,000, IRR 5,000,000,000, KZT 50,000,000, USD 100,000"
for a in "${BANKS[@]}"; do
  for b in "${BANKS[@]}"; do
    [ "$a" = "$b" ] && continue
    "$CORRIDOR" peer add --home "$WORK/$a" "$(cat "$WORK/$b.card")" --limit RUB=1000000 \
      --limit IRR=5000000000 --limit KZT=50000000 --limit USD=100000 >/dev/null
  done
done
echo "== starting the nodes"
for code in "${BANKS[@]}"; do
  "$CORRIDOR" run --home "$WORK/$code" 2>"$WORK/$code.log" &
  PIDS+=($!)
done
for code in "${BANKS[@]}"; do
  for _ in $(seq 1 100); do
    "$CORRIDOR" status --home "$WORK/$code" >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$CORRIDOR" status --home "$WORK/$code" >/dev/null || fail "$code did not start: $(tail -3 "$WORK/$code.log")"
done

echo "== sending 20 settlements in each of the six directions, and one over the cap in each"
amounts=(1250.00 98000.50 15.75 4300.00 700.25)
currencies=(RUB IRR KZT USD RUB)
for a in "${BANKS[@]}"; do
  for b in "${BANKS[@]}"; do
    [ "$a" = "$b" ] && continue
    {
      echo "to,amount,currency,remittance"
      for i in $(seq 0 19); do
        echo "$b,${amounts[$((i % 5))]},${currencies[$((i % 5))]},invoice $a-$b-$i"
      done
    } >"$WORK/$a-$b.csv"
    "$CORRIDOR" send --home "$WORK/$a" --batch "$WORK/$a-$b.csv" >/dev/null 2>"$WORK/send.err" \
      || fail "batch $a -> $b: $(cat "$WORK/send.err")"
  done
done
rejected=0
for a in "${BANKS[@]}"; do
  for b in "${BANKS[@]}"; do
    [ "$a" = "$b" ] && continue
    rc=0
    "$CORRIDOR" send --home "$WORK/$a" --to "$b" --amount 2000000 --currency RUB --wait 30 \
      --remittance "too large" >/dev/null 2>"$WORK/send.err" || rc=$?
    [ $rc = 1 ] || fail "an over-cap settlement $a -> $b exited $rc, expected 1 (rejected)"
    grep -q AM02 "$WORK/send.err" || fail "over-cap rejection without reason AM02"
    rejected=$((rejected + 1))
  done
done
echo "  $rejected settlements over the cap rejected with AM02, as they must be"

echo "== waiting for every outcome"
for _ in $(seq 1 120); do
  busy=0
  for code in "${BANKS[@]}"; do
    p=$("$CORRIDOR" ledger --home "$WORK/$code" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["pending"])')
    [ "$p" = 0 ] || busy=1
  done
  [ $busy = 0 ] && break
  sleep 0.25
done
[ "$busy" = 0 ] || fail "settlements still pending after 30 s"

echo "== positions"
for code in "${BANKS[@]}"; do
  echo "-- $code (${DESC[$code]})"
  "$CORRIDOR" ledger --home "$WORK/$code" | sed 's/^/   /'
done

echo "== stopping the nodes"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "a node did not stop cleanly"; done
PIDS=()

echo "== audit of the three homes (signatures, hash chains, double entry, mirrors)"
"$CORRIDOR" audit --home "$WORK/BKRURUMM" --home "$WORK/BMJIIRTH" --home "$WORK/KZKZKZKA" \
  --peer-card "$WORK/BKRURUMM.card" --peer-card "$WORK/BMJIIRTH.card" \
  --peer-card "$WORK/KZKZKZKA.card" \
  || fail "audit found violations"
echo "demo ok: 120 settled, 6 rejected over the cap, books agree"

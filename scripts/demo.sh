#!/usr/bin/env bash
# Corridor in one command, as a story you can follow in under a minute (after the build):
# three banks (Russia, Iran, Kazakhstan) trade unevenly in their own currencies, a payment is
# refused over a cap, a bank's node is killed mid-stream and restarted with nothing lost, each
# pair reconciles, the books are audited, and a closing table says who owes whom.
# Built on `corridor testnet`. Exits non-zero if anything is off.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/deps.sh
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 >/dev/null
CORRIDOR=$PWD/build/corridor
WORK=$(mktemp -d /tmp/corridor-demo.XXXXXX)
NET=$WORK/net
cleanup() {
  "$CORRIDOR" testnet down --dir "$NET" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "DEMO FAILED: $*" >&2; exit 1; }
say() { printf '\n%s\n' "$*"; }
corridor() { "$CORRIDOR" "$@"; }
started=$SECONDS

RU=BKRURUMM IR=BMJIIRTH KZ=KZKZKZKA
say "== Three banks, each its own node: $RU (Russia), $IR (Iran), $KZ (Kazakhstan)."
echo "   The two banks of each pair trust each other, and each grants the other a net debit cap: how much the other may owe it,"
echo "   RUB 5,000,000, IRR 300,000,000,000 and KZT 80,000,000."
corridor testnet up --dir "$NET" --nodes "$RU,$IR,$KZ" --currencies RUB,IRR,KZT \
  --cap RUB=5000000 --cap IRR=300000000000 --cap KZT=80000000 \
  | grep -v -e '^try:' -e '^  corridor' | sed 's/^/   /'

# batch FROM TO CURRENCY AMOUNT COUNT WHAT: COUNT payments of AMOUNT, sent and waited for
batch() {
  local file=$WORK/$1-$2-$3.csv
  {
    echo "to,amount,currency,remittance"
    for i in $(seq 1 "$5"); do echo "$2,$4,$3,\"$6, invoice $i\""; done
  } >"$file"
  corridor send --home "$NET/$1" --batch "$file" --wait 30 >/dev/null 2>"$WORK/send.err" \
    || fail "$1 -> $2: $(cat "$WORK/send.err")"
}

say "== Trade that does not balance."
echo "   Iran buys Russian energy: 11 payments of RUB 450,000 (crude oil, gas)."
batch "$IR" "$RU" RUB 450000.00 11 "crude oil, cargo"
echo "   Russia buys Iranian goods: 8 payments of IRR 2,500,000,000 (fruit, machinery)."
batch "$RU" "$IR" IRR 2500000000 8 "machinery, lot"
echo "   Kazakhstan buys Russian fuel: 5 payments of RUB 300,000."
batch "$KZ" "$RU" RUB 300000.00 5 "diesel fuel"
echo "   Iran buys Kazakh grain: 6 payments of KZT 4,000,000."
batch "$IR" "$KZ" KZT 4000000.00 6 "wheat, wagon"

say "== Iran's twelfth energy payment would take its debt to Russia past the cap."
rc=0
corridor send --home "$NET/$IR" --to "$RU" --amount 450000 --currency RUB --wait 20 \
  --remittance "crude oil, cargo 12" >"$WORK/over.out" 2>"$WORK/over.err" || rc=$?
[ "$rc" = 1 ] || fail "the over-cap payment exited $rc, expected 1 (rejected)"
grep -q AM02 "$WORK/over.err" || fail "the over-cap payment was not refused with AM02"
echo "   Russia's node refused it with AM02 (over the net debit cap), and send exited 1:"
echo "   $(cat "$WORK/over.out")"

say "== Kazakhstan's node is killed in the middle of 300 small payments from Russia."
{
  echo "to,amount,currency"
  for _ in $(seq 1 300); do echo "$KZ,1000.00,RUB"; done
} >"$WORK/stream.csv"
settled_at_kz() {
  corridor ledger --home "$NET/$KZ" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["settled"])'
}
before=$(settled_at_kz) # before the stream starts: counted after, a few of it could be in it
corridor send --home "$NET/$RU" --batch "$WORK/stream.csv" --rate 150 >/dev/null 2>"$WORK/send.err" &
sender=$!
for _ in $(seq 1 200); do
  [ "$(settled_at_kz)" -ge $((before + 60)) ] && break
  sleep 0.05
done
kill -KILL "$(cat "$NET/$KZ.pid")"
echo "   SIGKILL after $(($(settled_at_kz) - before)) of them reached it; Russia's node keeps sending into the void."
wait "$sender" || fail "the stream's submission failed: $(cat "$WORK/send.err")"
corridor testnet up --dir "$NET" >/dev/null
echo "   Restarted: the channel resumes from the last message Kazakhstan committed."
for _ in $(seq 1 300); do
  pending=$(corridor ledger --home "$NET/$RU" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["pending"])')
  [ "$pending" = 0 ] && break
  sleep 0.1
done
[ "$pending" = 0 ] || fail "payments still pending at Russia 30 s after the restart"
got=$(($(settled_at_kz) - before))
[ "$got" = 300 ] || fail "Kazakhstan booked $got of the 300 payments"
echo "   All 300 booked at Kazakhstan exactly once."

say "== Reconciliation of every pair (signed statements), and the audit of the three books."
corridor testnet audit --dir "$NET" | sed 's/^/   /' || fail "the audit or a reconciliation found a break"

say "== Who owes whom (each bank's books; the other side's mirror them)"
for code in "$RU" "$IR" "$KZ"; do corridor ledger --home "$NET/$code" --json; done | python3 -c '
import json, sys
docs, text = [], sys.stdin.read()
dec = json.JSONDecoder()
i = 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    doc, i = dec.raw_decode(text, i)
    docs.append(doc)
names = {"BKRURUMM": "Russia", "BMJIIRTH": "Iran", "KZKZKZKA": "Kazakhstan"}
exp = {"RUB": 2, "IRR": 2, "KZT": 2}  # ISO 4217 minor units
rows = []
for d in docs:
    for p in d["positions"]:
        if p["net_minor"] > 0:   # net: what the peer owes this bank
            rows.append((names[p["peer"]], names[d["node"]], p["currency"], p["net_minor"]))
print("   %-11s %-11s %-4s %22s" % ("debtor", "creditor", "ccy", "owes"))
for debtor, creditor, ccy, minor in sorted(rows):
    print("   %-11s %-11s %-4s %22s" % (debtor, creditor, ccy, f"{minor / 10 ** exp[ccy]:,.{exp[ccy]}f}"))
'
corridor testnet down --dir "$NET" >/dev/null
say "demo ok in $((SECONDS - started)) s: uneven trade settled, one payment refused over the cap, a node killed and restarted with nothing lost, books reconciled and audited"

#!/usr/bin/env bash
# Short multi-node smoke test (also run under ASan+UBSan): two nodes on loopback settle 50
# settlements each way and one over the cap, stop cleanly on SIGTERM, and audit clean.
# usage: smoke_nodes.sh path/to/corridor
set -euo pipefail
CORRIDOR=${1:?usage: smoke_nodes.sh path/to/corridor}
WORK=$(mktemp -d /tmp/corridor-smoke-nodes.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
  exit 1
}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
P=$(python3 "$ROOT/scripts/free_port.py") || fail "no free port"
for n in BKRURUMM BMJIIRTH; do # the stream on the next port, init's default
  "$CORRIDOR" init --home "$WORK/$n" --name $n --listen "tcp://127.0.0.1:$P" \
    --currencies RUB,USD >"$WORK/$n.card" || fail "init $n"
  grep -q " stream=tcp://127.0.0.1:$((P + 1)) " "$WORK/$n.card" || fail "$n: no stream= in its card"
  P=$(python3 "$ROOT/scripts/free_port.py" "$P") || fail "no free port"
done
"$CORRIDOR" peer add --home "$WORK/BKRURUMM" "$(cat "$WORK/BMJIIRTH.card")" --limit RUB=100000 >/dev/null
"$CORRIDOR" peer add --home "$WORK/BMJIIRTH" "$(cat "$WORK/BKRURUMM.card")" --limit RUB=100000 >/dev/null
for n in BKRURUMM BMJIIRTH; do
  "$CORRIDOR" run --home "$WORK/$n" 2>"$WORK/$n.log" &
  PIDS+=($!)
done
for n in BKRURUMM BMJIIRTH; do
  for _ in $(seq 1 100); do "$CORRIDOR" status --home "$WORK/$n" >/dev/null 2>&1 && break; sleep 0.1; done
  "$CORRIDOR" status --home "$WORK/$n" >/dev/null 2>&1 || fail "$n did not start"
done
for pair in "BKRURUMM BMJIIRTH" "BMJIIRTH BKRURUMM"; do
  # shellcheck disable=SC2086 # the pair is split into $1 and $2 on purpose
  set -- $pair
  { echo "to,amount,currency"; for i in $(seq 1 50); do echo "$2,$i.25,RUB"; done; } >"$WORK/$1.csv"
  "$CORRIDOR" send --home "$WORK/$1" --batch "$WORK/$1.csv" --wait 60 >/dev/null 2>"$WORK/send.err" \
    || fail "batch from $1: $(cat "$WORK/send.err")"
done
rc=0
"$CORRIDOR" send --home "$WORK/BKRURUMM" --to BMJIIRTH --amount 100000.01 --currency RUB --wait 30 \
  >/dev/null 2>"$WORK/send.err" || rc=$?
{ [ $rc = 1 ] && grep -q AM02 "$WORK/send.err"; } || fail "over-cap send exited $rc: $(cat "$WORK/send.err")"
# two nodes of this build sign with the newest wire format (StatusReports bound to what they answer)
for n in BKRURUMM BMJIIRTH; do
  v=$("$CORRIDOR" status --home "$WORK/$n" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["wire_version"])')
  [ "$v" = 2 ] || fail "$n speaks wire version $v to its peer, expected 2"
done
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "a node exited non-zero on SIGTERM"; done
PIDS=()
"$CORRIDOR" audit --home "$WORK/BKRURUMM" --home "$WORK/BMJIIRTH" --json >"$WORK/audit.json" \
  2>"$WORK/audit.err" || fail "audit: $(head -c 400 "$WORK/audit.json")"
python3 - "$WORK/audit.json" <<'PY' || fail "audit JSON not clean"
import json, sys
a = json.load(open(sys.argv[1]))
assert a["ok"] is True and a["entries_checked"] >= 200, a
assert all(k["source"] == "home" for k in a["keys"]), a["keys"]
PY
grep -q "comes from the audited home's own config" "$WORK/audit.err" \
  || fail "audit without cards did not say where the keys came from"
# with the cards each node printed at init: keys from outside, no notice
"$CORRIDOR" audit --home "$WORK/BKRURUMM" --peer-card "$WORK/BMJIIRTH.card" --json \
  >"$WORK/audit.json" 2>"$WORK/audit.err" || fail "audit with a card: $(cat "$WORK/audit.err")"
[ ! -s "$WORK/audit.err" ] || fail "audit with a card still warned: $(cat "$WORK/audit.err")"
python3 - "$WORK/audit.json" <<'PY' || fail "audit with a card: keys not from the card"
import json, sys
a = json.load(open(sys.argv[1]))
k = a["keys"]
assert a["ok"] is True and len(k) == 1 and k[0]["source"] == "card" and k[0]["rows"] > 0, a
assert k[0]["first_sequence"] == 1 and k[0]["last_sequence"] >= 50, k
PY
# the other node's card is not its peer's: the config's key matches no card given
sed 's/BKRURUMM/BMJIIRTH/' "$WORK/BKRURUMM.card" >"$WORK/wrong.card"
rc=0
"$CORRIDOR" audit --home "$WORK/BKRURUMM" --peer-card "$WORK/wrong.card" >"$WORK/audit.txt" 2>&1 \
  || rc=$?
{ [ $rc = 1 ] && grep -q "VIOLATION key" "$WORK/audit.txt"; } || fail "a wrong card was not caught ($rc)"
echo garbage >"$WORK/bad.card"
rc=0
"$CORRIDOR" audit --home "$WORK/BKRURUMM" --peer-card "$WORK/bad.card" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "a malformed card file exited $rc, expected 2"
echo "smoke_nodes: ok"

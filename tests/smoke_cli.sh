#!/usr/bin/env bash
# Smoke test of the command line over real homes: two nodes are created, exchange cards and
# trust each other; batch files are refused line by line; a testnet comes up, loses a node,
# is restarted and stopped; the contract's exit codes and refusals are checked along the way.
# usage: smoke_cli.sh path/to/corridor
set -euo pipefail
CORRIDOR=${1:?usage: smoke_cli.sh path/to/corridor}
WORK=$(mktemp -d /tmp/corridor-smoke.XXXXXX)
trap '"$CORRIDOR" testnet down --dir "$WORK/net" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { # expect_rc CODE command...
  local want=$1; shift
  local rc=0
  "$@" </dev/null >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$WORK/err")"
}

expect_rc 0 "$CORRIDOR" --help
grep -q 'init' "$WORK/out" || fail "--help does not list init"
expect_rc 2 "$CORRIDOR" no-such-command
[ "$(wc -l <"$WORK/err")" = 1 ] || fail "usage error is not one line"

A=$WORK/BKRURUMM; B=$WORK/BMJIIRTH
expect_rc 0 "$CORRIDOR" init --home "$A" --name BKRURUMM --listen tcp://127.0.0.1:17001 --currencies RUB,IRR,USD
cp "$WORK/out" "$WORK/a.card"
[ "$(wc -l <"$WORK/a.card")" = 1 ] || fail "init did not print one card line"
expect_rc 0 "$CORRIDOR" init --home "$B" --name BMJIIRTH --listen tcp://127.0.0.1:17002 --currencies RUB,IRR
cp "$WORK/out" "$WORK/b.card"
[ "$(stat -c %a "$A/node.key")" = 600 ] || fail "key file is not mode 600"
[ "$(stat -c %a "$A")" = 700 ] || fail "home is not mode 700"

# init refuses an existing home, and bad input, with exit 2 and nothing written
expect_rc 2 "$CORRIDOR" init --home "$A" --name BKRURUMM --listen tcp://127.0.0.1:17001
expect_rc 2 "$CORRIDOR" init --home "$WORK/x" --name bk --listen tcp://127.0.0.1:17003
expect_rc 2 "$CORRIDOR" init --home "$WORK/x" --name BKXXRUMM --listen nowhere
expect_rc 2 "$CORRIDOR" init --home "$WORK/x" --name BKXXRUMM --listen tcp://127.0.0.1:1 --currencies RUB,XXX
[ ! -e "$WORK/x" ] || fail "a refused init left $WORK/x behind"

# card prints the same line again, and JSON with the contract's fields
expect_rc 0 "$CORRIDOR" card --home "$A"
cmp -s "$WORK/out" "$WORK/a.card" || fail "card differs from what init printed"
expect_rc 0 "$CORRIDOR" card --home "$A" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["name"]=="BKRURUMM" and len(d["sign_public"])==64 and len(d["box_public"])==64 and len(d["curve_public"])==40, d' "$WORK/out" \
  || fail "card --json lacks the contract's fields"

# card --history: a home that never rotated lists its current key alone; key rotate needs the
# running node (exit 3), a subcommand (exit 2), and has --help with an example
expect_rc 0 "$CORRIDOR" card --home "$A" --history --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=d["keys"]; assert d["node"]=="BKRURUMM" and len(k)==1 and k[0]["peer"] is None and k[0]["side"]=="ours" and k[0]["key_id"]==d["key_id"] and k[0]["last_seq"] is None, d' "$WORK/out" \
  || fail "card --history --json of a fresh home is not its current key alone"
expect_rc 0 "$CORRIDOR" card --home "$A" --history
grep -q '1\.\.open' "$WORK/out" || fail "card --history text does not show the open key"
expect_rc 0 "$CORRIDOR" key rotate --help
grep -q '^Example: corridor key rotate' "$WORK/out" || fail "key rotate --help has no example"
expect_rc 2 "$CORRIDOR" key
expect_rc 2 "$CORRIDOR" key rotate --home "$A" extra
expect_rc 3 "$CORRIDOR" key rotate --home "$A"

# peer add both ways; duplicate, self, malformed and bad limits are refused
expect_rc 0 "$CORRIDOR" peer add --home "$A" "$(cat "$WORK/b.card")" --limit RUB=1000000 --limit IRR=0
expect_rc 0 "$CORRIDOR" peer add --home "$B" "$(cat "$WORK/a.card")" --limit RUB=1000000.50
grep -q '^limit_minor.RUB = 100000000$' "$A/corridor.conf" || fail "cap not recorded in minor units"
grep -q '^limit_minor.RUB = 100000050$' "$B/corridor.conf" || fail "decimal cap not recorded in minor units"
expect_rc 2 "$CORRIDOR" peer add --home "$A" "$(cat "$WORK/b.card")"
grep -q 'already trusted' "$WORK/err" || fail "duplicate peer not explained"
expect_rc 2 "$CORRIDOR" peer add --home "$A" "$(cat "$WORK/a.card")"
expect_rc 2 "$CORRIDOR" peer add --home "$A" "corridor-card-v1 name=KZKZKZKA"
expect_rc 2 "$CORRIDOR" peer add --home "$B" "$(cat "$WORK/a.card")" --limit RUB=1.234

# a key file readable by others is refused with a message saying how to fix it
chmod 644 "$A/node.key"
expect_rc 2 "$CORRIDOR" card --home "$A"
grep -q 'chmod 600' "$WORK/err" || fail "loose key file message does not say how to fix it"
chmod 600 "$A/node.key"

# no home: a clear error
expect_rc 2 "$CORRIDOR" card --home "$WORK/none"

# --version names the wire formats
expect_rc 0 "$CORRIDOR" --version
grep -q 'wire format versions 1 to 2' "$WORK/out" || fail "--version does not name the wire formats"

# a batch is read whole first: a malformed line is refused with its number before anything is
# sent (the node is not running: a file that parses gets as far as the connection, exit 3)
printf 'to,amount,currency,remittance\nBMJIIRTH,1.00,RUB,"Invoice 7, ""urgent"""\nBMJIIRTH,2.00,RUB\n' >"$WORK/bad.csv"
expect_rc 2 "$CORRIDOR" send --home "$A" --batch "$WORK/bad.csv"
grep -q 'bad.csv: line 3: 3 fields, the header has 4' "$WORK/err" || fail "batch refusal does not name line 3"
printf 'to,amount,currency,remittance\nBMJIIRTH,1.00,RUB,"Invoice 7, ""urgent"""\n' >"$WORK/good.csv"
expect_rc 3 "$CORRIDOR" send --home "$A" --batch "$WORK/good.csv"
printf '{"to": "BMJIIRTH", "amount": 1.5, "currency": "RUB"}\n' >"$WORK/bad.jsonl"
expect_rc 2 "$CORRIDOR" send --home "$A" --batch "$WORK/bad.jsonl"
grep -q "bad.jsonl: line 1: 'amount' must be a string" "$WORK/err" || fail "JSON Lines refusal unclear"

# testnet: usage errors, up, a node killed is reported down, up starts it again, a second up
# on a running network is refused, down stops every node
NET=$WORK/net
expect_rc 2 "$CORRIDOR" testnet up --dir "$NET"
expect_rc 2 "$CORRIDOR" testnet up --dir "$NET" --nodes BKRURUMM,BMJIIRTH --topology tree
expect_rc 2 "$CORRIDOR" testnet status --dir "$NET"
expect_rc 0 "$CORRIDOR" testnet up --dir "$NET" --nodes BKRURUMM,BMJIIRTH,KZKZKZKA --topology star --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["channels"]==2 and [n["name"] for n in d["nodes"]]==["BKRURUMM","BMJIIRTH","KZKZKZKA"], d' "$WORK/out" \
  || fail "testnet up --json: not the network asked for"
expect_rc 0 "$CORRIDOR" testnet status --dir "$NET"
kill -KILL "$(cat "$NET/KZKZKZKA.pid")"
rc=0
for _ in $(seq 1 100); do
  rc=0; "$CORRIDOR" testnet status --dir "$NET" --json >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = 1 ] && break
  sleep 0.1
done
[ "$rc" = 1 ] || fail "a killed node is not reported by testnet status"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [n["running"] for n in d["nodes"]]==[True,True,False], d' "$WORK/out" \
  || fail "testnet status --json does not say which node is down"
expect_rc 0 "$CORRIDOR" testnet up --dir "$NET"
expect_rc 2 "$CORRIDOR" testnet up --dir "$NET"
grep -q 'already up' "$WORK/err" || fail "a second up is not explained"
expect_rc 0 "$CORRIDOR" testnet audit --dir "$NET"
# the star's centre rotates its keys: announced to both peers, the card changes its sign=,
# box= and (if both peers have shown they switch transports: curve_switch) curve= only, and
# the key history shows the old and the new key on each channel
"$CORRIDOR" card --home "$NET/BKRURUMM" >"$WORK/old.card"
expect_rc 0 "$CORRIDOR" key rotate --home "$NET/BKRURUMM" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["rotated"] and d["key_id"]!=d["previous_key_id"] and sorted(a["peer"] for a in d["announced"])==["BMJIIRTH","KZKZKZKA"], d' "$WORK/out" \
  || fail "key rotate --json: not a rotation announced to both peers"
expect_rc 0 "$CORRIDOR" card --home "$NET/BKRURUMM"
[ "$(sed 's/ sign=[0-9a-f]* box=[0-9a-f]* curve=.*//' "$WORK/out")" = "$(sed 's/ sign=[0-9a-f]* box=[0-9a-f]* curve=.*//' "$WORK/old.card")" ] \
  || fail "key rotate changed more of the card than sign=, box= and curve="
[ "$(grep -o 'box=[0-9a-f]*' "$WORK/out")" != "$(grep -o 'box=[0-9a-f]*' "$WORK/old.card")" ] \
  || fail "key rotate kept the box key"
! cmp -s "$WORK/out" "$WORK/old.card" || fail "key rotate did not change the card's sign="
expect_rc 0 "$CORRIDOR" card --home "$NET/BKRURUMM" --history --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=[x for x in d["keys"] if x["side"]=="ours"]; assert len(k)==4 and [x["source"] for x in k]==["card","announced"]*2 and k[1]["key_id"]==d["key_id"], d' "$WORK/out" \
  || fail "card --history --json after a rotation: not the old and new key on each channel"
expect_rc 0 "$CORRIDOR" testnet down --dir "$NET"
grep -q '3 nodes stopped' "$WORK/out" || fail "testnet down did not stop every node"
expect_rc 1 "$CORRIDOR" testnet status --dir "$NET"
echo "smoke_cli: ok"

#!/usr/bin/env bash
# Smoke test of the command line over real homes: two nodes are created, exchange cards and
# trust each other; the contract's exit codes and refusals are checked along the way.
# usage: smoke_cli.sh path/to/corridor
set -euo pipefail
CORRIDOR=${1:?usage: smoke_cli.sh path/to/corridor}
WORK=$(mktemp -d /tmp/corridor-smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
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
echo "smoke_cli: ok"

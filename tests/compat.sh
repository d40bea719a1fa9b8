#!/usr/bin/env bash
# Wire compatibility across versions. Commit 85f9591 is the last one before a wire-format
# change; nodes already deployed run that code, and a new build must still settle with them
# and read the books they wrote. This runs one node built from 85f9591 ("old") and one of the
# current build ("new") on loopback, settles both ways (some over a cap, rejected AM02, so that
# rejections cross versions too), stops both and checks:
#   - every UETR is on both sides once, with the same status, amount and currency;
#   - positions mirror (net_minor of one side = -net_minor of the other), nothing pending;
#   - the NEW binary audits both homes clean (it must open the old-written ledger), and the
#     old binary audits its own home clean.
#
#   CORRIDOR=build/corridor CORRIDOR_OLD=/path/to/old/corridor tests/compat.sh
# CORRIDOR: the new program (default build/corridor). CORRIDOR_OLD: an already built old
# program; without it, 85f9591 is built from git into a temporary directory (needs the commit:
# a shallow clone exits 77, which ctest shows as skipped). COMPAT_KEEP=1 keeps the homes and logs.
# Exit 0 on success with a one-line summary; 1 with a message on any mismatch.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD_COMMIT=85f9591
NEW=${CORRIDOR:-$ROOT/build/corridor}
SENDS=20          # settlements each way that must settle
WAITED=3          # of which this many use --wait; the rest are awaited by polling the ledgers
start=$SECONDS
[ -x "$NEW" ] || { echo "compat.sh: $NEW not built (set CORRIDOR or build first)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "compat.sh: python3 is needed" >&2; exit 2; }
WORK=$(mktemp -d /tmp/corridor-compat.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; fi; done
  sleep 0.3
  for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi; done
  if [ "${COMPAT_KEEP:-0}" = 1 ]; then echo "(homes and logs kept in $WORK)" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() {
  echo "COMPAT FAILED: $*" >&2
  for n in old new; do [ -s "$WORK/$n.log" ] && { echo "-- $n.log (last lines)" >&2; tail -5 "$WORK/$n.log" >&2; }; done
  exit 1
}

# 1. The old program: given, or built from git.
if [ -n "${CORRIDOR_OLD:-}" ]; then
  OLD=$CORRIDOR_OLD
  [ -x "$OLD" ] || fail "CORRIDOR_OLD=$OLD is not an executable"
else
  if ! git -C "$ROOT" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null; then
    echo "compat.sh: SKIPPED: commit $OLD_COMMIT is not in $ROOT (shallow clone?): run" \
      "'git fetch --unshallow' or set CORRIDOR_OLD=path/to/old/corridor" >&2
    exit 77 # ctest's skip code: shown as skipped, never as passed
  fi
  mkdir -p "$WORK/src"
  git -C "$ROOT" archive "$OLD_COMMIT" | tar -x -C "$WORK/src"
  { cmake -S "$WORK/src" -B "$WORK/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
    cmake --build "$WORK/build" -j2 --target corridor >"$WORK/build.log" 2>&1; } ||
    { tail -20 "$WORK/build.log" >&2; fail "building $OLD_COMMIT failed"; }
  OLD=$WORK/build/corridor
fi

# 2. Two homes on free loopback ports, cards exchanged, both nodes up.
free_port() { python3 "$ROOT/scripts/free_port.py" "$@"; } # P and P+1 free, apart from "$@"
declare -A BIN=([old]=$OLD [new]=$NEW) NAME=([old]=BKRURUMM [new]=BMJIIRTH) PID
P_OLD=$(free_port) || fail "no free port"; P_NEW=$(free_port "$P_OLD") || fail "no free port"
declare -A PORT=([old]=$P_OLD [new]=$P_NEW)
for n in old new; do
  "${BIN[$n]}" init --home "$WORK/$n" --name "${NAME[$n]}" --listen "tcp://127.0.0.1:${PORT[$n]}" \
    --currencies RUB,USD >"$WORK/$n.card" || fail "$n: init failed"
done
# Generous RUB caps; USD 100 both ways, so the USD 1000 sends below are over the cap.
# The old program knows no stream= in a card: it is given the card without it (README), and
# sends the new node everything on its endpoint.
"$OLD" peer add --home "$WORK/old" "$(sed 's/ stream=[^ ]*//' "$WORK/new.card")" --limit RUB=100000000 --limit USD=100 >/dev/null
"$NEW" peer add --home "$WORK/new" "$(cat "$WORK/old.card")" --limit RUB=100000000 --limit USD=100 >/dev/null
for n in old new; do
  "${BIN[$n]}" run --home "$WORK/$n" 2>"$WORK/$n.log" &
  PID[$n]=$!; PIDS+=($!)
done
peer_state() { # the state of the one peer in status --json, or nothing
  "${BIN[$1]}" status --home "$WORK/$1" --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["state"])' 2>/dev/null || true
}
for n in old new; do
  for _ in $(seq 1 200); do  # 20 s
    [ "$(peer_state $n)" = up ] && break
    kill -0 "${PID[$n]}" 2>/dev/null || fail "the $n node exited at start"
    sleep 0.1
  done
  [ "$(peer_state $n)" = up ] || fail "the $n node does not show its peer up after 20 s"
done
# the old node lists no wire versions in its Hello: the new one must sign version 1 for it
version=$("$NEW" status --home "$WORK/new" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["wire_version"])')
[ "$version" = 1 ] || fail "the new node speaks wire version $version to the old one, expected 1"

# 3. Settlements both ways; the plan records what each must end as.
amounts=(125000 9800050 1575 430000 70025)  # minor units
dec() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }
send() { # send FROM TO CCY MINOR WANT [--wait]: records the UETR in the plan
  local from=$1 to=$2 ccy=$3 minor=$4 want=$5 rc=0 out
  shift 5
  out=$("${BIN[$from]}" send --home "$WORK/$from" --to "${NAME[$to]}" --amount "$(dec "$minor")" \
    --currency "$ccy" "$@" 2>"$WORK/send.err") || rc=$?
  if [ $# -gt 0 ]; then  # waited: 0 settled, 1 rejected
    case "$want:$rc" in settled:0|rejected:1) ;; *)
      fail "$from -> $to $ccy $(dec "$minor") --wait exited $rc, expected $want: $(cat "$WORK/send.err")" ;;
    esac
    [ "$want" = settled ] || grep -q AM02 "$WORK/send.err" || fail "$from -> $to: rejection without AM02"
  else
    [ $rc = 0 ] || fail "$from -> $to $ccy $(dec "$minor") exited $rc: $(cat "$WORK/send.err")"
  fi
  echo "${out%% *} $from $to $ccy $minor $want" >>"$WORK/plan"
}
for i in $(seq 0 $((SENDS - 1))); do
  w=(); [ "$i" -lt "$WAITED" ] && w=(--wait 30)
  send old new RUB "${amounts[$((i % 5))]}" settled "${w[@]}"
  send new old RUB "$((amounts[(i + 2) % 5] + 101 * i))" settled "${w[@]}"  # not a mirror image
done
send old new USD 100000 rejected --wait 30   # USD 1000 against a cap of USD 100
send new old USD 100000 rejected --wait 30
pending() { "${BIN[$1]}" ledger --home "$WORK/$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["pending"])'; }
for _ in $(seq 1 120); do  # 60 s
  [ "$(pending old)" = 0 ] && [ "$(pending new)" = 0 ] && break
  sleep 0.5
done
{ [ "$(pending old)" = 0 ] && [ "$(pending new)" = 0 ]; } || fail "settlements still pending after 60 s"

# 4. Stop both, then compare the books, each read by its own program, and audit.
for n in old new; do kill -TERM "${PID[$n]}"; done
for n in old new; do
  for _ in $(seq 1 200); do kill -0 "${PID[$n]}" 2>/dev/null || break; sleep 0.1; done
  kill -0 "${PID[$n]}" 2>/dev/null && fail "the $n node did not stop within 20 s of SIGTERM"
  wait "${PID[$n]}" || fail "the $n node did not stop cleanly"
done
PIDS=()
for n in old new; do "${BIN[$n]}" ledger --home "$WORK/$n" --json >"$WORK/$n.json" || fail "$n: ledger failed"; done
rc=0; "$NEW" audit --home "$WORK/old" --home "$WORK/new" --json >"$WORK/audit-new.json" 2>"$WORK/audit.err" || rc=$?
[ $rc -le 1 ] || fail "new audit of both homes exited $rc: $(cat "$WORK/audit.err")"
rc=0; "$OLD" audit --home "$WORK/old" --json >"$WORK/audit-old.json" 2>"$WORK/audit.err" || rc=$?
[ $rc -le 1 ] || fail "old audit of its home exited $rc: $(cat "$WORK/audit.err")"
python3 - "$WORK" <<'PY' || fail "the books disagree (above)"
import json, sys
w = sys.argv[1]
books = {n: json.load(open(f"{w}/{n}.json")) for n in ("old", "new")}
errors = []
for who, f in (("new binary, both homes", "audit-new.json"), ("old binary, its home", "audit-old.json")):
    a = json.load(open(f"{w}/{f}"))
    if not a.get("ok") or a.get("violations"):
        errors.append(f"audit ({who}): {a.get('violations', [])[:3]}")
rows = {n: {} for n in books}
for n, b in books.items():
    for s in b["settlements"]:
        rows[n].setdefault(s["uetr"], []).append(s)
plan = [l.split() for l in open(f"{w}/plan")]
for u, frm, to, ccy, minor, want in plan:
    a, b = rows[frm].get(u, []), rows[to].get(u, [])
    if len(a) != 1 or len(b) != 1:
        errors.append(f"{u}: {len(a)} rows at {frm}, {len(b)} at {to} (want one each)"); continue
    a, b = a[0], b[0]
    if (a["direction"], b["direction"]) != ("out", "in"):
        errors.append(f"{u}: directions {a['direction']} at {frm}, {b['direction']} at {to}")
    if a["status"] != want or b["status"] != want:
        errors.append(f"{u}: {frm} says {a['status']}, {to} says {b['status']}, expected {want}")
    for k, v in (("amount_minor", int(minor)), ("currency", ccy)):
        if a[k] != v or b[k] != v:
            errors.append(f"{u}: {k} {a[k]} at {frm}, {b[k]} at {to}, sent {v}")
    if want == "rejected" and (a["reason"], b["reason"]) != ("AM02", "AM02"):
        errors.append(f"{u}: rejected with reasons {a['reason']} at {frm}, {b['reason']} at {to}")
for n in books:
    extra = set(rows[n]) - {p[0] for p in plan}
    if extra:
        errors.append(f"{n}: {len(extra)} settlements never sent, e.g. {sorted(extra)[0]}")
pos = {n: {p["currency"]: p for p in b["positions"]} for n, b in books.items()}
for ccy in sorted(set(pos["old"]) | set(pos["new"])):
    o, n = pos["old"].get(ccy, {}), pos["new"].get(ccy, {})
    if o.get("net_minor", 0) != -n.get("net_minor", 0) or o.get("pending_minor", 0) or n.get("pending_minor", 0):
        errors.append(f"{ccy} positions do not mirror: old {o}, new {n}")
for e in errors[:10]:
    print("  " + e, file=sys.stderr)
if errors:
    sys.exit(1)
rub = pos["old"].get("RUB", {}).get("net_minor", 0)
settled = sum(p[5] == "settled" for p in plan)
print(f"{settled} {len(plan) - settled} {'-' if rub < 0 else ''}{abs(rub) // 100}.{abs(rub) % 100:02d}",
      file=open(f"{w}/summary", "w"))
PY
read -r SETTLED REJECTED RUB <"$WORK/summary"
echo "compat ok: old $OLD_COMMIT <-> new, $SETTLED settled ($SENDS each way, $((2 * WAITED)) with --wait)," \
  "$REJECTED rejected AM02 over the cap (1 each way), same UETRs and statuses on both sides," \
  "positions mirror (old RUB net $RUB), audit clean (new: both homes; old: its own), $((SECONDS - start)) s"

#!/usr/bin/env bash
# Chaos run: three nodes on loopback with faults injected on every message they send (drop,
# duplicate, reorder, delay), a load generator sending settlements in all six directions (some
# deliberately over the caps), and a killer that SIGKILLs a random node every 1-3 s and starts
# it again. Then it waits for quiescence and checks that nothing was lost or applied twice:
#   - audit of the three homes (I1-I5, and I2 between every pair) is clean;
#   - reconcile between every pair finds no breaks (I6);
#   - every settlement submitted has exactly one final outcome, the same on both sides, and
#     the over-cap ones are rejected AM02.
# The same --seed gives the same fault and kill schedule.
#
#   scripts/chaos.sh [--settlements N] [--seconds S] [--seed K] [--rate R] [--hosts]
# --rate paces the load (settlements/s, default 300) so that kills land in the middle of it.
# Exits non-zero on any violation; prints a summary.
# --hosts: each node in its own network namespace (veth pairs on a bridge in a namespace of its
# own, addresses from 198.18.0.0/15 that exist only there), with tc netem loss, delay and
# reordering on every link, and timed link cuts that partition one node and heal again.
# Needs root and `ip netns`; where the machine does not allow it, says so and skips.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SETTLEMENTS=5000
SECONDS_MAX=300
SEED=1
RATE=300
HOSTS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --settlements) SETTLEMENTS=$2; shift 2 ;;
    --seconds) SECONDS_MAX=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --hosts) HOSTS=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "chaos.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
NS_PREFIX=corridor-chaos-$$
if [ "$HOSTS" = 1 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v tc >/dev/null ||
     ! ip netns add "$NS_PREFIX-probe" 2>/dev/null; then
    echo "chaos.sh --hosts: this machine does not allow network namespaces (root, ip, tc); skipped" >&2
    exit 0
  fi
  ip netns del "$NS_PREFIX-probe"
fi
C=${CORRIDOR:-$ROOT/build/corridor}
[ -x "$C" ] || { echo "chaos.sh: $C not built (run scripts/test.sh or cmake first)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/corridor-chaos.XXXXXX)
NODES=(BKRURUMM BMJIIRTH KZKZKZKA)
declare -A HOME_OF PORT_OF
KEEP=0
cleanup() {
  if [ -f "$WORK/killer.pid" ]; then kill "$(cat "$WORK/killer.pid")" 2>/dev/null || true; fi
  if [ -f "$WORK/cutter.pid" ]; then kill "$(cat "$WORK/cutter.pid")" 2>/dev/null || true; fi
  for n in "${NODES[@]}"; do
    if [ -f "$WORK/$n.pid" ]; then kill -KILL "$(cat "$WORK/$n.pid")" 2>/dev/null || true; fi
  done
    if [ "$HOSTS" = 1 ]; then
    for i in 0 1 2 b; do ip netns del "$NS_PREFIX-$i" 2>/dev/null || true; done
  fi
  if [ "$KEEP" = 1 ]; then echo "(homes and logs kept in $WORK)" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }
fail() { KEEP=1; say "CHAOS FAILED: $*"; exit 1; }
free_port() { python3 "$ROOT/scripts/free_port.py" "$@"; } # P and P+1 free, apart from "$@"

# --hosts: three hosts on a bridge that lives in a namespace of its own; nothing is routed out.
make_hosts() {
  local br=$NS_PREFIX-b i
  ip netns add "$br"
  ip -n "$br" link add br0 type bridge
  ip -n "$br" link set br0 up
  for i in 0 1 2; do
    ip netns add "$NS_PREFIX-$i"
    ip link add "cc$$h$i" netns "$NS_PREFIX-$i" type veth peer name "cc$$b$i" netns "$br"
    ip -n "$br" link set "cc$$b$i" master br0 up
    ip -n "$NS_PREFIX-$i" addr add "198.18.0.$((i + 1))/24" dev "cc$$h$i"
    ip -n "$NS_PREFIX-$i" link set "cc$$h$i" up
    ip -n "$NS_PREFIX-$i" link set lo up
        # loss, delay with jitter and reordering on every host's link (when the kernel has netem)
    if ! ip netns exec "$NS_PREFIX-$i" tc qdisc add dev "cc$$h$i" root netem \
      loss 2% delay 5ms 2ms reorder 10% 50% 2>/dev/null; then
      NETEM=0
    fi
  done
}
ADDR_OF() { # the address a node listens on
  local i=0 x
  for x in "${NODES[@]}"; do [ "$x" = "$1" ] && break; i=$((i + 1)); done
  if [ "$HOSTS" = 1 ]; then echo "198.18.0.$((i + 1))"; else echo 127.0.0.1; fi
}

start=$SECONDS
NETEM=1
if [ "$HOSTS" = 1 ]; then
  make_hosts
  [ "$NETEM" = 1 ] || say "chaos.sh --hosts: this kernel has no tc netem (sch_netem); link loss, delay and reordering come from the fault knob alone"
fi
for n in "${NODES[@]}"; do
  PORT_OF[$n]=$(free_port "${PORT_OF[@]}"); HOME_OF[$n]=$WORK/$n
  "$C" init --home "${HOME_OF[$n]}" --name "$n" --listen "tcp://$(ADDR_OF "$n"):${PORT_OF[$n]}" \
    --currencies RUB,USD >"$WORK/$n.card"
done
for a in "${NODES[@]}"; do for b in "${NODES[@]}"; do
  [ "$a" = "$b" ] && continue
  "$C" peer add --home "${HOME_OF[$a]}" "$(cat "$WORK/$b.card")" --limit RUB=100000000 --limit USD=10000000 >/dev/null
done; done

# node_start NAME: runs the node with its faults; the pid goes to $WORK/NAME.pid
node_start() {
  local n=$1 i=0
  for x in "${NODES[@]}"; do [ "$x" = "$n" ] && break; i=$((i + 1)); done
    local runner=()
  [ "$HOSTS" = 1 ] && runner=(ip netns exec "$NS_PREFIX-$i")
  CORRIDOR_FAULTS="drop=0.05,dup=0.05,reorder=0.05,delay_ms=20,seed=$((SEED * 10 + i))" \
    "${runner[@]}" "$C" run --home "${HOME_OF[$n]}" 2>>"$WORK/$n.log" &
  echo $! >"$WORK/$n.pid"
  disown $! 2>/dev/null || true  # no "Killed" notices from the shell
}
node_wait() {
  for _ in $(seq 1 100); do "$C" status --home "${HOME_OF[$1]}" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
export -f node_start
for n in "${NODES[@]}"; do node_start "$n"; done
for n in "${NODES[@]}"; do node_wait "$n" || fail "$n did not start: $(tail -3 "$WORK/$n.log")"; done

# The plan: N settlements over the six directions; about 1 in 50 over the cap (rejected AM02).
python3 - "$WORK" "$SETTLEMENTS" "$SEED" <<'PY'
import random, sys, uuid
work, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
nodes = ["BKRURUMM", "BMJIIRTH", "KZKZKZKA"]
plan = open(f"{work}/plan.tsv", "w")
chunks = {}
for i in range(n):
    a, b = rng.sample(nodes, 2)
    ccy = rng.choice(["RUB", "USD"])
    if rng.random() < 0.02:
                # over the cap whatever the position: more than the caps both ways put together
        minor, want = (2 * 100000000 + 1) * 100, "rejected"
    else:
        minor, want = rng.randint(100, 100000), "settled"
    u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    plan.write(f"{u} {a} {b} {ccy} {minor} {want}\n")
    chunks.setdefault(a, []).append(f"{b},{minor // 100}.{minor % 100:02d},{ccy},{u}")
for a, rows in chunks.items():
    for k in range(0, len(rows), 250):
        with open(f"{work}/load-{a}-{k // 250:05d}.csv", "w") as f:
            f.write("to,amount,currency,uetr\n" + "\n".join(rows[k:k + 250]) + "\n")
PY

# The killer: every 1-3 s (seeded) SIGKILL a random node and start it again 0.3 s later.
(
  RANDOM=$SEED
  kills=0
  while :; do
    sleep "$((1 + RANDOM % 3)).$((RANDOM % 10))"
    n=${NODES[$((RANDOM % 3))]}
    kill -KILL "$(cat "$WORK/$n.pid")" 2>/dev/null || true
    sleep 0.3
    node_start "$n"
    kills=$((kills + 1)); echo $kills >"$WORK/kills"
  done
) &
echo $! >"$WORK/killer.pid"

# --hosts: link cuts. Every 3-6 s (seeded) one host's link goes down for 2 s and heals.
if [ "$HOSTS" = 1 ]; then
  (
    RANDOM=$((SEED + 1))
    cuts=0
    while :; do
      sleep "$((3 + RANDOM % 4))"
      i=$((RANDOM % 3))
      ip -n "$NS_PREFIX-$i" link set "cc$$h$i" down 2>/dev/null || true
      sleep 2
      ip -n "$NS_PREFIX-$i" link set "cc$$h$i" up 2>/dev/null || true
      cuts=$((cuts + 1)); echo $cuts >"$WORK/cuts"
    done
  ) &
  echo $! >"$WORK/cutter.pid"
fi


# The load: each chunk is sent until its node takes it (sends are idempotent by UETR).
sent=0
LOAD_T0=$(date +%s.%N)
for f in "$WORK"/load-*.csv; do
  a=$(basename "$f" | cut -d- -f2)
  for _ in $(seq 1 200); do
    "$C" send --home "${HOME_OF[$a]}" --batch "$f" >/dev/null 2>>"$WORK/load.err" && break
    sleep 0.2
    [ $((SECONDS - start)) -lt "$SECONDS_MAX" ] || fail "the load did not go through within $SECONDS_MAX s"
  done
    sent=$((sent + $(($(wc -l <"$f") - 1))))
  due=$(python3 -c "print($sent / $RATE)")
  python3 -c "import time,sys; d=float(sys.argv[1])-(time.time()-float(sys.argv[2])); time.sleep(max(0,d))" "$due" "$LOAD_T0"
  [ -t 2 ] && printf '\r   submitted %d of %d, kills %s   ' "$sent" "$SETTLEMENTS" "$(cat "$WORK/kills" 2>/dev/null || echo 0)" >&2
done
[ -t 2 ] && echo >&2
kill "$(cat "$WORK/killer.pid")"; wait "$(cat "$WORK/killer.pid")" 2>/dev/null || true; rm -f "$WORK/killer.pid"
if [ "$HOSTS" = 1 ]; then
  kill "$(cat "$WORK/cutter.pid")"; wait "$(cat "$WORK/cutter.pid")" 2>/dev/null || true; rm -f "$WORK/cutter.pid"
  for i in 0 1 2; do ip -n "$NS_PREFIX-$i" link set "cc$$h$i" up 2>/dev/null || true; done
fi
KILLS=$(cat "$WORK/kills" 2>/dev/null || echo 0)
load_done=$SECONDS

# Every node up again (the killer may have left one starting), then quiescence.
for n in "${NODES[@]}"; do
  node_wait "$n" || { node_start "$n"; node_wait "$n" || fail "$n does not start again"; }
done
while :; do
  busy=0
  for n in "${NODES[@]}"; do
    p=$("$C" ledger --home "${HOME_OF[$n]}" | sed -n 's/^settlements: \([0-9]*\) pending.*/\1/p')
    [ "$p" = 0 ] || busy=1
  done
  [ $busy = 0 ] && break
  [ $((SECONDS - start)) -lt "$SECONDS_MAX" ] || fail "settlements still pending after $SECONDS_MAX s"
  sleep 0.5
done
quiet=$((SECONDS - load_done))

# Faults injected, from each node's status (counts since its last start).
faults=0
for n in "${NODES[@]}"; do
  f=$("$C" status --home "${HOME_OF[$n]}" --json | python3 -c 'import json,sys; f=json.load(sys.stdin).get("faults",{}); print(sum(f.values()))')
  faults=$((faults + f))
done

# I6: reconcile every pair (no breaks).
breaks=0
for pair in "BKRURUMM BMJIIRTH" "BKRURUMM KZKZKZKA" "BMJIIRTH KZKZKZKA"; do
  # shellcheck disable=SC2086 # the pair is split into $1 and $2 on purpose
  set -- $pair
  "$C" reconcile --home "${HOME_OF[$1]}" --peer "$2" --json --timeout 120 >"$WORK/recon-$1-$2.json" 2>>"$WORK/load.err" || true
  b=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["breaks"]))' "$WORK/recon-$1-$2.json" 2>/dev/null || echo 999)
  breaks=$((breaks + b))
done

for n in "${NODES[@]}"; do
    pid=$(cat "$WORK/$n.pid")
  kill -TERM "$pid"
  for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "$n did not stop within 20 s of SIGTERM"
  rm -f "$WORK/$n.pid"
  "$C" ledger --home "${HOME_OF[$n]}" --json >"$WORK/$n.json"
done

# I1-I5 and I2: audit of the three homes.
# the peers' keys from the cards printed at init, not from the homes themselves
"$C" audit --home "${HOME_OF[BKRURUMM]}" --home "${HOME_OF[BMJIIRTH]}" --home "${HOME_OF[KZKZKZKA]}" \
  --peer-card "$WORK/BKRURUMM.card" --peer-card "$WORK/BMJIIRTH.card" \
  --peer-card "$WORK/KZKZKZKA.card" --json >"$WORK/audit.json" || true

# Exactly one final outcome per settlement, the same on both sides.
python3 - "$WORK" <<'PY' || { KEEP=1; exit 1; }
import json, sys
work = sys.argv[1]
nodes = ["BKRURUMM", "BMJIIRTH", "KZKZKZKA"]
books = {n: json.load(open(f"{work}/{n}.json")) for n in nodes}
audit = json.load(open(f"{work}/audit.json"))
errors = []
if not audit.get("ok"):
    errors.append(f"audit: {audit.get('violations', [])[:3]}")
index = {}
for n, book in books.items():
    for s in book["settlements"]:
        index.setdefault((n, s["uetr"]), []).append(s)
settled = rejected = 0
for line in open(f"{work}/plan.tsv"):
    u, a, b, ccy, minor, want = line.split()
    sa, sb = index.get((a, u), []), index.get((b, u), [])
    if len(sa) != 1 or len(sb) != 1:
        errors.append(f"{u}: {len(sa)} entries at {a}, {len(sb)} at {b} (want exactly one each)")
        continue
    sa, sb = sa[0], sb[0]
    if sa["status"] != sb["status"] or sa["status"] not in ("settled", "rejected"):
        errors.append(f"{u}: {a} says {sa['status']}, {b} says {sb['status']}")
    elif int(sa["amount_minor"]) != int(minor) or int(sb["amount_minor"]) != int(minor):
        errors.append(f"{u}: amounts differ from what was sent")
    elif want == "rejected" and (sa["status"] != "rejected" or sa["reason"] != "AM02"):
        errors.append(f"{u}: over the cap but {sa['status']} {sa['reason']}")
    settled += sa["status"] == "settled"
    rejected += sa["status"] == "rejected"
planned = sum(1 for _ in open(f"{work}/plan.tsv"))
extra = sum(1 for (n, u) in index) - 2 * planned
if extra != 0:
    errors.append(f"{extra} entries that were never submitted")
open(f"{work}/outcomes", "w").write(f"{settled} {rejected}\n")
for e in errors[:10]:
    print("  " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
read -r SETTLED REJECTED <"$WORK/outcomes"
[ "$breaks" = 0 ] || fail "reconcile found $breaks breaks"
CUTS=$(cat "$WORK/cuts" 2>/dev/null || echo 0)
printf 'chaos%s: seed %s, %d submitted, %d settled, %d rejected, %d kills, %s%d faults injected (since last starts), %d breaks, quiescent %d s after the load, %d s in all: nothing lost, nothing applied twice\n' \
  "$([ "$HOSTS" = 1 ] && echo " --hosts")" "$SEED" "$SETTLEMENTS" "$SETTLED" "$REJECTED" "$KILLS" \
    "$([ "$HOSTS" = 1 ] && echo "$CUTS link cuts, $([ "$NETEM" = 1 ] && echo "netem loss 2% delay 5+-2 ms reorder 10%" || echo "no netem"), ")" \
  "$faults" "$breaks" "$quiet" "$((SECONDS - start))"

#!/usr/bin/env bash
# Benchmarks, with the machine's ceilings measured in the same run so figures compare as
# ratios (absolute times on shared machines are noisy). Not tests: nothing here fails on speed.
#
#   scripts/bench.sh [node|ledger|reconcile|all] [options]
#     node       two nodes on loopback, N settlements through the control socket with many in
#                flight: throughput, latency p50/p99/p99.9, CPU per settlement, peak RSS;
#                --settlements N (100000), --clients K (4), --rate R (open loop, per second)
#     ledger     bookings/s at group sizes 1/100/1000 beside the raw SQLite rate; audit
#                entries/s beside the Ed25519 verify rate x cores
#     reconcile  two ledgers of --entries N (1000000) differing in 10: time and bytes; then
#                identical: time
# Writes bench-results.json (and PNG charts with gnuplot) in the current directory.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHAT=${1:-all}
[ $# -gt 0 ] && shift
SETTLEMENTS=100000
CLIENTS=4
RATE=0
ENTRIES=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --settlements) SETTLEMENTS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --entries) ENTRIES=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$WHAT" in node|ledger|reconcile|all) ;; *) echo "bench.sh: what? node|ledger|reconcile|all" >&2; exit 2 ;; esac

"$ROOT/scripts/deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j2 >/dev/null
C=$ROOT/build/corridor
B=$ROOT/build/tests/bench_core
OUT=$PWD/bench-results.json
WORK=$(mktemp -d /tmp/corridor-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill -TERM "$p" 2>/dev/null || true; fi; done
  sleep 0.5
  for p in "${PIDS[@]:-}"; do if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi; done
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }
free_port() { python3 "$ROOT/scripts/free_port.py" "$@"; } # P and P+1 free, apart from "$@"
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$@"; }

echo '{}' >"$WORK/results.json"
merge() { # merge KEY FILE.json into results
  python3 - "$WORK/results.json" "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r[sys.argv[2]] = json.load(open(sys.argv[3]))
json.dump(r, open(sys.argv[1], "w"), indent=2)
PY
}

say "== ceilings of this machine (same run)"
$B crypto >"$WORK/crypto.json"; merge crypto "$WORK/crypto.json"
$B sqlite "$WORK" >"$WORK/sqlite.json"; merge sqlite "$WORK/sqlite.json"
$B curve >"$WORK/curve.json"; merge curve "$WORK/curve.json"
CORES=$(nproc)
python3 - "$WORK/crypto.json" "$CORES" >"$WORK/ceiling.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); cores = int(sys.argv[2])
per = 2 * c["sign_us"] + 2 * c["verify_us"]
print(json.dumps({"cores": cores, "us_per_settlement_crypto": round(per, 1),
                  "crypto_ceiling_per_s": round(cores * 1e6 / per)}))
PY
merge ceiling "$WORK/ceiling.json"
say "   Ed25519 sign $(json_get "$WORK/crypto.json" '["sign_per_s"]')/s, verify $(json_get "$WORK/crypto.json" '["verify_per_s"]')/s (one core);" \
    "SQLite FULL $(json_get "$WORK/sqlite.json" '["sqlite_full_rows_per_s_batch100"]') rows/s at batch 100;" \
    "fdatasync p50 $(json_get "$WORK/sqlite.json" '["fsync_us"]["p50"]') us, p99 $(json_get "$WORK/sqlite.json" '["fsync_us"]["p99"]') us;" \
    "CURVE $(json_get "$WORK/curve.json" '["curve_msgs_per_s"]') msgs/s;" \
    "crypto ceiling $(json_get "$WORK/ceiling.json" '["crypto_ceiling_per_s"]') settlements/s on $CORES cores"

bench_ledger() {
  say "== ledger: group commit and audit"
  $B ledger "$WORK" >"$WORK/ledger.json"
  merge ledger "$WORK/ledger.json"
  $B audit "$WORK" 50000 2>/dev/null | tail -1 >"$WORK/audit.json"
  merge audit "$WORK/audit.json"
  python3 - "$WORK/ledger.json" "$WORK/audit.json" "$WORK/crypto.json" "$CORES" <<'PY' >&2
import json, sys
l, a, c = (json.load(open(sys.argv[i])) for i in (1, 2, 3))
cores = int(sys.argv[4])
print("   group   bookings/s   raw rows/s   ratio")
for g in ("1", "100", "1000"):
    print(f"   {g:>5} {l['bookings_per_s'][g]:>12,} {l['raw_per_s'][g]:>12,}   {l['bookings_per_s'][g]/l['raw_per_s'][g]:.2f}")
target = c["verify_per_s"] * cores
print(f"   audit {a['audit_entries_per_s']:,} entries/s = {a['audit_entries_per_s']/target:.2f} of verify rate x {cores} cores ({target:,}/s)")
PY
}

start_node() { # start_node HOME LOG -> pid in LAST_PID
  "$C" run --home "$1" 2>"$2" &
  LAST_PID=$!; PIDS+=("$LAST_PID")
  for _ in $(seq 1 100); do "$C" status --home "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  say "node in $1 did not start: $(tail -3 "$2")"; exit 1
}
# in_flight A B: 0 when every message each queued to the other was applied there (O(1),
# unlike counting a million rows); else how many are still to apply. Parsed in bash: a Python
# start per poll would take CPU from the nodes being measured.
seq_of() { # seq_of STATUS_JSON KEY -> the first peer's KEY
  if [[ $1 =~ \"$2\":\ *([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else
    say "bench.sh: no $2 in the node's status"; kill -TERM $$; fi
}
in_flight() {
  local a b ab ba
  a=$("$C" status --home "$1" --json); b=$("$C" status --home "$2" --json)
  ab=$(($(seq_of "$a" sent_seq) - $(seq_of "$b" received_seq)))
  ba=$(($(seq_of "$b" sent_seq) - $(seq_of "$a" received_seq)))
  echo $(((ab > 0 ? ab : 0) + (ba > 0 ? ba : 0)))
}
wait_up() { # wait_up HOME: until its channel to the other node is up (at most 10 s)
  for _ in $(seq 1 100); do
    [[ $("$C" status --home "$1" --json) =~ \"state\":\ *\"up\" ]] && return 0; sleep 0.1
  done
  say "the channel from $1 did not come up"; exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

bench_node() {
  say "== node: $SETTLEMENTS settlements A -> B, $CLIENTS clients$([ "$RATE" != 0 ] && echo ", open loop at $RATE/s")"
  local pa pb a=$WORK/A b=$WORK/B
  pa=$(free_port); pb=$(free_port "$pa")
  "$C" init --home "$a" --name BKRURUMM --listen "tcp://127.0.0.1:$pa" --currencies RUB >"$WORK/a.card"
  "$C" init --home "$b" --name BMJIIRTH --listen "tcp://127.0.0.1:$pb" --currencies RUB >"$WORK/b.card"
  "$C" peer add --home "$a" "$(cat "$WORK/b.card")" --limit RUB=1000000000000 >/dev/null
  "$C" peer add --home "$b" "$(cat "$WORK/a.card")" --limit RUB=1000000000000 >/dev/null
  start_node "$a" "$WORK/a.log"; local pid_a=$LAST_PID
  start_node "$b" "$WORK/b.log"; local pid_b=$LAST_PID
  wait_up "$a"; wait_up "$b" # steady state: the connection handshakes are not the load's
  python3 - "$WORK" "$SETTLEMENTS" "$CLIENTS" <<'PY'
import sys, uuid
work, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = [open(f"{work}/batch{i}.csv", "w") for i in range(k)]
for f in files: f.write("to,amount,currency,uetr\n")
for i in range(n): files[i % k].write(f"BMJIIRTH,1.00,RUB,{uuid.uuid4()}\n")
PY
  local cpu_a0 cpu_b0 t0 t1
  cpu_a0=$(cpu_ticks $pid_a); cpu_b0=$(cpu_ticks $pid_b)
  t0=$(date +%s.%N)
  local clients=()
  for i in $(seq 0 $((CLIENTS - 1))); do
    if [ "$RATE" = 0 ]; then
      "$C" send --home "$a" --batch "$WORK/batch$i.csv" >/dev/null 2>"$WORK/client$i.err" &
    else # open loop: each client sends its share at RATE/CLIENTS per second, paced
      "$C" send --home "$a" --batch "$WORK/batch$i.csv" --rate $((RATE / CLIENTS)) >/dev/null 2>"$WORK/client$i.err" &
    fi
    clients+=($!)
  done
  # No status polls while the clients submit: starting a `corridor status` takes CPU from the
  # nodes and showed as a latency spike at every poll. Then poll until nothing is in flight.
  local p alive=1 waited=0
  while [ "$alive" = 1 ]; do
    alive=0
    for c in "${clients[@]}"; do kill -0 "$c" 2>/dev/null && alive=1; done
    if [ -t 2 ]; then printf '\r   submitting: %s s      ' "$waited" >&2; fi
    [ "$alive" = 1 ] && sleep 1 && waited=$((waited + 1))
  done
  while p=$(in_flight "$a" "$b") && [ "$p" != 0 ]; do
    if [ -t 2 ]; then printf '\r   messages in flight: %s      ' "$p" >&2; fi
    sleep 0.5
  done
  for c in "${clients[@]}"; do wait "$c" || { say "a load client failed: $(cat "$WORK"/client*.err 2>/dev/null | head -3)"; exit 1; }; done
  t1=$(date +%s.%N)
  local cpu_a1 cpu_b1 rss_a rss_b
  cpu_a1=$(cpu_ticks $pid_a); cpu_b1=$(cpu_ticks $pid_b)
  rss_a=$(rss_kib $pid_a); rss_b=$(rss_kib $pid_b)
  kill -TERM $pid_a $pid_b; wait $pid_a $pid_b 2>/dev/null || true; PIDS=()
  python3 - "$a/ledger.db" "$b/ledger.db" "$SETTLEMENTS" "$t0" "$t1" "$cpu_a0" "$cpu_a1" "$cpu_b0" "$cpu_b1" \
    "$rss_a" "$rss_b" "$(getconf CLK_TCK)" "$WORK/ceiling.json" "$WORK" >"$WORK/node.json" <<'PY'
import json, sqlite3, sys
a_db, b_db, n, t0, t1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
cpu_a = (int(sys.argv[7]) - int(sys.argv[6])) / int(sys.argv[12])
cpu_b = (int(sys.argv[9]) - int(sys.argv[8])) / int(sys.argv[12])
rss_a, rss_b = int(sys.argv[10]), int(sys.argv[11])
ceiling = json.load(open(sys.argv[13]))["crypto_ceiling_per_s"]
work = sys.argv[14]
db = sqlite3.connect(f"file:{a_db}?mode=ro", uri=True)
rows = db.execute("SELECT s.created_ms, j.created_ms FROM settlements s JOIN journal j"
                  " ON j.settlement_id = s.id AND j.kind IN (2, 3)").fetchall()
lat = sorted(max(0, done - sub) * 1000 for sub, done in rows)   # microseconds (ms resolution)
def pct(p): return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None
first = min(sub for sub, _ in rows); last = max(done for _, done in rows)
throughput = len(rows) / max(0.001, (last - first) / 1000)
with open(f"{work}/latency.dat", "w") as f:
    for v in lat: f.write(f"{v/1000:.3f}\n")
with open(f"{work}/throughput.dat", "w") as f:
    per_s = {}
    for _, done in rows: per_s[(done - first) // 1000] = per_s.get((done - first) // 1000, 0) + 1
    for s in sorted(per_s): f.write(f"{s} {per_s[s]}\n")
size = sum(__import__("os").path.getsize(p) for p in (a_db,) if __import__("os").path.exists(p))
print(json.dumps({
    "settlements": n, "final_on_both_sides": len(rows),
    "throughput_per_s": round(throughput), "wall_s": round(t1 - t0, 2),
    "crypto_ceiling_per_s": ceiling, "ratio": round(throughput / ceiling, 3),
    "latency_us": {"p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999)},
    "cpu_us_per_settlement": {"A": round(cpu_a * 1e6 / n), "B": round(cpu_b * 1e6 / n)},
    "rss_kib_max": max(rss_a, rss_b), "rss_kib": {"A": rss_a, "B": rss_b},
    "ledger_bytes_per_settlement": round(size / n)}))
PY
  merge node "$WORK/node.json"
  python3 - "$WORK/node.json" <<'PY' >&2
import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_us"]
print(f"   throughput {d['throughput_per_s']:,}/s final on both sides = {d['ratio']:.2f} of the crypto ceiling ({d['crypto_ceiling_per_s']:,}/s)")
print(f"   latency p50 {l['p50']/1000:.1f} ms  p99 {l['p99']/1000:.1f} ms  p99.9 {l['p999']/1000:.1f} ms (submission to final, ms resolution)")
print(f"   CPU per settlement: A {d['cpu_us_per_settlement']['A']} us, B {d['cpu_us_per_settlement']['B']} us; peak RSS {d['rss_kib_max']:,} KiB; ledger {d['ledger_bytes_per_settlement']} bytes/settlement")
PY
  if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<EOF 2>/dev/null || say "   (gnuplot failed; no charts)"
set terminal png size 900,500
set output "$PWD/bench-latency.png"
set title "Corridor: latency from submission to final status ($SETTLEMENTS settlements)"
set xlabel "latency (ms)"; set ylabel "settlements"
binwidth = 2; bin(x) = binwidth * floor(x / binwidth)
plot "$WORK/latency.dat" using (bin(\$1)):(1.0) smooth freq with boxes title ""
set output "$PWD/bench-throughput.png"
set title "Corridor: settlements final on both sides, per second"
set xlabel "seconds"; set ylabel "settlements/s"
plot "$WORK/throughput.dat" using 1:2 with lines title ""
EOF
    say "   charts: bench-latency.png, bench-throughput.png"
  fi
}

bench_reconcile() {
  say "== reconcile: two ledgers of $ENTRIES channel entries"
  local pa pb a=$WORK/RA b=$WORK/RB
  pa=$(free_port); pb=$(free_port "$pa")
  $B build "$a" "$b" "$ENTRIES" 10 "tcp://127.0.0.1:$pa" "tcp://127.0.0.1:$pb" >"$WORK/build.json"
  start_node "$a" "$WORK/ra.log"; local pid_a=$LAST_PID
  start_node "$b" "$WORK/rb.log"; local pid_b=$LAST_PID
  local t0 t1 t2 t3
  t0=$(date +%s.%N)
  "$C" reconcile --home "$a" --peer BMJIIRTH --json >"$WORK/r10.json" || true
  t1=$(date +%s.%N)
  "$C" reconcile --home "$a" --peer BMJIIRTH --repair --json >/dev/null || true
  t2=$(date +%s.%N)
  "$C" reconcile --home "$a" --peer BMJIIRTH --json >"$WORK/r0.json" || true
  t3=$(date +%s.%N)
  kill -TERM $pid_a $pid_b; wait $pid_a $pid_b 2>/dev/null || true; PIDS=()
  python3 - "$WORK/r10.json" "$WORK/r0.json" "$t0" "$t1" "$t2" "$t3" "$ENTRIES" >"$WORK/recon.json" <<'PY'
import json, sys
r10, r0 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
t0, t1, t2, t3 = map(float, sys.argv[3:7])
print(json.dumps({"entries": int(sys.argv[7]),
    "differences_10": {"seconds": round(t1 - t0, 3), "breaks": len(r10["breaks"]),
                       "bytes": r10["bytes_sent"] + r10["bytes_received"], "rounds": r10["rounds"]},
    "identical": {"seconds": round(t3 - t2, 3), "breaks": len(r0["breaks"]),
                  "bytes": r0["bytes_sent"] + r0["bytes_received"]}}))
PY
  merge reconcile "$WORK/recon.json"
  python3 - "$WORK/recon.json" <<'PY' >&2
import json, sys
d = json.load(open(sys.argv[1]))
x, y = d["differences_10"], d["identical"]
print(f"   10 differences in {d['entries']:,}: {x['seconds']} s, {x['bytes']:,} bytes, {x['rounds']} rounds, {x['breaks']} breaks found")
print(f"   identical: {y['seconds']} s, {y['bytes']:,} bytes")
PY
}

case "$WHAT" in
  ledger) bench_ledger ;;
  node) bench_node ;;
  reconcile) bench_reconcile ;;
  all) bench_ledger; bench_node; bench_reconcile ;;
esac
python3 - "$WORK/results.json" "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
flat = dict(r)
if "node" in r:   # the fields the contract names, at the top level
    for k in ("throughput_per_s", "crypto_ceiling_per_s", "ratio", "latency_us", "rss_kib_max"):
        flat[k] = r["node"][k]
json.dump(flat, open(sys.argv[2], "w"), indent=2)
PY
say "results: $OUT"

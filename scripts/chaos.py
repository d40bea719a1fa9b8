#!/usr/bin/env python3
"""Chaos run: three nodes on loopback with faults injected on every message they send (drop,
duplicate, reorder, delay), a load generator sending settlements in all six directions (some
deliberately over the caps), and a killer that SIGKILLs a random node every 1-3 s and starts
it again. Then it waits for quiescence and checks that nothing was lost or applied twice:
  - audit of the three homes (I1-I5, and I2 between every pair) is clean;
  - reconcile between every pair finds no breaks (I6);
  - every settlement submitted has exactly one final outcome, the same on both sides, and
    the over-cap ones are rejected AM02;
  - returns (pacs.004, issue 19): while the kills go on, the payees of about one settled
    payment in 60 return parts of it (`corridor return --amount`, one to three parts, never
    all of it), again while the command fails (a node down or restarting, the payment not
    settled yet); at the end every return is held once by each side, both sides agree on it
    (amount, original, status), each is accepted, and per payment the accepted returns stay
    within it and are its returned_minor at both sides; the audit is clean on them too.
  - FX trades (PvP, issue 20): while the kills go on, about one trade per 150 settlements,
    roubles against rials (`corridor fx`, again 1 s later while the command fails). Some
    acceptors have a band for the proposer (fx_band.RUB_IRR = 440..460): trades inside it
    are accepted, outside refused AG01; the others are held for review and their operator
    accepts them (`corridor review accept --id FX_ID`, from `ledger --json` fx_trades held).
    At the end every trade is held by both sides (ledger --json fx_trades) in the same final
    state with the same two legs, each leg once per side (never one without the other), and
    each trade the command answered for ended as its band says.
  - settlement cycles (issue 21): while the kills go on, every 1-2 s an operator closes a
    cycle with a peer (`corridor cycle close --peer P`), a third of the time both ends of the
    channel at once (concurrent proposals); for every closed cycle the net debtor runs `cycle
    settle` and the creditor `review accept --id` (from `cycle list --json`), again while the
    commands fail. Quiescence waits for no cycle closing, no net settlement pending or held
    and every closed cycle settled. At the end `cycle list --json` of both ends of each
    channel: the same cycles, all closed or settled (none disputed), the same cut, figures
    mirrored (paid/received swapped, nets opposite), both signatures true at both ends, and
    each net settlement with the same id, amount and status.
  - multilateral set-offs (issue 22): while the kills go on, every 1.5-3 s a node proposes a
    set-off round the three, a third of the time two nodes at once over the same debts
    (overlapping proposals), one in ten an asking round (no amount), deadline 15 s. Before
    each, every node pays the next KZT 1,000,000 (a debt round the ring, in a currency nothing
    else moves and whose cycle nets the operators leave to set-offs). Quiescence waits for no set-off voting and no leg pending. At the end `setoff list
    --json` of the three: no set-off committed at one node and aborted at another, every leg
    final in the state of its set-off's decision, the two records of each edge alike, and a
    committed set-off holding both legs settled at each node (one owed, one owing: its KZT net
    over its peers is unchanged).
The same --seed gives the same fault and kill schedule.

  scripts/chaos.sh [--settlements N] [--seconds S] [--seed K] [--rate R] [--hosts]
--rate paces the load (settlements/s, default 300) so that kills land in the middle of it.
Exits non-zero on any violation; prints a summary.
--hosts: each node in its own network namespace (veth pairs on a bridge in a namespace of its
own, addresses from 198.18.0.0/15 that exist only there), with tc netem loss, delay and
reordering on every link, and timed link cuts that partition one node and heal again.
Needs root and `ip netns`; where the machine does not allow it, says so and skips.
The program is $CORRIDOR, else build/corridor. On a failure the homes and logs are kept
(schedule.log there lists each kill and cut as planned).
"""
import argparse
import collections
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corridor_harness as h  # noqa: E402

NODES = ["BKRURUMM", "BMJIIRTH", "KZKZKZKA"]
SETOFF_CCY = "KZT"  # set-offs only: no load, no trade, and its cycle nets are never settled
PAIRS = [("BKRURUMM", "BMJIIRTH"), ("BKRURUMM", "KZKZKZKA"), ("BMJIIRTH", "KZKZKZKA")]
# The fault injector of node i (0, 1, 2) for --seed K: seed K*10+i, the same at every start.
FAULTS = "drop=0.05,dup=0.05,reorder=0.05,delay_ms=20,seed={}"
# (acceptor, proposer): the acceptor decides the proposer's RUB/IRR trades by a band; for the
# other three directions it holds them for review
FX_BANDED = {("BKRURUMM", "BMJIIRTH"), ("BMJIIRTH", "BKRURUMM"), ("KZKZKZKA", "BKRURUMM")}
FX_BAND = "440..460"  # IRR per RUB
NETEM = ["loss", "2%", "delay", "5ms", "2ms", "reorder", "10%", "50%"]
NETEM_TEXT = "netem loss 2% delay 5+-2 ms reorder 10%"


def faults_of(seed, i):
    return FAULTS.format(seed * 10 + i)


def kill_schedule(seed):
    """The killer's plan for --seed SEED, one (pause in s, index of the node to kill) a kill:
    a pause of 1.0-3.9 s, then SIGKILL and a start again 0.3 s later."""
    rng = random.Random(f"chaos kills {seed}")
    while True:
        pause = 1 + rng.randrange(3) + rng.randrange(10) / 10
        yield pause, rng.randrange(3)


def cut_schedule(seed):
    """--hosts: the link cutter's plan, one (pause in s, index of the host) a cut: after a
    pause of 3-6 s that host's link goes down for 2 s and heals."""
    rng = random.Random(f"chaos cuts {seed}")
    while True:
        pause = 3 + rng.randrange(4)
        yield pause, rng.randrange(3)


def write_plan(work, n, seed):
    """N settlements over the six directions; about 1 in 50 over the cap (rejected AM02).
    plan.tsv has one line a settlement; load-NODE-K.csv the batches of 250 each node sends."""
    rng = random.Random(seed)
    chunks = {}
    with open(f"{work}/plan.tsv", "w") as plan:
        for _ in range(n):
            a, b = rng.sample(NODES, 2)
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


def return_plan(work, seed):
    """About one settled payment in 60 to return in parts (one to three, 10-30% each: never
    all of it): [(n, payee, payer, uetr, minor)], n the payment's place in the order the load
    sends them (by payer, then as planned: the order of the load files)."""
    rng = random.Random(f"chaos returns {seed}")
    rows, order = [], []
    with open(f"{work}/plan.tsv") as plan:
        for line in plan:
            u, a, b, ccy, minor, want = line.split()
            order.append((a, len(order)))
            if want != "settled" or rng.random() >= 1 / 60:
                continue
            for _ in range(rng.randint(1, 3)):
                rows.append(((a, len(order) - 1), b, a, u, int(minor) * rng.randint(10, 30) // 100))
    place = {key: n for n, key in enumerate(sorted(order))}
    return sorted((place[r[0]], *r[1:]) for r in rows)


def fx_plan(settlements, seed):
    """About one trade per 150 settlements (6 at least): [(due in settlements sent, proposer,
    acceptor, pay (ccy, minor), receive (ccy, minor), wanted status, reason)]. Inside or
    outside the acceptor's band when it has one (440..460 IRR per RUB), else held for review
    (then accepted) at a rate near it."""
    rng = random.Random(f"chaos fx {seed}")
    count = max(6, settlements // 150)
    rows = []
    for k in range(count):
        a, b = rng.sample(NODES, 2)
        banded = (b, a) in FX_BANDED
        inside = not banded or rng.random() < 0.6
        rate = rng.uniform(445, 455) if inside else rng.choice([rng.uniform(300, 420),
                                                                  rng.uniform(480, 600)])
        rub = rng.randint(100000, 10000000)       # 1 000.00 to 100 000.00 RUB
        irr = int(rub * rate)                     # both in hundredths
        legs = [("RUB", rub), ("IRR", irr)]
        if rng.random() < 0.5:
            legs.reverse()
        want = ("settled", None) if inside else ("rejected", "AG01")
        rows.append(((k + 1) * settlements // (count + 1), a, b, legs[0], legs[1], *want))
    return rows


def amount_text(minor):
    return f"{minor // 100}.{minor % 100:02d}"


def check_fx(books, made):
    """Returns (errors, trades, accepted): every trade at both sides, the same final state and
    legs, each leg once per side, and each trade the command answered for as its band says."""
    errors = []
    held = {}  # (node, fx_id) -> trade
    for n in NODES:
        for t in books[n].get("fx_trades", []):
            key = (n, t["fx_id"])
            if key in held:
                errors.append(f"{n} holds trade {t['fx_id']} twice")
            held[key] = t
        legs = {}
        for s in books[n]["settlements"]:
            if s.get("fx_id"):
                legs.setdefault(s["fx_id"], []).append(s)
        for fx_id, ls in legs.items():
            if len(ls) != 2 or (n, fx_id) not in held:
                errors.append(f"{n} holds {len(ls)} legs of trade {fx_id}"
                              f"{'' if (n, fx_id) in held else ', not listed as a trade'}")
            elif len({s["status"] for s in ls}) != 1:
                errors.append(f"{n}: the legs of {fx_id} differ: {[s['status'] for s in ls]}")
        for (m, fx_id) in held:
            if m == n and fx_id not in legs:
                errors.append(f"{n} lists trade {fx_id} without legs")
    for (n, fx_id), t in held.items():
        o = held.get((t["peer"], fx_id))
        if o is None:
            errors.append(f"trade {fx_id}: held by {n}, not by {t['peer']}")
            continue
        if o["peer"] != n or o["proposed_by"] == t["proposed_by"] or o["pay"] != t["receive"] \
                or o["receive"] != t["pay"] or (o["status"], o["reason"]) != (t["status"], t["reason"]):
            errors.append(f"trade {fx_id}: {n} says {t}, {t['peer']} says {o}")
        elif t["status"] not in ("settled", "rejected"):
            errors.append(f"trade {fx_id} between {n} and {t['peer']} is {t['status']}")
    for fx_id, (a, b, want, reason) in made.items():
        t = held.get((a, fx_id))
        if t is None or held.get((b, fx_id)) is None:
            errors.append(f"trade {fx_id} of {a} to {b} was made but is not held by both")
        elif (t["status"], t["reason"]) != (want, reason):
            errors.append(f"trade {fx_id} of {a} to {b}: {t['status']} {t['reason']}, "
                          f"wanted {want} {reason}")
    accepted = sum(1 for t in held.values() if t["status"] == "settled") // 2
    return errors, len(held) // 2, accepted


def check_returns(work, books, made):
    """Returns (errors, returns, accepted): every return once at each side, both sides
    agreeing, accepted, within its payment and its returned_minor."""
    errors = []
    plan = {}
    with open(f"{work}/plan.tsv") as f:
        for line in f:
            u, a, b, ccy, minor, want = line.split()
            plan[u] = (a, b, int(minor))
    held = {}  # (node, peer, id) -> return
    for n in NODES:
        for r in books[n].get("returns", []):
            key = (n, r["peer"], r["return_id"])
            if key in held:
                errors.append(f"{n} holds return {r['return_id']} with {r['peer']} twice")
            held[key] = r
    accepted = {}  # (returner, uetr) -> sum accepted, at the returner and at the payer
    for (n, peer, rid), r in held.items():
        o = held.get((peer, n, rid))
        fields = ("amount_minor", "currency", "original_uetr", "status", "reason",
                  "return_reason")
        if o is None:
            errors.append(f"return {rid}: held by {n}, not by {peer}")
            continue
        if o["direction"] == r["direction"] or any(o[f] != r[f] for f in fields):
            errors.append(f"return {rid}: {n} says {r}, {peer} says {o}")
            continue
        if r["status"] != "settled":
            errors.append(f"return {rid} of {r['original_uetr']}: {r['status']} {r['reason']}")
        returner = n if r["direction"] == "out" else peer
        payer = peer if r["direction"] == "out" else n
        if plan.get(r["original_uetr"], ("", "", 0))[:2] != (payer, returner):
            errors.append(f"return {rid}: {r['original_uetr']} is no payment of {payer} to "
                          f"{returner}")
        if r["status"] == "settled":
            k = (n, r["original_uetr"])
            accepted[k] = accepted.get(k, 0) + int(r["amount_minor"])
    for n in NODES:
        for s in books[n]["settlements"]:
            got = accepted.get((n, s["uetr"]), 0)
            if int(s.get("returned_minor", 0)) != got or got > int(s["amount_minor"]):
                errors.append(f"{s['uetr']} at {n}: {got} accepted in returns of "
                              f"{s['amount_minor']}, returned_minor {s.get('returned_minor', 0)}")
    ids = {rid for (_, _, rid) in held}
    for rid in made:
        if rid not in ids:
            errors.append(f"return {rid} was made but no side holds it")
    accepted_count = sum(1 for r in held.values() if r["status"] == "settled") // 2
    return errors, len(held) // 2, accepted_count


def check_outcomes(work, made, fx_made, outside):
    """Exactly one final outcome per settlement, the same on both sides; the returns; the
    audit clean. `outside`: UETRs of payments made outside the plan (the set-off debts).
    Returns (errors, settled, rejected, (returns, accepted))."""
    books = {}
    for n in NODES:
        with open(f"{work}/{n}.json") as f:
            books[n] = json.load(f)
    errors = []
    try:
        with open(f"{work}/audit.json") as f:
            audit = json.load(f)
    except (OSError, ValueError):
        audit = {"ok": False, "violations": ["audit printed no JSON (see its exit above)"]}
    ret_errors, returns, accepted = check_returns(work, books, made)
    errors += ret_errors
    fx_errors, trades, trades_accepted = check_fx(books, fx_made)
    errors += fx_errors
    if not audit.get("ok"):
        errors.append(f"audit: {audit.get('violations', [])[:3]}")
    index = {}
    for n, book in books.items():
        for s in book["settlements"]:
            # a trade's legs: check_fx; a set-off's legs and debts: check_setoffs
            if not s.get("fx_id") and not s.get("setoff_id") and s["uetr"] not in outside:
                index.setdefault((n, s["uetr"]), []).append(s)
    settled = rejected = planned = 0
    with open(f"{work}/plan.tsv") as plan:
        for line in plan:
            planned += 1
            u, a, b, ccy, minor, want = line.split()
            sa, sb = index.get((a, u), []), index.get((b, u), [])
            if len(sa) != 1 or len(sb) != 1:
                errors.append(f"{u}: {len(sa)} entries at {a}, {len(sb)} at {b} (want exactly one each)")
                continue
            sa, sb = sa[0], sb[0]
            if sa["status"] != sb["status"] or sa["status"] not in ("settled", "rejected",
                                                                      "returned"):
                errors.append(f"{u}: {a} says {sa['status']}, {b} says {sb['status']}")
            elif int(sa["amount_minor"]) != int(minor) or int(sb["amount_minor"]) != int(minor):
                errors.append(f"{u}: amounts differ from what was sent")
            elif want == "rejected" and (sa["status"] != "rejected" or sa["reason"] != "AM02"):
                errors.append(f"{u}: over the cap but {sa['status']} {sa['reason']}")
            settled += sa["status"] in ("settled", "returned")
            rejected += sa["status"] == "rejected"
    extra = sum(1 for _ in index) - 2 * planned
    if extra != 0:
        errors.append(f"{extra} entries that were never submitted")
    return errors, settled, rejected, (returns, accepted), (trades, trades_accepted)


class Chaos:
    def __init__(self, args, c, work):
        self.args, self.c, self.work = args, c, work
        self.home = {n: f"{work}/{n}" for n in NODES}
        self.port = {}
        self.procs = {}            # name -> Popen of its `corridor run`
        self.lock = threading.Lock()
        self.closing = False       # no node is started once the cleanup began
        self.stop = threading.Event()
        self.threads = []
        self.thread_errors = []
        self.kills = self.cuts = 0
        self.returns_made = []     # return ids the command answered with
        self.returns_unsure = 0    # commands that failed: maybe committed, the answer lost
        self.returns_given_up = 0
        self.returns_stop = threading.Event()
        self.fx_made = {}          # fx_id -> (proposer, acceptor, wanted status, reason)
        self.fx_unsure = self.fx_given_up = self.fx_reviews = 0
        self.fx_stop = threading.Event()
        self.review_stop = threading.Event()
        self.cycle_closes = self.cycle_settles = self.cycle_accepts = 0
        self.cycle_both = self.cycle_unsure = 0
        self.cycle_close_stop = threading.Event()  # no more closes (the load is done)
        self.cycle_stop = threading.Event()  # no more settles and accepts (quiescent)
        self.setoff_proposed = self.setoff_refused = self.setoff_both = self.setoff_unsure = 0
        self.setoff_stop = threading.Event()  # no more proposals (the load is done)
        self.ring_uetrs = set()  # the payments that make debts round the ring, outside the plan
        self.setoff_why = collections.Counter()  # why proposals were refused at once
        self.netem = True
        self.keep = False
        self.pid = os.getpid()
        self.ns_prefix = f"corridor-chaos-{self.pid}"
        self.namespaces = []
        self.progress = h.Progress()
        self.schedule_log = open(f"{work}/schedule.log", "w")
        self.start = time.monotonic()

    # --- hosts: three hosts on a bridge in a namespace of its own; nothing is routed out

    def ns(self, i):
        return f"{self.ns_prefix}-{i}"

    def veth(self, side, i):
        return f"cc{self.pid}{side}{i}"

    def ip(self, *args, check=True):
        r = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        if check and r.returncode != 0:
            raise h.Failed(f"ip {' '.join(args)}: {r.stderr.strip()}")
        return r.returncode

    def make_hosts(self):
        br = self.ns("b")
        self.namespaces.append(br)
        self.ip("netns", "add", br)
        self.ip("-n", br, "link", "add", "br0", "type", "bridge")
        self.ip("-n", br, "link", "set", "br0", "up")
        for i in range(3):
            self.namespaces.append(self.ns(i))
            self.ip("netns", "add", self.ns(i))
            self.ip("link", "add", self.veth("h", i), "netns", self.ns(i), "type", "veth",
                    "peer", "name", self.veth("b", i), "netns", br)
            self.ip("-n", br, "link", "set", self.veth("b", i), "master", "br0", "up")
            self.ip("-n", self.ns(i), "addr", "add", f"198.18.0.{i + 1}/24", "dev", self.veth("h", i))
            self.ip("-n", self.ns(i), "link", "set", self.veth("h", i), "up")
            self.ip("-n", self.ns(i), "link", "set", "lo", "up")
            # loss, delay with jitter and reordering on every host's link (when the kernel has netem)
            if h.run(["ip", "netns", "exec", self.ns(i), "tc", "qdisc", "add", "dev",
                      self.veth("h", i), "root", "netem", *NETEM],
                     timeout=30, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL) != 0:
                self.netem = False

    def link(self, i, state):
        self.ip("-n", self.ns(i), "link", "set", self.veth("h", i), state, check=False)

    def addr(self, n):
        return f"198.18.0.{NODES.index(n) + 1}" if self.args.hosts else "127.0.0.1"

    # --- nodes

    def add_band(self, x, y):
        """fx_band.RUB_IRR in [peer Y] of X's config (no command sets it: the operator edits it)."""
        path = f"{self.home[x]}/corridor.conf"
        with open(path) as f:
            lines = f.read().split("\n")
        at = lines.index(f"[peer {y}]") + 1
        while at < len(lines) and lines[at].strip() and not lines[at].startswith("["):
            at += 1
        lines.insert(at, f"fx_band.RUB_IRR = {FX_BAND}")
        with open(path, "w") as f:
            f.write("\n".join(lines))

    def node_start(self, n):
        """Runs node N with its faults (appending to N.log); False once the cleanup began."""
        i = NODES.index(n)
        cmd = [self.c, "run", "--home", self.home[n]]
        if self.args.hosts:
            cmd = ["ip", "netns", "exec", self.ns(i), *cmd]
        env = dict(os.environ, CORRIDOR_FAULTS=faults_of(self.args.seed, i))
        with self.lock:
            if self.closing:
                return False
            h.stop_process(self.procs.get(n))
            self.procs[n] = h.start_node(cmd, f"{self.work}/{n}.log", env=env, append=True)
            return True

    def node_kill(self, n):
        with self.lock:
            h.stop_process(self.procs.get(n))

    def node_wait(self, n):
        return h.wait_running(self.c, self.home[n])

    def elapsed(self):
        return time.monotonic() - self.start

    def fail(self, text):
        raise h.Failed(text)

    # --- the killer and the cutter: threads that stop when self.stop is set

    def note(self, text):
        with self.lock:
            self.schedule_log.write(f"{self.elapsed():8.1f} {text}\n")
            self.schedule_log.flush()

    def killer(self):
        try:
            for k, (pause, i) in enumerate(kill_schedule(self.args.seed)):
                if self.stop.wait(pause) or self.elapsed() > self.args.seconds:
                    return
                n = NODES[i]
                self.note(f"kill {k + 1}: {n} after {pause:.1f} s")
                self.node_kill(n)
                time.sleep(0.3)
                if not self.node_start(n):
                    return
                self.kills += 1
        except Exception as e:  # reported by the main thread
            self.thread_errors.append(f"the killer: {e!r}")

    def cutter(self):
        try:
            for k, (pause, i) in enumerate(cut_schedule(self.args.seed)):
                if self.stop.wait(pause) or self.elapsed() > self.args.seconds:
                    return
                self.note(f"cut {k + 1}: host {i} ({NODES[i]}) after {pause} s")
                self.link(i, "down")
                self.stop.wait(2)
                self.link(i, "up")
                self.cuts += 1
        except Exception as e:
            self.thread_errors.append(f"the link cutter: {e!r}")

    def returner(self, t0):
        """The payees' operators: each planned return once its payment was sent (the load's
        pace from t0) and 2 s later, again 1 s later while the command fails (at most 20
        times): the payment not settled yet, the node down or restarting (a failure after the
        commit makes a return whose answer was lost: later parts may then find too little
        left), or the peer not heard from since the node started."""
        try:
            todo = [(n / self.args.rate + 2, 0, payee, u, minor)
                    for n, payee, _payer, u, minor in return_plan(self.work, self.args.seed)]
            while todo and not self.returns_stop.is_set():
                todo.sort()
                due, tries, payee, u, minor = todo[0]
                if self.returns_stop.wait(max(0.0, due - (time.monotonic() - t0))):
                    return
                todo.pop(0)
                rc, doc = h.corridor_json(self.c, "return", "--home", self.home[payee], "--uetr",
                                          u, "--amount", f"{minor // 100}.{minor % 100:02d}",
                                          "--reason", "AC04", timeout=30)
                rid = doc.get("return_id") if rc == 0 and isinstance(doc, dict) else None
                if rid is not None:
                    self.returns_made.append(rid)
                    continue
                self.returns_unsure += rc not in (0, 2)
                if tries + 1 < 20:
                    todo.append((time.monotonic() - t0 + 1, tries + 1, payee, u, minor))
                else:
                    self.returns_given_up += 1
        except Exception as e:
            self.thread_errors.append(f"the returner: {e!r}")

    def trader(self, t0):
        """The proposers' operators: each planned trade once the load has sent its share of
        settlements, again 1 s later while the command fails (at most 20 times: the node down
        or restarting, the peer not heard from since it started; a failure after the commit
        leaves a trade whose id was lost: check_fx checks it as any other)."""
        try:
            todo = [(due / self.args.rate, 0, a, b, pay, receive, want, reason)
                    for due, a, b, pay, receive, want, reason in
                    fx_plan(self.args.settlements, self.args.seed)]
            while todo and not self.fx_stop.is_set():
                todo.sort()
                due, tries, a, b, pay, receive, want, reason = todo.pop(0)
                if self.fx_stop.wait(max(0.0, due - (time.monotonic() - t0))):
                    return
                rc, doc = h.corridor_json(self.c, "fx", "--home", self.home[a], "--peer", b,
                                          "--pay", f"{pay[0]}={amount_text(pay[1])}",
                                          "--receive", f"{receive[0]}={amount_text(receive[1])}",
                                          timeout=30)
                fx_id = doc.get("fx_id") if rc == 0 and isinstance(doc, dict) else None
                if fx_id is not None:
                    self.fx_made[fx_id] = (a, b, want, reason)
                    continue
                self.fx_unsure += rc not in (0, 2)
                if tries + 1 < 20:
                    todo.append((time.monotonic() - t0 + 1, tries + 1, a, b, pay, receive, want,
                                 reason))
                else:
                    self.fx_given_up += 1
        except Exception as e:
            self.thread_errors.append(f"the trader: {e!r}")

    def reviewer(self):
        """The acceptors' operators: every second `review list`, and for what it holds the
        trades ledger --json lists held, each accepted by its id (a node down, or the channel
        not up: the next round tries again)."""
        try:
            while not self.review_stop.wait(1):
                for n in NODES:
                    rc, doc = h.corridor_json(self.c, "review", "list", "--home", self.home[n],
                                              timeout=30)
                    if rc != 0 or not isinstance(doc, dict) or not doc.get("held"):
                        continue
                    rc, book = h.corridor_json(self.c, "ledger", "--home", self.home[n],
                                               timeout=120)
                    trades = book.get("fx_trades", []) if rc == 0 and isinstance(book, dict) else []
                    for t in trades:
                        if t.get("status") == "held":
                            rc, _ = h.corridor_json(self.c, "review", "accept", "--home",
                                                    self.home[n], "--id", t["fx_id"], timeout=30)
                            self.fx_reviews += rc == 0
        except Exception as e:
            self.thread_errors.append(f"the reviewer: {e!r}")

    def cycle_list(self, n):
        """`cycle list --json` of node n (its books, running or not): the cycles, or None."""
        rc, doc = h.corridor_json(self.c, "cycle", "list", "--home", self.home[n], timeout=60)
        cycles = doc.get("cycles") if rc == 0 and isinstance(doc, dict) else None
        return cycles if isinstance(cycles, list) else None

    def cycle_round(self):
        """The operators look at `cycle list`: a debtor settles each closed cycle it owes for
        (no net settlement, or the last one refused), a creditor accepts each held one."""
        for n in NODES:
            for cy in self.cycle_list(n) or []:
                if cy.get("state") != "closed":
                    continue
                for cur in cy.get("currencies", []):
                    if cur.get("currency") == SETOFF_CCY:
                        continue  # set-offs, not net settlements, take these debts down
                    ns = cur.get("net_settlement") or {}
                    if cur.get("net_minor", 0) < 0 and ns.get("status") in (None, "rejected"):
                        rc, _ = h.corridor_json(
                            self.c, "cycle", "settle", "--home", self.home[n], "--peer",
                            cy["peer"], "--cycle", str(cy["cycle"]), "--currency",
                            cur["currency"], "--reference", f"CHAOS {n} {cy['cycle']}",
                            timeout=30)
                        self.cycle_settles += rc == 0
                        self.cycle_unsure += rc not in (0, 1, 2)
                    elif ns.get("direction") == "in" and ns.get("status") == "held":
                        rc, _ = h.corridor_json(self.c, "review", "accept", "--home",
                                                self.home[n], "--id", ns["id"], timeout=30)
                        self.cycle_accepts += rc == 0

    def cycler(self):
        """Closes cycles while the load goes on (now and then both ends at once), and settles
        and confirms closed ones until quiescence."""
        rng = random.Random(f"chaos cycles {self.args.seed}")
        try:
            while not self.cycle_stop.wait(rng.uniform(1.0, 2.0)):
                if not self.cycle_close_stop.is_set():
                    x, y = rng.choice(PAIRS)
                    if rng.random() < 0.5:
                        x, y = y, x
                    both = rng.random() < 0.33
                    ends = [(x, y), (y, x)] if both else [(x, y)]
                    rcs = []

                    def close(a, b):
                        rc, _ = h.corridor_json(self.c, "cycle", "close", "--home", self.home[a],
                                                "--peer", b, timeout=30)
                        rcs.append(rc)
                    ts = [threading.Thread(target=close, args=e, daemon=True) for e in ends]
                    for t in ts:
                        t.start()
                    for t in ts:
                        t.join(timeout=60)
                    self.cycle_closes += sum(1 for rc in rcs if rc == 0)
                    self.cycle_both += both
                self.cycle_round()
        except Exception as e:
            self.thread_errors.append(f"the cycler: {e!r}")

    def setoff_list(self, n):
        """`setoff list --json` of node n (its books, running or not): the set-offs, or None."""
        rc, doc = h.corridor_json(self.c, "setoff", "list", "--home", self.home[n], timeout=60)
        s = doc.get("setoffs") if rc == 0 and isinstance(doc, dict) else None
        return s if isinstance(s, list) else None

    def setoffer(self):
        """Proposes set-offs round the three while the load goes on, now and then two at once."""
        rng = random.Random(f"chaos setoffs {self.args.seed}")
        try:
            first = True  # go() made the first debt round the ring
            while not self.setoff_stop.wait(rng.uniform(0.5, 1.5)):
                if not first:  # the cycler's net settlements take debts back to nothing
                    self.ring_debts(rng, 0)  # committed at the payer, settled in the background
                first = False
                k = rng.randrange(3)  # the ring as the debts run, from any of the three
                ring = NODES[k:] + NODES[:k]
                both = rng.random() < 0.33
                proposers = [ring[0], ring[1]] if both else [ring[0]]
                asking = rng.random() < 0.1
                rcs = []

                def propose(p):
                    args = ["setoff", "propose", "--home", self.home[p], "--ring", ",".join(ring),
                            "--currency", SETOFF_CCY, "--deadline", "15"]
                    if not asking:
                        args += ["--amount", f"{rng.randint(1, 40000)}.00"]
                    try:
                        r = subprocess.run([self.c, *args, "--json"], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                           timeout=30)
                        rc = r.returncode
                        if rc != 0:
                            why = r.stderr.decode(errors="replace")
                            code = re.findall(r"\b[A-Z]{2}[A-Z0-9]{2}\b", why)
                            with self.lock:
                                self.setoff_why[code[-1] if code else f"exit {rc}"] += 1
                                self.schedule_log.write(f"setoff propose at {p}: {why.strip()}\n")
                    except subprocess.TimeoutExpired:
                        rc = 124
                    rcs.append(rc)
                ts = [threading.Thread(target=propose, args=(p,), daemon=True) for p in proposers]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(timeout=60)
                self.setoff_proposed += sum(1 for rc in rcs if rc == 0)
                self.setoff_refused += sum(1 for rc in rcs if rc == 1)
                self.setoff_unsure += sum(1 for rc in rcs if rc not in (0, 1))
                self.setoff_both += both
        except Exception as e:
            self.thread_errors.append(f"the set-off proposer: {e!r}")

    def ring_debts(self, rng, wait):
        """A debt round the ring: each node pays the next KZT 1,000,000 (outside the plan),
        waiting `wait` seconds for each (0: not at all)."""
        for i, payer in enumerate(NODES):
            u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            self.ring_uetrs.add(u)
            h.run([self.c, "send", "--home", self.home[payer], "--to", NODES[(i + 1) % 3],
                   "--amount", "1000000", "--currency", SETOFF_CCY, "--uetr", u] +
                  (["--wait", str(wait)] if wait > 0 else []),
                  timeout=wait + 30, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)

    def setoffs_open(self):
        """What keeps the set-offs from quiescence: one voting, or a leg pending."""
        open_ = 0
        for n in NODES:
            setoffs = self.setoff_list(n)
            if setoffs is None:
                open_ += 1
                continue
            for s in setoffs:
                open_ += s.get("state") == "voting"
                open_ += sum(1 for leg in s.get("legs", []) if leg.get("status") == "pending")
        return open_

    def check_setoffs(self):
        """One decision per set-off everywhere, every leg final in it, each edge's two records
        alike; and the set-offs moved no node's KZT net over its peers."""
        errors, committed, aborted = [], set(), set()
        reasons = {}  # aborted set-off id -> its reason
        lists = {n: self.setoff_list(n) for n in NODES}
        legs = {}  # (set-off id, frozenset of the edge's two nodes) -> {node: status}
        for n, setoffs in lists.items():
            if setoffs is None:
                errors.append(f"setoff list --json of {n} failed")
                continue
            for s in setoffs:
                state = s.get("state")
                (committed if state == "committed" else aborted if state == "aborted"
                 else set()).add(s["id"])
                if state == "aborted":
                    reasons[s["id"]] = s.get("reason") or "?"
                want = {"committed": "settled", "aborted": "rejected"}.get(state)
                if state == "committed" and sorted(leg.get("direction") for leg in
                                                   s.get("legs", [])) != ["owed", "owing_us"]:
                    errors.append(f"set-off {s['id']} committed at {n} without one leg each way")
                for leg in s.get("legs", []):
                    if state == "asked" or leg.get("status") != want:
                        errors.append(f"set-off {s['id']} {state} at {n}: its leg with "
                                      f"{leg.get('peer')} is {leg.get('status')}")
                    legs.setdefault((s["id"], frozenset((n, leg.get("peer")))), {})[n] = \
                        leg.get("status")
        for sid in committed & aborted:
            errors.append(f"set-off {sid} is committed at one node and aborted at another")
        for (sid, edge), by_node in legs.items():
            if len(by_node) != 2 or len(set(by_node.values())) != 1:
                errors.append(f"set-off {sid}: the edge {sorted(edge)} holds {by_node}")
        why = collections.Counter(reasons.values())
        return errors, len(committed), ", ".join(f"{k} {v}" for k, v in sorted(why.items()))

    def spawn(self, target):
        t = threading.Thread(target=target, daemon=True)
        self.threads.append(t)
        t.start()

    def stop_threads(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        self.threads = []

    # --- the run

    def go(self):
        a = self.args
        c = self.c
        if a.hosts:
            self.make_hosts()
            if not self.netem:
                h.say("chaos.sh --hosts: this kernel has no tc netem (sch_netem); link loss, "
                      "delay and reordering come from the fault knob alone")
        for n in NODES:
            self.port[n] = h.free_port(*self.port.values())
            with open(f"{self.work}/{n}.card", "w") as card:
                if h.run([c, "init", "--home", self.home[n], "--name", n, "--listen",
                          f"tcp://{self.addr(n)}:{self.port[n]}", "--currencies", "RUB,USD,IRR,KZT"],
                         timeout=60, stdin=subprocess.DEVNULL, stdout=card) != 0:
                    self.fail(f"corridor init of {n} failed")
        for x in NODES:
            for y in NODES:
                if x == y:
                    continue
                with open(f"{self.work}/{y}.card") as f:
                    card = f.read().strip()
                if h.run([c, "peer", "add", "--home", self.home[x], card, "--limit", "RUB=100000000",
                          "--limit", "USD=10000000", "--limit", "IRR=100000000000",
                          "--limit", "KZT=1000000000"], timeout=60,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) != 0:
                    self.fail(f"corridor peer add {y} at {x} failed")
                if (x, y) in FX_BANDED:
                    self.add_band(x, y)

        for n in NODES:
            self.node_start(n)
        for n in NODES:
            if not self.node_wait(n):
                self.fail(f"{n} did not start: {h.tail(f'{self.work}/{n}.log')}")

        write_plan(self.work, a.settlements, a.seed)
        self.ring_debts(random.Random(f"chaos ring {a.seed}"), 30)  # before the first kill

        self.spawn(self.killer)
        if a.hosts:
            self.spawn(self.cutter)
        returner = threading.Thread(target=self.returner, args=(time.monotonic(),), daemon=True)
        returner.start()
        trader = threading.Thread(target=self.trader, args=(time.monotonic(),), daemon=True)
        trader.start()
        reviewer = threading.Thread(target=self.reviewer, daemon=True)
        reviewer.start()
        cycler = threading.Thread(target=self.cycler, daemon=True)
        cycler.start()
        setoffer = threading.Thread(target=self.setoffer, daemon=True)
        setoffer.start()

        # The load: each chunk is sent until its node takes it (sends are idempotent by UETR).
        sent = 0
        load_t0 = time.monotonic()
        with open(f"{self.work}/load.err", "ab") as load_err:
            for f in sorted(glob.glob(f"{self.work}/load-*.csv")):
                sender = os.path.basename(f).split("-")[1]
                for _ in range(200):
                    if h.run([c, "send", "--home", self.home[sender], "--batch", f], timeout=60,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=load_err) == 0:
                        break
                    time.sleep(0.2)
                    if self.elapsed() >= a.seconds:
                        self.fail(f"the load did not go through within {a.seconds} s")
                with open(f) as rows:
                    sent += sum(1 for _ in rows) - 1
                due = sent / a.rate
                time.sleep(max(0.0, due - (time.monotonic() - load_t0)))
                self.progress.show(f"submitted {sent} of {a.settlements}, kills {self.kills}")
                if self.thread_errors:
                    self.fail("; ".join(self.thread_errors))
        self.progress.done()
        returner.join(timeout=1)  # the last returns and trades, the kills still going on
        trader.join(timeout=1)
        self.returns_stop.set()
        self.fx_stop.set()
        self.cycle_close_stop.set()
        self.setoff_stop.set()
        setoffer.join(timeout=60)
        returner.join(timeout=60)
        trader.join(timeout=60)
        self.stop_threads()
        if self.thread_errors:
            self.fail("; ".join(self.thread_errors))
        if a.hosts:
            for i in range(3):
                self.link(i, "up")
        load_done = time.monotonic()

        # Every node up again (the killer may have left one starting), then quiescence.
        for n in NODES:
            if not self.node_wait(n):
                self.node_start(n)
                if not self.node_wait(n):
                    self.fail(f"{n} does not start again")
        while True:
            pending = 0
            for n in NODES:
                rc, book = h.corridor_json(c, "ledger", "--home", self.home[n], timeout=120)
                counts = book.get("counts") if rc == 0 and isinstance(book, dict) else None
                p = counts.get("pending") if isinstance(counts, dict) else None
                pending += p if isinstance(p, int) else 1
                rcounts = book.get("return_counts") if rc == 0 and isinstance(book, dict) else None
                p = rcounts.get("pending") if isinstance(rcounts, dict) else None
                pending += p if isinstance(p, int) else 1
                fcounts = book.get("fx_counts") if rc == 0 and isinstance(book, dict) else None
                for k in ("pending", "held"):  # held: the reviewer accepts them
                    p = fcounts.get(k) if isinstance(fcounts, dict) else None
                    pending += p if isinstance(p, int) else 1
            if pending == 0:
                pending = self.cycles_open()
            if pending == 0:
                pending = self.setoffs_open()
            if pending == 0:
                break
            if self.elapsed() >= a.seconds:
                self.fail(f"settlements still pending after {a.seconds} s")
            self.progress.show(f"waiting for quiescence: {pending} pending")
            time.sleep(0.5)
        self.progress.done()
        self.review_stop.set()
        reviewer.join(timeout=60)
        self.cycle_stop.set()
        cycler.join(timeout=120)
        if self.thread_errors:
            self.fail("; ".join(self.thread_errors))
        quiet = int(time.monotonic() - load_done)

        # Faults injected, from each node's status (counts since its last start).
        faults = 0
        for n in NODES:
            st = h.status(c, self.home[n])
            if st is None:
                self.fail(f"{n} gave no status")
            faults += sum(st.get("faults", {}).values())

        # I6: reconcile every pair (no breaks).
        breaks = 0
        with open(f"{self.work}/load.err", "ab") as load_err:
            for x, y in PAIRS:
                out = f"{self.work}/recon-{x}-{y}.json"
                with open(out, "wb") as f:
                    h.run([c, "reconcile", "--home", self.home[x], "--peer", y, "--json",
                           "--timeout", "120"], timeout=300, stdin=subprocess.DEVNULL,
                          stdout=f, stderr=load_err)
                try:
                    with open(out) as f:
                        breaks += len(json.load(f)["breaks"])
                except (OSError, ValueError, KeyError, TypeError):
                    breaks += 999

        for n in NODES:
            with self.lock:
                p = self.procs.pop(n)
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.procs[n] = p  # the cleanup kills it
                self.fail(f"{n} did not stop within 20 s of SIGTERM")
            with open(f"{self.work}/{n}.json", "wb") as f:
                if h.run([c, "ledger", "--home", self.home[n], "--json"], timeout=300,
                         stdin=subprocess.DEVNULL, stdout=f) != 0:
                    self.fail(f"ledger --json of {n} failed")

        # I1-I5 and I2: audit of the three homes, with the peers' keys from the cards printed at
        # init, not from the homes themselves.
        cmd = [c, "audit"]
        for n in NODES:
            cmd += ["--home", self.home[n]]
        for n in NODES:
            cmd += ["--peer-card", f"{self.work}/{n}.card"]
        with open(f"{self.work}/audit.json", "wb") as f:
            h.run(cmd + ["--json"], timeout=600, stdin=subprocess.DEVNULL, stdout=f)

        errors, settled, rejected, (returns, accepted), (trades, traded) = check_outcomes(
            self.work, self.returns_made, self.fx_made, self.ring_uetrs)
        cycle_errors, cycles, cycles_settled = self.check_cycles()
        errors += cycle_errors
        setoff_errors, setoffs_committed, setoffs_aborted = self.check_setoffs()
        setoffs_aborted = f"aborted: {setoffs_aborted}" if setoffs_aborted else "none aborted"
        errors += setoff_errors
        for e in errors[:10]:
            h.say("  " + e)
        if errors:
            self.fail(f"{len(errors)} wrong outcomes or audit findings" +
                      (f"; reconcile found {breaks} breaks" if breaks else ""))
        if breaks != 0:
            self.fail(f"reconcile found {breaks} breaks")

        hosts = ""
        if a.hosts:
            hosts = f"{self.cuts} link cuts, {NETEM_TEXT if self.netem else 'no netem'}, "
        print(f"chaos{' --hosts' if a.hosts else ''}: seed {a.seed}, {a.settlements} submitted, "
              f"{settled} settled, {rejected} rejected, {returns} returns ({accepted} accepted, "
              f"{len(self.returns_made)} answered, {self.returns_unsure} commands failed, "
              f"{self.returns_given_up} given up), {trades} FX trades ({traded} accepted, "
              f"{trades - traded} refused, {self.fx_reviews} reviewed, {len(self.fx_made)} "
              f"answered, {self.fx_unsure} commands failed, {self.fx_given_up} given up), "
              f"{cycles} cycles ({cycles_settled} settled, {self.cycle_closes} closes answered, "
              f"{self.cycle_both} rounds closing both ends, {self.cycle_settles} settles, "
              f"{self.cycle_accepts} accepted, {self.cycle_unsure} commands failed), "
              f"set-offs ({self.setoff_proposed} proposed, {self.setoff_refused} refused at once, "
              f"{self.setoff_both} rounds of two at once, {self.setoff_unsure} commands failed"
              f"{' (' + ', '.join(f'{k} {v}' for k, v in sorted(self.setoff_why.items())) + ')' if self.setoff_why else ''}; "
              f"{setoffs_committed} committed, {setoffs_aborted}), "
              f"{self.kills} kills, {hosts}{faults} faults "
              f"injected (since last starts), {breaks} breaks, quiescent {quiet} s after the "
              f"load, {int(self.elapsed())} s in all: nothing lost, nothing applied twice",
              flush=True)
        return 0

    def cycles_open(self):
        """What keeps the cycles from quiescence: a cycle closing, a net settlement pending or
        held, a closed cycle its debtor has not settled (the cycler does it)."""
        open_ = 0
        for n in NODES:
            cycles = self.cycle_list(n)
            if cycles is None:
                open_ += 1
                continue
            for cy in cycles:
                open_ += cy.get("state") == "closing"
                if cy.get("state") == "closed":
                    open_ += sum(1 for cur in cy.get("currencies", [])
                                 if cur.get("net_minor") and cur.get("currency") != SETOFF_CCY and
                                 (cur.get("net_settlement") or {}).get("status") != "settled")
        return open_

    def check_cycles(self):
        """Both ends of each channel hold the same cycles, closed or settled, at one cut, with
        figures mirrored, both signatures true, the same net settlements and statuses."""
        errors, count, settled = [], 0, 0
        lists = {n: self.cycle_list(n) for n in NODES}
        for n, cycles in lists.items():
            if cycles is None:
                errors.append(f"cycle list --json of {n} failed")
        if errors:
            return errors, 0, 0
        for a, b in PAIRS:
            ca = {cy["cycle"]: cy for cy in lists[a] if cy["peer"] == b}
            cb = {cy["cycle"]: cy for cy in lists[b] if cy["peer"] == a}
            if sorted(ca) != sorted(cb) or sorted(ca) != list(range(1, len(ca) + 1)):
                errors.append(f"{a} holds cycles {sorted(ca)} with {b}, {b} holds {sorted(cb)}")
                continue
            for k in sorted(ca):
                x, y = ca[k], cb[k]
                count += 1
                settled += x["state"] == "settled"
                if x["state"] not in ("closed", "settled") or x["state"] != y["state"]:
                    errors.append(f"cycle {k} of {a}-{b}: {x['state']} at {a}, {y['state']} at {b}")
                if (x["own_sent"], x["peer_sent"]) != (y["peer_sent"], y["own_sent"]) or \
                        x["proposed_by"] == y["proposed_by"] or \
                        x["entry_count"] != y["entry_count"]:
                    errors.append(f"cycle {k} of {a}-{b}: cut, proposer or entries differ")
                for side, cy in ((a, x), (b, y)):
                    sig = cy.get("signatures", {})
                    if sig.get("own") is not True or sig.get("peer") is not True:
                        errors.append(f"cycle {k} of {a}-{b} at {side}: signatures {sig}")
                xa = {c["currency"]: c for c in x["currencies"]}
                yb = {c["currency"]: c for c in y["currencies"]}
                if sorted(xa) != sorted(yb):
                    errors.append(f"cycle {k} of {a}-{b}: currencies {sorted(xa)} vs {sorted(yb)}")
                    continue
                for ccy, u in xa.items():
                    v = yb[ccy]
                    if (u["paid_minor"], u["received_minor"], u["net_minor"], u["count"]) != \
                            (v["received_minor"], v["paid_minor"], -v["net_minor"], v["count"]):
                        errors.append(f"cycle {k} of {a}-{b} in {ccy}: {a} {u}, {b} {v}")
                    nu, nv = u.get("net_settlement"), v.get("net_settlement")
                    if u["net_minor"] == 0 or ccy == SETOFF_CCY:
                        continue  # (the set-off currency's nets are left to set-offs)
                    if not nu or not nv or nu["id"] != nv["id"] or \
                            nu["status"] != nv["status"] or \
                            nu["amount_minor"] != nv["amount_minor"] or \
                            nu["amount_minor"] != abs(u["net_minor"]) or \
                            nu["direction"] == nv["direction"]:
                        errors.append(f"cycle {k} of {a}-{b} in {ccy}: net settlement {nu} "
                                      f"at {a}, {nv} at {b}")
        return errors, count, settled

    def cleanup(self):
        h.ignore_signals()
        self.progress.done()
        self.stop.set()
        self.fx_stop.set()
        self.review_stop.set()
        self.cycle_close_stop.set()
        self.cycle_stop.set()
        with self.lock:
            self.closing = True
        self.stop_threads()
        with self.lock:
            for p in self.procs.values():
                h.stop_process(p)
            self.procs = {}
        for n in reversed(self.namespaces):
            self.ip("netns", "del", n, check=False)
        self.schedule_log.close()
        if self.keep or os.environ.get("CHAOS_KEEP"):
            h.say(f"(homes and logs kept in {self.work})")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def hosts_allowed(prefix):
    """Root, `ip` and `tc`, and a network namespace can be made (the probe is removed)."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        return False
    probe = f"{prefix}-probe"
    try:
        return h.run(["ip", "netns", "add", probe], timeout=30, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL) == 0
    finally:
        h.run(["ip", "netns", "del", probe], timeout=30, stdout=subprocess.DEVNULL,
              stderr=subprocess.DEVNULL)


def positive(kind):
    def parse(text):
        v = kind(text)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
        return v
    return parse


def main():
    p = argparse.ArgumentParser(prog="chaos.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage=argparse.SUPPRESS)
    p.add_argument("--settlements", type=positive(int), default=5000)
    p.add_argument("--seconds", type=positive(int), default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=positive(float), default=300)
    p.add_argument("--hosts", action="store_true")
    args = p.parse_args()

    h.catch_signals()
    if args.hosts and not hosts_allowed(f"corridor-chaos-{os.getpid()}"):
        h.say("chaos.sh --hosts: this machine does not allow network namespaces (root, ip, tc); skipped")
        return 0
    c = os.environ.get("CORRIDOR") or f"{h.ROOT}/build/corridor"
    if not (os.path.isfile(c) and os.access(c, os.X_OK)):
        h.say(f"chaos.sh: {c} not built (run scripts/test.sh or cmake first)")
        return 2
    run = Chaos(args, c, tempfile.mkdtemp(prefix="corridor-chaos.", dir="/tmp"))
    try:
        return run.go()
    except h.Failed as e:
        run.keep = True
        run.progress.done()
        h.say(f"CHAOS FAILED: {e}")
        return 1
    except KeyboardInterrupt:
        run.progress.done()
        h.say("chaos.sh: interrupted; stopping the nodes")
        return 130
    except h.Stopped as e:
        run.progress.done()
        h.say(f"chaos.sh: signal {e.signum}; stopping the nodes")
        return 128 + e.signum
    finally:
        run.cleanup()


if __name__ == "__main__":
    sys.exit(main())

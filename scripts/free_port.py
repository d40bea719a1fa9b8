#!/usr/bin/env python3
"""Prints a loopback TCP port P such that P and P+1 are both free: a node listens on P and
takes its stream on P+1 (`corridor init`'s default). Ports given as arguments are taken,
with the one after each. Exit 1 if none is found in 400 tries.

usage: scripts/free_port.py [TAKEN_PORT]...
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corridor_harness  # noqa: E402  (the one implementation, shared with chaos.py and bench.py)

try:
    print(corridor_harness.free_port(*sys.argv[1:]))
except corridor_harness.Failed as e:
    print(f"free_port.py: {e}", file=sys.stderr)
    sys.exit(1)

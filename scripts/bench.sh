#!/usr/bin/env bash
# Benchmarks beside the machine's same-run ceilings: scripts/bench.py, which --help describes.
#   scripts/bench.sh [node|ledger|reconcile|all] [--settlements N] [--clients K] [--rate R]
#                    [--entries N]
exec python3 "$(dirname "$0")/bench.py" "$@"

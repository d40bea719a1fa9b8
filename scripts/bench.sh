#!/usr/bin/env bash
# Benchmarks beside the machine's same-run ceilings: scripts/bench.py, which --help describes.
#   scripts/bench.sh [node|ledger|reconcile|cycles|setoff|all] [--settlements N] [--clients K]
#                    [--rate R] [--entries N] [--cycle-settlements N] [--cycle-payments M]
#                    [--cycle-rate R] [--setoffs K]
exec python3 "$(dirname "$0")/bench.py" "$@"

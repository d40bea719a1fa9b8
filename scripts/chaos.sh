#!/usr/bin/env bash
# Chaos run (three nodes, faults on every message, random SIGKILLs; --hosts: network
# namespaces and link cuts): scripts/chaos.py, which --help describes.
#   scripts/chaos.sh [--settlements N] [--seconds S] [--seed K] [--rate R] [--hosts]
exec python3 "$(dirname "$0")/chaos.py" "$@"

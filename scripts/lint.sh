#!/usr/bin/env bash
# Style checks, the first step of scripts/test.sh (scripts/deps.sh installs both tools):
#   - clang-format (Debian 12's, version 14) with the checked-in .clang-format over every C
#     source and header in node/, include/ and tests/ (protoc-c's output is generated into the
#     build directory and never checked);
#   - shellcheck over scripts/*.sh, tests/*.sh and .ci/run.
# Reports every finding of both, then exits 1 if there was any. Fix a C file with
# `clang-format -i FILE`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in clang-format shellcheck; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "lint.sh: $tool not found (scripts/deps.sh installs it)" >&2
    exit 1
  fi
done

status=0
mapfile -t sources < <(find node include tests -type f -name '*.[ch]' ! -name '*.pb-c.[ch]' | sort)
if ! clang-format --dry-run --Werror "${sources[@]}"; then
  echo "lint.sh: files above are not formatted as .clang-format says (clang-format -i FILE)" >&2
  status=1
fi
if ! shellcheck scripts/*.sh tests/*.sh .ci/run; then
  echo "lint.sh: shellcheck found the problems above" >&2
  status=1
fi
if [ "$status" -eq 0 ]; then echo "lint.sh: ${#sources[@]} C files formatted, shell scripts clean"; fi
exit "$status"

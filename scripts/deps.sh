#!/usr/bin/env bash
# Installs exactly the Debian 12 packages Corridor needs to build, test, fuzz and benchmark.
# Idempotent: when everything is present it prints nothing and exits 0. When something is
# missing it runs `apt-get update` first (a fresh machine has no package lists), then installs.
set -euo pipefail

packages=(
  build-essential cmake pkg-config       # compiler and build system
  libsodium-dev                          # Ed25519, X25519, BLAKE2b, secure memory
  libzmq3-dev                            # transport: ZeroMQ with CURVE and ZAP
  libprotobuf-c-dev protobuf-c-compiler  # wire format, generated at build time
  libsqlite3-dev                         # the ledger store
  libcmocka-dev                          # unit and integration tests
  libinih-dev                            # config file parsing
  libjansson-dev                         # JSON output
  clang libclang-rt-14-dev               # libFuzzer harnesses and sanitizer runtimes
  python3                                # the contract check's bookkeeping, bench figures
  gnuplot-nox                            # bench charts (PNG)
  clang-format shellcheck                # scripts/lint.sh: C formatting, shell script checks
  groff-base                             # the manual page checked after `cmake --install`
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages (${missing[*]}); run as root or install them with apt-get" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

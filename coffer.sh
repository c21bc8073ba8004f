#!/usr/bin/env bash
# Entry point for a fresh machine: installs the few system packages the build needs (m4, to
# build GMP for CGGMP's big-integer arithmetic), then runs the demo or the tests.
#   ./coffer.sh demo   keygen, sign and verify for all three schemes (offline ceremony)
#   ./coffer.sh test   the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

ensure_packages() {
  local need=()
  command -v m4 >/dev/null || need+=(m4)
  command -v cc >/dev/null || need+=(gcc)
  command -v make >/dev/null || need+=(make)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing system packages: ${need[*]}" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
  fi
  command -v cargo >/dev/null || { echo "error: cargo is required (https://rustup.rs)" >&2; exit 1; }
}

case "${1:-}" in
  demo) shift; ensure_packages; exec cargo run --release --locked -q -p coffer-cli -- demo "$@" ;;
  test) shift; ensure_packages; exec cargo test --workspace --locked "$@" ;;
  *) echo "usage: ./coffer.sh demo|test" >&2; exit 2 ;;
esac

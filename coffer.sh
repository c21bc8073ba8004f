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

# The chains' own software the chain tests submit transactions to (a local Ethereum node and
# the Solana runtime, from the npm registry; pinned in tools/chain-nodes/package-lock.json).
# Without Node.js those tests say plainly that they did not run.
ensure_chain_nodes() {
  if [ -x tools/chain-nodes/node_modules/.bin/anvil ] && [ -d tools/chain-nodes/node_modules/litesvm ]; then
    return
  fi
  if command -v npm >/dev/null; then
    echo "installing the chain test nodes (anvil, litesvm) from the npm registry" >&2
    npm install --prefix tools/chain-nodes --no-audit --no-fund --loglevel=error >&2
  else
    echo "note: npm not found: the Ethereum node and Solana runtime tests will not run" >&2
  fi
}

case "${1:-}" in
  demo) shift; ensure_packages; exec cargo run --release --locked -q -p coffer-cli -- demo "$@" ;;
  test) shift; ensure_packages; ensure_chain_nodes; exec cargo test --workspace --locked "$@" ;;
  *) echo "usage: ./coffer.sh demo|test" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Runs the whole test suite: macro UI tests, manifest tests, the host end to end against real
# guests (built once for wasm32-wasip2 by the tests themselves), the templates built against the
# SDK as `cargo package` makes it, and — when a Spin CLI is found (SPIN_BIN, else `spin` on
# PATH) — the real-Spin suite (host/tests/real_spin.rs); then the benchmark in its quick mode,
# which checks that every figure is produced and judges none. `--quick`: unit tests and the
# recorded Spin contract only, for the inner loop.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

spin_note() {
  if [ -n "${SPIN_BIN:-}" ]; then
    echo "real-Spin suite: runs with SPIN_BIN=$SPIN_BIN" >&2
  elif command -v spin >/dev/null 2>&1; then
    echo "real-Spin suite: runs with $(command -v spin) (from PATH)" >&2
  else
    echo "real-Spin suite: NOT RUN — no Spin CLI found (set SPIN_BIN, or put spin on PATH)" >&2
  fi
}

if [ "${1:-}" = "--quick" ]; then
  shift
  # The inner loop: every crate's unit tests and the recorded Spin contract; no process
  # suites, no templates, no benchmark.
  cargo test --workspace --lib --bins "$@"
  cargo test -p spin-trigger-host --test contract "$@"
  exit 0
fi

spin_note
cargo test --workspace "$@"
# The benchmark with small counts (dev build): every figure must be produced; none is judged.
cargo test --workspace --bench bench -- --quick
spin_note

#!/usr/bin/env bash
# Builds the timer-hello example's components and runs them under the host until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# Built by the very build the test command makes (every workspace member, dev-dependencies
# included, so the same features), so the two commands share one build of the host and
# wasmtime instead of each compiling its own.
cargo test --workspace --no-run --quiet
exec target/debug/spin-trigger-host up --build -f examples/timer-hello/spin.toml "$@"

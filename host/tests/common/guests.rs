//! The guest components the tests run: this workspace's guests and those built with Spin's own
//! SDK, each built once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{SPIN_SDK_TARGET, workspace_root};

/// The guest crates the tests run: every workspace member with crate-type "cdylib", which
/// scripts/build-guests.sh builds (tests/build_guests.rs checks that each was built).
pub const GUESTS: &[&str] = &[
    "redis-echo",
    "redis-json-guest",
    "redis-message-guest",
    "probe-guest",
    "noop-guest",
    "describe-guest",
    "redis-print-guest",
    "redis-message-0-1-guest",
    "redis-message-0-2-guest",
    "stream-batch-0-3-guest",
    "stream-record-guest",
    "stream-batch-guest",
    "timer-hello-greeter",
    "timer-hello-counter",
    "timer-hello-raw-bindgen",
    "http-timer-guest",
    "http-forward-guest",
    "http-get-guest",
    "state-timer-guest",
    "kv-touch-guest",
    "tick-recorder-guest",
    "timer-0-1-guest",
    "timer-0-2-guest",
    "hostile-guest",
    "otel-span-guest",
];

/// Set by scripts/test.sh once scripts/build-guests.sh has built every guest, so that the test
/// processes after it (one per test, under cargo-nextest) do not each run cargo again.
const GUESTS_BUILT: &str = "SPIN_TRIGGER_TEST_GUESTS_BUILT";

/// Builds every guest (this workspace's and those written with Spin's SDK, with
/// scripts/build-guests.sh) once per test process, unless scripts/test.sh has built them
/// already; cargo makes a later build a no-op.
fn build_guests() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os(GUESTS_BUILT).is_some_and(|value| value == "1") {
            return;
        }
        let status = Command::new("bash")
            .arg(workspace_root().join("scripts/build-guests.sh"))
            .arg("--quiet")
            .status()
            .expect("running scripts/build-guests.sh");
        assert!(
            status.success(),
            "building the test guests failed; is the wasm32-wasip2 target installed? (scripts/test.sh installs it)"
        );
    });
}

/// The directory holding this workspace's guests' `.wasm` files, built.
pub fn guests_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    build_guests();
    DIR.get_or_init(|| workspace_root().join("target/wasm32-wasip2/release"))
}

/// The path of a guest written with Spin's own SDK (`tests/spin-sdk-guests`, built into
/// [`SPIN_SDK_TARGET`]), by crate name.
pub fn spin_sdk_guest(crate_name: &str) -> String {
    build_guests();
    workspace_root()
        .join(SPIN_SDK_TARGET)
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
        .display()
        .to_string()
}

/// The path of a built guest, by crate name.
pub fn guest(crate_name: &str) -> String {
    guests_dir()
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
        .display()
        .to_string()
}

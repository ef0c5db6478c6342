//! The guest components the tests run: this workspace's guests and those built with Spin's own
//! SDK, each built once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{SPIN_SDK_TARGET, workspace_root};

/// The guest crates the tests run, built for wasm32-wasip2 in one cargo invocation.
pub const GUESTS: &[&str] = &[
    "redis-echo",
    "redis-json-guest",
    "redis-message-guest",
    "probe-guest",
    "noop-guest",
    "describe-guest",
    "redis-print-guest",
    "redis-message-0-1-guest",
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
    "hostile-guest",
];

/// Set by scripts/test.sh once `tests/build_guests.rs` has built every guest, so that the test
/// processes after it (one per test, under cargo-nextest) do not each run cargo again.
const GUESTS_BUILT: &str = "SPIN_TRIGGER_TEST_GUESTS_BUILT";

fn built_already() -> bool {
    std::env::var_os(GUESTS_BUILT).is_some_and(|value| value == "1")
}

/// Builds every test guest once per test process (cargo makes later builds no-ops) and returns
/// the directory holding the `.wasm` files.
pub fn guests_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        if built_already() {
            return root.join("target/wasm32-wasip2/release");
        }
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(&root)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"]);
        for guest in GUESTS {
            command.args(["-p", guest]);
        }
        let status = command.status().expect("running cargo to build the test guests");
        assert!(
            status.success(),
            "building the test guests failed; is the wasm32-wasip2 target installed? (scripts/test.sh installs it)"
        );
        root.join("target/wasm32-wasip2/release")
    })
}

/// Builds the guests written with Spin's own SDK (`tests/spin-sdk-guests`, a workspace of its
/// own) once per test process, into [`SPIN_SDK_TARGET`], and returns the path of one by crate
/// name.
pub fn spin_sdk_guest(crate_name: &str) -> String {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let root = workspace_root();
        if built_already() {
            return root.join(SPIN_SDK_TARGET).join("wasm32-wasip2/release");
        }
        let status = Command::new(env!("CARGO"))
            .current_dir(root.join("tests/spin-sdk-guests"))
            .args([
                "build",
                "--locked",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--quiet",
            ])
            .arg("--target-dir")
            .arg(root.join(SPIN_SDK_TARGET))
            .status()
            .expect("running cargo to build the spin-sdk guests");
        assert!(status.success(), "building the spin-sdk guests failed");
        root.join(SPIN_SDK_TARGET).join("wasm32-wasip2/release")
    });
    dir.join(format!("{}.wasm", crate_name.replace('-', "_")))
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

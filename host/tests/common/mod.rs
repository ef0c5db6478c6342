//! Helpers shared by the host's integration tests: guests built once, apps written to temp
//! dirs, and the host binary run as a user runs it.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The guest crates the tests run, built for wasm32-wasip2 in one cargo invocation.
const GUESTS: &[&str] = &[
    "probe-guest",
    "noop-guest",
    "timer-hello-greeter",
    "timer-hello-counter",
    "timer-hello-raw-bindgen",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host crate sits in the workspace")
        .to_path_buf()
}

/// Builds every test guest once per test process (cargo makes later builds no-ops) and returns
/// the directory holding the `.wasm` files.
pub fn guests_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
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

/// The path of a built guest, by crate name.
pub fn guest(crate_name: &str) -> String {
    guests_dir()
        .join(format!("{}.wasm", crate_name.replace('-', "_")))
        .display()
        .to_string()
}

/// A temp dir holding `spin.toml` with `manifest` as its text.
pub fn write_app(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    std::fs::write(dir.path().join("spin.toml"), manifest).expect("writing spin.toml");
    dir
}

/// The compiled-component cache the tests share, so each guest is compiled once per run.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

fn host_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spin-trigger-host"));
    command
        .args(args)
        .arg("--cache-dir")
        .arg(cache_dir())
        .env("RUST_LOG", "spin_trigger_host=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// What a host run printed.
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs the host to completion (for `--once` and start-up errors).
pub fn run_host(args: &[&str]) -> Run {
    run_host_with_env(args, &[])
}

/// Runs the host to completion with extra environment variables.
pub fn run_host_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    host_command(args)
        .envs(env.iter().copied())
        .output()
        .expect("running spin-trigger-host")
        .into()
}

/// Runs the host for `window`, then stops it with SIGTERM as a service manager would.
pub fn run_host_for(args: &[&str], window: Duration) -> Run {
    let child = host_command(args)
        .spawn()
        .expect("starting spin-trigger-host");
    std::thread::sleep(window);
    let pid = child.id() as libc::pid_t;
    // SAFETY: sending a signal to the child this test started and still owns.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    child
        .wait_with_output()
        .expect("waiting for spin-trigger-host")
        .into()
}

/// One line the probe guest prints per tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTick {
    pub sequence: u64,
    pub scheduled_ms: u64,
    pub fired_ms: u64,
}

/// Parses `[<component>] tick seq=.. scheduled=.. fired=..` lines of one component.
pub fn probe_ticks(stdout: &str, component: &str) -> Vec<ProbeTick> {
    let prefix = format!("[{component}] tick ");
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|fields| {
            let value = |key: &str| -> u64 {
                fields
                    .split(' ')
                    .find_map(|field| field.strip_prefix(key))
                    .and_then(|value| value.parse().ok())
                    .unwrap_or_else(|| panic!("no {key} in probe line {fields:?}"))
            };
            ProbeTick {
                sequence: value("seq="),
                scheduled_ms: value("scheduled="),
                fired_ms: value("fired="),
            }
        })
        .collect()
}

//! The host binary run as a user runs it: to completion, for a window, or in the background,
//! its output read as it comes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

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

pub fn host_command(args: &[&str]) -> Command {
    host_command_of(Path::new(env!("CARGO_BIN_EXE_spin-trigger-host")), args)
}

/// [`host_command`] for another host executable (a released one, say).
pub fn host_command_of(binary: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        // Not the source tree: a plugin launched with an empty SPIN_LOCAL_APP_DIR, as `spin up`
        // launches it, keeps its state (`.spin/logs`) in its working directory.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .args(args)
        .arg("--cache-dir")
        .arg(cache_dir())
        .env("RUST_LOG", "spin_trigger_host=info")
        .env("NO_COLOR", "1")
        // Set in a developer's shell, it would move `up --build` output away from `source`.
        .env_remove("CARGO_TARGET_DIR")
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

impl Run {
    /// Fails the test, showing all the host printed, unless its stderr has `needle`.
    #[track_caller]
    pub fn assert_stderr_has(&self, needle: &str) {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}; it was:\n{}",
            self.stderr
        );
    }

    /// Fails the test, showing all the host printed, if its stderr has `needle`.
    #[track_caller]
    pub fn assert_stderr_lacks(&self, needle: &str) {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}; it was:\n{}",
            self.stderr
        );
    }

    /// Fails the test, showing what the host printed, unless its stdout has `needle`.
    #[track_caller]
    pub fn assert_stdout_has(&self, needle: &str) {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}; it was:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// Fails the test, showing what the host printed, if its stdout has `needle`.
    #[track_caller]
    pub fn assert_stdout_lacks(&self, needle: &str) {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}; it was:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
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

/// Runs the host to completion in `dir` as its working directory.
pub fn run_host_in(dir: &Path, args: &[&str]) -> Run {
    host_command(args)
        .current_dir(dir)
        .output()
        .expect("running spin-trigger-host")
        .into()
}

/// The line the host logs once every component is compiled and its triggers start.
const READY: &str = "running; Ctrl-C to stop";

/// Runs the host for `window` after it reports it is running (so compiling components on a busy
/// machine does not eat the window), then stops it with SIGTERM as a service manager would.
pub fn run_host_for(args: &[&str], window: Duration) -> Run {
    run_for(host_command(args), window)
}

/// [`run_host_for`] for any command that runs the host (such as the binary under another name).
pub fn run_for(mut command: Command, window: Duration) -> Run {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting spin-trigger-host");
    let stdout = drain(child.stdout.take().expect("piped stdout"), None);
    let (ready_sender, ready) = std::sync::mpsc::channel();
    let stderr = drain(
        child.stderr.take().expect("piped stderr"),
        Some(ready_sender),
    );
    // A host that fails at start-up exits instead; its output explains why.
    let _ = ready.recv_timeout(Duration::from_secs(120));
    std::thread::sleep(window);
    // SAFETY: sending a signal to the child this test started and still owns.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("waiting for spin-trigger-host");
    Run {
        success: status.success(),
        stdout: stdout.join().expect("reading stdout"),
        stderr: stderr.join().expect("reading stderr"),
    }
}

/// Reads a stream to its end on a thread, signalling `ready` when the host's ready line passes.
pub fn drain(
    stream: impl std::io::Read + Send + 'static,
    ready: Option<std::sync::mpsc::Sender<()>>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stream)) {
            let Ok(line) = line else { break };
            if line.contains(READY)
                && let Some(ready) = &ready
            {
                let _ = ready.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    })
}

/// `spin-trigger-host ctl --admin-addr <address> <args>` with `token` as
/// `SPIN_TRIGGER_ADMIN_TOKEN`, run to completion.
pub fn run_ctl(address: &str, token: &str, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_spin-trigger-host"))
        .args(["ctl", "--admin-addr", address])
        .args(args)
        .env("SPIN_TRIGGER_ADMIN_TOKEN", token)
        .env_remove("SPIN_TRIGGER_ADMIN_TOKEN_FILE")
        .output()
        .expect("running spin-trigger-host ctl");
    Run {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Waits (up to 30 s) until something accepts connections on loopback `port`.
pub fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line the probe guest prints per tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTick {
    pub sequence: u64,
    pub scheduled_ms: u64,
    pub fired_ms: u64,
    /// Which attempt at the tick, from 1.
    pub attempt: u64,
    /// Run late, by `catch_up`.
    pub late: bool,
}

/// Parses `[<component>] tick seq=.. scheduled=.. fired=.. attempt=.. late=..` lines of one
/// component.
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
                attempt: value("attempt="),
                late: fields.split(' ').any(|field| field == "late=true"),
            }
        })
        .collect()
}

/// A host started in the background, stopped with SIGTERM. Its output is read as it comes,
/// so a host that logs a lot never blocks on a full pipe.
pub struct HostProcess {
    child: Option<Child>,
    /// Its stdout so far, as the host writes it.
    live_stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    ready: std::sync::mpsc::Receiver<()>,
}

impl HostProcess {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = host_command(args);
        command.envs(env.iter().copied());
        HostProcess::spawn(command)
    }

    /// Starts `command` (from [`host_command`] or [`host_command_of`]), its output read as it
    /// comes.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("starting spin-trigger-host");
        let (ready_sender, ready) = std::sync::mpsc::channel();
        let live_stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let shared = live_stdout.clone();
        let stdout = std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                let mut text = shared
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
            shared
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        });
        HostProcess {
            live_stdout,
            stdout: Some(stdout),
            stderr: Some(drain(
                child.stderr.take().expect("piped stderr"),
                Some(ready_sender),
            )),
            child: Some(child),
            ready,
        }
    }

    /// Waits (up to two minutes) until the host logs that its triggers run.
    pub fn wait_until_ready(&self) {
        self.ready
            .recv_timeout(Duration::from_secs(120))
            .expect("the host did not start within two minutes");
    }

    /// How many lines of the host's stdout so far contain `needle`.
    pub fn stdout_lines_with(&self, needle: &str) -> usize {
        self.live_stdout
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits (up to `limit`) until `count` lines of the host's stdout contain `needle`; returns
    /// whether they did.
    pub fn wait_for_stdout_lines(&self, needle: &str, count: usize, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while self.stdout_lines_with(needle) < count {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The host's resident memory now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// Its address space, in KiB (`VmSize`): reserved, not necessarily resident.
    pub fn vm_size_kib(&self) -> u64 {
        self.proc_status_kib("VmSize:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("reading the host's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// Stops the host as a service manager would and returns what it printed.
    pub fn stop(self) -> Run {
        self.signal_and_wait(libc::SIGTERM)
    }

    /// Kills the host with SIGKILL, as a crash would, and returns what it printed.
    pub fn kill(self) -> Run {
        self.signal_and_wait(libc::SIGKILL)
    }

    fn signal_and_wait(mut self, signal: libc::c_int) -> Run {
        let mut child = self.child.take().expect("stopped once");
        // SAFETY: signalling the child this test started and still owns.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let status = child.wait().expect("waiting for spin-trigger-host");
        let output = |handle: Option<std::thread::JoinHandle<String>>| {
            handle
                .map(|handle| handle.join().expect("reading the host's output"))
                .unwrap_or_default()
        };
        Run {
            success: status.success(),
            stdout: output(self.stdout.take()),
            stderr: output(self.stderr.take()),
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The long flags in the launch metadata a plugin printed on stderr for
/// `--launch-metadata-only` (`{"all_flags": [{"long": "--test"}, ...]}`).
pub fn launch_metadata_long_flags(stderr: &[u8]) -> Vec<String> {
    let metadata: serde_json::Value = serde_json::from_slice(stderr).expect("JSON on stderr");
    metadata["all_flags"]
        .as_array()
        .expect("`all_flags` is a list")
        .iter()
        .filter_map(|flag| Some(flag["long"].as_str()?.to_owned()))
        .collect()
}

//! Helpers shared by the host's integration tests: guests built once, apps written to temp
//! dirs, and the host binary run as a user runs it.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The guest crates the tests run, built for wasm32-wasip2 in one cargo invocation.
const GUESTS: &[&str] = &[
    "redis-echo",
    "redis-json-guest",
    "redis-message-guest",
    "probe-guest",
    "noop-guest",
    "describe-guest",
    "redis-print-guest",
    "redis-message-0-1-guest",
    "stream-record-guest",
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

/// Builds the guests written with Spin's own SDK (`tests/spin-sdk-guests`, a workspace of its
/// own) once per test process, into [`SPIN_SDK_TARGET`], and returns the path of one by crate
/// name.
pub fn spin_sdk_guest(crate_name: &str) -> String {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let root = workspace_root();
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

/// The SDK crates as `cargo package` makes them — what `cargo publish` would upload and a user's
/// build would download — unpacked, once per test process. Returns the directory holding
/// `spin-trigger-sdk-<version>/` and `spin-trigger-sdk-macro-<version>/`.
///
/// The directory is named after the packages' content, so test processes running at once share
/// it without racing and a changed SDK gets a fresh one.
pub fn packaged_sdk() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let package_target = root.join("target/sdk-package");
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["package", "--quiet", "--no-verify", "--allow-dirty"])
            .args(["-p", "spin-trigger-sdk-macro", "-p", "spin-trigger-sdk"])
            .arg("--target-dir")
            .arg(&package_target)
            .status()
            .expect("running cargo package");
        assert!(status.success(), "cargo package of the SDK crates failed");
        let version = env!("CARGO_PKG_VERSION");
        let crates: Vec<PathBuf> = ["spin-trigger-sdk-macro", "spin-trigger-sdk"]
            .iter()
            .map(|name| package_target.join(format!("package/{name}-{version}.crate")))
            .collect();
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        for file in &crates {
            let bytes = std::fs::read(file)
                .unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
            std::hash::Hash::hash(&bytes, &mut digest);
        }
        let unpacked = package_target.join(format!(
            "unpacked-{:016x}",
            std::hash::Hasher::finish(&digest)
        ));
        if !unpacked.exists() {
            let staging = package_target.join(format!("unpacking-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging).expect("creating the unpack directory");
            for file in &crates {
                let status = Command::new("tar")
                    .arg("-xzf")
                    .arg(file)
                    .arg("-C")
                    .arg(&staging)
                    .status()
                    .expect("running tar");
                assert!(status.success(), "unpacking {}", file.display());
            }
            // Another test process may have won the race; its copy is identical.
            if std::fs::rename(&staging, &unpacked).is_err() {
                let _ = std::fs::remove_dir_all(&staging);
            }
        }
        unpacked
    })
}

/// Points a generated project's SDK dependency (by version, as a user's is) at the packaged
/// crates, and shares its `target` (see [`share_target_dir`]).
pub fn use_packaged_sdk(project: &Path) {
    let cargo_toml = project.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&cargo_toml).expect("the project has a Cargo.toml");
    assert!(
        text.contains(&format!("spin-trigger-sdk = \"{}\"", sdk_requirement())),
        "depends on the SDK by version: {text}"
    );
    let packages = packaged_sdk();
    let version = env!("CARGO_PKG_VERSION");
    text.push_str(&format!(
        "\n[patch.crates-io]\n\
         spin-trigger-sdk = {{ path = \"{}\" }}\n\
         spin-trigger-sdk-macro = {{ path = \"{}\" }}\n",
        packages
            .join(format!("spin-trigger-sdk-{version}"))
            .display(),
        packages
            .join(format!("spin-trigger-sdk-macro-{version}"))
            .display(),
    ));
    std::fs::write(&cargo_toml, text).expect("writing Cargo.toml");
    share_target_dir(project, GENERATED_PROJECTS_TARGET);
}

/// Where projects generated from our templates build.
pub const GENERATED_PROJECTS_TARGET: &str = "target/generated-projects";
/// Where guests built with Spin's own SDK build: the spin-sdk test guests and projects from
/// Spin's templates, which share spin-sdk's compiled dependencies.
pub const SPIN_SDK_TARGET: &str = "target/spin-sdk";

/// Points a generated project's `target` at `shared` (relative to the workspace), a directory
/// several projects share so their common dependencies are compiled once; the project's
/// manifest's `source` still finds its `.wasm`.
pub fn share_target_dir(project: &Path, shared: &str) {
    let shared = workspace_root().join(shared);
    std::fs::create_dir_all(&shared).expect("creating the shared target directory");
    std::os::unix::fs::symlink(&shared, project.join("target")).expect("linking target/");
}

/// The version requirement a generated project puts on the SDK: the workspace version's
/// `major.minor`, so any compatible release satisfies it.
pub fn sdk_requirement() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    let (Some(major), Some(minor)) = (parts.next(), parts.next()) else {
        panic!("the workspace version {version} is not major.minor.patch");
    };
    format!("{major}.{minor}")
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

pub fn host_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spin-trigger-host"));
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
        let mut child = host_command(args)
            .envs(env.iter().copied())
            .spawn()
            .expect("starting spin-trigger-host");
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

/// A `redis-server` this test started on a free loopback port, stopped by its PID.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// Extra `redis-server` arguments, kept for [`RedisServer::restart`].
    extra_args: Vec<String>,
    /// The default user's password, when the server requires one; the test's own clients
    /// use it.
    password: Option<String>,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("finding a free port")
            .port();
        Self::start_on(port)
    }

    /// Starts a server on `port`, waiting until it accepts connections.
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, &["--save", "", "--appendonly", "no"])
    }

    /// Starts a server that writes every change to an append-only file in `dir` before it
    /// replies, so a restart (even after SIGKILL) loses nothing.
    pub fn start_persistent(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("finding a free port")
            .port();
        let dir = dir.display().to_string();
        Self::start_with(
            port,
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                &dir,
            ],
        )
    }

    /// Starts a server on a free port with `extra_args` besides the defaults (no persistence).
    pub fn start_with_args(extra_args: &[&str]) -> Self {
        let mut args = vec!["--save", "", "--appendonly", "no"];
        args.extend_from_slice(extra_args);
        Self::start_with(free_port(), &args)
    }

    /// Starts a server that requires `password` of the default user and also has the ACL user
    /// `alice` with password `alice_password`.
    pub fn start_with_auth(password: &str, alice_password: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("finding a free port")
            .port();
        let alice = format!(">{alice_password}");
        Self::start_with_password(
            port,
            &[
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
                "--user",
                "alice",
                "on",
                &alice,
                "~*",
                "&*",
                "+@all",
            ],
            Some(password.to_owned()),
        )
    }

    /// Kills the server (SIGKILL) and starts it again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        *self = Self::start_with_password(self.port, &args, self.password.clone());
    }

    fn start_with(port: u16, extra_args: &[&str]) -> Self {
        Self::start_with_password(port, extra_args, None)
    }

    fn start_with_password(port: u16, extra_args: &[&str], password: Option<String>) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server (scripts/test.sh installs it)");
        let server = RedisServer {
            child: Some(child),
            port,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
            password,
        };
        for _ in 0..200 {
            if let Ok(mut connection) = server.client().get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server on port {port} did not start");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client for the test itself, with the server's password when it has one.
    pub fn client(&self) -> redis::Client {
        let url = match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        redis::Client::open(url).expect("a valid URL")
    }

    /// Kills the server (SIGKILL, by PID), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Publishes `payload` on `channel`.
    pub fn publish(&self, channel: &str, payload: impl redis::ToRedisArgs) {
        let mut connection = self
            .client()
            .get_connection()
            .expect("connecting to redis-server");
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query::<i64>(&mut connection)
            .expect("PUBLISH");
    }

    /// Waits until `count` clients subscribe to `channel` (or, for a pattern, until `count`
    /// pattern subscriptions exist).
    pub fn wait_for_subscribers(&self, channel: &str, count: i64) {
        let mut connection = self
            .client()
            .get_connection()
            .expect("connecting to redis-server");
        for _ in 0..400 {
            let subscribed: i64 = if channel.contains('*') {
                redis::cmd("PUBSUB")
                    .arg("NUMPAT")
                    .query(&mut connection)
                    .expect("PUBSUB NUMPAT")
            } else {
                let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(channel)
                    .query(&mut connection)
                    .expect("PUBSUB NUMSUB");
                counts.first().map_or(0, |(_, count)| *count)
            };
            if subscribed >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nobody subscribed to {channel}");
    }

    /// Subscribes to `channel`; read with [`Subscriber::next`].
    pub fn subscribe(&self, channel: &str) -> Subscriber {
        let mut connection = self
            .client()
            .get_connection()
            .expect("connecting to redis-server");
        connection
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("setting a read timeout");
        connection
            .send_packed_command(&redis::cmd("SUBSCRIBE").arg(channel).get_packed_command())
            .expect("SUBSCRIBE");
        let _confirmation: redis::Value =
            connection.recv_response().expect("subscription confirmed");
        Subscriber(connection)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port()
}

/// A test's own subscription, to receive what guests publish.
pub struct Subscriber(redis::Connection);

impl Subscriber {
    /// The next message's payload, as text; panics after 10 s without one.
    pub fn next(&mut self) -> String {
        self.try_next().expect("a message within 10 s")
    }

    /// The next message's payload, as text; `None` after 10 s without one.
    pub fn try_next(&mut self) -> Option<String> {
        let value: redis::Value = self.0.recv_response().ok()?;
        Some(match value {
            redis::Value::Array(parts) | redis::Value::Push { data: parts, .. } => {
                match parts.last() {
                    Some(redis::Value::BulkString(bytes)) => {
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                    other => panic!("unexpected message part {other:?}"),
                }
            }
            other => panic!("unexpected message {other:?}"),
        })
    }

    /// Whether a message arrives within `wait`.
    pub fn nothing_within(&mut self, wait: Duration) -> bool {
        self.0
            .set_read_timeout(Some(wait))
            .expect("setting a read timeout");
        let received = self.0.recv_response();
        self.0
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("setting a read timeout");
        received.is_err()
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

/// The Spin CLI to test with, if one is found: `SPIN_BIN`, else `spin` on `PATH`.
pub fn spin_cli() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SPIN_BIN").filter(|bin| !bin.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "SPIN_BIN={} is not a file", bin.display());
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    })
}

/// Spin's own templates (`redis-rust`, `http-rust`, ...): `SPIN_TEMPLATES_DIR`, a directory
/// holding `templates/` (a checkout of Spin's templates at the release under test). `None` when
/// it is not set.
pub fn spins_own_templates() -> Option<PathBuf> {
    std::env::var_os("SPIN_TEMPLATES_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

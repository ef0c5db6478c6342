//! The real Spin CLI running what our users run: the plugin installed with `spin plugins install
//! --file`, the templates with `spin templates install --dir`, apps made with `spin new` and
//! `spin add`, built with `spin build`, run with `spin up` — timer triggers through our plugin,
//! Redis triggers through Spin's built-in trigger.
//!
//! A Spin CLI is found through `SPIN_BIN`, else `spin` on `PATH`. Where there is none, each test
//! says so on stderr and returns, and `scripts/test.sh` says plainly that this suite did not run;
//! with `SPIN_TRIGGER_REQUIRE_SPIN=1` (for a machine that must run it) a missing CLI fails instead.
//!
//! Every scenario has its own `SPIN_DATA_DIR` (plugins and templates installed afresh), its own
//! redis-server where it needs one, and project names of its own, so scenarios run side by side.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    HostProcess, HttpServer, RedisServer, Reply, Run, share_target_dir, spin_cli,
    spins_own_templates, use_packaged_sdk, workspace_root,
};

/// The plugins as `cargo xtask plugin` packages them, wrapping the host binary under test; built
/// once per test process. Returns the directory holding `<plugin>.json` and `<plugin>.tar.gz`.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("spin-plugin");
        let status = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["run", "--quiet", "-p", "xtask", "--", "plugin", "--binary"])
            .arg(env!("CARGO_BIN_EXE_spin-trigger-host"))
            .arg("--out")
            .arg(&out)
            .status()
            .expect("running cargo xtask plugin");
        assert!(status.success(), "cargo xtask plugin failed");
        out
    })
}

/// The plugins `cargo xtask plugin` packages, which every scenario installs.
const PLUGINS: [&str; 2] = ["trigger-timer", "trigger-redis-stream"];

/// One scenario's Spin: its own data directory, with our plugin and templates installed through
/// Spin's own commands.
struct Spin {
    bin: PathBuf,
    data_dir: tempfile::TempDir,
    /// Where the scenario's apps are created.
    apps: tempfile::TempDir,
}

impl Spin {
    /// Installs the plugin and the templates; `None` (after saying so) when no Spin CLI is found.
    fn install() -> Option<Spin> {
        let Some(bin) = spin_cli() else {
            let required =
                std::env::var("SPIN_TRIGGER_REQUIRE_SPIN").is_ok_and(|value| value == "1");
            assert!(
                !required,
                "SPIN_TRIGGER_REQUIRE_SPIN=1 but no Spin CLI was found: set SPIN_BIN or put `spin` on PATH"
            );
            eprintln!(
                "real-Spin scenario NOT RUN: no Spin CLI found (set SPIN_BIN, or put `spin` on PATH)"
            );
            return None;
        };
        let spin = Spin {
            bin,
            data_dir: tempfile::tempdir().expect("creating SPIN_DATA_DIR"),
            apps: tempfile::tempdir().expect("creating the apps directory"),
        };
        for plugin in PLUGINS {
            let manifest = plugin_dir().join(format!("{plugin}.json"));
            let manifest = manifest.display().to_string();
            spin.run(
                spin.apps.path(),
                &["plugins", "install", "--file", &manifest, "--yes"],
            );
        }
        let root = workspace_root().display().to_string();
        let installed = spin.run(spin.apps.path(), &["templates", "install", "--dir", &root]);
        for template in ["timer-rust", "redis-component-rust", "redis-stream-rust"] {
            assert!(
                installed.stdout.contains(template),
                "`spin templates install` lists {template}: {}",
                installed.stdout
            );
        }
        let plugins = spin.run(spin.apps.path(), &["plugins", "list", "--installed"]);
        for plugin in PLUGINS {
            assert!(
                plugins.stdout.contains(plugin),
                "the plugin {plugin} is installed: {}",
                plugins.stdout
            );
        }
        Some(spin)
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(dir)
            .env("SPIN_DATA_DIR", self.data_dir.path())
            // The generated projects' own `target/` is where their manifests point.
            .env_remove("CARGO_TARGET_DIR")
            .env("RUST_LOG", "spin_trigger_host=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `spin <args>` in `dir` to completion, asserting it succeeds.
    fn run(&self, dir: &Path, args: &[&str]) -> Run {
        self.run_with_env(dir, args, &[])
    }

    fn run_with_env(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let run: Run = self
            .command(dir, args)
            .envs(env.iter().copied())
            .output()
            .expect("running spin")
            .into();
        assert!(
            run.success,
            "`spin {}` failed\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        run
    }

    /// `spin <new|add> -t <template> <name> --accept-defaults --value k=v...` in `dir`, then
    /// points the new project's SDK dependency at the packaged SDK; returns the project.
    fn render(
        &self,
        dir: &Path,
        command: &str,
        template: &str,
        name: &str,
        values: &[(&str, &str)],
    ) -> PathBuf {
        let mut args = vec![command, "-t", template, name, "--accept-defaults"];
        let values: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for value in &values {
            args.extend(["--value", value]);
        }
        self.run(dir, &args);
        let project = dir.join(name);
        use_packaged_sdk(&project);
        project
    }

    /// `spin new`: a new app from `template`.
    fn new_app(&self, template: &str, name: &str, values: &[(&str, &str)]) -> PathBuf {
        self.render(self.apps.path(), "new", template, name, values)
    }

    /// `spin add`: a component from `template` in the app at `project`.
    fn add_component(&self, project: &Path, template: &str, name: &str, values: &[(&str, &str)]) {
        self.render(project, "add", template, name, values);
    }

    /// `spin up` in the background, in a process group of its own so that stopping it reaches the
    /// trigger processes it starts, as Ctrl-C in a terminal does.
    fn up(&self, project: &Path, args: &[&str]) -> SpinUp {
        self.up_with_env(project, args, &[])
    }

    /// [`up`](Self::up) with `env` set for Spin (which hands it to the plugins).
    fn up_with_env(&self, project: &Path, args: &[&str], env: &[(&str, &str)]) -> SpinUp {
        use std::os::unix::process::CommandExt;
        let mut command = self.command(project, &[&["up"], args].concat());
        command.envs(env.iter().copied());
        command.process_group(0);
        let mut child = command.spawn().expect("starting spin up");
        let stdout = common::drain(child.stdout.take().expect("piped stdout"), None);
        let (ready_sender, ready) = std::sync::mpsc::channel();
        let stderr = common::drain(
            child.stderr.take().expect("piped stderr"),
            Some(ready_sender),
        );
        SpinUp {
            child: Some(child),
            ready,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }
}

/// A running `spin up`.
struct SpinUp {
    child: Option<Child>,
    ready: std::sync::mpsc::Receiver<()>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl SpinUp {
    /// Waits until our plugin reports that its triggers are running.
    fn wait_until_plugin_runs(&self) {
        self.ready
            .recv_timeout(Duration::from_secs(120))
            .expect("our plugin reports it is running");
    }

    fn signal_group(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: signalling the process group this test created for its own child.
            unsafe { libc::killpg(child.id() as libc::pid_t, signal) };
        }
    }

    /// Stops it as Ctrl-C would and returns what it printed.
    fn stop(mut self) -> Run {
        self.signal_group(libc::SIGINT);
        let mut child = self.child.take().expect("stopped once");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for spin up") {
                break status;
            }
            if Instant::now() > deadline {
                // SAFETY: as above; the group is ours.
                unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
                panic!("spin up did not stop within 30 s of Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Run {
            success: status.success(),
            stdout: self.stdout.take().unwrap().join().expect("reading stdout"),
            stderr: self.stderr.take().unwrap().join().expect("reading stderr"),
        }
    }
}

impl Drop for SpinUp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: the process group this test created; nothing of it may outlive the test.
            unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

/// Waits until Spin's log of a component's output (Spin writes it to
/// `.spin/logs/<component>_<stream>.txt` when its stdout is not a terminal) contains `text`.
fn wait_for_component_log(project: &Path, component: &str, stream: &str, text: &str) -> String {
    let path = project.join(format!(".spin/logs/{component}_{stream}.txt"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        if log.contains(text) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not show {text:?} within 30 s; it holds:\n{log}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lines of `text` that start with `prefix`, sorted (components run concurrently).
fn sorted_lines(text: &str, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// Timer ticks of one component in our host's output: `[<id>] Hello from <id>: tick <n>`.
fn ticks(stdout: &str, component: &str) -> Vec<u64> {
    let prefix = format!("[{component}] Hello from {component}: tick ");
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|sequence| sequence.parse().expect("a tick number"))
        .collect()
}

/// `spin new` + `spin add` with our timer template, `spin build`, then `spin up --test` (each
/// component once, tick 0) and `spin up` for a few seconds (ticks 1, 2, ... on schedule), both
/// through the installed `trigger-timer` plugin.
#[test]
fn timer_template_new_add_build_and_up_under_spin() {
    let Some(spin) = Spin::install() else { return };
    let project = spin.new_app("timer-rust", "spin-clock", &[("schedule", "1")]);
    spin.add_component(&project, "timer-rust", "spin-alarm", &[("schedule", "2")]);
    spin.run(&project, &["build"]);

    let once = spin.run(&project, &["up", "--test"]);
    assert_eq!(
        sorted_lines(&once.stdout, "["),
        [
            "[spin-alarm] Hello from spin-alarm: tick 0",
            "[spin-clock] Hello from spin-clock: tick 0"
        ],
        "stderr:\n{}",
        once.stderr
    );

    let up = spin.up(&project, &[]);
    up.wait_until_plugin_runs();
    std::thread::sleep(Duration::from_millis(3_400));
    let run = up.stop();
    assert!(
        run.success,
        "spin up stops cleanly on Ctrl-C: {}",
        run.stderr
    );
    let clock = ticks(&run.stdout, "spin-clock");
    let alarm = ticks(&run.stdout, "spin-alarm");
    // 3.4 s at 1 s and 2 s intervals: ticks 1..=3 and 1, give or take one at the edges.
    assert!(
        (2..=4).contains(&clock.len()) && clock.iter().copied().eq(1..=clock.len() as u64),
        "spin-clock ticks once a second, in order: {clock:?}\n{}",
        run.stdout
    );
    assert!(
        (1..=2).contains(&alarm.len()) && alarm.iter().copied().eq(1..=alarm.len() as u64),
        "spin-alarm ticks every 2 s: {alarm:?}\n{}",
        run.stdout
    );
}

/// `spin new` with our Redis template, `spin build`, `spin up`: Spin's built-in Redis trigger
/// runs the component our SDK built; a payload that is not UTF-8 is reported as a handler error
/// and the next message is handled normally.
#[test]
fn redis_template_runs_under_spins_builtin_redis_trigger() {
    let Some(spin) = Spin::install() else { return };
    let server = RedisServer::start();
    let project = spin.new_app(
        "redis-component-rust",
        "spin-orders",
        &[
            ("redis-address", &server.url()),
            ("redis-channel", "orders"),
        ],
    );
    spin.run(&project, &["build"]);

    let up = spin.up(&project, &[]);
    server.wait_for_subscribers("orders", 1);
    server.publish("orders", "order 1");
    server.publish("orders", &[0xff_u8, 0xfe, 0xfd][..]);
    server.publish("orders", "order 2");
    let stdout = wait_for_component_log(&project, "spin-orders", "stdout", "order 2");
    let stderr = wait_for_component_log(&project, "spin-orders", "stderr", "not valid UTF-8");
    let run = up.stop();
    assert_eq!(
        sorted_lines(&stdout, "spin-orders"),
        [
            "spin-orders received: order 1",
            "spin-orders received: order 2"
        ],
        "spin up stderr:\n{}",
        run.stderr
    );
    assert_eq!(
        stderr.matches("not valid UTF-8").count(),
        1,
        "one bad payload, one error: {stderr}"
    );
}

/// One app with a timer and a Redis component: `spin up` runs the timer through our plugin and
/// the Redis trigger itself, at the same time.
#[test]
fn one_app_with_timer_and_redis_triggers_runs_both_under_spin() {
    let Some(spin) = Spin::install() else { return };
    let server = RedisServer::start();
    let project = spin.new_app("timer-rust", "spin-mixed", &[("schedule", "1")]);
    spin.add_component(
        &project,
        "redis-component-rust",
        "spin-listener",
        &[
            ("redis-address", &server.url()),
            ("redis-channel", "events"),
        ],
    );
    spin.run(&project, &["build"]);

    let up = spin.up(&project, &[]);
    up.wait_until_plugin_runs();
    server.wait_for_subscribers("events", 1);
    server.publish("events", "hello from redis");
    let listener = wait_for_component_log(&project, "spin-listener", "stdout", "hello from redis");
    // Let the 1 s timer tick at least once more while the Redis trigger runs beside it.
    std::thread::sleep(Duration::from_millis(1_500));
    let run = up.stop();
    assert_eq!(
        sorted_lines(&listener, "spin-listener"),
        ["spin-listener received: hello from redis"]
    );
    let mixed = ticks(&run.stdout, "spin-mixed");
    assert!(
        !mixed.is_empty() && mixed.iter().copied().eq(1..=mixed.len() as u64),
        "the timer ticked through the plugin: {mixed:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// `spin up` runs an app's `[[trigger.redis-stream]]` through the installed
/// `trigger-redis-stream` plugin: entries added to the stream are handled and acknowledged.
#[test]
fn a_redis_stream_app_runs_under_spin_up_through_the_plugin() {
    let Some(spin) = Spin::install() else { return };
    let server = RedisServer::start();
    let project = spin.apps.path().join("spin-streams");
    std::fs::create_dir_all(&project).expect("creating the app directory");
    let url = server.url();
    let manifest = common::TestApp::new("spin-streams")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "recorder",
            "stream = \"jobs\"\nmax_in_flight = 2",
        )
        .component(
            "recorder",
            &common::guest("stream-record-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{url}\"]\nvariables = {{ redis_address = \"{url}\" }}"
            ),
        )
        .manifest();
    std::fs::write(project.join("spin.toml"), manifest).expect("writing spin.toml");

    let up = spin.up(&project, &[]);
    up.wait_until_plugin_runs();
    let mut redis = server.client().get_connection().expect("connecting");
    let mut ids = Vec::new();
    for n in 0..20 {
        let id: String = redis::cmd("XADD")
            .arg("jobs")
            .arg("*")
            .arg("payload")
            .arg(n)
            .query(&mut redis)
            .expect("XADD");
        ids.push(id);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let handled: usize = redis::cmd("SCARD")
            .arg("handled")
            .query(&mut redis)
            .expect("SCARD");
        if handled == ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{handled} of {} entries handled under spin up",
            ids.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = up.stop();
    let pending: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg("jobs")
        .arg("spin-streams")
        .query(&mut redis)
        .expect("XPENDING");
    assert_eq!(pending.0, 0, "every entry acknowledged");
    assert!(
        run.stderr.contains("reading stream"),
        "the plugin served the stream: {}",
        run.stderr
    );
}

/// What Spin 4.0.2 users build, on the plugin under `spin up`: a spin-sdk 6 component calling
/// HTTP (WASI 0.3's release candidate) on `[[trigger.redis-stream]]` gets its answer, and with
/// `spin up --experimental-wasi-otel` (forwarded to the plugin) a guest's own span reaches the
/// OTLP receiver Spin's environment names, beside the handler's.
#[test]
fn spin_sdk_6_http_and_guest_spans_run_through_the_plugin_under_spin_up() {
    let Some(spin) = Spin::install() else { return };
    let server = RedisServer::start();
    let api = HttpServer::start(|_| Reply::Send(200, "text/plain", b"ok".to_vec()));
    let receiver = HttpServer::start(|_| Reply::Send(200, "application/x-protobuf", Vec::new()));
    let project = spin.apps.path().join("spin-sdk6-otel");
    std::fs::create_dir_all(&project).expect("creating the app directory");
    let url = server.url();
    let manifest = common::TestApp::new("spin-sdk6-otel")
        .redis_address("redis-stream", &url)
        .trigger("redis-stream", "getter", "stream = \"urls\"")
        .component(
            "getter",
            &common::spin_sdk_guest("sdk6-http-get"),
            &format!(
                "allowed_outbound_hosts = [\"{url}\", \"{}\"]\n\
                 variables = {{ redis_address = \"{url}\", reply_channel = \"replies\" }}",
                api.url("")
            ),
        )
        .trigger("redis-stream", "worker", "stream = \"jobs\"")
        .component(
            "worker",
            &common::guest("otel-span-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{}\"]\nvariables = {{ url = \"{}\" }}",
                api.url(""),
                api.url("/work")
            ),
        )
        .manifest();
    std::fs::write(project.join("spin.toml"), manifest).expect("writing spin.toml");

    let endpoint = format!("{}/v1/traces", receiver.url(""));
    let up = spin.up_with_env(
        &project,
        &["--experimental-wasi-otel"],
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    up.wait_until_plugin_runs();
    let mut replies = server.subscribe("replies");
    let mut redis = server.client().get_connection().expect("connecting");
    let _: String = redis::cmd("XADD")
        .arg("urls")
        .arg("*")
        .arg("payload")
        .arg(api.url("/count"))
        .query(&mut redis)
        .expect("XADD");
    assert_eq!(replies.next(), "200 ok");
    let _: String = redis::cmd("XADD")
        .arg("jobs")
        .arg("*")
        .arg("payload")
        .arg("hello")
        .query(&mut redis)
        .expect("XADD");
    let deadline = Instant::now() + Duration::from_secs(60);
    let exported = |name: &str| {
        receiver
            .requests()
            .iter()
            .filter(|request| request.path == "/v1/traces")
            .any(|request| {
                request
                    .body
                    .windows(name.len())
                    .any(|window| window == name.as_bytes())
            })
    };
    while !exported("guest work") {
        assert!(
            Instant::now() < deadline,
            "no guest span exported under spin up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = up.stop();
    assert_eq!(api.requests().len(), 2, "{}", run.stderr);
}

/// Application variables reach a timer component through `spin up`, in Spin's order:
/// `--variable`, then `SPIN_VARIABLE_<NAME>`, then the manifest's default; and Spin's common
/// trigger options pass through `spin up` to the plugin with their meaning.
#[test]
fn variables_reach_a_timer_component_through_spin_up() {
    let Some(spin) = Spin::install() else { return };
    let project = spin.new_app("timer-rust", "spin-greeter", &[]);
    // What a user does next: declare a variable, hand it to the component, read it.
    let manifest_path = project.join("spin.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap();
    let manifest = manifest
        .replacen(
            "[[trigger.timer]]",
            "[variables]\ngreeting = { default = \"from-default\" }\n\n[[trigger.timer]]",
            1,
        )
        .replacen(
            "allowed_outbound_hosts = []",
            "allowed_outbound_hosts = []\nvariables = { greeting = \"{{ greeting }}\" }",
            1,
        );
    std::fs::write(&manifest_path, manifest).unwrap();
    std::fs::write(
        project.join("src/lib.rs"),
        r#"use spin_trigger_sdk::{timer_component, variables};

#[timer_component]
fn handle_tick() -> anyhow::Result<()> {
    println!("greeting={}", variables::get("greeting")?);
    Ok(())
}
"#,
    )
    .unwrap();
    spin.run(&project, &["build"]);

    let greeting = |args: &[&str], env: &[(&str, &str)]| {
        let run = spin.run_with_env(&project, &[&["up", "--test"], args].concat(), env);
        run.stdout
            .lines()
            .find_map(|line| line.strip_prefix("[spin-greeter] greeting="))
            .unwrap_or_else(|| panic!("no greeting in {}\n{}", run.stdout, run.stderr))
            .to_owned()
    };
    assert_eq!(greeting(&[], &[]), "from-default");
    assert_eq!(
        greeting(&[], &[("SPIN_VARIABLE_GREETING", "from-env")]),
        "from-env"
    );
    assert_eq!(
        greeting(
            &["--variable", "greeting=from-cli"],
            &[("SPIN_VARIABLE_GREETING", "from-env")]
        ),
        "from-cli"
    );

    // Spin's common trigger options, forwarded by `spin up` to the plugin: a variables file,
    // `--quiet` with a log directory, and a runtime config; the output goes to the log file only.
    let vars = project.join("vars.json");
    std::fs::write(&vars, r#"{"greeting": "from-json"}"#).unwrap();
    let runtime_config = project.join("runtime-config.toml");
    std::fs::write(&runtime_config, "max_instance_memory = 134217728\n").unwrap();
    let logs = project.join("option-logs");
    let (vars, runtime_config, logs_text) = (
        format!("@{}", vars.display()),
        runtime_config.display().to_string(),
        logs.display().to_string(),
    );
    let run = spin.run(
        &project,
        &[
            "up",
            "--test",
            "--variable",
            &vars,
            "--quiet",
            "--log-dir",
            &logs_text,
            "--truncate-logs",
            "--runtime-config-file",
            &runtime_config,
        ],
    );
    assert!(run.success, "{}", run.stderr);
    run.assert_stdout_lacks("greeting=");
    let logged = std::fs::read_to_string(logs.join("spin-greeter_stdout.txt")).unwrap();
    assert_eq!(logged, "greeting=from-json\n");
}

/// A Spin user's Redis component, made by Spin's own `redis-rust` template (spin-sdk 6, the v3
/// world with its `async func` export) and built by `spin build`, runs unchanged on
/// `spin-trigger-host up`.
#[test]
fn spins_own_redis_rust_template_runs_unchanged_on_the_host() {
    let Some(spin) = Spin::install() else { return };
    let Some(templates) = spins_own_templates() else {
        let required = std::env::var("SPIN_TRIGGER_REQUIRE_SPIN").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "Spin's templates were not found: set SPIN_TEMPLATES_DIR"
        );
        eprintln!(
            "real-Spin scenario NOT RUN: Spin's own templates not found (set SPIN_TEMPLATES_DIR)"
        );
        return;
    };
    spin.run(
        spin.apps.path(),
        &[
            "templates",
            "install",
            "--dir",
            &templates.display().to_string(),
        ],
    );
    let server = RedisServer::start();
    let address = server.url();
    spin.run(
        spin.apps.path(),
        &[
            "new",
            "-t",
            "redis-rust",
            "spin-sdk-orders",
            "--accept-defaults",
            "--value",
            &format!("redis-address={address}"),
            "--value",
            "redis-channel=orders",
        ],
    );
    let project = spin.apps.path().join("spin-sdk-orders");
    share_target_dir(&project, common::SPIN_SDK_TARGET);
    spin.run(&project, &["build"]);

    let manifest = project.join("spin.toml").display().to_string();
    let host = HostProcess::start(&["up", "-f", &manifest], &[]);
    server.wait_for_subscribers("orders", 1);
    server.publish("orders", "order from a spin-sdk component");
    // The component prints each message; give it a moment, then stop the host.
    std::thread::sleep(Duration::from_millis(500));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.stdout, "[spin-sdk-orders] order from a spin-sdk component\n",
        "stderr:\n{}",
        run.stderr
    );
}

/// A Redis component keeping a count in the default key-value store with our SDK's
/// `key_value::Store` runs under Spin's built-in Redis trigger, and the store Spin wrote
/// (`.spin/sqlite_key_value.db`) carries on under `spin-trigger-host up`: the same file, the same
/// layout.
#[test]
fn a_key_value_store_spin_wrote_carries_on_under_the_host() {
    let Some(spin) = Spin::install() else { return };
    let server = RedisServer::start();
    let project = spin.new_app(
        "redis-component-rust",
        "spin-counter",
        &[
            ("redis-address", &server.url()),
            ("redis-channel", "counted"),
        ],
    );
    let manifest_path = project.join("spin.toml");
    let manifest = std::fs::read_to_string(&manifest_path).unwrap().replacen(
        "allowed_outbound_hosts = []",
        "allowed_outbound_hosts = []\nkey_value_stores = [\"default\"]",
        1,
    );
    std::fs::write(&manifest_path, manifest).unwrap();
    std::fs::write(
        project.join("src/lib.rs"),
        r#"use spin_trigger_sdk::{key_value::Store, redis_component};

#[redis_component]
fn on_message(message: String) -> anyhow::Result<()> {
    let store = Store::open_default()?;
    let count = store.get_json::<u64>("count")?.unwrap_or(0) + 1;
    store.set_json("count", &count)?;
    println!("count={count} last={message}");
    Ok(())
}
"#,
    )
    .unwrap();
    spin.run(&project, &["build"]);

    let up = spin.up(&project, &[]);
    server.wait_for_subscribers("counted", 1);
    server.publish("counted", "one");
    server.publish("counted", "two");
    let stdout = wait_for_component_log(&project, "spin-counter", "stdout", "count=2");
    up.stop();
    assert!(stdout.contains("count=2 last=two"), "{stdout}");

    let manifest = manifest_path.display().to_string();
    let host = HostProcess::start(&["up", "-f", &manifest], &[]);
    server.wait_for_subscribers("counted", 1);
    server.publish("counted", "three");
    assert!(host.wait_for_stdout_lines("count=3 last=three", 1, Duration::from_secs(30)));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

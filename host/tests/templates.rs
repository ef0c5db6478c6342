//! Every template, rendered as `spin new` and `spin add` would, built for wasm32-wasip2 by the
//! host's `up --build`, and run: timer apps with `--once`, Redis apps against a real
//! redis-server. Generated projects depend on the SDK by version, as a user's would; here a
//! `[patch.crates-io]` points that dependency at the SDK crates as `cargo package` makes them,
//! so a file missing from the published crate fails these tests.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{HostProcess, RedisServer, run_host, use_packaged_sdk, workspace_root};
use spin_templates::Template;

fn template(id: &str) -> Template {
    Template::load(workspace_root().join("templates").join(id)).expect("the template loads")
}

fn manifest_arg(path: &Path) -> String {
    path.display().to_string()
}

/// Builds every component of the app with its own build command (`up --build`); `--once` then
/// runs the timer components, and loads and checks every component either way.
fn build_and_run_once(manifest: &Path) -> common::Run {
    let run = run_host(&["up", "--build", "--once", "-f", &manifest_arg(manifest)]);
    assert!(
        run.success,
        "the generated app must build and run: {}",
        run.stderr
    );
    run
}

fn new_project(
    dir: &tempfile::TempDir,
    template_id: &str,
    name: &str,
    values: &[(&str, &str)],
) -> PathBuf {
    let project = dir.path().join(name);
    template(template_id)
        .new_application(name, &project, values)
        .expect("spin new");
    use_packaged_sdk(&project);
    project
}

fn add_component(manifest: &Path, template_id: &str, name: &str, values: &[(&str, &str)]) {
    template(template_id)
        .add_component(name, manifest, name, values)
        .expect("spin add");
    use_packaged_sdk(&manifest.parent().unwrap().join(name));
}

#[test]
fn timer_rust_new_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(&dir, "timer-rust", "hello-timer", &[("schedule", "2")]);
    let manifest = project.join("spin.toml");
    assert!(
        std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("interval_secs = 2")
    );
    let run = build_and_run_once(&manifest);
    assert_eq!(run.stdout, "[hello-timer] Hello from hello-timer: tick 0\n");
}

#[test]
fn timer_rust_add_puts_a_second_component_in_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(&dir, "timer-rust", "clock", &[]);
    let manifest = project.join("spin.toml");
    add_component(
        &manifest,
        "timer-rust",
        "alarm",
        &[("schedule", "0 0 7 * * MON-FRI")],
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("cron = \"0 0 7 * * MON-FRI\""), "{text}");
    assert!(
        !project.join("alarm/spin.toml").exists(),
        "add skips spin.toml"
    );
    let run = build_and_run_once(&manifest);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "[alarm] Hello from alarm: tick 0",
            "[clock] Hello from clock: tick 0"
        ]
    );
}

/// `spin new -t timer-rust` with a cron schedule writes `cron`; the app builds, runs once, and
/// then fires on every whole second.
#[test]
fn timer_rust_new_with_a_cron_schedule_builds_and_fires_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(
        &dir,
        "timer-rust",
        "cron-timer",
        &[("schedule", "*/1 * * * * *")],
    );
    let manifest = project.join("spin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("cron = \"*/1 * * * * *\"\n"), "{text}");
    assert!(!text.contains("interval_secs"), "{text}");
    let run = build_and_run_once(&manifest);
    assert_eq!(run.stdout, "[cron-timer] Hello from cron-timer: tick 0\n");
    let run = common::run_host_for(
        &["up", "-f", &manifest_arg(&manifest)],
        Duration::from_millis(2500),
    );
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("[cron-timer] Hello from cron-timer: tick 1\n"),
        "{}",
        run.stdout
    );
}

/// Starts the app, publishes `payload` on each channel, and returns what the host printed.
fn publish_to_running_app(
    server: &RedisServer,
    manifest: &Path,
    messages: &[(&str, &str)],
) -> common::Run {
    let host = HostProcess::start(&["up", "-f", &manifest_arg(manifest)], &[]);
    for (channel, payload) in messages {
        server.wait_for_subscribers(channel, 1);
        server.publish(channel, *payload);
    }
    // Wait for every handler's line rather than a fixed pause: a loaded machine can take seconds
    // to run a component's first message. The short grace after lets a stray extra line show.
    let all_handled =
        host.wait_for_stdout_lines(" received: ", messages.len(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    let run = host.stop();
    assert!(
        all_handled,
        "not every message was handled within a minute:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.success, "{}", run.stderr);
    run
}

#[test]
fn redis_component_rust_new_builds_and_handles_a_published_message() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(
        &dir,
        "redis-component-rust",
        "order-log",
        &[
            ("redis-address", &server.url()),
            ("redis-channel", "orders"),
        ],
    );
    let manifest = project.join("spin.toml");
    build_and_run_once(&manifest);
    let run = publish_to_running_app(&server, &manifest, &[("orders", "order 42")]);
    assert_eq!(run.stdout, "[order-log] order-log received: order 42\n");
}

#[test]
fn redis_component_rust_add_reuses_the_apps_redis_address() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(
        &dir,
        "redis-component-rust",
        "orders",
        &[
            ("redis-address", &server.url()),
            ("redis-channel", "orders"),
        ],
    );
    let manifest = project.join("spin.toml");
    // The app already has [application.trigger.redis]: the address is neither asked nor added.
    add_component(
        &manifest,
        "redis-component-rust",
        "audit",
        &[("redis-channel", "audit")],
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(
        text.matches("[application.trigger.redis]").count(),
        1,
        "{text}"
    );
    build_and_run_once(&manifest);
    let run = publish_to_running_app(&server, &manifest, &[("orders", "o-1"), ("audit", "a-1")]);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "[audit] audit received: a-1",
            "[orders] orders received: o-1"
        ]
    );
}

#[test]
fn redis_stream_rust_new_builds_and_handles_an_entry_and_add_reuses_the_address() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let project = new_project(
        &dir,
        "redis-stream-rust",
        "billing",
        &[("redis-address", &server.url()), ("redis-stream", "orders")],
    );
    let manifest = project.join("spin.toml");
    // Each generated project's `.wasm` lands in one shared target directory under its crate's
    // name, so no two tests may name a component alike: `audit` belongs to the pub/sub test.
    add_component(
        &manifest,
        "redis-stream-rust",
        "ledger",
        &[("redis-stream", "audit"), ("redis-group", "auditors")],
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(
        text.matches("[application.trigger.redis-stream]").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("group = \"workers\"") && text.contains("group = \"auditors\""),
        "{text}"
    );
    build_and_run_once(&manifest);
    let host = HostProcess::start(&["up", "-f", &manifest_arg(&manifest)], &[]);
    host.wait_until_ready();
    let mut connection = server.client().get_connection().unwrap();
    let order: String = redis::cmd("XADD")
        .arg("orders")
        .arg("*")
        .arg("payload")
        .arg("order 7")
        .query(&mut connection)
        .unwrap();
    let audit: String = redis::cmd("XADD")
        .arg("audit")
        .arg("*")
        .arg("payload")
        .arg("seen")
        .query(&mut connection)
        .unwrap();
    assert!(host.wait_for_stdout_lines("got entry", 2, Duration::from_secs(30)));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("[billing] billing got entry {order} (attempt 1): order 7"),
            format!("[ledger] ledger got entry {audit} (attempt 1): seen"),
        ]
    );
}

/// A release bumps the workspace version; the templates must follow, or `spin new` would make
/// projects that depend on an older SDK (or on one that was never published).
#[test]
fn templates_depend_on_the_workspace_sdk_version() {
    let requirement = format!("spin-trigger-sdk = \"{}\"", common::sdk_requirement());
    for template in ["timer-rust", "redis-component-rust", "redis-stream-rust"] {
        let path = workspace_root().join(format!("templates/{template}/content/Cargo.toml.tmpl"));
        let text = std::fs::read_to_string(&path).unwrap();
        let sdk_lines: Vec<&str> = text
            .lines()
            .filter(|line| line.trim_start().starts_with("spin-trigger-sdk"))
            .collect();
        assert_eq!(sdk_lines, [requirement.as_str()], "{}", path.display());
    }
    let sdk_manifest = std::fs::read_to_string(workspace_root().join("sdk/Cargo.toml")).unwrap();
    assert!(
        sdk_manifest.contains(&format!(
            "spin-trigger-sdk-macro = {{ version = \"={}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "the SDK pins its macro crate to the same version: {sdk_manifest}"
    );
}

//! The host as a Spin plugin: locked-app fixtures written in Spin's format load into the same
//! model as the same app's spin.toml and run with the same results; `--launch-metadata-only`
//! and `--help-args-only` answer as `spin up` expects; launched as `trigger-timer`, the host
//! runs only the timer triggers and leaves the rest to Spin.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{HostProcess, RedisServer, Run, guests_dir, run_host_with_env};
use spin_trigger_host::{App, locked_app, manifest};

/// A fixture pair copied into a temp dir with the guests' location filled in.
struct Fixture {
    dir: tempfile::TempDir,
    lock: PathBuf,
    manifest: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/locked");
        let fill = |text: String| {
            text.replace("@GUESTS@", &guests_dir().display().to_string())
                .replace("@APP@", &dir.path().display().to_string())
        };
        let lock = dir.path().join(format!("{name}.lock.json"));
        let manifest = dir.path().join("spin.toml");
        for (from, to) in [
            (format!("{name}.lock.json"), &lock),
            (format!("{name}.spin.toml"), &manifest),
        ] {
            std::fs::write(
                to,
                fill(std::fs::read_to_string(source.join(from)).unwrap()),
            )
            .unwrap();
        }
        Fixture {
            dir,
            lock,
            manifest,
        }
    }

    fn locked_url(&self) -> String {
        format!("file://{}", self.lock.display())
    }

    /// The environment `spin up` gives a plugin.
    fn plugin_env(&self) -> Vec<(String, String)> {
        vec![
            ("SPIN_LOCKED_URL".into(), self.locked_url()),
            (
                "SPIN_WORKING_DIR".into(),
                self.dir.path().join(".spin").display().to_string(),
            ),
            ("SPIN_LOCAL_APP_DIR".into(), String::new()),
        ]
    }
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}

/// The model without what legitimately differs between the two sources: where it was read
/// from, and trigger ids (Spin's lock names them; spin.toml numbers them).
fn comparable(app: App) -> impl std::fmt::Debug + PartialEq {
    let triggers: Vec<_> = app
        .triggers()
        .iter()
        .map(|trigger| {
            let mut trigger = trigger.clone();
            trigger.id.clear();
            trigger
        })
        .collect();
    (
        app.name().to_owned(),
        app.variables().clone(),
        app.components().clone(),
        triggers,
    )
}

#[test]
fn locked_fixtures_load_into_the_same_model_as_their_spin_toml() {
    for name in ["timer", "redis", "both", "streams"] {
        let fixture = Fixture::new(name);
        let from_lock = locked_app::load(&fixture.locked_url(), None)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let from_manifest = manifest::load(&fixture.manifest).unwrap();
        assert_eq!(
            comparable(from_lock),
            comparable(from_manifest),
            "fixture {name}"
        );
    }
}

#[test]
fn the_timer_fixture_runs_as_the_plugin_exactly_as_from_its_spin_toml() {
    let fixture = Fixture::new("timer");
    let label = [(
        "SPIN_VARIABLE_LABEL".to_owned(),
        "locked-counter".to_owned(),
    )];
    let manifest = fixture.manifest.display().to_string();
    let standalone = run_host_with_env(&["up", "--once", "-f", &manifest], &env_refs(&label));
    let env: Vec<_> = fixture
        .plugin_env()
        .into_iter()
        .chain(label.clone())
        .collect();
    let plugin = run_host_with_env(&["--test"], &env_refs(&env));
    assert!(standalone.success, "{}", standalone.stderr);
    assert!(plugin.success, "{}", plugin.stderr);
    assert_eq!(
        plugin.stdout,
        "[greeter] Hello from the lock, world\n[counter] locked-counter tick #0 (0 ms late)\n"
    );
    assert_eq!(plugin.stdout, standalone.stdout);
}

#[test]
fn the_plugin_keeps_its_compiled_components_in_spins_working_dir() {
    let fixture = Fixture::new("timer");
    let (_dir, trigger_timer) = as_trigger_timer();
    let output = Command::new(&trigger_timer)
        .arg("--test")
        .envs(fixture.plugin_env())
        .env("SPIN_VARIABLE_LABEL", "x")
        .env_remove("SPIN_TRIGGER_CACHE_DIR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cached: Vec<_> = std::fs::read_dir(fixture.dir.path().join(".spin/compiled-components"))
        .expect("the cache is under SPIN_WORKING_DIR")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 2, "one compiled file per component");
}

#[test]
fn a_required_locked_variable_without_a_value_stops_the_plugin() {
    let fixture = Fixture::new("timer");
    let run = run_host_with_env(&["--test"], &env_refs(&fixture.plugin_env()));
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("variable `label` is required but has no value"),
        "{}",
        run.stderr
    );
}

/// Runs an app (as `args` with `env`), publishes on `requests` and `jobs.eu`, and returns the
/// two replies, sorted.
fn redis_round_trip(server: &RedisServer, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut replies = server.subscribe("replies");
    let host = HostProcess::start(args, env);
    server.wait_for_subscribers("requests", 1);
    server.wait_for_subscribers("jobs.*", 1);
    server.publish("requests", "hello");
    server.publish("jobs.eu", "job-1");
    let mut received = vec![replies.next(), replies.next()];
    received.sort();
    let run: Run = host.stop();
    assert!(run.success, "{}", run.stderr);
    received
}

#[test]
fn the_redis_fixture_runs_as_the_plugin_exactly_as_from_its_spin_toml() {
    let fixture = Fixture::new("redis");
    let server = RedisServer::start();
    let address = [("SPIN_VARIABLE_REDIS_ADDRESS".to_owned(), server.url())];
    let manifest = fixture.manifest.display().to_string();
    let standalone = redis_round_trip(&server, &["up", "-f", &manifest], &env_refs(&address));
    let env: Vec<_> = fixture
        .plugin_env()
        .into_iter()
        .chain(address.clone())
        .collect();
    let plugin = redis_round_trip(&server, &[], &env_refs(&env));
    assert_eq!(plugin, ["HELLO", "jobs.eu|jobs.*|job-1"]);
    assert_eq!(plugin, standalone);
}

#[test]
fn both_trigger_types_run_in_one_plugin_process_and_other_types_are_left_alone() {
    let fixture = Fixture::new("both");
    let server = RedisServer::start();
    let mut env = fixture.plugin_env();
    env.push(("SPIN_VARIABLE_REDIS_ADDRESS".into(), server.url()));
    let mut replies = server.subscribe("replies");
    let host = HostProcess::start(&[], &env_refs(&env));
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "both");
    assert_eq!(replies.next(), "BOTH");
    // The timer's first tick, waited for rather than assumed within a fixed pause.
    host.wait_for_stdout_lines("[probe] tick seq=1", 1, Duration::from_secs(60));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stdout.contains("[probe] tick seq=1"),
        "the timer ran too: {}",
        run.stdout
    );
}

/// The host binary under the name Spin gives the plugin.
fn as_trigger_timer() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("trigger-timer");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_spin-trigger-host"), &link).unwrap();
    (dir, link)
}

#[test]
fn launched_as_trigger_timer_it_runs_only_the_timer_triggers() {
    let fixture = Fixture::new("both");
    let server = RedisServer::start();
    let (_dir, trigger_timer) = as_trigger_timer();
    let mut command = Command::new(&trigger_timer);
    command
        .args(["--cache-dir", &common::cache_dir().display().to_string()])
        .envs(fixture.plugin_env())
        .env("SPIN_VARIABLE_REDIS_ADDRESS", server.url())
        .env("NO_COLOR", "1");
    let output = common::run_for(command, Duration::from_millis(600));
    assert!(output.success, "{}", output.stderr);
    output.assert_stdout_has("[probe] tick seq=1");
    assert!(
        !output.stderr.contains("subscribed"),
        "Redis triggers are Spin's own when launched as trigger-timer: {}",
        output.stderr
    );
}

#[test]
fn launch_metadata_lists_every_flag_as_json_on_stderr() {
    let (_dir, trigger_timer) = as_trigger_timer();
    let output = Command::new(&trigger_timer)
        .arg("--launch-metadata-only")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(output.stdout.is_empty(), "the metadata goes to stderr");
    let longs = common::launch_metadata_long_flags(&output.stderr);
    for expected in [
        "--once",
        "--test",
        "--variable",
        "--shutdown-timeout",
        "--launch-metadata-only",
        "--help-args-only",
    ] {
        assert!(
            longs.iter().any(|long| long == expected),
            "{expected} missing from {longs:?}"
        );
    }
}

#[test]
fn help_args_only_prints_the_trigger_flags() {
    let (_dir, trigger_timer) = as_trigger_timer();
    let output = Command::new(&trigger_timer)
        .arg("--help-args-only")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("Usage: trigger-timer [OPTIONS]"), "{help}");
    assert!(
        help.contains("--variable <KEY=VALUE | KEY=@FILE | @FILE.json | @FILE.toml>"),
        "{help}"
    );
    assert!(help.contains("--runtime-config-file"), "{help}");
    assert!(help.contains("[alias: --test]"), "{help}");
}

#[test]
fn locked_apps_spin_would_refuse_are_refused_with_the_field_named() {
    let cases = [
        (
            r#"{"spin_lock_version": 1, "must_understand": ["host_requirements", "route_matching"], "triggers": [], "components": []}"#,
            "lock.json: must_understand: this host does not understand `route_matching`",
        ),
        // Spin 4.1's trigger dependencies, on a component this host would run: refused as
        // Spin's own triggers refuse a requirement they lack, rather than run without its
        // middleware.
        (
            r#"{"spin_lock_version": 1, "must_understand": ["component_host_requirements"], "triggers": [{"id": "t", "trigger_type": "timer", "trigger_config": {"component": "c", "interval_secs": 1}}], "components": [{"id": "c", "metadata": {"resolve-trigger-dependencies-using": "timer"}, "source": {"content_type": "application/wasm", "source": "file:///c.wasm"}, "trigger_dependencies": {"middleware": [{"source": {"content_type": "application/wasm", "source": "file:///auth.wasm"}, "export": null}]}, "host_requirements": {"middleware": "required"}}]}"#,
            "lock.json: components[0].host_requirements: component `c` requires what this host does not support: middleware (trigger dependencies are not composed by this host yet; remove the trigger's `dependencies` to run it here)",
        ),
        (
            r#"{"spin_lock_version": 1, "triggers": [{"id": "t", "trigger_type": "timer", "trigger_config": {"component": "c", "interval_secs": 1}}], "components": [{"id": "c", "source": {"content_type": "application/wasm", "source": "file:///c.wasm"}, "trigger_dependencies": {"preprocessor": [{"source": {"content_type": "application/wasm", "source": "file:///p.wasm"}, "export": null}]}}]}"#,
            "lock.json: components[0].trigger_dependencies: component `c` has trigger dependencies (preprocessor), which this host does not compose yet; remove the trigger's `dependencies` to run it here",
        ),
        (
            r#"{"spin_lock_version": 1, "host_requirements": {"local_service_chaining": "required"}, "triggers": [], "components": []}"#,
            "lock.json: host_requirements: this host does not support: local_service_chaining",
        ),
        (
            r#"{"spin_lock_version": 0, "triggers": [{"id": "t", "trigger_type": "timer", "trigger_config": {"component": "c", "interval_secs": 1, "every": 2}}], "components": []}"#,
            "lock.json: triggers[0].trigger_config.every: unknown field `every`, expected one of `interval_secs`, `interval`, `cron`, `time_zone`, `coordination`, `overlap`, `max_in_flight`, `catch_up`, `jitter`, `max_attempts`, `retry_backoff`, `max_per_second`, `start_at`, `end_at`",
        ),
        (
            r#"{"spin_lock_version": 0, "triggers": [{"id": "t", "trigger_type": "timer", "trigger_config": {"component": "c", "interval_secs": 1}}], "components": [{"id": "c", "source": {"content_type": "application/wasm", "source": "https://example.com/c.wasm"}}]}"#,
            "lock.json: components[0].source.source: \"https://example.com/c.wasm\" is not a file:// URL",
        ),
        (
            r#"{"spin_lock_version": 2, "triggers": [], "components": []}"#,
            "lock.json: spin_lock_version: version 2 is newer than this host reads (0 and 1)",
        ),
    ];
    for (json, expected) in cases {
        let error = locked_app::parse(json, Path::new("lock.json"), Path::new("/")).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }
}

//! The timer trigger end to end: the host binary runs real guests built for wasm32-wasip2.

mod common;

use std::time::Duration;

use common::{
    AppDir, ProbeTick, TestApp, guest, probe_ticks, run_host, run_host_for, workspace_root,
};

/// An app with one `probe` component on `interval`, with the given component variables.
fn probe_app(interval: &str, variables: &[(&str, &str)]) -> AppDir {
    let variables: Vec<String> = variables
        .iter()
        .map(|(name, value)| format!("{name} = \"{value}\""))
        .collect();
    TestApp::new("probe-app")
        .trigger("timer", "probe", &format!("interval = \"{interval}\""))
        .component(
            "probe",
            &guest("probe-guest"),
            &format!("variables = {{ {} }}", variables.join(", ")),
        )
        .write()
}

fn manifest_arg(dir: &std::path::Path) -> String {
    dir.join("spin.toml").display().to_string()
}

/// Runs a probe app on `interval` for `window`; the host must exit 0 at SIGTERM.
fn run_probe(
    interval: &str,
    variables: &[(&str, &str)],
    window: Duration,
) -> (common::Run, Vec<ProbeTick>) {
    let app = probe_app(interval, variables);
    let run = run_host_for(&["up", "-f", &manifest_arg(app.path())], window);
    assert!(run.success, "host failed: {}", run.stderr);
    let ticks = probe_ticks(&run.stdout, "probe");
    (run, ticks)
}

fn sequences(ticks: &[ProbeTick]) -> Vec<u64> {
    ticks.iter().map(|tick| tick.sequence).collect()
}

/// Ticks are on the grid anchored at start: tick n is due `n * interval` after tick 0's time.
fn assert_on_grid(ticks: &[ProbeTick], interval_ms: u64) {
    let first = ticks[0];
    for tick in ticks {
        let expected = first.scheduled_ms + (tick.sequence - first.sequence) * interval_ms;
        // Times are truncated to whole milliseconds, so allow one either way.
        assert!(
            tick.scheduled_ms.abs_diff(expected) <= 1,
            "tick {} scheduled at {} but the grid says {expected}: {ticks:?}",
            tick.sequence,
            tick.scheduled_ms
        );
    }
}

#[test]
fn ticks_at_a_sub_second_interval_are_counted_over_a_window() {
    let (_, ticks) = run_probe("100ms", &[], Duration::from_millis(1550));
    let sequences = sequences(&ticks);
    // 1.55 s at 100 ms is 15 ticks after the 1st interval; start-up eats a little of the window.
    assert!(
        (10..=16).contains(&ticks.len()),
        "expected about 15 ticks, got {sequences:?}"
    );
    let expected: Vec<u64> = (1..=ticks.len() as u64).collect();
    assert_eq!(sequences, expected, "ticks must run in order without gaps");
    assert_on_grid(&ticks, 100);
}

/// `cron = "*/1 * * * * *"` for five seconds: five fires, each scheduled on a whole second,
/// one second apart, numbered from 1.
#[test]
fn a_cron_schedule_fires_on_whole_seconds() {
    let app = TestApp::new("cron-app")
        .trigger(
            "timer",
            "probe",
            "cron = \"*/1 * * * * *\"\ntime_zone = \"Europe/Paris\"",
        )
        .component("probe", &guest("probe-guest"), "")
        .write();
    let run = run_host_for(
        &["up", "-f", &manifest_arg(app.path())],
        Duration::from_secs(5),
    );
    assert!(run.success, "host failed: {}", run.stderr);
    let ticks = probe_ticks(&run.stdout, "probe");
    assert!(
        (4..=6).contains(&ticks.len()),
        "expected five fires in five seconds, got {ticks:?}"
    );
    assert_eq!(
        sequences(&ticks),
        (1..=ticks.len() as u64).collect::<Vec<_>>()
    );
    for tick in &ticks {
        assert_eq!(
            tick.scheduled_ms % 1000,
            0,
            "not on a whole second: {tick:?}"
        );
        assert!(tick.fired_ms >= tick.scheduled_ms, "fired early: {tick:?}");
    }
    assert_on_grid(&ticks, 1000);
    assert!(
        run.stderr.contains("cron=\"*/1 * * * * *\"") || run.stderr.contains("cron=*/1 * * * * *"),
        "{}",
        run.stderr
    );
    // The tick carries the schedule it fired for.
    assert_eq!(
        run.stdout
            .matches("[probe] schedule cron */1 * * * * * in Europe/Paris\n")
            .count(),
        ticks.len(),
        "{}",
        run.stdout
    );
}

/// Components built against 0.1.0 of our timer world (before the tick carried its schedule) and
/// 0.2.0 (before it carried its attempt) still run, beside one on 0.4.0.
#[test]
fn components_on_the_0_1_0_and_0_2_0_timer_worlds_still_run() {
    let app = TestApp::new("old-and-new")
        .trigger("timer", "old", "interval_secs = 5")
        .trigger("timer", "older", "interval_secs = 7")
        .trigger("timer", "probe", "interval = \"250ms\"")
        .component("old", &guest("timer-0-2-guest"), "")
        .component("older", &guest("timer-0-1-guest"), "")
        .component("probe", &guest("probe-guest"), "")
        .write();
    let run = run_host(&["up", "--once", "-f", &manifest_arg(app.path())]);
    assert!(run.success, "{}", run.stderr);
    run.assert_stdout_has("[older] tick 0.1.0 seq=0\n");
    run.assert_stdout_has("[old] tick 0.2.0 seq=0 schedule=every 5s\n");
    run.assert_stdout_has("[probe] schedule every 250ms\n");
    run.assert_stdout_has(" attempt=1 late=false\n");
}

#[test]
fn a_slow_handler_does_not_shift_later_ticks() {
    // Each run takes 150 of its 200 ms: a schedule that slept *after* each run would drift to
    // one tick every 350 ms.
    let (_, ticks) = run_probe("200ms", &[("sleep_ms", "150")], Duration::from_millis(2150));
    let sequences = sequences(&ticks);
    assert!(
        ticks.len() >= 8,
        "expected about 10 ticks in 2.15 s, got {sequences:?}"
    );
    let expected: Vec<u64> = (1..=ticks.len() as u64).collect();
    assert_eq!(sequences, expected, "no tick may be skipped: {sequences:?}");
    assert_on_grid(&ticks, 200);
}

#[test]
fn a_tick_that_comes_while_the_previous_run_is_going_is_skipped() {
    // Each run takes 250 ms at a 100 ms interval: about two ticks of every three are skipped.
    let (run, ticks) = run_probe("100ms", &[("sleep_ms", "250")], Duration::from_millis(1600));
    let sequences = sequences(&ticks);
    assert!(
        (2..=7).contains(&ticks.len()),
        "expected about 5 runs, got {sequences:?}"
    );
    for pair in ticks.windows(2) {
        assert!(
            pair[1].sequence - pair[0].sequence >= 3,
            "runs overlapped or a skipped tick was queued: {sequences:?}"
        );
    }
    assert_on_grid(&ticks, 100);
    assert!(
        run.stderr
            .contains("previous run still going; skipping this tick"),
        "skips must be logged: {}",
        run.stderr
    );
}

#[test]
fn a_trap_or_an_error_in_one_tick_does_not_stop_the_next() {
    let (run, ticks) = run_probe(
        "100ms",
        &[("trap_on", "2"), ("fail_on", "3")],
        Duration::from_millis(900),
    );
    let sequences = sequences(&ticks);
    assert!(
        sequences.starts_with(&[1, 2, 3, 4, 5]),
        "ticks after the trap and the error must run: {sequences:?}"
    );
    let failures: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("timer handler failed"))
        .collect();
    assert_eq!(failures.len(), 2, "exactly two failures: {failures:?}");
    assert!(failures[0].contains("component=probe") && failures[0].contains("sequence=2"));
    assert!(failures[0].contains("wasm trap"), "{}", failures[0]);
    assert!(
        run.stderr.contains("probe trapping on tick 2"),
        "the guest's panic message reaches stderr: {}",
        run.stderr
    );
    assert!(failures[1].contains("component=probe") && failures[1].contains("sequence=3"));
    assert!(
        failures[1].contains("handler returned an error: probe failing on tick 3"),
        "{}",
        failures[1]
    );
}

#[test]
fn a_looping_guest_does_not_stop_other_components_or_shutdown() {
    // `spinner` loops forever from its first tick; `probe` must keep its schedule, and SIGTERM
    // must still stop the host (the looping handler is abandoned after the grace period).
    let app = TestApp::new("loop")
        .trigger("timer", "spinner", "interval = \"100ms\"")
        .trigger("timer", "probe", "interval = \"100ms\"")
        .component(
            "spinner",
            &guest("probe-guest"),
            "variables = { loop_on = \"1\" }",
        )
        .component("probe", &guest("probe-guest"), "")
        .write();
    let run = run_host_for(
        &[
            "up",
            "--shutdown-timeout",
            "300ms",
            "-f",
            &manifest_arg(app.path()),
        ],
        Duration::from_millis(1200),
    );
    assert!(
        !run.success,
        "the looping handler outlived the shutdown deadline: {}",
        run.stderr
    );
    let probe = probe_ticks(&run.stdout, "probe");
    assert!(probe.len() >= 8, "probe kept ticking: {probe:?}");
    assert_eq!(
        probe_ticks(&run.stdout, "spinner").len(),
        1,
        "spinner ran once"
    );
    assert!(
        run.stderr.contains("component=spinner"),
        "skips are logged: {}",
        run.stderr
    );
    run.assert_stderr_has("stopped at the shutdown deadline (300ms, --shutdown-timeout) with handlers still running: `spinner` (1)");
}

#[test]
fn a_guest_that_asks_for_too_much_memory_fails_that_tick_only() {
    let (run, ticks) = run_probe(
        "100ms",
        &[("alloc_mb_on", "1"), ("alloc_mb", "1024")],
        Duration::from_millis(650),
    );
    let sequences = sequences(&ticks);
    assert!(sequences.starts_with(&[1, 2, 3]), "{sequences:?}");
    assert!(
        !run.stdout.contains("allocated"),
        "the 1 GiB allocation must fail"
    );
    assert!(
        !run.stdout.contains("done seq=1\n"),
        "tick 1 must not complete"
    );
    run.assert_stdout_has("done seq=2");
    assert!(
        run.stderr
            .lines()
            .any(|line| line.contains("timer handler failed") && line.contains("sequence=1")),
        "{}",
        run.stderr
    );
}

#[test]
fn shutdown_lets_handlers_in_flight_finish() {
    // Each run takes 300 ms, so at almost any moment a handler is in flight when SIGTERM comes.
    let (run, ticks) = run_probe("100ms", &[("sleep_ms", "300")], Duration::from_millis(550));
    let started = sequences(&ticks);
    assert!(!started.is_empty(), "no tick ran: {}", run.stderr);
    for sequence in &started {
        assert!(
            run.stdout
                .contains(&format!("[probe] done seq={sequence}\n")),
            "tick {sequence} started but did not finish: {}",
            run.stdout
        );
    }
}

#[test]
fn once_runs_each_component_once_and_names_the_one_that_trapped() {
    let app = probe_app("1h", &[("trap_on", "0")]);
    let run = run_host(&["up", "--once", "-f", &manifest_arg(app.path())]);
    assert!(!run.success, "a trapping component must fail --once");
    assert_eq!(probe_ticks(&run.stdout, "probe").len(), 1);
    assert!(
        run.stderr
            .trim_end()
            .ends_with("Error: timer component(s) failed: `probe`"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_example_builds_and_runs_once_with_every_component_including_the_raw_bindgen_one() {
    common::guests_dir();
    let manifest = workspace_root().join("examples/timer-hello/spin.toml");
    let run = run_host(&[
        "up",
        "--build",
        "--once",
        "-f",
        &manifest.display().to_string(),
    ]);
    assert!(run.success, "{}", run.stderr);
    for component in ["greeter", "counter", "raw-bindgen"] {
        run.assert_stderr_has(&format!(
            "building: cargo build --target wasm32-wasip2 --release component={component}"
        ));
    }
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        [
            "[greeter] Hello from a timer component",
            "[counter] counter tick #0 (0 ms late)",
            "[raw-bindgen] Fizz, from a plain wit-bindgen component",
        ]
    );
}

#[test]
fn variables_reach_the_guest_from_the_command_line_then_the_environment_then_the_default() {
    common::guests_dir();
    let manifest = workspace_root().join("examples/timer-hello/spin.toml");
    let manifest = manifest.display().to_string();
    let once = ["up", "--once", "-f", manifest.as_str()];
    let greeting = |run: common::Run| {
        assert!(run.success, "{}", run.stderr);
        run.stdout
            .lines()
            .find_map(|line| line.strip_prefix("[greeter] "))
            .map(str::to_owned)
            .expect("the greeter printed its greeting")
    };
    let from_env = [("SPIN_VARIABLE_GREETING", "from the environment")];
    let cli = ["--variable", "greeting=from the command line"];

    assert_eq!(greeting(run_host(&once)), "Hello from a timer component");
    assert_eq!(
        greeting(common::run_host_with_env(&once, &from_env)),
        "from the environment"
    );
    assert_eq!(
        greeting(common::run_host_with_env(
            &[&once[..], &cli[..]].concat(),
            &from_env
        )),
        "from the command line"
    );
}

#[test]
fn an_unknown_variable_on_the_command_line_is_a_start_up_error() {
    common::guests_dir();
    let manifest = workspace_root().join("examples/timer-hello/spin.toml");
    let run = run_host(&[
        "up",
        "--once",
        "-f",
        &manifest.display().to_string(),
        "--variable",
        "nope=1",
    ]);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("declares no variable `nope` in [variables]"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing may run: {}", run.stdout);
}

#[test]
fn a_missing_component_file_is_refused_before_anything_runs() {
    let app = TestApp::new("bad")
        .trigger("timer", "missing", "interval_secs = 1")
        .component("missing", "does-not-exist.wasm", "")
        .write();
    let run = run_host(&["up", "--once", "-f", &manifest_arg(app.path())]);
    assert!(!run.success);
    run.assert_stderr_has("loading component `missing`");
    run.assert_stderr_has("does-not-exist.wasm");
}

/// `up --build` with `CARGO_TARGET_DIR` set builds the `.wasm` where `source` does not point;
/// the error says so instead of a bare "No such file".
#[test]
fn a_missing_component_file_names_cargo_target_dir_when_it_is_set() {
    let app = TestApp::new("moved")
        .trigger("timer", "moved", "interval_secs = 1")
        .component("moved", "target/wasm32-wasip2/release/moved.wasm", "")
        .write();
    let run = common::run_host_with_env(
        &["up", "--once", "-f", &manifest_arg(app.path())],
        &[("CARGO_TARGET_DIR", "/elsewhere/target")],
    );
    assert!(!run.success);
    run.assert_stderr_has(
        "CARGO_TARGET_DIR is set to /elsewhere/target, so cargo writes its output there, \
             not where `source` points: unset CARGO_TARGET_DIR, or point `source` into it",
    );
    let without = run_host(&["up", "--once", "-f", &manifest_arg(app.path())]);
    without.assert_stderr_lacks("CARGO_TARGET_DIR");
}

/// Logs piped to a file or another program carry no ANSI colour codes, `NO_COLOR` or not.
#[test]
fn logs_to_a_pipe_are_plain_text() {
    let app = probe_app("1h", &[("trap_on", "0")]);
    let mut command = common::host_command(&["up", "--once", "-f", &manifest_arg(app.path())]);
    command.env_remove("NO_COLOR");
    let run: common::Run = command.output().expect("running the host").into();
    assert!(
        run.stderr.contains("timer handler failed"),
        "the run logs through tracing: {}",
        run.stderr
    );
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
}

/// `--log-format json` (or `SPIN_TRIGGER_LOG_FORMAT=json`): every line the host logs to stderr
/// is one JSON object with the same fields as the text, the final error included. (Component
/// output keeps its `[component]` prefix.)
#[test]
fn json_logs_are_one_object_per_line() {
    let app = probe_app("1h", &[("trap_on", "0")]);
    let manifest = manifest_arg(app.path());
    for run in [
        run_host(&["up", "--once", "-f", &manifest, "--log-format", "json"]),
        common::run_host_with_env(
            &["up", "--once", "-f", &manifest],
            &[("SPIN_TRIGGER_LOG_FORMAT", "json")],
        ),
    ] {
        assert!(!run.success, "the probe traps on tick 0");
        let lines: Vec<serde_json::Value> = run
            .stderr
            .lines()
            .filter(|line| !line.starts_with("[probe] "))
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line:?}"))
            })
            .collect();
        let failed = lines
            .iter()
            .find(|line| {
                line["message"]
                    .as_str()
                    .is_some_and(|message| message.starts_with("timer handler failed"))
            })
            .unwrap_or_else(|| panic!("no handler failure in {lines:?}"));
        assert_eq!(failed["level"], "ERROR");
        assert_eq!(failed["component"], "probe");
        assert!(failed["timestamp"].is_string(), "{failed}");
        let last = lines.last().unwrap();
        assert_eq!(last["message"], "the host stopped", "{last}");
        assert!(
            last["error"]
                .as_str()
                .is_some_and(|error| error.contains("`probe`")),
            "{last}"
        );
    }
    let bad = run_host(&["up", "--once", "-f", &manifest, "--log-format", "yaml"]);
    assert!(!bad.success);
    assert!(
        bad.stderr
            .contains("invalid value 'yaml' for '--log-format"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_component_that_exports_no_timer_world_is_refused_naming_what_it_exports() {
    let app = TestApp::new("wrong-world")
        .trigger("timer", "echo", "interval_secs = 1")
        .component("echo", &guest("redis-echo"), "")
        .write();
    let run = run_host(&["up", "--once", "-f", &manifest_arg(app.path())]);
    assert!(!run.success);
    assert!(run.stdout.is_empty(), "nothing may run: {}", run.stdout);
    run.assert_stderr_has("component `echo` is not a timer component: it exports [fermyon:spin/inbound-redis], but a timer component exports one of: `spin-trigger:sdk/timer-handler@0.4.0` (this project's timer world), `spin-trigger:sdk/timer-handler@0.2.0` (this project's timer world, 0.2.0), `spin-trigger:sdk/timer-handler@0.1.0` (this project's timer world, 0.1.0), `handle-timer-request` (Spin's timer world)");
}

#[test]
fn files_mount_globs_directories_and_single_files_read_only_and_nothing_else() {
    let guest = guest("probe-guest");
    let reads = "/assets/hello.txt,/assets/secret.txt,/assets/nested/deep.txt,/data/x.txt,/etc/single.txt,/single.txt";
    let app = TestApp::new("files")
        .trigger("timer", "reader", "interval_secs = 1")
        .trigger("timer", "bare", "interval_secs = 1")
        .component(
            "reader",
            &guest,
            &format!(
                "files = [\"assets/**/*.txt\", {{ source = \"data\", destination = \"/data\" }}, \
                 {{ source = \"single.txt\", destination = \"/etc/single.txt\" }}]\n\
                 exclude_files = [\"assets/secret.txt\"]\nvariables = {{ read_files = \"{reads}\" }}"
            ),
        )
        .component(
            "bare",
            &guest,
            "variables = { read_files = \"/assets/hello.txt,/data/x.txt\" }",
        )
        .write();
    let write = |path: &str, text: &str| {
        let path = app.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("assets/hello.txt", "hello");
    write("assets/secret.txt", "secret");
    write("assets/nested/deep.txt", "deep");
    write("data/x.txt", "x");
    write("single.txt", "single");
    let run = app.run(&["--once"]);
    assert!(run.success, "{}", run.stderr);
    let files: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.contains("] file "))
        .collect();
    assert_eq!(
        files,
        [
            "[reader] file /assets/hello.txt: hello",
            "[reader] file /assets/secret.txt: unreadable",
            "[reader] file /assets/nested/deep.txt: deep",
            "[reader] file /data/x.txt: x",
            "[reader] file /etc/single.txt: single",
            "[reader] file /single.txt: unreadable",
            "[bare] file /assets/hello.txt: unreadable",
            "[bare] file /data/x.txt: unreadable",
        ]
    );
}

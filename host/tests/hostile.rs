//! Guests that ask the host for too much: each attack ends with an error for that call, the
//! host stays within its memory, and the next event runs. Isolation: a component reaches only
//! the SQLite database it lists. Deadlines: a statement ends at `handler_timeout`. Memory: a
//! result larger than the instance's `max_memory` is refused, not gathered. Nothing one
//! instance leaves on a pooled connection reaches the next.

mod common;

use std::time::{Duration, Instant};

use common::{AppDir, TestApp, guest};

/// An app whose one timer component (`hostile`, every `interval`) makes `attack` on the
/// default database, with `path` as its target and `extra` trigger fields.
fn hostile_app(attack: &str, path: &str, interval: &str, extra: &str) -> AppDir {
    TestApp::new("hostile")
        .trigger(
            "timer",
            "hostile",
            &format!("interval = \"{interval}\"\n{extra}"),
        )
        .component(
            "hostile",
            &guest("hostile-guest"),
            &format!(
                "sqlite_databases = [\"default\"]\n\
                 variables = {{ attack = \"{attack}\", path = \"{path}\" }}"
            ),
        )
        .write()
}

#[test]
fn a_component_reaches_no_sqlite_file_but_the_database_it_lists() {
    let state = tempfile::tempdir().expect("a state directory");
    let state_dir = state.path().display().to_string();
    let key_values = state.path().join("sqlite_key_value.db");
    let copy = state.path().join("copy.db");
    for (attack, path, refusal) in [
        ("attach", key_values.display().to_string(), "ATTACH"),
        ("vacuum-into", copy.display().to_string(), "not authorized"),
        ("pragma", String::new(), "PRAGMA journal_mode"),
    ] {
        let app = hostile_app(attack, &path, "1h", "");
        // A key in the key-value store the component does not list, for ATTACH to look for.
        let run = app.run(&[
            "--once",
            "--state-dir",
            &state_dir,
            "--key-value",
            "secret=1",
        ]);
        assert!(run.success, "{attack}: {}", run.stderr);
        let line = run
            .stdout
            .lines()
            .find(|line| line.contains(&format!("attack={attack}")))
            .unwrap_or_else(|| panic!("{attack}: no outcome in {}", run.stdout));
        assert!(
            line.contains("refused") && line.contains(refusal),
            "{attack}: {line}"
        );
    }
    assert!(
        !copy.exists(),
        "VACUUM INTO wrote a file outside the database"
    );
}

#[test]
fn an_endless_statement_ends_at_the_deadline_and_the_next_tick_runs() {
    let app = hostile_app("endless", "", "300ms", "handler_timeout = \"1s\"");
    let run = app.run_for(Duration::from_secs(5));
    assert!(run.success, "the host stopped cleanly: {}", run.stderr);
    let stopped = run
        .stderr
        .matches("the handler ran past its 1s deadline")
        .count()
        + run.stdout.matches("attack=endless refused").count();
    assert!(
        stopped >= 2,
        "each endless statement ended at the 1s deadline and the next tick ran ({stopped}): {}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_result_larger_than_max_memory_is_refused_and_the_host_stays_small() {
    let app = hostile_app("huge-result", "", "500ms", "max_memory = \"64MiB\"");
    let host = app.start();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut largest_kib = 0;
    while host.stdout_lines_with("attack=huge-result") == 0 {
        assert!(Instant::now() < deadline, "no outcome within two minutes");
        largest_kib = largest_kib.max(host.rss_kib());
        std::thread::sleep(Duration::from_millis(10));
    }
    largest_kib = largest_kib.max(host.rss_kib());
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|line| line.contains("attack=huge-result"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains("refused") && line.contains("max_memory"),
        "{line}"
    );
    // 3 GB asked for; the host gathers at most the instance's 64 MiB of it.
    assert!(
        largest_kib < 512 * 1024,
        "the host grew to {largest_kib} KiB gathering the result"
    );
}

#[test]
fn a_temp_trigger_left_on_a_connection_does_not_reach_the_next_instance() {
    let app = hostile_app("temp-trigger", "", "200ms", "");
    let host = app.start();
    assert!(
        host.wait_for_stdout_lines("rows in t:", 3, Duration::from_secs(60)),
        "three ticks did not run"
    );
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let counts: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|line| line.split("rows in t: ").nth(1))
        .collect();
    assert_eq!(
        &counts[..3],
        ["1", "2", "3"],
        "a trigger an earlier instance left emptied the table: {}",
        run.stdout
    );
}

#[test]
fn a_refused_request_is_answered_while_the_guest_still_writes_its_body() {
    // The guest keeps its upload open until the answer comes; a refusal that waited for the
    // body's end would hold it until the deadline.
    let app = hostile_app(
        "refused-http",
        "127.0.0.1:9",
        "1h",
        "handler_timeout = \"20s\"",
    );
    let started = Instant::now();
    let run = app.run(&["--once"]);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("attack=refused-http refused: ErrorCode::HttpRequestDenied"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    run.assert_stderr_has("outbound HTTP request refused");
    println!("refused in {:?}", started.elapsed());
}

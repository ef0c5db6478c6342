//! The admin endpoint (`up --admin-addr`) and its client (`spin-trigger-host ctl`), with real
//! processes: an operator lists, pauses, resumes and runs a timer now; requests without the
//! bearer token are refused; a host without a token, or with a short one, does not start. The
//! pause of a coordinated timer, held in Redis for every host, is in coordination.rs.

mod common;

use std::time::Duration;

use common::{
    AppDir, HostProcess, Run, TestApp, free_port, guest, http_request, run_ctl, wait_for_port,
};

const TOKEN: &str = "an-operators-token-0123456789";

fn probe_app(interval: &str) -> AppDir {
    TestApp::new("admin")
        .trigger(
            "timer",
            "probe",
            &format!("id = \"probe\"\ninterval = \"{interval}\""),
        )
        .component("probe", &guest("probe-guest"), "")
        .write()
}

/// Starts the app with its admin endpoint on a free port; returns the host and the address,
/// once the endpoint answers.
fn start_with_admin(app: &AppDir) -> (HostProcess, String) {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let host = app.start_with(
        &["--admin-addr", &address],
        &[("SPIN_TRIGGER_ADMIN_TOKEN", TOKEN)],
    );
    host.wait_until_ready();
    wait_for_port(port);
    (host, address)
}

fn ctl(address: &str, token: &str, args: &[&str]) -> Run {
    run_ctl(address, token, args)
}

fn ok(run: Run) -> String {
    assert!(run.success, "ctl failed: {}{}", run.stdout, run.stderr);
    run.stdout
}

#[test]
fn an_operator_lists_pauses_runs_now_and_resumes_a_timer() {
    let app = probe_app("300ms");
    let (host, address) = start_with_admin(&app);
    assert!(host.wait_for_stdout_lines("[probe] done seq=", 2, Duration::from_secs(20)));

    let list = ok(ctl(&address, TOKEN, &["list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("TRIGGER  SCHEDULE     PAUSED  NEXT DUE"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("probe    every 300ms  no      20"),
        "{list}"
    );
    assert!(
        lines[1].contains("  ok at 20") && lines[1].contains("(1 attempt, due "),
        "{list}"
    );

    assert_eq!(
        ok(ctl(&address, TOKEN, &["pause", "probe"])),
        "paused probe\n"
    );
    // A tick already past its pause check may still finish.
    std::thread::sleep(Duration::from_millis(400));
    let before = host.stdout_lines_with("[probe] tick seq=");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        host.stdout_lines_with("[probe] tick seq="),
        before,
        "no tick runs while paused"
    );
    let list = ok(ctl(&address, TOKEN, &["list"]));
    assert!(list.contains("yes (this host)"), "{list}");

    assert_eq!(
        ok(ctl(&address, TOKEN, &["run", "probe"])),
        "running probe now\n"
    );
    assert!(
        host.wait_for_stdout_lines("[probe] tick seq=0 ", 1, Duration::from_secs(10)),
        "run-now runs a tick, paused or not"
    );

    assert_eq!(
        ok(ctl(&address, TOKEN, &["resume", "probe"])),
        "resumed probe\n"
    );
    let resumed = host.stdout_lines_with("[probe] tick seq=");
    assert!(
        host.wait_for_stdout_lines("[probe] tick seq=", resumed + 2, Duration::from_secs(10)),
        "ticks run again once resumed"
    );

    let unknown = ctl(&address, TOKEN, &["pause", "nope"]);
    assert!(!unknown.success);
    assert!(
        unknown
            .stderr
            .contains("answered 404 Not Found: no trigger `nope`; these take control: probe"),
        "{}",
        unknown.stderr
    );
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_has("timer paused by an operator");
    run.assert_stderr_has("running a tick now, as an operator asked");
}

#[test]
fn requests_without_the_bearer_token_are_refused() {
    let app = probe_app("1h");
    let (host, address) = start_with_admin(&app);
    let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
    let request = |method: &str, path: &str, authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization
            .map(|value| vec![("Authorization", value)])
            .unwrap_or_default();
        http_request(port, method, path, &headers).expect("an answer")
    };
    let bearer = format!("Bearer {TOKEN}");
    for refused in [
        request("GET", "/triggers", None),
        request("POST", "/triggers/probe/pause", None),
        request(
            "GET",
            "/triggers",
            Some("Bearer an-operators-token-012345678"),
        ),
        request("GET", "/triggers", Some(TOKEN)),
        request("GET", "/triggers", Some(&format!("Basic {TOKEN}"))),
    ] {
        assert_eq!(
            refused,
            (
                401,
                "{\"error\":\"a bearer token is required\"}\n".to_owned()
            )
        );
    }
    let (status, body) = request("GET", "/triggers", Some(&bearer));
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed[0]["trigger"], "probe");
    assert_eq!(listed[0]["paused"], false);
    assert_eq!(listed[0]["pause_scope"], "process");
    assert!(listed[0]["next_due_ms"].as_u64().is_some(), "{body}");
    assert_eq!(listed[0]["last_run"], serde_json::Value::Null);
    assert_eq!(
        request("GET", "/triggers/probe/pause", Some(&bearer)).0,
        405,
        "changes are POSTs"
    );
    assert_eq!(request("GET", "/elsewhere", Some(&bearer)).0, 404);

    let wrong = ctl(&address, "another-token-of-enough-length", &["list"]);
    assert!(!wrong.success);
    assert!(
        wrong
            .stderr
            .contains("answered 401 Unauthorized: a bearer token is required"),
        "{}",
        wrong.stderr
    );
    let short = ctl(&address, "short", &["list"]);
    assert!(!short.success);
    assert!(
        short
            .stderr
            .contains("SPIN_TRIGGER_ADMIN_TOKEN: the admin token is 5 characters; use at least 16"),
        "{}",
        short.stderr
    );
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn a_host_with_an_admin_address_and_no_usable_token_does_not_start() {
    let app = probe_app("1h");
    let address = format!("127.0.0.1:{}", free_port());
    let without = app.run_with_env(&["--admin-addr", &address], &[]);
    assert!(!without.success);
    without.assert_stderr_has(
        "--admin-addr needs a token: set SPIN_TRIGGER_ADMIN_TOKEN or --admin-token-file",
    );
    let token_file = app.path().join("token");
    std::fs::write(&token_file, "tiny\n").unwrap();
    let short = app.run_with_env(
        &[
            "--admin-addr",
            &address,
            "--admin-token-file",
            &token_file.display().to_string(),
        ],
        &[],
    );
    assert!(!short.success);
    short.assert_stderr_has("the admin token is 4 characters; use at least 16");
    short.assert_stderr_has(&format!("--admin-token-file {}", token_file.display()));
}

/// With `catch_up`, ticks an operator's pause skipped are not caught up after a restart (they
/// were not missed while no host ran), and a run-now is not recorded as a tick of the schedule.
#[test]
fn ticks_skipped_while_paused_and_runs_now_are_not_caught_up_later() {
    let app = TestApp::new("admin")
        .trigger(
            "timer",
            "probe",
            "id = \"probe\"\ninterval = \"300ms\"\ncatch_up = \"1m\"",
        )
        .component("probe", &guest("probe-guest"), "")
        .write();
    let (host, address) = start_with_admin(&app);
    assert!(host.wait_for_stdout_lines("[probe] done seq=", 2, Duration::from_secs(20)));
    ok(ctl(&address, TOKEN, &["pause", "probe"]));
    let paused_at = now_ms();
    std::thread::sleep(Duration::from_secs(2));
    ok(ctl(&address, TOKEN, &["run", "probe"]));
    assert!(host.wait_for_stdout_lines("[probe] tick seq=0 ", 1, Duration::from_secs(10)));
    let stopped_at = now_ms();
    let first = host.stop();
    assert!(first.success, "{}", first.stderr);
    let recorded: u64 = std::fs::read_to_string(app.path().join(".spin/timers/probe.last"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        recorded % 300,
        0,
        "only the schedule's ticks are recorded: {recorded}"
    );
    assert!(
        recorded >= stopped_at - 1000,
        "the paused ticks were recorded as skipped: {recorded}, stopped at {stopped_at}"
    );

    let (host, _) = start_with_admin(&app);
    std::thread::sleep(Duration::from_millis(1500));
    let second = host.stop();
    assert!(second.success, "{}", second.stderr);
    let late: Vec<u64> = common::probe_ticks(&second.stdout, "probe")
        .into_iter()
        .filter(|tick| tick.late)
        .map(|tick| tick.scheduled_ms)
        .collect();
    assert!(
        late.iter().all(|ms| *ms > stopped_at - 600),
        "only ticks due while no host ran are caught up, none paused over ({paused_at}..{stopped_at}): {late:?}"
    );
}

/// Pausing stops a failing tick's retries: no attempt starts after the pause.
#[test]
fn a_pause_stops_the_retries_of_a_failing_tick() {
    let app = TestApp::new("admin")
        .trigger(
            "timer",
            "probe",
            "id = \"probe\"\ninterval = \"1h\"\nmax_attempts = 10\nretry_backoff = \"500ms\"",
        )
        .component(
            "probe",
            &guest("probe-guest"),
            "variables = { fail_attempts = \"100\" }",
        )
        .write();
    let (host, address) = start_with_admin(&app);
    ok(ctl(&address, TOKEN, &["run", "probe"]));
    assert!(host.wait_for_stdout_lines(
        "[probe] failed seq=0 attempt=1",
        1,
        Duration::from_secs(10)
    ));
    ok(ctl(&address, TOKEN, &["pause", "probe"]));
    std::thread::sleep(Duration::from_millis(2500));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let attempts = common::probe_ticks(&run.stdout, "probe").len();
    assert!(attempts <= 2, "no attempt after the pause: {}", run.stdout);
    run.assert_stderr_has("paused: attempt ");
}

/// A trigger id with a space or a slash is one path segment: `ctl` encodes it and the endpoint
/// decodes it.
#[test]
fn trigger_ids_with_spaces_and_slashes_are_controlled_by_name() {
    let app = TestApp::new("admin")
        .trigger(
            "timer",
            "probe",
            "id = \"nightly report\"\ninterval = \"1h\"",
        )
        .trigger("timer", "probe", "id = \"team/cleanup\"\ninterval = \"1h\"")
        .component("probe", &guest("probe-guest"), "")
        .write();
    let (host, address) = start_with_admin(&app);
    assert_eq!(
        ok(ctl(&address, TOKEN, &["pause", "nightly report"])),
        "paused nightly report\n"
    );
    assert_eq!(
        ok(ctl(&address, TOKEN, &["pause", "team/cleanup"])),
        "paused team/cleanup\n"
    );
    let list = ok(ctl(&address, TOKEN, &["list"]));
    assert_eq!(list.matches("yes (this host)").count(), 2, "{list}");
    assert!(host.stop().success);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

//! A timer's policies end to end, with real host processes running the probe guest: `overlap`
//! (`buffer_one`, `allow`), `max_attempts` with `retry_backoff`, `jitter`, `start_at` /
//! `end_at`, and `catch_up` after the host was down (coordinated across three hosts in
//! coordination.rs).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{AppDir, ProbeTick, TestApp, guest, probe_ticks};

/// An app with one `probe` component on `interval`, the trigger's `policy` fields added, and the
/// probe's `variables`.
fn probe_app(interval: &str, policy: &str, variables: &str) -> AppDir {
    TestApp::new("policies")
        .trigger(
            "timer",
            "probe",
            &format!("id = \"probe\"\ninterval = \"{interval}\"\n{policy}"),
        )
        .component(
            "probe",
            &guest("probe-guest"),
            &format!("variables = {{ {variables} }}"),
        )
        .write()
}

/// Runs the app for `window` and returns the host's output with the probe's ticks.
fn run(app: &AppDir, window: Duration) -> (common::Run, Vec<ProbeTick>) {
    let run = app.run_for(window);
    assert!(run.success, "host failed: {}", run.stderr);
    let ticks = probe_ticks(&run.stdout, "probe");
    (run, ticks)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `buffer_one`: a tick that comes while the slow run goes waits and runs as soon as it ends, so
/// the runs follow each other without a pause; one tick waits at most, so those coming while it
/// waits are skipped.
#[test]
fn overlap_buffer_one_runs_the_tick_that_waited_when_the_slow_run_ends() {
    // Each run takes 250 ms at a 100 ms interval.
    let app = probe_app("100ms", "overlap = \"buffer_one\"", "sleep_ms = \"250\"");
    let (run, ticks) = run(&app, Duration::from_millis(2000));
    let sequences: Vec<u64> = ticks.iter().map(|tick| tick.sequence).collect();
    assert!(ticks.len() >= 5, "expected about 7 runs: {sequences:?}");
    for pair in ticks.windows(2) {
        let gap = pair[1].fired_ms - pair[0].fired_ms;
        assert!(
            (245..=400).contains(&gap),
            "each run starts when the one before ends, 250 ms later (runs never overlap): {gap} ms between {:?} and {:?}",
            pair[0],
            pair[1]
        );
        assert!(
            pair[1].fired_ms - pair[1].scheduled_ms >= 100,
            "the tick waited for the run before it, rather than being skipped for a later one: {:?}",
            pair[1]
        );
        assert!(
            pair[1].sequence > pair[0].sequence,
            "each tick runs once, in order: {sequences:?}"
        );
    }
    run.assert_stderr_has("previous run still going; skipping this tick");
}

/// `allow` with `max_in_flight = 2`: ticks run side by side, never three at once.
#[test]
fn overlap_allow_runs_ticks_side_by_side_up_to_max_in_flight() {
    let app = probe_app(
        "100ms",
        "overlap = \"allow\"\nmax_in_flight = 2",
        "sleep_ms = \"250\"",
    );
    let (run, ticks) = run(&app, Duration::from_millis(2000));
    let fired: Vec<u64> = ticks.iter().map(|tick| tick.fired_ms).collect();
    assert!(
        ticks.len() >= 9,
        "two at a time, about 12 runs in 2 s: {ticks:?}"
    );
    assert!(
        fired.windows(2).any(|pair| pair[1] - pair[0] < 200),
        "some runs overlapped: {fired:?}"
    );
    assert!(
        fired.windows(3).all(|three| three[2] - three[0] >= 240),
        "never three runs at once (a third starts only when the first ended): {fired:?}"
    );
    run.assert_stderr_has("previous run still going; skipping this tick");
}

/// `overlap = "allow"` with `max_per_second = 20` at a 10 ms interval: about 20 runs a second
/// (within 10 % over 3 s), the other ticks skipped.
#[test]
fn max_per_second_caps_a_timer_that_allows_overlap() {
    let app = probe_app(
        "10ms",
        "overlap = \"allow\"\nmax_in_flight = 4\nmax_per_second = 20",
        "",
    );
    let host = app.start_ready();
    std::thread::sleep(Duration::from_secs(1));
    let (start, at) = (
        host.stdout_lines_with("[probe] tick seq="),
        std::time::Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let runs = host.stdout_lines_with("[probe] tick seq=") - start;
    let rate = runs as f64 / at.elapsed().as_secs_f64();
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!((18.0..=22.0).contains(&rate), "{rate:.1} runs a second");
}

/// `max_attempts = 3` with `retry_backoff = "200ms"`: a tick failing twice is tried a second
/// time 200 ms after its first failure and a third 400 ms after its second, then succeeds; a
/// tick failing every attempt is tried twice (`max_attempts = 2`, 100 ms apart) and the next
/// tick starts again at its first attempt.
#[test]
fn a_failed_tick_is_tried_again_after_a_doubling_backoff_up_to_max_attempts() {
    let app = TestApp::new("retries")
        .trigger(
            "timer",
            "probe",
            "interval = \"2s\"\nmax_attempts = 3\nretry_backoff = \"200ms\"",
        )
        .trigger(
            "timer",
            "hopeless",
            "interval = \"1s\"\nmax_attempts = 2\nretry_backoff = \"100ms\"",
        )
        .component(
            "probe",
            &guest("probe-guest"),
            "variables = { fail_attempts = \"2\" }",
        )
        .component(
            "hopeless",
            &guest("probe-guest"),
            "variables = { fail_attempts = \"100\" }",
        )
        .write();
    let (run, ticks) = run(&app, Duration::from_millis(3300));
    let attempts: Vec<(u64, u64)> = ticks
        .iter()
        .map(|tick| (tick.sequence, tick.attempt))
        .collect();
    assert_eq!(attempts, [(1, 1), (1, 2), (1, 3)], "{ticks:?}");
    let waits = [
        ticks[1].fired_ms - ticks[0].fired_ms,
        ticks[2].fired_ms - ticks[1].fired_ms,
    ];
    assert!(
        (200..350).contains(&waits[0]) && (400..550).contains(&waits[1]),
        "200 ms, then 400 ms between attempts: {waits:?}"
    );
    assert!(
        ticks
            .iter()
            .all(|tick| tick.scheduled_ms == ticks[0].scheduled_ms),
        "every attempt carries the tick's scheduled time: {ticks:?}"
    );
    run.assert_stdout_has("[probe] done seq=1\n");
    run.assert_stderr_has("attempt=1 max_attempts=3");
    run.assert_stderr_has("; trying again in 200ms");
    run.assert_stderr_has("; trying again in 400ms");

    let hopeless: Vec<(u64, u64)> = probe_ticks(&run.stdout, "hopeless")
        .iter()
        .map(|tick| (tick.sequence, tick.attempt))
        .collect();
    assert!(
        hopeless.starts_with(&[(1, 1), (1, 2), (2, 1), (2, 2)]),
        "two attempts per tick, then the next tick: {hopeless:?}"
    );
    assert!(
        hopeless.iter().all(|(_, attempt)| *attempt <= 2),
        "{hopeless:?}"
    );
}

/// `jitter = "600ms"` at a 1 s interval: each tick fires up to 600 ms after it is due, spread;
/// two hosts on the same grid (`catch_up` anchors it to the epoch) fire each tick at the same
/// offset.
#[test]
fn jitter_delays_each_tick_by_an_amount_every_host_agrees_on() {
    let app = probe_app("1s", "jitter = \"600ms\"\ncatch_up = \"1s\"", "");
    let state = |name: &str| app.path().join(name).display().to_string();
    let (first_state, second_state) = (state("state-a"), state("state-b"));
    let hosts = [
        app.start_with(&["--state-dir", &first_state], &[]),
        app.start_with(&["--state-dir", &second_state], &[]),
    ];
    std::thread::sleep(Duration::from_millis(6500));
    let [first, second] = hosts.map(|host| {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
        probe_ticks(&run.stdout, "probe")
    });
    let offsets = |ticks: &[ProbeTick]| -> std::collections::BTreeMap<u64, u64> {
        ticks
            .iter()
            .filter(|tick| !tick.late)
            .map(|tick| (tick.scheduled_ms, tick.fired_ms - tick.scheduled_ms))
            .collect()
    };
    let (first, second) = (offsets(&first), offsets(&second));
    assert!(first.len() >= 4, "{first:?}");
    assert!(
        first.values().all(|offset| *offset < 700),
        "within the jitter (and a little for the host's own delay): {first:?}"
    );
    let (least, most) = (first.values().min().unwrap(), first.values().max().unwrap());
    assert!(
        most - least >= 50,
        "offsets are spread, not one delay: {first:?}"
    );
    let shared: Vec<(u64, u64, u64)> = first
        .iter()
        .filter_map(|(tick, offset)| second.get(tick).map(|other| (*tick, *offset, *other)))
        .collect();
    assert!(shared.len() >= 3, "{first:?} {second:?}");
    assert!(
        shared
            .iter()
            .all(|(_, offset, other)| offset.abs_diff(*other) <= 40),
        "both hosts fire each tick at the same offset: (tick, here, there) {shared:?}"
    );
}

/// `start_at` and `end_at`: only ticks due between them fire, and past `end_at` the timer stops.
#[test]
fn only_ticks_between_start_at_and_end_at_fire() {
    let start = now_ms() + 1500;
    let end = start + 1500;
    let rfc3339 = |ms: u64| {
        chrono::DateTime::<chrono::Utc>::from(UNIX_EPOCH + Duration::from_millis(ms))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let app = probe_app(
        "250ms",
        &format!(
            "start_at = \"{}\"\nend_at = \"{}\"",
            rfc3339(start),
            rfc3339(end)
        ),
        "",
    );
    let (run, ticks) = run(&app, Duration::from_millis(4500));
    let scheduled: Vec<u64> = ticks.iter().map(|tick| tick.scheduled_ms).collect();
    assert!(
        (4..=7).contains(&ticks.len()),
        "about six ticks in the 1.5 s between: {scheduled:?}"
    );
    assert!(
        scheduled.iter().all(|ms| (start..=end).contains(ms)),
        "every tick is due between {start} and {end}: {scheduled:?}"
    );
    run.assert_stderr_has("past the timer's `end_at`: it fires no more");
}

/// `catch_up = "3s"`: a host that was down for about six ticks runs, at start, the ticks missed
/// in the last 3 s (not those before), each once, oldest first and marked late; then its
/// schedule goes on without a gap. The last completed tick is kept in the state directory.
#[test]
fn catch_up_runs_the_ticks_missed_within_its_window_once_each_at_start() {
    let app = probe_app("1s", "catch_up = \"3s\"", "");
    let (first_run, before) = run(&app, Duration::from_millis(2600));
    let last_before = before
        .last()
        .expect("ticks before the downtime")
        .scheduled_ms;
    assert!(before.iter().all(|tick| !tick.late), "{before:?}");
    let recorded = std::fs::read_to_string(app.path().join(".spin/timers/probe.last"))
        .expect("the last completed tick, in the state directory");
    assert_eq!(
        recorded.trim(),
        last_before.to_string(),
        "{}",
        first_run.stderr
    );

    std::thread::sleep(Duration::from_secs(6));
    let restarted_at = now_ms();
    let (second_run, after) = run(&app, Duration::from_millis(2500));
    let late: Vec<u64> = after
        .iter()
        .filter(|tick| tick.late)
        .map(|tick| tick.scheduled_ms)
        .collect();
    let on_time: Vec<u64> = after
        .iter()
        .filter(|tick| !tick.late)
        .map(|tick| tick.scheduled_ms)
        .collect();
    assert!(
        (2..=4).contains(&late.len()),
        "the 3 s window holds about three missed ticks: {late:?}\n{}",
        second_run.stderr
    );
    assert!(
        late.iter()
            .all(|ms| *ms + 3000 + 1000 >= restarted_at && *ms > last_before + 2000),
        "only ticks within the window, not the oldest missed ones (last before: {last_before}, restarted at {restarted_at}): {late:?}"
    );
    let mut all = late.clone();
    all.extend(&on_time);
    assert!(
        all.windows(2).all(|pair| pair[1] == pair[0] + 1000),
        "late ticks oldest first, then the schedule from the next, each once, without a gap: late {late:?}, on time {on_time:?}"
    );
    assert!(
        after
            .iter()
            .filter(|tick| tick.late)
            .all(|tick| tick.sequence == 0 && tick.attempt == 1),
        "{after:?}"
    );
    second_run.assert_stderr_has("catching up on ticks missed while no host ran");
}

/// Left out, every policy is its default: the host behaves as before they existed, with no
/// record kept in the state directory.
#[test]
fn a_timer_without_policies_keeps_no_record_and_skips_overlapping_ticks() {
    let app = probe_app("100ms", "", "sleep_ms = \"250\"");
    let (run, ticks) = run(&app, Duration::from_millis(1200));
    assert!(
        ticks
            .windows(2)
            .all(|pair| pair[1].sequence - pair[0].sequence >= 3),
        "{ticks:?}"
    );
    assert!(ticks.iter().all(|tick| tick.attempt == 1 && !tick.late));
    run.assert_stderr_has("previous run still going; skipping this tick");
    assert!(
        !app.path().join(".spin/timers").exists(),
        "no catch-up record without catch_up"
    );
}

/// The state directory's record of the last completed tick, as the probe app keeps it.
fn recorded_last(app: &AppDir) -> u64 {
    std::fs::read_to_string(app.path().join(".spin/timers/probe.last"))
        .expect("the last completed tick, in the state directory")
        .trim()
        .parse()
        .expect("a time in ms")
}

/// A handler slower than its interval cannot keep the timer catching up: `catch_up` runs the
/// ticks missed up to its start, then the schedule goes on, on time.
#[test]
fn catching_up_ends_even_when_the_handler_is_slower_than_the_interval() {
    let app = probe_app("100ms", "catch_up = \"1s\"", "sleep_ms = \"150\"");
    std::fs::create_dir_all(app.path().join(".spin/timers")).unwrap();
    std::fs::write(
        app.path().join(".spin/timers/probe.last"),
        (now_ms() - 5000).to_string(),
    )
    .unwrap();
    let (run, ticks) = run(&app, Duration::from_millis(4000));
    let late = ticks.iter().filter(|tick| tick.late).count();
    assert!(
        (5..=12).contains(&late),
        "about ten ticks in the 1 s window were caught up: {ticks:?}"
    );
    assert!(
        ticks.iter().skip(late).all(|tick| !tick.late) && ticks.len() > late + 3,
        "then ticks on time, not more catching up: {ticks:?}\n{}",
        run.stderr
    );
}

/// Retries that shutdown cuts short leave the tick unrecorded, so the next start catches it
/// up; it is not taken for done.
#[test]
fn a_tick_whose_retries_shutdown_cut_short_is_caught_up_at_the_next_start() {
    let app = probe_app(
        "1s",
        "catch_up = \"1m\"\nmax_attempts = 3\nretry_backoff = \"5s\"",
        "fail_attempts = \"1\"",
    );
    let host = app.start_ready();
    assert!(host.wait_for_stdout_lines("[probe] failed seq=", 1, Duration::from_secs(10)));
    // Written at the first start, before any tick.
    let baseline = recorded_last(&app);
    let first = host.stop();
    assert!(first.success, "{}", first.stderr);
    first.assert_stderr_has("shutting down: attempt 2 of 3 at this tick will not be made");
    let failed = probe_ticks(&first.stdout, "probe")[0];
    assert_eq!(
        recorded_last(&app),
        baseline,
        "the tick whose retries were cut short is not recorded"
    );
    let (_, after) = run(&app, Duration::from_millis(1500));
    assert!(
        after
            .iter()
            .any(|tick| tick.late && tick.scheduled_ms == failed.scheduled_ms),
        "caught up at the next start: {failed:?} in {after:?}"
    );
}

//! Faulty guests over many events: every fifth call traps, loops past its deadline or asks for
//! 1 GiB, interleaved with good ones, on the Redis and the timer trigger. Every good event must
//! be handled, the host's resident memory must stay within 10% of what it was after warm-up,
//! and no slot may stay stuck. Each prints its figures (`--nocapture` to see them).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{RedisServer, TestApp, guest};

/// The faults, in turn, of every fifth event.
const FAULTS: [&str; 3] = ["trap", "spin", "alloc:1024"];

fn payload(index: usize) -> String {
    if index % 5 == 4 {
        FAULTS[(index / 5) % FAULTS.len()].to_owned()
    } else {
        format!("good-{index}")
    }
}

/// Publishes events `range`, pipelined.
fn publish(server: &RedisServer, range: std::ops::Range<usize>) {
    let mut connection = server.client().get_connection().expect("connecting");
    let mut pipe = redis::pipe();
    for index in range {
        pipe.cmd("PUBLISH").arg("soak").arg(payload(index)).ignore();
    }
    pipe.query::<()>(&mut connection).expect("PUBLISH");
}

#[test]
fn ten_thousand_redis_events_with_every_fifth_faulty() {
    const EVENTS: usize = 10_000;
    const WARM_UP: usize = 1_000;
    let server = RedisServer::start();
    let url = server.url();
    let app = TestApp::new("soak")
        .trigger(
            "redis",
            "guest",
            &format!(
                "address = \"{url}\"\nchannel = \"soak\"\nmax_in_flight = 4\nhandler_timeout = \"30ms\""
            ),
        )
        .component(
            "guest",
            &guest("redis-message-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{url}\"]\n\
                 variables = {{ redis_address = \"{url}\", reply_channel = \"stdout\" }}"
            ),
        )
        .write();
    // A cap well under 1 GiB, as a deployment would set it.
    let host = app.start_with(&["--max-memory", "64MiB"], &[]);
    server.wait_for_subscribers("soak", 1);

    // Good events print `soak|-|good-<n>`, which the host shows as `[guest] soak|-|good-<n>`.
    let limit = Duration::from_secs(120);
    publish(&server, 0..WARM_UP);
    let warmed = host.wait_for_stdout_lines("|good-", WARM_UP / 5 * 4, limit);
    let warm_rss = host.rss_kib();
    publish(&server, WARM_UP..EVENTS);
    let ran = warmed && host.wait_for_stdout_lines("|good-", EVENTS / 5 * 4, limit);
    let end_rss = host.rss_kib();
    // No stuck slot: every worker is free for more events.
    publish(&server, 0..4);
    let after = ran && host.wait_for_stdout_lines("|good-", EVENTS / 5 * 4 + 4, limit);

    let run = host.stop();
    let handled: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("[guest] "))
        .filter(|line| line.contains("|good-"))
        .collect();
    assert!(
        after,
        "{} good events handled; the host said:\n{}",
        handled.len(),
        run.stderr
    );
    assert!(run.success, "{}", run.stderr);
    let good: BTreeSet<String> = handled[..EVENTS / 5 * 4]
        .iter()
        .map(|line| (*line).to_owned())
        .collect();
    let expected: BTreeSet<String> = (0..EVENTS)
        .filter(|index| index % 5 != 4)
        .map(|index| format!("soak|-|good-{index}"))
        .collect();
    assert_eq!(good.len(), expected.len(), "each good event once");
    assert_eq!(
        handled.len(),
        EVENTS / 5 * 4 + 4,
        "and the four after the run"
    );
    assert_eq!(good, expected, "every good event handled");
    let failures = run
        .stderr
        .lines()
        .filter(|line| line.contains("Redis handler failed"))
        .count();
    let deadlines = run.stderr.matches("ran past its 30ms deadline").count();
    println!(
        "Redis soak: {EVENTS} events, {} faults injected, {failures} failures logged \
         ({deadlines} past the deadline), {} good handled; RSS {warm_rss} KiB after warm-up, \
         {end_rss} KiB after the run",
        EVENTS / 5,
        good.len()
    );
    assert_eq!(failures, EVENTS / 5, "each fault is one logged failure");
    assert!(
        end_rss * 10 <= warm_rss * 11,
        "RSS grew from {warm_rss} KiB after warm-up to {end_rss} KiB"
    );
}

#[test]
fn a_timer_whose_every_fifth_tick_is_faulty_handles_every_good_tick() {
    let app = TestApp::new("soak")
        .trigger(
            "timer",
            "probe",
            "interval = \"2ms\"\nhandler_timeout = \"20ms\"",
        )
        .component(
            "probe",
            &guest("probe-guest"),
            "variables = { faults_every = \"5\" }",
        )
        .write();
    let host = app.start_with(&["--max-memory", "64MiB"], &[]);
    host.wait_until_ready();
    std::thread::sleep(Duration::from_secs(1));
    let warm_rss = host.rss_kib();
    std::thread::sleep(Duration::from_secs(4));
    let end_rss = host.rss_kib();
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);

    let fired: Vec<u64> = common::probe_ticks(&run.stdout, "probe")
        .iter()
        .map(|tick| tick.sequence)
        .collect();
    let done: BTreeSet<u64> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("[probe] done seq="))
        .filter_map(|sequence| sequence.parse().ok())
        .collect();
    let good: Vec<u64> = fired.iter().copied().filter(|seq| seq % 5 != 0).collect();
    let faulty = fired.len() - good.len();
    let failures = run
        .stderr
        .lines()
        .filter(|line| line.contains("timer handler failed"))
        .count();
    println!(
        "timer soak: {} ticks fired, {faulty} faulty, {failures} failures logged, {} good \
         handled of {}; RSS {warm_rss} KiB after warm-up, {end_rss} KiB after the run",
        fired.len(),
        done.len(),
        good.len()
    );
    assert!(fired.len() >= 300, "{} ticks fired", fired.len());
    let missed: Vec<&u64> = good.iter().filter(|seq| !done.contains(seq)).collect();
    assert!(missed.is_empty(), "good ticks not handled: {missed:?}");
    assert_eq!(failures, faulty, "each fault is one logged failure");
    assert!(
        end_rss * 10 <= warm_rss * 11,
        "RSS grew from {warm_rss} KiB after warm-up to {end_rss} KiB"
    );
}

//! Limits on each handler call, per trigger: a deadline (`handler_timeout`) that stops a guest
//! that runs too long and frees its slot for the next event, a memory cap (`max_memory`) that
//! fails only the call that passes it, and a table cap (`max_table_elements`). Each Redis test starts its own redis-server.

mod common;

use std::time::Duration;

use common::{AppDir, HostProcess, RedisServer, TestApp, guest, probe_ticks};

/// An app running the message guest on each `(channel, extra trigger fields)`, replying on
/// `replies`.
fn redis_app(server: &RedisServer, triggers: &[(&str, &str)]) -> AppDir {
    let url = server.url();
    let mut app = TestApp::new("limits").redis_address("redis", &url);
    for (channel, extra) in triggers {
        app = app.trigger(
            "redis",
            "watcher",
            &format!("channel = \"{channel}\"\n{extra}"),
        );
    }
    app.replying_component("watcher", &guest("redis-message-guest"), &url)
        .write()
}

fn start(app: &AppDir, server: &RedisServer, channels: &[&str]) -> HostProcess {
    let host = app.start();
    for channel in channels {
        server.wait_for_subscribers(channel, 1);
    }
    host
}

#[test]
fn a_handler_past_its_deadline_is_stopped_and_the_next_message_runs() {
    let server = RedisServer::start();
    let app = redis_app(&server, &[("requests", "handler_timeout = \"300ms\"")]);
    let mut replies = server.subscribe("replies");
    let host = start(&app, &server, &["requests"]);
    // One message at a time (`max_in_flight = 1`): the loop holds the only slot until stopped.
    server.publish("requests", "spin");
    server.publish("requests", "fine");
    assert_eq!(replies.next(), "requests|-|fine");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|line| line.contains(
            "the handler ran past its 300ms deadline (handler_timeout); its instance was stopped"
        ) && line.contains("component=watcher channel=requests")),
        "{}",
        run.stderr
    );
}

/// Loops in every slot at once never let a worker thread idle, and an idle worker is where the
/// async runtime fires its timers: each loop must still be stopped at its own deadline, checked
/// by the guest's own epoch interrupts, not whenever the runtime next gets to its timers (about
/// ten times the deadline here before the fix).
#[test]
fn loops_in_every_slot_are_each_stopped_at_their_own_deadline() {
    const LOOPS: usize = 24;
    let server = RedisServer::start();
    let app = redis_app(
        &server,
        &[("requests", "handler_timeout = \"30ms\"\nmax_in_flight = 4")],
    );
    let mut replies = server.subscribe("replies");
    let host = start(&app, &server, &["requests"]);
    for _ in 0..LOOPS {
        server.publish("requests", "spin");
    }
    server.publish("requests", "fine");
    assert_eq!(replies.next(), "requests|-|fine");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);

    // "... its instance was stopped after 34ms": how long each call had run when stopped.
    let mut ran: Vec<u64> = run
        .stderr
        .lines()
        .filter(|line| line.contains("the handler ran past its 30ms deadline"))
        .filter_map(|line| {
            let after = line.split("its instance was stopped after ").nth(1)?;
            after.split("ms").next()?.parse().ok()
        })
        .collect();
    assert_eq!(
        ran.len(),
        LOOPS,
        "each loop stopped, saying when: {}",
        run.stderr
    );
    ran.sort_unstable();
    let median = ran[LOOPS / 2];
    println!("loops stopped after (ms): {ran:?}");
    // The deadline plus an epoch (10 ms) and the turns of the other loops on the same thread;
    // a loaded machine may delay some, so the median is judged.
    assert!(
        median <= 150,
        "the median loop was stopped after {median} ms, past a 30 ms deadline: {ran:?}"
    );
}

#[test]
fn a_memory_cap_fails_only_the_call_that_passes_it() {
    let server = RedisServer::start();
    let app = redis_app(
        &server,
        &[
            ("small", "max_memory = \"16MiB\""),
            ("default", ""),
            ("large", "max_memory = \"512MiB\""),
        ],
    );
    let mut replies = server.subscribe("replies");
    let host = start(&app, &server, &["small", "default", "large"]);
    server.publish("small", "alloc:32");
    server.publish("small", "alloc:4");
    assert_eq!(replies.next(), "small|-|alloc:4", "within the cap");
    // The same component on a trigger with the host's default cap (256 MiB), which another
    // trigger's larger cap does not raise.
    server.publish("default", "alloc:32");
    assert_eq!(replies.next(), "default|-|alloc:32");
    server.publish("default", "alloc:300");
    server.publish("large", "alloc:300");
    assert_eq!(replies.next(), "large|-|alloc:300");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let failures: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("Redis handler failed"))
        .collect();
    assert_eq!(failures.len(), 2, "{}", run.stderr);
    assert!(
        failures[0].contains("channel=small") && failures[1].contains("channel=default"),
        "32 MiB under the 16 MiB cap and 300 MiB under the default failed: {failures:?}"
    );
}

#[test]
fn a_table_cap_refuses_an_instance_whose_tables_are_larger() {
    let server = RedisServer::start();
    let app = redis_app(
        &server,
        &[("tiny", "max_table_elements = 1"), ("requests", "")],
    );
    let mut replies = server.subscribe("replies");
    let host = start(&app, &server, &["tiny", "requests"]);
    server.publish("tiny", "hello");
    server.publish("requests", "hello");
    assert_eq!(replies.next(), "requests|-|hello");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|line| line.contains("Redis handler failed")
                && line.contains("channel=tiny")
                && line.contains("table")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_stack_overflow_is_a_logged_failure_and_the_next_message_runs() {
    let server = RedisServer::start();
    let app = redis_app(&server, &[("requests", "")]);
    let mut replies = server.subscribe("replies");
    let host = start(&app, &server, &["requests"]);
    server.publish("requests", "recurse");
    server.publish("requests", "fine");
    assert_eq!(replies.next(), "requests|-|fine");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    // A Rust guest's frames live on a stack in its linear memory; running off its end is a
    // trap (an access below the memory's start), as running out of wasm call stack would be.
    assert!(
        run.stderr
            .lines()
            .any(|line| line.contains("Redis handler failed: wasm trap")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_looping_timer_handler_is_stopped_at_its_deadline_and_fires_again() {
    let app = TestApp::new("loop")
        .trigger(
            "timer",
            "spinner",
            "interval = \"100ms\"\nhandler_timeout = \"150ms\"",
        )
        .component(
            "spinner",
            &guest("probe-guest"),
            "variables = { loop_on = \"1\" }",
        )
        .write();
    let run = app.run_for(Duration::from_millis(1500));
    assert!(run.success, "nothing outlives the deadline: {}", run.stderr);
    let fired = probe_ticks(&run.stdout, "spinner").len();
    assert!(
        fired >= 3,
        "stopped each time, it fired again ({fired} times): {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the handler ran past its 150ms deadline (handler_timeout)"),
        "{}",
        run.stderr
    );
}

/// The edges of every documented range run: the largest `speedup` bringing one timer down to
/// the 1 ms minimum, another on the longest interval, a Redis trigger with the largest
/// `max_in_flight`, memory, table and deadline. Nothing panics, the fast timer keeps
/// firing, and SIGTERM stops the host cleanly.
#[test]
fn the_edges_of_every_range_run_without_a_panic() {
    let server = RedisServer::start();
    let url = server.url();
    let app = TestApp::new("edges")
        .settings("timer", "speedup = 1000000")
        .redis_address("redis", &url)
        .trigger("timer", "fast", "interval_secs = 1000")
        .trigger("timer", "slow", "interval_secs = 31536000")
        .trigger(
            "redis",
            "watcher",
            "channel = \"requests\"\nmax_in_flight = 1000\nmax_memory = \"4GiB\"\n\
             max_table_elements = 1000000\nhandler_timeout = \"365days\"",
        )
        .component("fast", &guest("probe-guest"), "")
        .component("slow", &guest("probe-guest"), "")
        .replying_component("watcher", &guest("redis-message-guest"), &url)
        .write();
    let mut replies = server.subscribe("replies");
    let host = start(&app, &server, &["requests"]);
    server.publish("requests", "hello");
    assert_eq!(replies.next(), "requests|-|hello");
    std::thread::sleep(Duration::from_millis(500));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_lacks("panicked");
    let fast = probe_ticks(&run.stdout, "fast").len();
    assert!(
        fast >= 10,
        "the 1 ms timer fired {fast} times: {}",
        run.stderr
    );
    assert!(
        probe_ticks(&run.stdout, "slow").is_empty(),
        "{}",
        run.stdout
    );
}

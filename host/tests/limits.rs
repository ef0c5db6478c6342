//! Limits on each handler call, per trigger: a deadline (`handler_timeout`) that stops a guest
//! that runs too long and frees its slot for the next event, a memory cap (`max_memory`) that
//! fails only the call that passes it, and a table cap (`max_table_elements`). Each Redis test starts its own redis-server.

mod common;

use std::time::Duration;

use common::{HostProcess, RedisServer, guest, probe_ticks, run_host_for, write_app};

/// An app running the message guest on each `(channel, extra trigger fields)`, replying on
/// `replies`.
fn redis_app(server: &RedisServer, triggers: &[(&str, &str)]) -> tempfile::TempDir {
    let url = server.url();
    let mut manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"limits\"\n\
         [application.trigger.redis]\naddress = \"{url}\"\n"
    );
    for (channel, extra) in triggers {
        manifest.push_str(&format!(
            "[[trigger.redis]]\ncomponent = \"watcher\"\nchannel = \"{channel}\"\n{extra}\n"
        ));
    }
    manifest.push_str(&format!(
        "[component.watcher]\nsource = \"{}\"\nallowed_outbound_hosts = [\"{url}\"]\n\
         [component.watcher.variables]\nredis_address = \"{url}\"\nreply_channel = \"replies\"\n",
        guest("redis-message-guest")
    ));
    write_app(&manifest)
}

fn start(app: &tempfile::TempDir, server: &RedisServer, channels: &[&str]) -> HostProcess {
    let manifest = app.path().join("spin.toml").display().to_string();
    let host = HostProcess::start(&["up", "-f", &manifest], &[]);
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
    let app = write_app(&format!(
        r#"spin_manifest_version = 2
[application]
name = "loop"
[[trigger.timer]]
component = "spinner"
interval = "100ms"
handler_timeout = "150ms"
[component.spinner]
source = "{guest}"
variables = {{ loop_on = "1" }}
"#,
        guest = guest("probe-guest")
    ));
    let manifest = app.path().join("spin.toml").display().to_string();
    let run = run_host_for(&["up", "-f", &manifest], Duration::from_millis(1500));
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

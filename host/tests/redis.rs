//! The Redis trigger end to end: each test starts its own redis-server on a free loopback port,
//! runs the host binary on real guests, publishes, and checks what the guests published back.

mod common;

use std::time::Duration;

use common::{AppDir, HostProcess, RedisServer, TestApp, guest, workspace_root};

/// An app on `server` whose Redis triggers are `(component, channel)` pairs; add its
/// components with [`TestApp::replying_component_to`].
fn app(server: &RedisServer, triggers: &[(&str, &str)]) -> TestApp {
    let mut app = TestApp::new("redis-test").redis_address("redis", &server.url());
    for (component, channel) in triggers {
        app = app.trigger("redis", component, &format!("channel = \"{channel}\""));
    }
    app
}

/// A running app with one component on one channel, allowed to reach this test's own server,
/// and the test's subscription to `replies`.
struct OneComponentApp {
    server: RedisServer,
    replies: common::Subscriber,
    host: HostProcess,
    /// Kept until the test ends.
    app: AppDir,
}

/// Starts [`OneComponentApp`] and waits until the host has subscribed to `channel`.
fn start_one(id: &str, crate_name: &str, channel: &str) -> OneComponentApp {
    let server = RedisServer::start();
    let replies = server.subscribe("replies");
    let app = app(&server, &[(id, channel)])
        .replying_component(id, &guest(crate_name), &server.url())
        .write();
    let host = app.start();
    server.wait_for_subscribers(channel, 1);
    OneComponentApp {
        server,
        replies,
        host,
        app,
    }
}

#[test]
fn the_echo_example_replies_through_the_outbound_api() {
    common::guests_dir();
    let server = RedisServer::start();
    let mut replies = server.subscribe("replies");
    let manifest = workspace_root().join("examples/redis-echo/spin.toml");
    let host = HostProcess::start(
        &["up", "-f", &manifest.display().to_string()],
        &[("SPIN_VARIABLE_REDIS_ADDRESS", &server.url())],
    );
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "hello");
    assert_eq!(replies.next(), "HELLO");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn a_string_payload_that_is_not_utf8_is_a_logged_handler_error() {
    let OneComponentApp {
        server,
        mut replies,
        host,
        app: _app,
    } = start_one("echo", "redis-echo", "requests");
    server.publish("requests", &[0xffu8, 0xfe][..]);
    server.publish("requests", "after");
    assert_eq!(
        replies.next(),
        "AFTER",
        "the next message is handled normally"
    );
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_has("[echo] the payload is not valid UTF-8");
    assert!(
        run.stderr
            .contains("Redis handler failed: handler returned an error (see its stderr above) trigger=echo-redis-trigger component=echo channel=requests"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_payloads_decode_and_a_bad_one_is_a_handler_error_naming_the_type() {
    let OneComponentApp {
        server,
        mut replies,
        host,
        app: _app,
    } = start_one("orders", "redis-json-guest", "orders");
    server.publish("orders", r#"{"id": 7, "customer": "ada"}"#);
    assert_eq!(replies.next(), "order 7 for ada");
    server.publish("orders", r#"{"id": "seven"}"#);
    server.publish("orders", r#"{"id": 8, "customer": "grace"}"#);
    assert_eq!(replies.next(), "order 8 for grace");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_has("[orders] the payload is not valid JSON for `redis_json_guest::Order`: invalid type: string \"seven\", expected u64");
}

#[test]
fn a_glob_channel_subscribes_by_pattern_and_the_guest_sees_the_pattern() {
    let OneComponentApp {
        server,
        mut replies,
        host,
        app: _app,
    } = start_one("watcher", "redis-message-guest", "orders.*");
    server.publish("orders.eu", "first");
    server.publish("invoices.eu", "ignored");
    server.publish("orders.us", "second");
    assert_eq!(replies.next(), "orders.eu|orders.*|first");
    assert_eq!(replies.next(), "orders.us|orders.*|second");
    assert!(replies.nothing_within(Duration::from_millis(300)));
    assert!(host.stop().success);
}

#[test]
fn every_component_on_a_channel_gets_each_message() {
    let server = RedisServer::start();
    let mut replies = server.subscribe("replies");
    let app = app(&server, &[("echo", "requests"), ("watcher", "requests")])
        .replying_component("echo", &guest("redis-echo"), &server.url())
        .replying_component("watcher", &guest("redis-message-guest"), &server.url())
        .write();
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "hello");
    let mut received = vec![replies.next(), replies.next()];
    received.sort();
    assert_eq!(received, ["HELLO", "requests|-|hello"]);
    assert!(host.stop().success);
}

#[test]
fn an_outbound_host_not_in_allowed_outbound_hosts_is_refused_and_logged() {
    let server = RedisServer::start();
    let mut replies = server.subscribe("replies");
    let app = app(&server, &[("echo", "requests")])
        .replying_component_to(
            "echo",
            &guest("redis-echo"),
            &server.url(),
            "redis://127.0.0.1:1",
        )
        .write();
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "hello");
    assert!(
        replies.nothing_within(Duration::from_millis(700)),
        "the reply must not be sent"
    );
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let refused = format!(
        "outbound Redis connection refused: {} is not in the component's allowed_outbound_hosts component=echo host={}",
        server.url(),
        server.url()
    );
    run.assert_stderr_has(&refused);
    run.assert_stderr_has("connecting to redis://");
}

/// A handler that never returns does not keep the host from stopping: after
/// `--shutdown-timeout` the host names the components still running and exits non-zero.
#[test]
fn a_handler_that_never_returns_is_abandoned_at_the_shutdown_deadline() {
    let server = RedisServer::start();
    let app = app(&server, &[("spinner", "requests")])
        .replying_component("spinner", &guest("redis-message-guest"), &server.url())
        .write();
    let host = app.start_with(&["--shutdown-timeout", "300ms"], &[]);
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "spin");
    std::thread::sleep(Duration::from_millis(300));
    let stopping = std::time::Instant::now();
    let run = host.stop();
    assert!(!run.success, "the deadline passed: {}", run.stderr);
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        stopping.elapsed()
    );
    run.assert_stderr_has("stopped at the shutdown deadline (300ms, --shutdown-timeout) with handlers still running: `spinner` (1)");
}

#[test]
fn a_trap_in_one_message_does_not_stop_the_next() {
    let OneComponentApp {
        server,
        mut replies,
        host,
        app: _app,
    } = start_one("watcher", "redis-message-guest", "requests");
    server.publish("requests", "trap");
    server.publish("requests", "fail");
    server.publish("requests", "fine");
    assert_eq!(replies.next(), "requests|-|fine");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let failures: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("Redis handler failed"))
        .collect();
    assert_eq!(failures.len(), 2, "{}", run.stderr);
    assert!(
        failures[0].contains("wasm trap")
            && failures[0].contains("component=watcher channel=requests")
    );
    assert!(
        failures[1].contains("handler returned an error: asked to fail"),
        "{}",
        failures[1]
    );
}

#[test]
fn messages_published_after_the_server_restarts_are_handled_without_restarting_the_host() {
    let mut server = RedisServer::start();
    let port = server.port;
    let app = app(&server, &[("echo", "requests")])
        .replying_component("echo", &guest("redis-echo"), &server.url())
        .write();
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    let mut replies = server.subscribe("replies");
    server.publish("requests", "before");
    assert_eq!(replies.next(), "BEFORE");

    server.kill();
    drop(replies);
    std::thread::sleep(Duration::from_millis(300));
    let server = RedisServer::start_on(port);
    let mut replies = server.subscribe("replies");
    server.wait_for_subscribers("requests", 1);
    server.publish("requests", "after");
    assert_eq!(replies.next(), "AFTER");

    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("lost the connection to the Redis server; reconnecting"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("subscribed address=").count(),
        2,
        "{}",
        run.stderr
    );
}

/// While no server answers, the host keeps retrying, and each retry's log line names the cause
/// once (the redis crate repeats an I/O error as its own source).
#[test]
fn an_unreachable_server_is_retried_and_the_cause_is_logged_once_per_line() {
    let mut server = RedisServer::start();
    let app = app(&server, &[("echo", "requests")])
        .replying_component("echo", &guest("redis-echo"), &server.url())
        .write();
    // Nothing listens on the app's port from here on.
    server.kill();
    let host = app.start();
    std::thread::sleep(Duration::from_millis(700));
    let run = host.stop();
    assert!(
        run.success,
        "a lost server never stops the host: {}",
        run.stderr
    );
    let retries: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.contains("cannot subscribe"))
        .collect();
    assert!(retries.len() >= 2, "it retries: {}", run.stderr);
    let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED).to_string();
    for line in retries {
        assert!(line.contains("cannot subscribe: connecting: "), "{line}");
        assert_eq!(line.matches(&refused).count(), 1, "{line}");
    }
}

#[test]
fn a_thousand_messages_are_handled_in_publish_order_by_default() {
    let OneComponentApp {
        server,
        mut replies,
        host,
        app: _app,
    } = start_one("watcher", "redis-message-guest", "requests");
    let mut connection = server.client().get_connection().unwrap();
    let mut pipeline = redis::pipe();
    for n in 0..1000 {
        pipeline
            .cmd("PUBLISH")
            .arg("requests")
            .arg(n.to_string())
            .ignore();
    }
    pipeline.query::<()>(&mut connection).unwrap();
    let received: Vec<String> = (0..1000).map(|_| replies.next()).collect();
    let expected: Vec<String> = (0..1000).map(|n| format!("requests|-|{n}")).collect();
    assert_eq!(received, expected);
    assert!(host.stop().success);
}

#[test]
fn a_redis_address_with_credentials_is_never_printed() {
    let server = RedisServer::start();
    let address = format!("redis://default:hunter2@127.0.0.1:{}", server.port);
    let app = TestApp::new("secret")
        .trigger(
            "redis",
            "echo",
            &format!("channel = \"requests\"\naddress = \"{address}\""),
        )
        .replying_component("echo", &guest("redis-echo"), &server.url())
        .write();
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_lacks("hunter2");
    run.assert_stderr_has("redis://default:***@127.0.0.1");
}

/// Publishes four `hold` messages and returns how many handlers the guest saw running at once.
fn concurrency_seen(max_in_flight: Option<usize>) -> Vec<i64> {
    let server = RedisServer::start();
    let mut replies = server.subscribe("replies");
    let limit = max_in_flight
        .map(|limit| format!("max_in_flight = {limit}"))
        .unwrap_or_default();
    let app = TestApp::new("concurrency")
        .trigger(
            "redis",
            "watcher",
            &format!(
                "channel = \"requests\"\naddress = \"{}\"\n{limit}",
                server.url()
            ),
        )
        .replying_component("watcher", &guest("redis-message-guest"), &server.url())
        .write();
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    for _ in 0..4 {
        server.publish("requests", "hold");
    }
    for _ in 0..4 {
        assert_eq!(replies.next(), "requests|-|hold");
    }
    assert!(host.stop().success);
    let mut connection = server.client().get_connection().unwrap();
    let mut seen: Vec<i64> = redis::cmd("SMEMBERS")
        .arg("seen-active")
        .query::<Vec<String>>(&mut connection)
        .unwrap()
        .iter()
        .map(|count| count.parse().unwrap())
        .collect();
    seen.sort();
    seen
}

#[test]
fn one_message_at_a_time_by_default_and_max_in_flight_allows_more() {
    assert_eq!(
        concurrency_seen(None),
        [1],
        "the default handles one message at a time"
    );
    let seen = concurrency_seen(Some(4));
    assert!(
        seen.iter().any(|&count| count > 1),
        "max_in_flight = 4 runs handlers at once: {seen:?}"
    );
    assert!(
        seen.iter().all(|&count| count <= 4),
        "never more than 4: {seen:?}"
    );
}

/// A server slow to confirm a subscription (here paused for a second, as a loaded machine can
/// be) is waited for: taking the wait for a lost connection would drop a connection the server
/// already counts as subscribed, and the messages published to it.
#[test]
fn a_slow_subscribe_confirmation_is_waited_for_not_taken_for_a_lost_connection() {
    let server = RedisServer::start();
    let app = app(&server, &[("echo", "requests")])
        .replying_component("echo", &guest("redis-echo"), &server.url())
        .write();
    let mut admin = server.client().get_connection().expect("connecting");
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1000)
        .arg("ALL")
        .query::<()>(&mut admin)
        .expect("CLIENT PAUSE");
    let host = app.start();
    server.wait_for_subscribers("requests", 1);
    let mut replies = server.subscribe("replies");
    server.publish("requests", "after the pause");
    assert_eq!(replies.next(), "AFTER THE PAUSE");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        !run.stderr.contains("cannot subscribe"),
        "subscribing was retried: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("subscribed").count(),
        1,
        "{}",
        run.stderr
    );
}

/// `max_per_second = 20`: 300 messages published at once are handled 20 a second (within 10 %
/// over 5 s), in publish order; the rest wait in the server's output buffer.
#[test]
fn max_per_second_paces_a_burst_of_messages() {
    let server = RedisServer::start();
    let app = app(&server, &[])
        .trigger(
            "redis",
            "printer",
            "channel = \"burst\"\nmax_per_second = 20",
        )
        .component("printer", &guest("redis-print-guest"), "")
        .write();
    let host = app.start();
    server.wait_for_subscribers("burst", 1);
    let mut connection = server.client().get_connection().unwrap();
    let mut pipeline = redis::pipe();
    for n in 0..300 {
        pipeline
            .cmd("PUBLISH")
            .arg("burst")
            .arg(n.to_string())
            .ignore();
    }
    pipeline.query::<()>(&mut connection).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (start, at) = (
        host.stdout_lines_with("[printer] "),
        std::time::Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(5));
    let handled = host.stdout_lines_with("[printer] ") - start;
    let rate = handled as f64 / at.elapsed().as_secs_f64();
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!((18.0..=22.0).contains(&rate), "{rate:.1} messages a second");
    let printed: Vec<u64> = run
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("[printer] ")?.parse().ok())
        .collect();
    assert!(
        printed.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "in publish order, none lost before shutdown: {printed:?}"
    );
}

//! The Redis Streams trigger end to end: each test starts its own redis-server on a free
//! loopback port, runs host processes on a guest that records every entry it handles (outbound
//! `SADD handled <id>`, `INCR duplicates` for an id seen before), and checks Redis afterwards.

mod common;
#[path = "streams/outcomes.rs"]
mod outcomes;

use std::time::{Duration, Instant};

use common::{AppDir, RedisServer, TestApp, guest};
use redis::Commands;

const STREAM: &str = "jobs";
const GROUP: &str = "workers";

/// Settings of the one `[[trigger.redis-stream]]` of a test app, beyond component and stream.
struct Trigger<'a> {
    /// The consumer group: [`GROUP`] unless a test picks another.
    group: &'a str,
    max_in_flight: usize,
    max_attempts: u32,
    claim_idle: &'a str,
    consumer: Option<&'a str>,
    /// The guest: the recording one, one entry per call, unless a test picks the batch one.
    guest: &'a str,
    batch_size: Option<usize>,
    batch_wait: Option<&'a str>,
    /// More fields of the trigger, as written.
    extra: &'a str,
}

impl Default for Trigger<'_> {
    fn default() -> Self {
        Trigger {
            group: GROUP,
            max_in_flight: 4,
            max_attempts: 3,
            claim_idle: "5s",
            consumer: None,
            guest: "stream-record-guest",
            batch_size: None,
            batch_wait: None,
            extra: "",
        }
    }
}

/// An app with one stream trigger on [`STREAM`] in group [`GROUP`], running the recording
/// guest against `server`.
fn recording_app(server: &RedisServer, trigger: Trigger) -> AppDir {
    let url = server.url();
    let consumer = trigger
        .consumer
        .map(|name| format!("consumer = \"{name}\"\n"))
        .unwrap_or_default();
    let batch_size = trigger
        .batch_size
        .map(|size| format!("batch_size = {size}\n"))
        .unwrap_or_default()
        + &trigger
            .batch_wait
            .map(|wait| format!("batch_wait = \"{wait}\"\n"))
            .unwrap_or_default();
    TestApp::new("stream-test")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "recorder",
            &format!(
                "stream = \"{STREAM}\"\ngroup = \"{}\"\n{consumer}{batch_size}max_in_flight = {}\n\
                 max_attempts = {}\nclaim_idle = \"{}\"\n{}",
                trigger.group,
                trigger.max_in_flight,
                trigger.max_attempts,
                trigger.claim_idle,
                trigger.extra
            ),
        )
        .component(
            "recorder",
            &guest(trigger.guest),
            &format!(
                "allowed_outbound_hosts = [\"{url}\"]\nvariables = {{ redis_address = \"{url}\" }}"
            ),
        )
        .write()
}

fn connection(server: &RedisServer) -> redis::Connection {
    server
        .client()
        .get_connection()
        .expect("connecting to redis-server")
}

/// Adds `count` entries `payload = <n>` to the stream, in pipelined batches.
fn add_entries(server: &RedisServer, count: usize) {
    let mut redis = connection(server);
    for batch_start in (0..count).step_by(1000) {
        let mut pipe = redis::pipe();
        for n in batch_start..(batch_start + 1000).min(count) {
            pipe.xadd(STREAM, "*", &[("payload", n.to_string())])
                .ignore();
        }
        pipe.query::<()>(&mut redis).expect("XADD");
    }
}

fn handled(redis: &mut redis::Connection) -> usize {
    redis.scard("handled").expect("SCARD handled")
}

/// Waits until `wanted` distinct entries are handled; panics with the count after `limit`.
fn wait_for_handled(server: &RedisServer, wanted: usize, limit: Duration) {
    let mut redis = connection(server);
    let deadline = Instant::now() + limit;
    loop {
        let count = handled(&mut redis);
        if count >= wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {count} of {wanted} entries handled within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many entries of the group are delivered and not yet acknowledged.
fn pending(redis: &mut redis::Connection) -> usize {
    let summary: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .query(redis)
        .expect("XPENDING");
    summary.0
}

/// Waits until the group has nothing pending (acknowledgements trail the recording by a moment).
fn wait_for_nothing_pending(redis: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(redis) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} entries still pending after 30 s",
            pending(redis)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn duplicates(redis: &mut redis::Connection) -> usize {
    redis
        .get::<_, Option<usize>>("duplicates")
        .expect("GET duplicates")
        .unwrap_or(0)
}

fn dead_letters(redis: &mut redis::Connection) -> usize {
    redis
        .xlen(format!("{STREAM}.dead"))
        .expect("XLEN of the dead-letter stream")
}

#[test]
fn a_failing_entry_is_retried_and_one_that_always_fails_ends_in_the_dead_letter_stream() {
    let server = RedisServer::start();
    let app = recording_app(&server, Trigger::default());
    let host = app.start_ready();
    let mut redis = connection(&server);
    let flaky: String = redis
        .xadd(STREAM, "*", &[("payload", "flaky"), ("fail_times", "2")])
        .expect("XADD");
    let doomed: String = redis
        .xadd(STREAM, "*", &[("payload", "fail"), ("fail_times", "0")])
        .expect("XADD");
    let fine: String = redis
        .xadd(STREAM, "*", &[("payload", "fine")])
        .expect("XADD");

    wait_for_handled(&server, 2, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while dead_letters(&mut redis) == 0 {
        assert!(Instant::now() < deadline, "nothing dead-lettered in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);

    let members: Vec<String> = redis.smembers("handled").expect("SMEMBERS");
    assert!(
        members.contains(&flaky) && members.contains(&fine),
        "{members:?}"
    );
    assert!(!members.contains(&doomed), "{members:?}");
    let attempts: Vec<String> = redis
        .lrange(format!("attempts:{flaky}"), 0, -1)
        .expect("LRANGE");
    assert_eq!(attempts, ["1", "2", "3"], "failed twice, then succeeded");
    let doomed_attempts: Vec<String> = redis
        .lrange(format!("attempts:{doomed}"), 0, -1)
        .expect("LRANGE");
    assert_eq!(doomed_attempts, ["1", "2", "3"], "max_attempts = 3");

    let dead: redis::streams::StreamRangeReply =
        redis.xrange_all(format!("{STREAM}.dead")).expect("XRANGE");
    assert_eq!(dead.ids.len(), 1, "{dead:?}");
    let field = |name: &str| -> String {
        dead.ids[0]
            .get(name)
            .unwrap_or_else(|| panic!("no field {name} in {dead:?}"))
    };
    assert_eq!(field("payload"), "fail", "the entry's own fields are kept");
    assert!(
        field("error").contains("asked to fail"),
        "{}",
        field("error")
    );
    assert_eq!(field("attempts"), "3");
    assert_eq!(field("source_stream"), STREAM);
    assert_eq!(field("source_id"), doomed);
    assert!(
        run.stderr.contains("Redis stream handler failed")
            && run.stderr.contains("component=recorder"),
        "failures are logged with the component: {}",
        run.stderr
    );
}

#[test]
fn three_hosts_share_100k_entries_and_lose_none_when_one_is_killed() {
    const ENTRIES: usize = 100_000;
    const MAX_IN_FLIGHT: usize = 4;
    let server = RedisServer::start();
    add_entries(&server, ENTRIES);
    let app = recording_app(
        &server,
        Trigger {
            max_in_flight: MAX_IN_FLIGHT,
            ..Trigger::default()
        },
    );
    let started = Instant::now();
    let doomed = app.start_ready();
    let others = [app.start_ready(), app.start_ready()];

    wait_for_handled(&server, ENTRIES / 4, Duration::from_secs(300));
    let killed = doomed.kill();
    let killed_at = handled(&mut connection(&server));
    // Started again, it is a new consumer (its default name holds the process id); the old
    // one's unacknowledged entries are claimed once idle for `claim_idle`.
    let restarted = app.start_ready();

    wait_for_handled(&server, ENTRIES, Duration::from_secs(600));
    let elapsed = started.elapsed();
    let mut redis = connection(&server);
    wait_for_nothing_pending(&mut redis);
    let duplicates = duplicates(&mut redis);
    println!(
        "{ENTRIES} entries, 3 hosts, one killed at {killed_at}: all handled in {elapsed:.1?} \
         ({:.0} entries/s), {duplicates} handled twice",
        ENTRIES as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(handled(&mut redis), ENTRIES, "every entry handled");
    assert!(
        duplicates <= MAX_IN_FLIGHT,
        "{duplicates} entries handled twice; the killed host could hold at most {MAX_IN_FLIGHT} unacknowledged"
    );
    assert_eq!(dead_letters(&mut redis), 0);
    assert!(!killed.success, "SIGKILL is not a clean exit");
    for host in others.into_iter().chain([restarted]) {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
        run.assert_stderr_lacks("handler failed");
    }
}

#[test]
fn nothing_is_lost_when_the_redis_server_restarts_mid_run() {
    const ENTRIES: usize = 10_000;
    let data = tempfile::tempdir().expect("a temp dir");
    let mut server = RedisServer::start_persistent(data.path());
    add_entries(&server, ENTRIES);
    let app = recording_app(
        &server,
        Trigger {
            // Handlers fail while the server is down; enough attempts to outlast the restart.
            max_attempts: 20,
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    wait_for_handled(&server, ENTRIES / 5, Duration::from_secs(120));
    server.restart();

    wait_for_handled(&server, ENTRIES, Duration::from_secs(300));
    let mut redis = connection(&server);
    wait_for_nothing_pending(&mut redis);
    assert_eq!(dead_letters(&mut redis), 0);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("lost the connection to the Redis server; reconnecting"),
        "the restart was noticed: {}",
        run.stderr
    );
}

#[test]
fn sigterm_under_load_finishes_what_is_in_flight_and_leaves_nothing_pending() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    for _ in 0..500 {
        let _: String = redis
            .xadd(STREAM, "*", &[("payload", "slow"), ("sleep_ms", "20")])
            .expect("XADD");
    }
    let app = recording_app(
        &server,
        Trigger {
            consumer: Some("worker-a"),
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    wait_for_handled(&server, 40, Duration::from_secs(60));
    let run = host.stop();
    assert!(run.success, "exit 0 after SIGTERM: {}", run.stderr);

    let handled = handled(&mut redis);
    assert!(handled < 500, "it stopped reading: all {handled} handled");
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(100)
        .arg("worker-a")
        .query(&mut redis)
        .expect("XPENDING for the consumer");
    assert_eq!(
        pending,
        redis::Value::Array(vec![]),
        "nothing pending for the consumer after SIGTERM ({handled} handled)"
    );
    assert_eq!(duplicates(&mut redis), 0);
}

#[test]
fn payload_only_and_older_components_serve_streams_with_the_payload_field() {
    let server = RedisServer::start();
    let url = server.url();
    let app = TestApp::new("stream-worlds")
        .redis_address("redis-stream", &url)
        .trigger("redis-stream", "json", "stream = \"orders\"")
        .trigger("redis-stream", "older", "stream = \"events\"")
        .replying_component("json", &guest("redis-json-guest"), &url)
        .replying_component("older", &guest("redis-message-0-1-guest"), &url)
        .write();
    let mut replies = server.subscribe("replies");
    let host = app.start_ready();
    let mut redis = connection(&server);
    let _: String = redis
        .xadd(
            "orders",
            "*",
            &[
                ("customer_note", "ignored"),
                ("payload", r#"{"id":7,"customer":"ada"}"#),
            ],
        )
        .expect("XADD");
    assert_eq!(replies.next(), "order 7 for ada");
    let _: String = redis
        .xadd("events", "*", &[("payload", "hello")])
        .expect("XADD");
    assert_eq!(replies.next(), "events|hello");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    // The group defaults to the application's name.
    let groups: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("orders")
        .query(&mut redis)
        .expect("XINFO GROUPS");
    assert!(
        format!("{groups:?}").contains("stream-worlds"),
        "{groups:?}"
    );
}

/// The sizes of the batch guest's calls, in order.
fn batch_sizes(redis: &mut redis::Connection) -> Vec<usize> {
    redis
        .lrange("batch-sizes", 0, -1)
        .expect("LRANGE batch-sizes")
}

#[test]
fn a_batch_handler_takes_entries_in_batches_and_a_bad_entry_alone_is_retried_and_dead_lettered() {
    const ENTRIES: usize = 500;
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let mut ids = Vec::new();
    for index in 0..ENTRIES {
        let payload = if [10, 250, 499].contains(&index) {
            "fail".to_owned()
        } else {
            index.to_string()
        };
        let id: String = redis
            .xadd(STREAM, "*", &[("payload", payload)])
            .expect("XADD");
        ids.push(id);
    }
    let app = recording_app(
        &server,
        Trigger {
            max_in_flight: 2,
            max_attempts: 2,
            guest: "stream-batch-guest",
            batch_size: Some(50),
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    wait_for_handled(&server, ENTRIES - 3, Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(30);
    while dead_letters(&mut redis) < 3 {
        assert!(Instant::now() < deadline, "not all dead-lettered in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);

    assert_eq!(handled(&mut redis), ENTRIES - 3);
    assert_eq!(duplicates(&mut redis), 0);
    let sizes = batch_sizes(&mut redis);
    assert!(
        sizes.iter().all(|size| (1..=50).contains(size)),
        "{sizes:?}"
    );
    assert!(
        sizes.iter().filter(|size| **size == 50).count() >= 5,
        "entries waiting in the stream fill whole batches: {sizes:?}"
    );
    // Each bad entry was tried twice (`max_attempts = 2`): once in its batch, once again.
    assert_eq!(sizes.iter().sum::<usize>(), ENTRIES + 3, "{sizes:?}");
    let dead: redis::streams::StreamRangeReply =
        redis.xrange_all(format!("{STREAM}.dead")).expect("XRANGE");
    let mut sources: Vec<String> = dead
        .ids
        .iter()
        .map(|entry| entry.get("source_id").expect("source_id"))
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        [ids[10].clone(), ids[250].clone(), ids[499].clone()]
    );
    for entry in &dead.ids {
        let error: String = entry.get("error").expect("error");
        assert_eq!(error, "asked to fail", "each with its own error");
        let attempts: String = entry.get("attempts").expect("attempts");
        assert_eq!(attempts, "2");
    }
}

#[test]
fn batch_handlers_lose_nothing_when_a_host_is_killed_and_repeat_at_most_its_batches() {
    const ENTRIES: usize = 20_000;
    const MAX_IN_FLIGHT: usize = 2;
    const BATCH_SIZE: usize = 20;
    let server = RedisServer::start();
    add_entries(&server, ENTRIES);
    let app = recording_app(
        &server,
        Trigger {
            max_in_flight: MAX_IN_FLIGHT,
            guest: "stream-batch-guest",
            batch_size: Some(BATCH_SIZE),
            claim_idle: "2s",
            ..Trigger::default()
        },
    );
    let doomed = app.start_ready();
    let other = app.start_ready();
    wait_for_handled(&server, ENTRIES / 4, Duration::from_secs(300));
    let killed = doomed.kill();
    assert!(!killed.success, "SIGKILL is not a clean exit");
    wait_for_handled(&server, ENTRIES, Duration::from_secs(300));
    let mut redis = connection(&server);
    wait_for_nothing_pending(&mut redis);
    let duplicates = duplicates(&mut redis);
    assert_eq!(handled(&mut redis), ENTRIES, "every entry handled");
    assert!(
        duplicates <= MAX_IN_FLIGHT * BATCH_SIZE,
        "{duplicates} entries handled twice; the killed host held at most {MAX_IN_FLIGHT} batches of {BATCH_SIZE}"
    );
    assert_eq!(dead_letters(&mut redis), 0);
    let run = other.stop();
    assert!(run.success, "{}", run.stderr);
}

#[test]
fn batch_size_on_a_component_taking_one_entry_at_a_time_is_refused_naming_both() {
    let server = RedisServer::start();
    let app = recording_app(
        &server,
        Trigger {
            batch_size: Some(10),
            ..Trigger::default()
        },
    );
    let run = app.run(&[]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("batch_size = 10")
            && run
                .stderr
                .contains("component `recorder` takes one entry at a time"),
        "{}",
        run.stderr
    );
}

#[test]
fn on_a_quiet_stream_a_partial_batch_waits_for_batch_wait_and_no_longer() {
    let server = RedisServer::start();
    let app = recording_app(
        &server,
        Trigger {
            guest: "stream-batch-guest",
            batch_size: Some(100),
            batch_wait: Some("600ms"),
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let mut redis = connection(&server);
    // Let the consumer settle into waiting for new entries, then add three close together.
    std::thread::sleep(Duration::from_millis(300));
    let added = Instant::now();
    for index in 0..3 {
        let _: String = redis
            .xadd(STREAM, "*", &[("payload", index.to_string())])
            .expect("XADD");
    }
    wait_for_handled(&server, 3, Duration::from_secs(30));
    let waited = added.elapsed();
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(batch_sizes(&mut redis), [3], "one call for the three");
    // It waited for more (the batch was not full) ...
    assert!(
        waited >= Duration::from_millis(550),
        "handled after {waited:?}"
    );
    // ... and not much past batch_wait (the bound leaves room for a loaded machine).
    assert!(waited < Duration::from_secs(5), "handled after {waited:?}");
}

#[test]
fn batch_wait_on_a_component_taking_one_entry_at_a_time_is_refused() {
    let server = RedisServer::start();
    let app = recording_app(
        &server,
        Trigger {
            batch_wait: Some("50ms"),
            ..Trigger::default()
        },
    );
    let run = app.run(&[]);
    assert!(!run.success);
    assert!(
        run.stderr
            .contains("batch_wait is set, but component `recorder` takes one entry at a time"),
        "{}",
        run.stderr
    );
}

/// An entry's id with its field names and values, as bytes.
type RawEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The dead-letter stream's entries.
fn dead_letter_entries(redis: &mut redis::Connection) -> Vec<RawEntry> {
    let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(format!("{STREAM}.dead"))
        .arg("-")
        .arg("+")
        .query(redis)
        .expect("XRANGE of the dead-letter stream");
    entries
        .into_iter()
        .map(|(id, flat)| {
            let pairs = flat
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            (id, pairs)
        })
        .collect()
}

#[test]
fn an_entry_with_a_field_name_that_is_not_utf8_is_dead_lettered_and_the_stream_goes_on() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let unreadable: String = redis
        .xadd(STREAM, "*", &[(&b"\xff"[..], &b"v"[..])])
        .expect("XADD");
    add_entries(&server, 100);
    let app = recording_app(&server, Trigger::default());
    let host = app.start_ready();

    wait_for_handled(&server, 100, Duration::from_secs(60));
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let dead = dead_letter_entries(&mut redis);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let field = |name: &[u8]| -> Vec<u8> {
        dead[0]
            .1
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("no field {name:?} in {dead:?}"))
    };
    assert_eq!(field(b"source_id"), unreadable.as_bytes());
    let error = String::from_utf8(field(b"error")).expect("UTF-8 error");
    assert!(error.contains("not UTF-8"), "{error}");
    assert_eq!(field(b"attempts"), b"0", "never handed to a handler");
    assert_eq!(
        field(b"\xff"),
        b"v",
        "the entry's own field is kept, as bytes"
    );
    assert!(
        !run.stderr.contains("reconnecting"),
        "one bad entry is not a lost connection: {}",
        run.stderr
    );
}

#[test]
fn a_dead_letter_key_of_another_type_leaves_the_failed_entry_pending_not_lost() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let _: () = redis
        .set(format!("{STREAM}.dead"), "not a stream")
        .expect("SET");
    let doomed: String = redis
        .xadd(STREAM, "*", &[("payload", "fail")])
        .expect("XADD");
    add_entries(&server, 20);
    let app = recording_app(
        &server,
        Trigger {
            max_attempts: 1,
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    wait_for_handled(&server, 20, Duration::from_secs(60));
    // Everything else is acknowledged; the failed entry is still there to be handled later.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(&mut redis) > 1 {
        assert!(Instant::now() < deadline, "{} pending", pending(&mut redis));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pending(&mut redis), 1, "the failed entry was acknowledged");
    let still: redis::streams::StreamRangeReply =
        redis.xrange(STREAM, &doomed, &doomed).expect("XRANGE");
    assert_eq!(still.ids.len(), 1, "the entry is not deleted");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("could not move the entry to the dead-letter stream")
            && !run.stderr.contains("reconnecting"),
        "{}",
        run.stderr
    );
}

#[test]
fn sigterm_while_an_entry_waits_for_its_retry_exits_cleanly_and_leaves_it_pending() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            max_attempts: 1_000,
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let retried: String = redis
        .xadd(STREAM, "*", &[("payload", "x"), ("fail_times", "1000")])
        .expect("XADD");
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis
        .llen::<_, usize>(format!("attempts:{retried}"))
        .expect("LLEN")
        < 3
    {
        assert!(Instant::now() < deadline, "the entry was not retried");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_has("shut down before retrying");
    run.assert_stderr_lacks("reconnecting");
    assert_eq!(pending(&mut redis), 1, "left for another consumer");
}

#[test]
fn a_handler_running_longer_than_claim_idle_is_not_claimed_by_another_live_host() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            claim_idle: "600ms",
            ..Trigger::default()
        },
    );
    let hosts = [app.start_ready(), app.start_ready()];
    for _ in 0..4 {
        let _: String = redis
            .xadd(STREAM, "*", &[("payload", "slow"), ("sleep_ms", "3000")])
            .expect("XADD");
    }
    wait_for_handled(&server, 4, Duration::from_secs(60));
    wait_for_nothing_pending(&mut redis);
    // Past another claim scan of each host.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        duplicates(&mut redis),
        0,
        "an entry still being handled was claimed and handled again"
    );
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
        run.assert_stderr_lacks("claimed entries");
    }
}

/// The delivery count Redis keeps for `id` in the group (`XPENDING`), with the consumer holding
/// it; `None` before the group exists and once the entry is acknowledged.
fn delivery(redis: &mut redis::Connection, id: &str) -> Option<(String, usize)> {
    let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg(id)
        .arg(id)
        .arg(1)
        .query(redis)
        .ok()?;
    reply
        .ids
        .into_iter()
        .next()
        .map(|pending| (pending.consumer, pending.times_delivered))
}

/// A field of the only dead-letter entry, as text.
fn dead_letter_field(redis: &mut redis::Connection, name: &str) -> String {
    let dead = dead_letter_entries(redis);
    assert_eq!(dead.len(), 1, "{dead:?}");
    dead[0]
        .1
        .iter()
        .find(|(field, _)| field == name.as_bytes())
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
        .unwrap_or_else(|| panic!("no field {name} in {dead:?}"))
}

/// Waits until the dead-letter stream holds `count` entries.
fn wait_for_dead_letters(redis: &mut redis::Connection, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while dead_letters(redis) < count {
        assert!(
            Instant::now() < deadline,
            "{} dead letters after {limit:?}",
            dead_letters(redis)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_entry_that_kills_every_host_handling_it_is_dead_lettered_after_max_attempts_deliveries() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            max_attempts: 2,
            claim_idle: "500ms",
            ..Trigger::default()
        },
    );
    // The handler works for 20 s; each host is killed in the middle of it, as a handler
    // that crashes its host would.
    let deadly: String = redis
        .xadd(STREAM, "*", &[("payload", "deadly"), ("sleep_ms", "20000")])
        .expect("XADD");
    for deliveries in 1..=2 {
        let host = app.start_ready();
        let deadline = Instant::now() + Duration::from_secs(30);
        while delivery(&mut redis, &deadly).map(|(_, count)| count) != Some(deliveries) {
            assert!(
                Instant::now() < deadline,
                "delivery {deliveries} did not come: {:?}",
                delivery(&mut redis, &deadly)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        host.kill();
    }
    // The third host gets it a third time: past `max_attempts`, it is dead-lettered, not run.
    let host = app.start_ready();
    wait_for_dead_letters(&mut redis, 1, Duration::from_secs(30));
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(dead_letter_field(&mut redis, "source_id"), deadly);
    assert_eq!(dead_letter_field(&mut redis, "attempts"), "2");
    let error = dead_letter_field(&mut redis, "error");
    assert!(error.contains("delivered 3 times"), "{error}");
    run.assert_stderr_has("gave up after 2 attempts");
}

#[test]
fn attempts_continue_on_the_host_that_claims_a_failing_entry() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            max_attempts: 4,
            claim_idle: "500ms",
            ..Trigger::default()
        },
    );
    let first = app.start_ready();
    let failing: String = redis
        .xadd(
            STREAM,
            "*",
            &[("payload", "x"), ("fail_times", "1000"), ("group", GROUP)],
        )
        .expect("XADD");
    let attempts_key = format!("attempts:{failing}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.llen::<_, usize>(&attempts_key).expect("LLEN") < 2 {
        assert!(Instant::now() < deadline, "the entry was not retried");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill();
    let second = app.start_ready();
    wait_for_dead_letters(&mut redis, 1, Duration::from_secs(30));
    let run = second.stop();
    assert!(run.success, "{}", run.stderr);
    let attempts: Vec<u32> = redis.lrange(&attempts_key, 0, -1).expect("LRANGE");
    assert!(
        attempts.len() <= 4 && attempts.windows(2).all(|pair| pair[0] < pair[1]),
        "at most max_attempts runs in all, numbered on from the first host's: {attempts:?}"
    );
    assert_eq!(dead_letter_field(&mut redis, "attempts"), "4");
    // Each run starts with its attempt in Redis already: a host killed during it leaves the
    // count the next host goes on from.
    let deliveries: Vec<u32> = redis
        .lrange(format!("deliveries:{failing}"), 0, -1)
        .expect("LRANGE");
    assert_eq!(
        deliveries, attempts,
        "the delivery count Redis held as each run started, by the attempts run"
    );
}

#[test]
fn the_default_group_is_per_namespace_so_each_deployment_handles_every_entry() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let url = server.url();
    let app = TestApp::new("stream-test")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "recorder",
            &format!("stream = \"{STREAM}\""),
        )
        .component(
            "recorder",
            &guest("stream-record-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{url}\"]\nvariables = {{ redis_address = \"{url}\" }}"
            ),
        )
        .write();
    let hosts = [
        app.start_with(&["--namespace", "staging"], &[]),
        app.start_with(&["--namespace", "production"], &[]),
    ];
    for host in &hosts {
        host.wait_until_ready();
    }
    add_entries(&server, 20);
    let deadline = Instant::now() + Duration::from_secs(60);
    while duplicates(&mut redis) < 20 {
        assert!(
            Instant::now() < deadline,
            "{} of 20 entries handled by both deployments",
            duplicates(&mut redis)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
    }
    let groups: redis::streams::StreamInfoGroupsReply =
        redis.xinfo_groups(STREAM).expect("XINFO GROUPS");
    let mut names: Vec<String> = groups.groups.into_iter().map(|group| group.name).collect();
    names.sort();
    assert_eq!(names, ["stream-test@production", "stream-test@staging"]);
}

/// `CLIENT PAUSE <ms> ALL` on `server`: every client's commands wait that long, as behind a
/// stalled or overloaded server.
fn pause(server: &RedisServer, how_long: Duration) {
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(how_long.as_millis() as u64)
        .arg("ALL")
        .query(&mut connection(server))
        .expect("CLIENT PAUSE");
}

#[test]
fn a_paused_server_loses_nothing_and_dead_letters_nothing() {
    const ENTRIES: usize = 3_000;
    let server = RedisServer::start();
    add_entries(&server, ENTRIES);
    let app = recording_app(&server, Trigger::default());
    let hosts = [app.start_ready(), app.start_ready()];
    wait_for_handled(&server, ENTRIES / 10, Duration::from_secs(120));
    // Longer than the idle-time refresh period, shorter than a handler's deadline: the hosts'
    // reads and settles and the guests' own Redis calls all wait, then go on. (A guest's call
    // once failed after 500 ms, redis-rs's default, and its entry was dead-lettered.)
    pause(&server, Duration::from_secs(4));
    wait_for_handled(&server, ENTRIES, Duration::from_secs(180));
    let mut redis = connection(&server);
    wait_for_nothing_pending(&mut redis);
    assert_eq!(dead_letters(&mut redis), 0);
    assert_eq!(
        duplicates(&mut redis),
        0,
        "no host died, so no entry runs twice"
    );
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
        run.assert_stderr_lacks("claimed entries");
    }
}

#[test]
fn a_server_restarted_empty_is_joined_again_and_new_entries_are_handled() {
    let mut server = RedisServer::start();
    let app = recording_app(&server, Trigger::default());
    let host = app.start_ready();
    add_entries(&server, 50);
    wait_for_handled(&server, 50, Duration::from_secs(60));
    // Back with no data (no persistence): the stream, the group and the records are gone.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut redis = connection(&server);
    // The host recreates the group (and the stream) when it reconnects.
    while !redis
        .exists::<_, bool>(STREAM)
        .expect("EXISTS of the stream")
    {
        assert!(Instant::now() < deadline, "the group was not created again");
        std::thread::sleep(Duration::from_millis(50));
    }
    add_entries(&server, 50);
    wait_for_handled(&server, 50, Duration::from_secs(60));
    wait_for_nothing_pending(&mut redis);
    assert_eq!(dead_letters(&mut redis), 0);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("created consumer group").count(),
        2,
        "{}",
        run.stderr
    );
}

#[test]
fn a_host_stopped_while_waiting_to_retry_leaves_the_next_attempt_to_the_host_that_claims_it() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            max_attempts: 5,
            claim_idle: "500ms",
            ..Trigger::default()
        },
    );
    let first = app.start_ready();
    // Fails four times, so the fifth and last attempt succeeds.
    let entry: String = redis
        .xadd(STREAM, "*", &[("payload", "x"), ("fail_times", "4")])
        .expect("XADD");
    let attempts_key = format!("attempts:{entry}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis.llen::<_, usize>(&attempts_key).expect("LLEN") < 4 {
        assert!(Instant::now() < deadline, "the entry was not retried");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The fourth attempt failed: the host waits 800 ms before the fifth, and stops meanwhile.
    let run = first.stop();
    run.assert_stderr_has("shut down before retrying");
    assert_eq!(
        delivery(&mut redis, &entry).map(|(_, count)| count),
        Some(4),
        "the count in Redis is the attempts made, not the one that never started"
    );
    let second = app.start_ready();
    wait_for_handled(&server, 1, Duration::from_secs(30));
    wait_for_nothing_pending(&mut redis);
    let run = second.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(dead_letters(&mut redis), 0, "{}", run.stderr);
    let attempts: Vec<u32> = redis.lrange(&attempts_key, 0, -1).expect("LRANGE");
    assert_eq!(attempts, [1, 2, 3, 4, 5], "every attempt, each once");
}

#[test]
fn claimed_entries_keep_their_delivery_counts_beside_entries_the_consumer_already_holds() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let ids: Vec<String> = (0..3)
        .map(|n| {
            redis
                .xadd(STREAM, "*", &[("payload", n.to_string())])
                .expect("XADD")
        })
        .collect();
    let _: () = redis
        .xgroup_create(STREAM, GROUP, "0")
        .expect("XGROUP CREATE");
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("gone")
        .arg("COUNT")
        .arg(3)
        .arg("STREAMS")
        .arg(STREAM)
        .arg(">")
        .query(&mut redis)
        .expect("XREADGROUP");
    // The first and last: delivered nine times to a consumer long gone. The middle one: held by
    // the consumer the host runs as, and not idle, so the host's claim scan passes it by.
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(STREAM)
        .arg(GROUP)
        .arg("gone")
        .arg(0)
        .arg(&ids[0])
        .arg(&ids[2])
        .arg("IDLE")
        .arg(3_600_000)
        .arg("RETRYCOUNT")
        .arg(9)
        .arg("JUSTID")
        .query(&mut redis)
        .expect("XCLAIM");
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(STREAM)
        .arg(GROUP)
        .arg("steady")
        .arg(0)
        .arg(&ids[1])
        .arg("JUSTID")
        .query(&mut redis)
        .expect("XCLAIM");
    let app = recording_app(
        &server,
        Trigger {
            max_attempts: 5,
            claim_idle: "30s",
            consumer: Some("steady"),
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    wait_for_dead_letters(&mut redis, 2, Duration::from_secs(30));
    wait_for_handled(&server, 1, Duration::from_secs(30));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let handled: Vec<String> = redis.smembers("handled").expect("SMEMBERS");
    assert_eq!(
        handled,
        [ids[1].clone()],
        "only the entry within its attempts ran"
    );
    for dead in dead_letter_entries(&mut redis) {
        let error = dead
            .1
            .iter()
            .find(|(field, _)| field == b"error")
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default();
        assert!(error.contains("delivered 10 times"), "{error}");
    }
}

#[test]
fn entries_gathering_for_a_batch_when_the_connection_drops_are_not_counted_as_attempts() {
    let server = RedisServer::start();
    let app = recording_app(
        &server,
        Trigger {
            guest: "stream-batch-guest",
            batch_size: Some(10),
            batch_wait: Some("10s"),
            // One attempt, no retry: a delivery counted as an attempt would dead-letter them.
            max_attempts: 1,
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let mut redis = connection(&server);
    for index in 0..2 {
        let _: String = redis
            .xadd(STREAM, "*", &[("payload", index.to_string())])
            .expect("XADD");
    }
    // Read, and waiting for eight more to fill the batch (the group may not exist yet).
    let deadline = Instant::now() + Duration::from_secs(30);
    let read = |redis: &mut redis::Connection| {
        redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .query::<(usize, redis::Value, redis::Value, redis::Value)>(redis)
            .map_or(0, |summary| summary.0)
    };
    while read(&mut redis) < 2 {
        assert!(Instant::now() < deadline, "the entries were not read");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut redis)
        .expect("CLIENT KILL");
    wait_for_handled(&server, 2, Duration::from_secs(30));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(dead_letters(&mut redis), 0, "{}", run.stderr);
}

/// How many entries are handled per second over `window`, measured from a second after the
/// hosts started.
fn handled_per_second(server: &RedisServer, window: Duration) -> f64 {
    let mut redis = connection(server);
    std::thread::sleep(Duration::from_secs(1));
    let (start, at) = (handled(&mut redis), Instant::now());
    std::thread::sleep(window);
    let count = handled(&mut redis) - start;
    count as f64 / at.elapsed().as_secs_f64()
}

/// `max_per_second = 50`: with 2,000 entries waiting and four slots, the host handles 50 a
/// second (within 10 % over 10 s); the rest wait in the stream.
#[test]
fn max_per_second_holds_a_hosts_rate_over_ten_seconds() {
    let server = RedisServer::start();
    add_entries(&server, 2000);
    let app = recording_app(
        &server,
        Trigger {
            extra: "max_per_second = 50",
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let rate = handled_per_second(&server, Duration::from_secs(10));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!((45.0..=55.0).contains(&rate), "{rate:.1} entries a second");
}

/// `max_per_second = 40` with `max_per_second_shared = true`: two hosts together handle 40 a
/// second (within 10 % over 6 s), not 40 each.
#[test]
fn a_shared_max_per_second_holds_across_two_hosts() {
    let server = RedisServer::start();
    add_entries(&server, 2000);
    let app = recording_app(
        &server,
        Trigger {
            extra: "max_per_second = 40\nmax_per_second_shared = true",
            ..Trigger::default()
        },
    );
    let hosts = [app.start_ready(), app.start_ready()];
    let rate = handled_per_second(&server, Duration::from_secs(6));
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
    }
    assert!((36.0..=44.0).contains(&rate), "{rate:.1} entries a second");
    let buckets: Vec<String> = connection(&server).keys("spin-trigger:rate:*").unwrap();
    assert_eq!(
        buckets,
        ["spin-trigger:rate:stream-test:recorder-redis-stream-trigger"],
        "the shared bucket is in the trigger's Redis server, named for the app and the trigger"
    );
}

/// `max_per_second = 0.1` gives a host one entry every 10 s. An entry finished while the host
/// waits for its next token is still acknowledged at once and its idle time kept fresh, so a
/// second live host (whose token is unused) never claims it and runs it again.
#[test]
fn a_slow_rate_limit_does_not_leave_a_finished_entry_for_another_host_to_claim() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            claim_idle: "2s",
            max_in_flight: 1,
            extra: "max_per_second = 0.1",
            ..Trigger::default()
        },
    );
    let hosts = [app.start_ready(), app.start_ready()];
    let _: String = redis
        .xadd(STREAM, "*", &[("payload", "slow"), ("sleep_ms", "3000")])
        .expect("XADD");
    wait_for_handled(&server, 1, Duration::from_secs(20));
    let handled_at = Instant::now();
    wait_for_nothing_pending(&mut redis);
    assert!(
        handled_at.elapsed() < Duration::from_secs(2),
        "acknowledged {:?} after the handler ended",
        handled_at.elapsed()
    );
    // Past the token the waiting host would have had, and another claim scan.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        duplicates(&mut redis),
        0,
        "a finished entry was claimed and handled again"
    );
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
    }
}

/// SIGTERM while a 4 s handler runs, with `claim_idle = "60s"`: the host exits once the handler
/// ends, not at the consumer's next idle-time refresh 20 s later (it took 18.5 s before).
#[test]
fn sigterm_during_a_handler_exits_when_it_ends_whatever_claim_idle_is() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            claim_idle: "60s",
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let _: String = redis
        .xadd(STREAM, "*", &[("payload", "slow"), ("sleep_ms", "4000")])
        .expect("XADD");
    std::thread::sleep(Duration::from_millis(1500));
    let stopping = Instant::now();
    let run = host.stop();
    let took = stopping.elapsed();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(handled(&mut redis), 1);
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
}

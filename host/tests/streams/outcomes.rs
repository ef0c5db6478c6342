//! Outcomes a handler decides (`spin-trigger:sdk/redis@0.5.0`): "try it again after a delay"
//! (the entry waits in `<stream>.delayed`, in Redis, holding no slot) and "dead-letter it now",
//! from a handler taking one entry and from one taking batches; the host's own waits between
//! attempts at a failed entry (`retry_backoff`, `max_retry_backoff`); and components of the older
//! worlds, whose handlers only succeed or fail, still served.

use std::time::{Duration, Instant};

use redis::Commands;

use super::common::{RedisServer, TestApp, guest};
use super::{
    STREAM, Trigger, connection, dead_letter_entries, dead_letters, duplicates, handled, pending,
    recording_app, wait_for_dead_letters, wait_for_handled, wait_for_nothing_pending,
};

const DELAYED: &str = "jobs.delayed";

/// The attempts the recording guest saw for the entry with field `key`, in order.
fn tries(redis: &mut redis::Connection, key: &str) -> Vec<u32> {
    redis
        .lrange(format!("tries:{key}"), 0, -1)
        .expect("LRANGE tries")
}

/// Waits until the guest has seen `count` attempts at `key`; returns when it saw the last.
fn wait_for_tries(redis: &mut redis::Connection, key: &str, count: usize) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tries(redis, key).len() < count {
        assert!(
            Instant::now() < deadline,
            "{key}: attempts {:?}, waiting for {count}",
            tries(redis, key)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Instant::now()
}

fn delayed(redis: &mut redis::Connection) -> usize {
    redis.zcard(DELAYED).expect("ZCARD of the delayed set")
}

/// A field of a dead-letter entry, by the `key` field it carries.
fn dead_letter_error(redis: &mut redis::Connection, key: &str) -> (String, String) {
    let text = |value: &[u8]| String::from_utf8_lossy(value).into_owned();
    let dead = dead_letter_entries(redis);
    let (_, fields) = dead
        .iter()
        .find(|(_, fields)| {
            fields
                .iter()
                .any(|(name, value)| name == b"key" && value == key.as_bytes())
        })
        .unwrap_or_else(|| panic!("no dead letter for {key} in {dead:?}"));
    let field = |wanted: &str| {
        fields
            .iter()
            .find(|(name, _)| name == wanted.as_bytes())
            .map(|(_, value)| text(value))
            .unwrap_or_else(|| panic!("no {wanted} in {fields:?}"))
    };
    (field("error"), field("attempts"))
}

/// The issue's case: a handler asks for its entry to be tried again after 2 s, and the host is
/// SIGKILLed during the wait. The entry is in Redis, not in the dead host: a new host runs its
/// second attempt once the 2 s are up, and it is handled once.
#[test]
fn a_retry_after_2s_survives_a_sigkill_during_the_wait() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(&server, Trigger::default());
    let first_host = app.start_ready();
    let original: String = redis
        .xadd(
            STREAM,
            "*",
            &[
                ("payload", "later"),
                ("key", "k"),
                ("retry_after_ms", "2000"),
                ("retry_times", "1"),
            ],
        )
        .expect("XADD");
    let first_try = wait_for_tries(&mut redis, "k", 1);
    // Acknowledged and waiting in the delayed set, not in the host.
    let deadline = Instant::now() + Duration::from_secs(5);
    while delayed(&mut redis) == 0 || pending(&mut redis) > 0 {
        assert!(Instant::now() < deadline, "the entry never reached the set");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = first_host.kill();
    assert!(
        first_try.elapsed() < Duration::from_millis(1500),
        "killed {:?} into the wait: too late to test it",
        first_try.elapsed()
    );
    assert!(!killed.success);
    let second_host = app.start_ready();
    let second_try = wait_for_tries(&mut redis, "k", 2);
    wait_for_handled(&server, 1, Duration::from_secs(10));
    wait_for_nothing_pending(&mut redis);
    let run = second_host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        second_try - first_try >= Duration::from_millis(1900),
        "tried again {:?} after the first attempt",
        second_try - first_try
    );
    assert_eq!(tries(&mut redis, "k"), [1, 2], "attempts count on");
    assert_eq!(handled(&mut redis), 1);
    assert_eq!(duplicates(&mut redis), 0);
    assert_eq!(delayed(&mut redis), 0);
    assert_eq!(dead_letters(&mut redis), 0);
    let handled_ids: Vec<String> = redis.smembers("handled").expect("SMEMBERS");
    assert_ne!(
        handled_ids,
        [original],
        "it came back as a new entry at the end of the stream"
    );
    let fields: redis::streams::StreamRangeReply = redis.xrange_all(STREAM).expect("XRANGE");
    let back = fields.ids.last().expect("the entry added back");
    assert_eq!(
        back.get::<String>("key").as_deref(),
        Some("k"),
        "with its fields: {back:?}"
    );
}

/// With one slot, an entry waiting out its delay leaves the slot to the next entry. A handler
/// can send an entry to the dead-letter stream at once; one asking for a retry on its last
/// attempt goes there too.
#[test]
fn a_delayed_entry_holds_no_slot_and_handlers_can_dead_letter() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            max_in_flight: 1,
            max_attempts: 2,
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let add = |redis: &mut redis::Connection, fields: &[(&str, &str)]| -> String {
        redis.xadd(STREAM, "*", fields).expect("XADD")
    };
    add(
        &mut redis,
        &[
            ("key", "a"),
            ("retry_after_ms", "3000"),
            ("retry_times", "1"),
        ],
    );
    let first_try = wait_for_tries(&mut redis, "a", 1);
    add(&mut redis, &[("key", "b")]);
    add(&mut redis, &[("key", "c"), ("dead_letter", "bad input")]);
    add(
        &mut redis,
        &[
            ("key", "d"),
            ("retry_after_ms", "100"),
            ("retry_times", "5"),
        ],
    );
    wait_for_tries(&mut redis, "b", 1);
    assert!(
        first_try.elapsed() < Duration::from_secs(2),
        "the next entry waited {:?}: the delayed one held the only slot",
        first_try.elapsed()
    );
    let second_try = wait_for_tries(&mut redis, "a", 2);
    assert!(second_try - first_try >= Duration::from_millis(2900));
    wait_for_dead_letters(&mut redis, 2, Duration::from_secs(10));
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_has("the dead-letter stream: dead-lettered by its handler: bad input");
    assert_eq!(tries(&mut redis, "a"), [1, 2]);
    assert_eq!(
        tries(&mut redis, "c"),
        [1],
        "dead-lettered without another attempt"
    );
    assert_eq!(tries(&mut redis, "d"), [1, 2], "max_attempts = 2");
    assert_eq!(handled(&mut redis), 2, "a and b");
    assert_eq!(
        dead_letter_error(&mut redis, "c"),
        (
            "dead-lettered by its handler: bad input".to_owned(),
            "1".to_owned()
        )
    );
    let (error, attempts) = dead_letter_error(&mut redis, "d");
    assert!(
        error.contains("on its last attempt (max_attempts = 2)"),
        "{error}"
    );
    assert_eq!(attempts, "2");
    assert_eq!(delayed(&mut redis), 0);
}

/// A batch handler marks one entry to be retried later and one to be dead-lettered; the rest of
/// the batch is acknowledged.
#[test]
fn a_batch_handler_delays_one_entry_and_dead_letters_another() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    for payload in ["1", "later", "poison", "2"] {
        let _: String = redis
            .xadd(STREAM, "*", &[("payload", payload), ("key", payload)])
            .expect("XADD");
    }
    let app = recording_app(
        &server,
        Trigger {
            guest: "stream-batch-guest",
            batch_size: Some(10),
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    wait_for_handled(&server, 3, Duration::from_secs(15));
    wait_for_dead_letters(&mut redis, 1, Duration::from_secs(5));
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(handled(&mut redis), 3);
    assert_eq!(duplicates(&mut redis), 0);
    assert_eq!(
        dead_letter_error(&mut redis, "poison"),
        (
            "dead-lettered by its handler: poisoned".to_owned(),
            "1".to_owned()
        )
    );
    assert_eq!(delayed(&mut redis), 0);
}

/// Components of the 0.2.0 Redis world and the 0.3.0 batch world (built before outcomes) still
/// run: their entries are handled, and a failure is retried with the attempt counted.
#[test]
fn components_of_the_older_redis_worlds_still_run() {
    let server = RedisServer::start();
    let url = server.url();
    let app = TestApp::new("older-worlds")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "message",
            "stream = \"messages\"\nmax_attempts = 2",
        )
        .trigger(
            "redis-stream",
            "batch",
            "stream = \"batches\"\nmax_attempts = 2",
        )
        .replying_component("message", &guest("redis-message-0-2-guest"), &url)
        .replying_component("batch", &guest("stream-batch-0-3-guest"), &url)
        .write();
    let mut replies = server.subscribe("replies");
    let host = app.start_ready();
    let mut redis = connection(&server);
    for stream in ["messages", "batches"] {
        let _: String = redis
            .xadd(stream, "*", &[("payload", "fail")])
            .expect("XADD");
    }
    let mut seen: Vec<String> = (0..4).map(|_| replies.next()).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "batches|fail|1",
            "batches|fail|2",
            "messages|fail|1",
            "messages|fail|2"
        ]
    );
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    for stream in ["messages", "batches"] {
        let dead: usize = redis.xlen(format!("{stream}.dead")).expect("XLEN");
        assert_eq!(dead, 1, "{stream}");
    }
}

/// `retry_backoff = "500ms"` and `max_retry_backoff = "600ms"`: a failing entry waits 500 ms
/// after its first attempt, then 600 ms (not 1 s, then 2 s, as doubling alone would).
#[test]
fn retry_backoff_and_max_retry_backoff_set_the_waits_between_attempts() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            max_attempts: 4,
            extra: "retry_backoff = \"500ms\"\nmax_retry_backoff = \"600ms\"",
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let _: String = redis
        .xadd(STREAM, "*", &[("key", "r"), ("fail_times", "3")])
        .expect("XADD");
    let seen: Vec<Instant> = (1..=4)
        .map(|count| wait_for_tries(&mut redis, "r", count))
        .collect();
    wait_for_handled(&server, 1, Duration::from_secs(10));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    let gaps: Vec<Duration> = seen.windows(2).map(|pair| pair[1] - pair[0]).collect();
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(480)),
        "{gaps:?}"
    );
    assert!(
        gaps[2] < Duration::from_millis(1500),
        "the third wait is held to max_retry_backoff: {gaps:?}"
    );
    assert_eq!(tries(&mut redis, "r"), [1, 2, 3, 4]);
}

/// An entry with more fields than the delayed set's scripts can pass to `XADD` (Lua takes about
/// 8,000 arguments at once) is not put there, where it could never come back: its handler's
/// retry-after is taken as a failure and retried in its slot.
#[test]
fn an_entry_too_big_for_the_delayed_set_is_retried_in_its_slot_instead() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(&server, Trigger::default());
    let host = app.start_ready();
    let mut fields: Vec<(String, String)> = ["key=big", "retry_after_ms=100", "retry_times=1"]
        .iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').expect("name=value");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    fields.extend((0..3_500).map(|n| (format!("f{n}"), "x".to_owned())));
    let _: String = redis.xadd(STREAM, "*", &fields).expect("XADD");
    wait_for_handled(&server, 1, Duration::from_secs(20));
    wait_for_nothing_pending(&mut redis);
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_has("more than the delayed set takes (3000)");
    assert_eq!(tries(&mut redis, "big"), [1, 2]);
    assert_eq!(delayed(&mut redis), 0);
    assert_eq!(dead_letters(&mut redis), 0);
}

/// Two consumer groups on one stream each handle an entry, and each group's handler asks for a
/// retry. Each group's retry comes back to the shared stream marked with its group: each group
/// runs its own second attempt, and acknowledges the other's unrun.
#[test]
fn a_retry_asked_in_one_group_is_run_by_that_group_alone() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let workers = recording_app(&server, Trigger::default());
    let auditors = recording_app(
        &server,
        Trigger {
            group: "auditors",
            ..Trigger::default()
        },
    );
    let hosts = [workers.start_ready(), auditors.start_ready()];
    let _: String = redis
        .xadd(
            STREAM,
            "*",
            &[
                ("key", "k"),
                ("retry_after_ms", "300"),
                ("retry_times", "1"),
            ],
        )
        .expect("XADD");
    wait_for_tries(&mut redis, "k", 4);
    // Long enough for a wrong third run to show.
    std::thread::sleep(Duration::from_millis(1500));
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
    }
    let mut seen = tries(&mut redis, "k");
    seen.sort_unstable();
    assert_eq!(
        seen,
        [1, 1, 2, 2],
        "one first and one second attempt per group"
    );
    let added: usize = redis.xlen(STREAM).expect("XLEN");
    assert_eq!(added, 3, "the entry and one retry per group");
    for group in [super::GROUP, "auditors"] {
        let summary: (usize, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(group)
            .query(&mut redis)
            .expect("XPENDING");
        assert_eq!(summary.0, 0, "{group}: nothing left pending");
    }
    assert_eq!(delayed(&mut redis), 0);
}

/// A handler's retry-after is not kept when its consumer no longer holds the entry (another
/// consumer claimed it while this one was away): the one holding it decides.
#[test]
fn a_retry_after_from_a_consumer_that_lost_the_entry_is_not_kept() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(
        &server,
        Trigger {
            claim_idle: "30s",
            ..Trigger::default()
        },
    );
    let host = app.start_ready();
    let id: String = redis
        .xadd(
            STREAM,
            "*",
            &[
                ("key", "k"),
                ("sleep_ms", "1500"),
                ("retry_after_ms", "100"),
                ("retry_times", "1"),
            ],
        )
        .expect("XADD");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until the host joins the group, XPENDING has no group to answer for.
    let read = |redis: &mut redis::Connection| {
        redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(super::GROUP)
            .query::<(usize, redis::Value, redis::Value, redis::Value)>(redis)
            .is_ok_and(|summary| summary.0 > 0)
    };
    while !read(&mut redis) {
        assert!(Instant::now() < deadline, "the entry was never read");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Another consumer takes it over while the handler runs.
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(STREAM)
        .arg(super::GROUP)
        .arg("another-host")
        .arg(0)
        .arg(&id)
        .arg("JUSTID")
        .query(&mut redis)
        .expect("XCLAIM");
    wait_for_tries(&mut redis, "k", 1);
    std::thread::sleep(Duration::from_millis(800));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    run.assert_stderr_has("another consumer has claimed it since");
    assert_eq!(delayed(&mut redis), 0, "not put in the delayed set");
    assert_eq!(tries(&mut redis, "k"), [1], "and not run again");
    assert_eq!(pending(&mut redis), 1, "still the other consumer's");
}

/// Entries waiting in the delayed set are not stranded when the app is rolled back to a
/// component of an older world: its consumers move due entries back too.
#[test]
fn a_rolled_back_component_still_runs_entries_left_in_the_delayed_set() {
    let server = RedisServer::start();
    let url = server.url();
    let mut redis = connection(&server);
    let app = recording_app(&server, Trigger::default());
    let host = app.start_ready();
    let _: String = redis
        .xadd(
            STREAM,
            "*",
            &[
                ("payload", "later"),
                ("key", "k"),
                ("retry_after_ms", "1000"),
                ("retry_times", "1"),
            ],
        )
        .expect("XADD");
    wait_for_tries(&mut redis, "k", 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while delayed(&mut redis) == 0 {
        assert!(Instant::now() < deadline, "the entry never reached the set");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = host.kill();
    let older = TestApp::new("stream-test")
        .redis_address("redis-stream", &url)
        .trigger(
            "redis-stream",
            "older",
            &format!("stream = \"{STREAM}\"\ngroup = \"{}\"", super::GROUP),
        )
        .replying_component("older", &guest("stream-batch-0-3-guest"), &url)
        .write();
    let mut replies = server.subscribe("replies");
    let older_host = older.start_ready();
    assert_eq!(replies.next(), "jobs|later|2");
    let run = older_host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(delayed(&mut redis), 0);
}

/// A publisher writing the host's attempts field cannot keep an entry from its handler: the
/// count it carries is held below `max_attempts`, so the handler runs it once, as its last
/// attempt.
#[test]
fn a_forged_attempt_count_still_leaves_the_entry_one_attempt() {
    let server = RedisServer::start();
    let mut redis = connection(&server);
    let app = recording_app(&server, Trigger::default());
    let host = app.start_ready();
    let _: String = redis
        .xadd(
            STREAM,
            "*",
            &[("key", "f"), ("spin-trigger-attempts", "999")],
        )
        .expect("XADD");
    wait_for_handled(&server, 1, Duration::from_secs(10));
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert_eq!(tries(&mut redis, "f"), [3], "max_attempts = 3: its last");
    assert_eq!(dead_letters(&mut redis), 0);
}

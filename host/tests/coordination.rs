//! One fire per tick across hosts, with real processes: three hosts run one app whose timer
//! fires every second, coordinated through a redis-server of the test's own. The guest records
//! each tick it runs on a second redis-server (`SADD ticks <scheduled ms>`, `INCR runs:<ms>`),
//! so the test sees every tick that ran and how often.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{AppDir, HostProcess, RedisServer, TestApp, guest};
use redis::Commands;

/// The app: one timer every second, coordinated through `coordination`, recording on `record`.
fn coordinated_app(coordination: &RedisServer, record: &RedisServer) -> AppDir {
    coordinated_app_with(coordination, record, "")
}

/// [`coordinated_app`] with more fields for the timer.
fn coordinated_app_with(coordination: &RedisServer, record: &RedisServer, fields: &str) -> AppDir {
    let record_url = record.url();
    TestApp::new("coordinated")
        .settings(
            "timer",
            &format!("coordination = \"{}\"", coordination.url()),
        )
        .trigger(
            "timer",
            "recorder",
            &format!("id = \"every-second\"\ninterval_secs = 1\n{fields}"),
        )
        .component(
            "recorder",
            &guest("tick-recorder-guest"),
            &format!(
                "allowed_outbound_hosts = [\"{record_url}\"]\n\
                 variables = {{ redis_address = \"{record_url}\" }}"
            ),
        )
        .write()
}

fn start_ready(app: &AppDir) -> HostProcess {
    let host = app.start();
    host.wait_until_ready();
    host
}

/// Stops every host (each must exit 0) and returns their logs, one after the other.
fn stop_all(hosts: Vec<HostProcess>) -> String {
    let mut stderr = String::new();
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
        stderr.push_str(&run.stderr);
    }
    stderr
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Each recorded tick's scheduled time, with how many times it ran.
fn runs(record: &RedisServer) -> BTreeMap<u64, i64> {
    let mut connection = record.client().get_connection().unwrap();
    let ticks: Vec<String> = connection.smembers("ticks").unwrap();
    ticks
        .into_iter()
        .map(|tick| {
            let count: i64 = connection.get(format!("runs:{tick}")).unwrap();
            (tick.parse().unwrap(), count)
        })
        .collect()
}

#[test]
fn three_hosts_run_each_tick_once_and_a_killed_host_loses_none() {
    let coordination = RedisServer::start();
    let record = RedisServer::start();
    let app = coordinated_app(&coordination, &record);
    let mut hosts: Vec<HostProcess> = (0..3).map(|_| start_ready(&app)).collect();
    // Every tick from the next whole second on must run.
    let from = now_ms().div_ceil(1000) * 1000 + 1000;
    let started = Instant::now();
    // A host that claimed a tick and died before running it: its claim runs out a second after
    // the tick was due, and one of the others runs the tick.
    let orphaned = from + 4000;
    let claim_lasts = orphaned + 1000 - now_ms();
    let _: () = coordination
        .client()
        .get_connection()
        .unwrap()
        .set_options(
            format!("spin-trigger:timer:coordinated:every-second:{orphaned}"),
            "a-host-that-died",
            redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(claim_lasts)),
        )
        .unwrap();
    std::thread::sleep(Duration::from_secs(10));
    let killed = hosts.remove(0).kill();
    std::thread::sleep(Duration::from_secs(3));
    hosts.push(start_ready(&app));
    let remaining = Duration::from_secs(30).saturating_sub(started.elapsed());
    std::thread::sleep(remaining);
    let until = now_ms() / 1000 * 1000 - 1000;
    let stderr = stop_all(hosts);

    let runs = runs(&record);
    let missing: Vec<u64> = (from..=until)
        .step_by(1000)
        .filter(|tick| !runs.contains_key(tick))
        .collect();
    assert!(
        missing.is_empty(),
        "ticks that never ran: {missing:?}; ran: {runs:?}"
    );
    assert!(
        runs.keys().all(|tick| tick % 1000 == 0),
        "ticks are on the epoch's whole seconds: {runs:?}"
    );
    assert_eq!(
        runs.get(&orphaned),
        Some(&1),
        "the orphaned tick ran once: {runs:?}"
    );
    assert!(
        (stderr.clone() + &killed.stderr)
            .contains("the host holding this tick went away before it finished; running it here"),
        "{stderr}"
    );
    let duplicates: Vec<(&u64, &i64)> = runs.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        duplicates.iter().map(|(_, count)| **count - 1).sum::<i64>() <= 1,
        "at most one extra run, for the tick the killed host held: {duplicates:?}\n{}",
        killed.stdout
    );
}

/// `catch_up` with coordination: three hosts run a timer every second; all stop; about five
/// ticks pass with no host; three start again. Each missed tick runs once, on one of them, and
/// the schedule goes on: from the first tick to the last, none is missing and none ran twice.
/// The last completed tick is kept in the coordination server.
#[test]
fn three_hosts_catch_up_on_the_ticks_missed_while_all_were_down_each_once() {
    let coordination = RedisServer::start();
    let record = RedisServer::start();
    let app = coordinated_app_with(&coordination, &record, "catch_up = \"1m\"");
    let hosts: Vec<HostProcess> = (0..3).map(|_| start_ready(&app)).collect();
    std::thread::sleep(Duration::from_millis(3500));
    let mut stderr = stop_all(hosts);
    let stopped_at = now_ms();
    std::thread::sleep(Duration::from_secs(5));
    let restarted_at = now_ms();
    let hosts: Vec<HostProcess> = (0..3).map(|_| start_ready(&app)).collect();
    std::thread::sleep(Duration::from_secs(4));
    stderr.push_str(&stop_all(hosts));

    let runs = runs(&record);
    let (first, last) = (
        *runs.keys().next().expect("ticks ran"),
        *runs.keys().last().expect("ticks ran"),
    );
    let missing: Vec<u64> = (first..=last)
        .step_by(1000)
        .filter(|tick| !runs.contains_key(tick))
        .collect();
    assert!(
        missing.is_empty(),
        "ticks that never ran: {missing:?}; ran: {runs:?}"
    );
    assert!(
        runs.values().all(|count| *count == 1),
        "every tick ran once: {runs:?}"
    );
    let missed_while_down = runs
        .keys()
        .filter(|tick| (stopped_at..restarted_at).contains(*tick))
        .count();
    assert!(
        missed_while_down >= 4,
        "the ticks due while no host ran were caught up: {runs:?}"
    );
    assert!(
        stderr.contains("catching up on ticks missed while no host ran"),
        "{stderr}"
    );
    let recorded: u64 = coordination
        .client()
        .get_connection()
        .unwrap()
        .get("spin-trigger:timer:coordinated:every-second:last")
        .unwrap();
    assert_eq!(recorded, last, "the last completed tick, in Redis");
}

/// A coordinated timer paused through one host's admin endpoint is paused on every host (the
/// pause is in Redis): no host runs a tick until it is resumed, then they go on.
#[test]
fn a_pause_through_one_hosts_admin_endpoint_holds_on_every_host() {
    let coordination = RedisServer::start();
    let record = RedisServer::start();
    let app = coordinated_app(&coordination, &record);
    let token = "an-operators-token-0123456789";
    let port = common::free_port();
    let admin = format!("127.0.0.1:{port}");
    let with_admin = app.start_with(
        &["--admin-addr", &admin],
        &[("SPIN_TRIGGER_ADMIN_TOKEN", token)],
    );
    with_admin.wait_until_ready();
    common::wait_for_port(port);
    let hosts = vec![with_admin, start_ready(&app), start_ready(&app)];
    std::thread::sleep(Duration::from_millis(2500));
    let ctl = |action: &str| {
        let run = common::run_ctl(&admin, token, &[action, "every-second"]);
        assert!(run.success, "{}", run.stderr);
    };
    ctl("pause");
    let paused_at = now_ms();
    let mut connection = coordination.client().get_connection().unwrap();
    let paused: bool = connection
        .exists("spin-trigger:timer:coordinated:every-second:paused")
        .unwrap();
    assert!(paused, "the pause is in Redis");
    std::thread::sleep(Duration::from_secs(4));
    ctl("resume");
    let resumed_at = now_ms();
    std::thread::sleep(Duration::from_millis(3500));
    let stderr = stop_all(hosts);

    let runs = runs(&record);
    let during: Vec<&u64> = runs
        .keys()
        .filter(|tick| (paused_at + 1000..resumed_at).contains(*tick))
        .collect();
    assert!(
        during.is_empty(),
        "no host ran a tick while paused ({paused_at}..{resumed_at}): {during:?}\n{stderr}"
    );
    assert!(
        runs.keys().filter(|tick| **tick < paused_at).count() >= 1
            && runs.keys().filter(|tick| **tick > resumed_at).count() >= 2,
        "ticks ran before the pause and after the resume: {runs:?}"
    );
    assert!(runs.values().all(|count| *count == 1), "{runs:?}");
    assert!(stderr.contains("timer paused by an operator"), "{stderr}");
}

#[test]
fn a_coordination_outage_skips_ticks_and_never_runs_one_twice() {
    let mut coordination = RedisServer::start();
    let record = RedisServer::start();
    let app = coordinated_app(&coordination, &record);
    let hosts: Vec<HostProcess> = (0..3).map(|_| start_ready(&app)).collect();
    std::thread::sleep(Duration::from_secs(4));
    // Down for two seconds; back empty (no persistence), as after a crash.
    coordination.kill();
    std::thread::sleep(Duration::from_secs(2));
    coordination.restart();
    let back = now_ms();
    std::thread::sleep(Duration::from_secs(8));
    let stderr = stop_all(hosts);
    let runs = runs(&record);
    let twice: Vec<_> = runs.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "ticks that ran twice: {twice:?}");
    assert!(
        stderr.contains("coordination unavailable, so this tick is skipped on this host"),
        "{stderr}"
    );
    // Coordination resumed: ticks well after the restart ran.
    assert!(
        runs.keys().filter(|tick| **tick > back + 3000).count() >= 3,
        "no ticks after the restart: {runs:?}"
    );
}

#[test]
fn a_handler_that_holds_its_thread_longer_than_the_lease_keeps_its_tick() {
    let coordination = RedisServer::start();
    let state = tempfile::tempdir().expect("a state directory");
    let state_dir = state.path().display().to_string();
    let app = TestApp::new("coordinated")
        .settings(
            "timer",
            &format!("coordination = \"{}\"", coordination.url()),
        )
        .trigger(
            "timer",
            "writer",
            "id = \"slow-writes\"\ninterval_secs = 2\nhandler_timeout = \"20s\"",
        )
        .component(
            "writer",
            &guest("hostile-guest"),
            "sqlite_databases = [\"default\"]\nvariables = { attack = \"write\" }",
        )
        .write();
    let schema = "CREATE TABLE IF NOT EXISTS ticks (at INTEGER)";
    let start = || {
        let host = app.start_with(&["--state-dir", &state_dir, "--sqlite", schema], &[]);
        host.wait_until_ready();
        host
    };
    let hosts = vec![start(), start()];
    // Holding the database's write lock makes each tick's INSERT wait for it, up to SQLite's
    // 5 s busy timeout, on the handler's thread: longer than the 3 s lease.
    let holder = WriteLock::on(&state.path().join("sqlite_db.db"));
    let mut stdout = String::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(16) {
        holder.hold(Duration::from_millis(4500));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(6));
    for host in hosts {
        let run = host.stop();
        assert!(run.success, "{}", run.stderr);
        stdout.push_str(&run.stdout);
    }
    let mut seen = BTreeMap::<&str, usize>::new();
    for line in stdout.lines() {
        if let Some(scheduled) = line.split("scheduled=").nth(1) {
            *seen.entry(scheduled.trim()).or_default() += 1;
        }
    }
    println!("ticks run (scheduled ms: runs): {seen:?}");
    assert!(seen.len() >= 3, "too few ticks ran: {stdout}");
    let twice: Vec<_> = seen.iter().filter(|(_, runs)| **runs > 1).collect();
    assert!(
        twice.is_empty(),
        "ticks that ran on both hosts while both lived: {twice:?}\n{stdout}"
    );
}

/// The write lock of the SQLite file at `path`, taken and released by the test.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn on(path: &std::path::Path) -> Self {
        let connection = rusqlite::Connection::open(path).expect("opening the database");
        connection
            .busy_timeout(Duration::from_secs(30))
            .expect("a busy timeout");
        WriteLock(connection)
    }

    /// Holds the lock for `how_long`, as a long transaction of another program would.
    fn hold(&self, how_long: Duration) {
        self.0
            .execute_batch("BEGIN IMMEDIATE")
            .expect("taking the write lock");
        std::thread::sleep(how_long);
        self.0.execute_batch("COMMIT").expect("releasing it");
    }
}

#[test]
fn two_deployments_of_one_app_in_their_own_namespaces_each_run_every_tick() {
    let coordination = RedisServer::start();
    let (staging_record, production_record) = (RedisServer::start(), RedisServer::start());
    let staging = coordinated_app(&coordination, &staging_record);
    let production = coordinated_app(&coordination, &production_record);
    let hosts = vec![
        staging.start_with(&["--namespace", "staging"], &[]),
        staging.start_with(&["--namespace", "staging"], &[]),
        production.start_with(&[], &[("SPIN_TRIGGER_NAMESPACE", "production")]),
    ];
    for host in &hosts {
        host.wait_until_ready();
    }
    std::thread::sleep(Duration::from_secs(7));
    stop_all(hosts);
    let (staging_runs, production_runs) = (runs(&staging_record), runs(&production_record));
    assert!(
        staging_runs.values().all(|count| *count == 1),
        "within a deployment a tick runs once: {staging_runs:?}"
    );
    let both = staging_runs
        .keys()
        .filter(|tick| production_runs.contains_key(tick))
        .count();
    assert!(
        both >= 4,
        "one deployment's ticks do not suppress the other's: staging {staging_runs:?}, \
         production {production_runs:?}"
    );
}

#[test]
fn a_lease_lost_while_the_handler_runs_is_logged_and_counted_as_a_possible_duplicate() {
    let coordination = RedisServer::start();
    let metrics_port = common::free_port();
    let app = TestApp::new("coordinated")
        .settings(
            "timer",
            &format!("coordination = \"{}\"", coordination.url()),
        )
        .trigger("timer", "probe", "id = \"slow\"\ninterval_secs = 5")
        .component(
            "probe",
            &guest("probe-guest"),
            "variables = { sleep_ms = \"3000\" }",
        )
        .write();
    let host = app.start_with(
        &["--metrics-addr", &format!("127.0.0.1:{metrics_port}")],
        &[],
    );
    host.wait_until_ready();
    assert!(
        host.wait_for_stdout_lines("tick seq=", 1, Duration::from_secs(30)),
        "no tick started"
    );
    // The claim vanishes under the running handler, as when its lease ran out during a
    // stalled renewal and another host took the tick.
    let mut redis = coordination.client().get_connection().unwrap();
    let claims: Vec<String> = redis.keys("spin-trigger:timer:*:slow:*").unwrap();
    assert!(!claims.is_empty(), "no claim key while the handler runs");
    let _: () = redis.del(&claims).unwrap();
    assert!(
        host.wait_for_stdout_lines("done seq=", 1, Duration::from_secs(30)),
        "the handler did not finish"
    );
    let (_, metrics) = common::http_get(metrics_port, "/metrics").expect("scraping /metrics");
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("lost the lease on this tick while running it: another host may run it too"),
        "{}",
        run.stderr
    );
    let lost = metrics
        .lines()
        .find(|line| line.starts_with("spin_trigger_timer_leases_lost_total{"))
        .unwrap_or_else(|| panic!("no leases-lost series: {metrics}"));
    assert!(lost.ends_with(" 1"), "{lost}");
}

#[test]
fn a_paused_coordination_server_never_runs_a_tick_twice() {
    let coordination = RedisServer::start();
    let record = RedisServer::start();
    let app = coordinated_app(&coordination, &record);
    let hosts: Vec<HostProcess> = (0..2).map(|_| start_ready(&app)).collect();
    std::thread::sleep(Duration::from_secs(3));
    // Every claim, renewal and mark waits 4 s: longer than a lease.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(4000)
        .arg("ALL")
        .query(&mut coordination.client().get_connection().unwrap())
        .unwrap();
    let resumed = now_ms() + 4000;
    std::thread::sleep(Duration::from_secs(10));
    stop_all(hosts);
    let runs = runs(&record);
    let twice: Vec<_> = runs.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "ticks that ran twice: {twice:?}");
    assert!(
        runs.keys().filter(|tick| **tick > resumed + 2000).count() >= 3,
        "ticks after the pause ran: {runs:?}"
    );
}

//! Manifest loading: Spin's own timer example unchanged, every supported field, and a table of
//! malformed manifests with their exact errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use spin_trigger_host::app::{
    BuildStep, FileMount, Overlap, RedisConfig, StreamConfig, TimerConfig, TimerPolicy,
    TimerSchedule, Trigger,
};
use spin_trigger_host::manifest;
use spin_trigger_host::variables::Providers;

fn parse(text: &str) -> Result<spin_trigger_host::App, String> {
    manifest::parse(text, Path::new("spin.toml"), Path::new("/app"))
        .map_err(|error| error.to_string())
}

fn timers(app: &spin_trigger_host::App) -> Vec<(&Trigger, &TimerConfig)> {
    app.triggers_of::<TimerConfig>().collect()
}

fn redis_triggers(app: &spin_trigger_host::App) -> Vec<(&Trigger, &RedisConfig)> {
    app.triggers_of::<RedisConfig>().collect()
}

fn stream_triggers(app: &spin_trigger_host::App) -> Vec<(&Trigger, &StreamConfig)> {
    app.triggers_of::<StreamConfig>().collect()
}

const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"app\"\n";

/// A valid manifest with `body` appended after the header and a valid component `c`.
fn with_body(body: &str) -> String {
    format!("{HEADER}{body}")
}

#[test]
fn spins_timer_example_manifest_loads_unchanged() {
    let text = include_str!("fixtures/spin-timer-example.toml");
    let app = parse(text).expect("Spin's own example loads");
    assert_eq!(app.name(), "goodbye");
    let triggers: Vec<(&str, Duration, Duration)> = timers(&app)
        .into_iter()
        .map(|(trigger, timer)| {
            let TimerSchedule::Interval { interval, speedup } = &timer.schedule else {
                panic!("an interval timer: {timer:?}");
            };
            assert_eq!(*speedup, 2.0);
            (
                trigger.component.as_str(),
                *interval,
                timer.effective_interval().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        triggers,
        [
            ("three", Duration::from_secs(6), Duration::from_secs(3)),
            ("five", Duration::from_secs(10), Duration::from_secs(5)),
        ]
    );
    let three = &app.components()["three"];
    assert_eq!(
        three.source,
        PathBuf::from("/app/target/wasm32-wasip2/release/timer_app_example.wasm")
    );
    assert_eq!(
        three.build,
        Some(BuildStep {
            commands: vec!["cargo build --target wasm32-wasip2 --release".into()],
            workdir: PathBuf::from("/app/"),
        })
    );
    let resolved = app.resolve_variables(&Providers::default()).unwrap();
    assert_eq!(resolved.components["three"]["message"], "Fizz");
    assert_eq!(resolved.components["five"]["message"], "Buzz");
}

#[test]
fn every_supported_field_loads_with_spins_meaning() {
    let app = parse(
        r#"spin_manifest_version = 2

[application]
name = "full"
version = "1.2.3"
authors = ["A <a@example.com>"]
description = "every field"

[application.trigger.timer]
speedup = 0.5

[application.trigger.redis]
address = "redis://{{ redis_host }}:6379"

[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }
redis_host = { default = "127.0.0.1" }
queue = { default = "jobs" }

[[trigger.redis]]
component = "worker"
channel = "{{ queue }}.*"

[[trigger.redis]]
id = "audit"
component = "worker"
channel = "audit"
address = "rediss://audit.example.com:6380"
max_in_flight = 8

[[trigger.timer]]
id = "fast"
component = "worker"
interval = "250ms"

[[trigger.timer]]
component = { source = "inline.wasm", variables = { who = "inline" } }
interval_secs = 2

[component.worker]
source = "worker.wasm"
description = "does work"
allowed_outbound_hosts = ["redis://127.0.0.1:6379", "redis://{{ redis_host }}"]
environment = { MODE = "test" }
files = [{ source = "assets", destination = "/assets" }, "static/**/*"]
exclude_files = ["static/drafts/**"]
[component.worker.variables]
message = "{{ greeting }}, {{ token }}!"
plain = "literal"
[component.worker.build]
command = ["cargo build --release", "echo done"]
workdir = "worker"
watch = ["src/**/*.rs"]
"#,
    )
    .expect("loads");
    let timers = timers(&app);
    assert_eq!(
        timers[0].1.schedule,
        TimerSchedule::Interval {
            interval: Duration::from_millis(250),
            speedup: 0.5
        }
    );
    assert_eq!(timers[0].0.id, "fast");
    assert_eq!(
        timers[0].1.effective_interval(),
        Some(Duration::from_millis(500))
    );
    // As Spin names them: a trigger with an inline component is `<type>-trigger<N>`, and
    // its component `<trigger id>-component`.
    assert_eq!(timers[1].0.id, "timer-trigger1");
    assert_eq!(timers[1].0.component, "timer-trigger1-component");
    assert_eq!(
        app.components()["timer-trigger1-component"].source,
        PathBuf::from("/app/inline.wasm")
    );

    let worker = &app.components()["worker"];
    assert_eq!(worker.environment["MODE"], "test");
    let allowed: Vec<String> = worker
        .allowed_outbound_hosts
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        allowed,
        ["redis://127.0.0.1:6379", "redis://{{ redis_host }}"]
    );
    assert_eq!(
        worker.files,
        [
            FileMount::Path {
                host_path: PathBuf::from("/app/assets"),
                guest_path: "/assets".into()
            },
            FileMount::Glob {
                base_dir: PathBuf::from("/app"),
                pattern: "static/**/*".into()
            }
        ]
    );
    assert_eq!(worker.exclude_files, ["static/drafts/**"]);
    assert_eq!(
        worker.build,
        Some(BuildStep {
            commands: vec!["cargo build --release".into(), "echo done".into()],
            workdir: PathBuf::from("/app/worker"),
        })
    );
    assert!(app.variables()["token"].required && app.variables()["token"].secret);

    let redis = redis_triggers(&app);
    assert_eq!(redis.len(), 2);
    let ((jobs_trigger, jobs), (audit_trigger, audit)) = (redis[0], redis[1]);
    assert_eq!(
        (
            jobs_trigger.id.as_str(),
            jobs_trigger.component.as_str(),
            jobs.max_in_flight
        ),
        ("worker-redis-trigger", "worker", 1)
    );
    assert_eq!(jobs.channel.to_string(), "{{ queue }}.*");
    assert_eq!(jobs.address.to_string(), "redis://{{ redis_host }}:6379");
    assert_eq!(
        (audit_trigger.id.as_str(), audit.max_in_flight),
        ("audit", 8)
    );
    assert_eq!(audit.address.to_string(), "rediss://audit.example.com:6380");

    let mut providers = Providers::default();
    providers.cli = [("token".to_owned(), "t0ken".to_owned())].into();
    let resolved = app.resolve_variables(&providers).unwrap();
    assert_eq!(resolved.components["worker"]["message"], "hi, t0ken!");
    assert_eq!(resolved.components["worker"]["plain"], "literal");
    assert_eq!(
        resolved.components["timer-trigger1-component"]["who"],
        "inline"
    );
    assert_eq!(resolved.render(&jobs.channel).unwrap(), "jobs.*");
    assert_eq!(
        resolved.render(&jobs.address).unwrap(),
        "redis://127.0.0.1:6379"
    );
}

#[test]
fn redis_stream_triggers_load_every_field_and_their_defaults() {
    let app = parse(&with_body(
        r#"[variables]
queue = { default = "jobs" }
[application.trigger.redis-stream]
address = "redis://127.0.0.1:6379"
[[trigger.redis-stream]]
component = "c"
stream = "{{ queue }}"
[[trigger.redis-stream]]
id = "audit"
component = "c"
stream = "audit"
address = "redis://127.0.0.1:6380"
group = "auditors"
consumer = "auditor-{{ queue }}"
max_in_flight = 8
max_attempts = 2
dead_letter = "audit.failed"
claim_idle = "1m 30s"
retry_backoff = "10s"
[component.c]
source = "c.wasm"
"#,
    ))
    .unwrap();
    let streams = stream_triggers(&app);
    let ((jobs_trigger, jobs), (_, audit)) = (streams[0], streams[1]);
    assert_eq!(jobs_trigger.id, "c-redis-stream-trigger");
    assert_eq!(jobs.stream.to_string(), "{{ queue }}");
    assert_eq!(jobs.address.to_string(), "redis://127.0.0.1:6379");
    assert_eq!(
        (
            jobs.group.as_ref(),
            jobs.consumer.as_ref(),
            jobs.dead_letter.as_ref()
        ),
        (None, None, None),
        "defaults: the app name, host name and pid, `<stream>.dead`"
    );
    assert_eq!(
        (jobs.max_in_flight, jobs.max_attempts, jobs.claim_idle),
        (1, 5, Duration::from_secs(30))
    );
    assert_eq!(
        (jobs.retry_backoff, jobs.max_retry_backoff),
        (Duration::from_millis(100), Duration::from_secs(5)),
        "the host's default backoff: 100 ms doubling to 5 s"
    );
    assert_eq!(audit.address.to_string(), "redis://127.0.0.1:6380");
    assert_eq!(audit.group.as_ref().unwrap().to_string(), "auditors");
    assert_eq!(
        audit.consumer.as_ref().unwrap().to_string(),
        "auditor-{{ queue }}"
    );
    assert_eq!(
        audit.dead_letter.as_ref().unwrap().to_string(),
        "audit.failed"
    );
    assert_eq!(
        (audit.max_in_flight, audit.max_attempts, audit.claim_idle),
        (8, 2, Duration::from_secs(90))
    );
    assert_eq!(
        (audit.retry_backoff, audit.max_retry_backoff),
        (Duration::from_secs(10), Duration::from_secs(10)),
        "a first wait past the default longest is also the longest"
    );
    assert_eq!(app.max_live_instances(), 9);
    assert_eq!(app.triggers().len(), 2, "no triggers of other types");
}

#[test]
fn every_trigger_type_takes_a_handler_timeout_a_memory_cap_and_a_table_cap() {
    let app = parse(&with_body(
        r#"[application.trigger.redis]
address = "redis://127.0.0.1:6379"
[[trigger.timer]]
component = "c"
interval_secs = 1
handler_timeout = "1m"
[[trigger.redis]]
component = "c"
channel = "jobs"
max_memory = "64MiB"
[[trigger.redis-stream]]
component = "c"
stream = "jobs"
address = "redis://127.0.0.1:6379"
handler_timeout = "250ms"
max_memory = "1GiB"
max_table_elements = 5000
[component.c]
source = "c.wasm"
"#,
    ))
    .unwrap();
    let limits: Vec<(&str, Option<Duration>, Option<usize>)> = app
        .triggers()
        .iter()
        .map(|trigger| {
            (
                trigger.config.type_name(),
                trigger.limits.timeout,
                trigger.limits.max_memory,
            )
        })
        .collect();
    assert_eq!(
        limits,
        [
            ("redis", None, Some(64 << 20)),
            (
                "redis-stream",
                Some(Duration::from_millis(250)),
                Some(1 << 30)
            ),
            ("timer", Some(Duration::from_secs(60)), None),
        ]
    );
}

#[test]
fn variable_values_come_from_the_command_line_then_the_environment_then_the_default() {
    let app = parse(&with_body(
        r#"[variables]
a = { default = "default-a" }
b = { default = "default-b" }
c = { default = "default-c" }
"#,
    ))
    .unwrap();
    let mut providers = Providers::default();
    providers.cli = [("a".to_owned(), "cli-a".to_owned())].into();
    providers.env = [
        ("SPIN_VARIABLE_A".to_owned(), "env-a".to_owned()),
        ("SPIN_VARIABLE_B".to_owned(), "env-b".to_owned()),
    ]
    .into();
    let resolved = app.resolve_variables(&providers).unwrap();
    assert_eq!(resolved.application["a"], "cli-a");
    assert_eq!(resolved.application["b"], "env-b");
    assert_eq!(resolved.application["c"], "default-c");
}

#[test]
fn a_required_variable_without_a_value_is_a_start_up_error() {
    let app = parse(&with_body("[variables]\ntoken = { required = true }\n")).unwrap();
    let error = app.resolve_variables(&Providers::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "variable `token` is required but has no value: pass `--variable token=<value>` or set SPIN_VARIABLE_TOKEN"
    );
}

/// Each malformed manifest and the exact error the loader gives, naming file, table and field.
const MALFORMED: &[(&str, &str, &str)] = &[
    (
        "syntax error",
        "spin_manifest_version = 2\n[application\nname = \"x\"\n",
        "spin.toml: syntax: unclosed table, expected `]` (line 2)",
    ),
    (
        "manifest version 1",
        "spin_manifest_version = 1\n[application]\nname = \"x\"\n",
        "spin.toml: spin_manifest_version: version 1 is not supported: this host reads manifest version 2 (`spin_manifest_version = 2`)",
    ),
    (
        "missing application name",
        "spin_manifest_version = 2\n[application]\nversion = \"1\"\n",
        "spin.toml: application: missing field `name` (line 2)",
    ),
    (
        "unknown top-level field",
        "spin_manifest_version = 2\nextra = 1\n[application]\nname = \"x\"\n",
        "spin.toml: extra: unknown field `extra`, expected one of `spin_manifest_version`, `application`, `variables`, `trigger`, `component` (line 2)",
    ),
    (
        "unknown component field",
        "[component.c]\nsource = \"c.wasm\"\nsoruce = \"typo\"\n",
        "spin.toml: component.c.soruce: unknown field `soruce`, expected one of `source`, `description`, `variables`, `environment`, `allowed_outbound_hosts`, `files`, `exclude_files`, `build`, `allowed_http_hosts`, `key_value_stores`, `sqlite_databases`, `ai_models`, `targets`, `tool`, `dependencies_inherit_configuration`, `dependencies`, `profile` (line 6)",
    ),
    (
        "unsupported trigger type",
        "[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n",
        "spin.toml: trigger.http: this host runs no `http` triggers; it runs: timer, redis, redis-stream (`up --skip-unsupported-triggers` runs the rest of the app and leaves these out)",
    ),
    (
        "unknown timer trigger field",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nintreval = \"1s\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].intreval: unknown field `intreval`, expected one of `interval_secs`, `interval`, `cron`, `time_zone`, `coordination`, `overlap`, `max_in_flight`, `catch_up`, `jitter`, `max_attempts`, `retry_backoff`, `max_per_second`, `start_at`, `end_at` (line 7)",
    ),
    (
        "trigger dependencies (Spin 4.1's middleware), which this host does not compose",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\ndependencies.middleware = [{ path = \"auth.wasm\" }]\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].dependencies: trigger dependencies (middleware) are not composed by this host yet; remove them to run this trigger here",
    ),
    (
        "trigger names an undefined component",
        "[[trigger.timer]]\ncomponent = \"nope\"\ninterval_secs = 1\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].component: no component `nope`: define [component.nope] or use one of: c",
    ),
    (
        "zero interval",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 0\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].interval_secs: the interval must be at least 1 second; for less, use `interval = \"250ms\"`",
    ),
    (
        "negative interval",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = -5\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].interval_secs: invalid value: integer `-5`, expected u64 (line 6)",
    ),
    (
        "interval that is not a duration",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval = \"soon\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].interval: \"soon\" is not a duration (expected number at 0): write e.g. \"250ms\", \"2s\" or \"1m 30s\"",
    ),
    (
        "both interval forms",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval = \"1s\"\ninterval_secs = 1\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0]: set one schedule: `cron`, `interval_secs` or `interval`, not several",
    ),
    (
        "no interval",
        "[[trigger.timer]]\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0]: missing the schedule: add `interval_secs = 5`, `interval = \"250ms\"` or `cron = \"0 */5 * * * *\"`",
    ),
    (
        "cron and an interval",
        "[[trigger.timer]]\ncomponent = \"c\"\ncron = \"* * * * *\"\ninterval_secs = 1\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0]: set one schedule: `cron`, `interval_secs` or `interval`, not several",
    ),
    (
        "cron hour out of range",
        "[[trigger.timer]]\ncomponent = \"c\"\ncron = \"0 0 25 * * *\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].cron: field 3 (hour) \"25\" is out of range 0-23",
    ),
    (
        "unknown time zone",
        "[[trigger.timer]]\ncomponent = \"c\"\ncron = \"0 0 9 * * *\"\ntime_zone = \"Mars/Olympus\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].time_zone: \"Mars/Olympus\" is not a time zone of the IANA database: write a name such as \"Europe/Paris\", \"America/New_York\" or \"UTC\"",
    ),
    (
        "time zone without cron",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\ntime_zone = \"UTC\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].time_zone: a time zone applies to a `cron` schedule only: add `cron = \"0 0 9 * * *\"` or remove `time_zone`",
    ),
    (
        "unknown overlap policy",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\noverlap = \"queue\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].overlap: \"queue\" is not an overlap policy: write \"skip\" (the default), \"buffer_one\" or \"allow\"",
    ),
    (
        "max_in_flight without overlap = allow",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nmax_in_flight = 3\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].max_in_flight: applies to `overlap = \"allow\"` only, since `skip` and `buffer_one` run one tick at a time: add `overlap = \"allow\"` or remove `max_in_flight`",
    ),
    (
        "allow with no runs in flight",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\noverlap = \"allow\"\nmax_in_flight = 0\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].max_in_flight: must be at least 1 (the default with `overlap = \"allow\"` is 4)",
    ),
    (
        "jitter as long as the interval",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval = \"1s\"\njitter = \"1s\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].jitter: 1s is not shorter than the time between two ticks (1s), so ticks could fire out of order: shorten `jitter`",
    ),
    (
        "jitter as long as a cron schedule's shortest gap",
        "[[trigger.timer]]\ncomponent = \"c\"\ncron = \"*/2 * * * * *\"\njitter = \"3s\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].jitter: 3s is not shorter than the time between two ticks (2s), so ticks could fire out of order: shorten `jitter`",
    ),
    (
        "catch_up holding too many ticks",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval = \"10ms\"\ncatch_up = \"1h\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].catch_up: 1h holds more than 10000 ticks 10ms apart, each run one at a time at start: shorten `catch_up` to at most 1m 40s",
    ),
    (
        "retry_backoff without retries",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nretry_backoff = \"5s\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].retry_backoff: applies when a failed tick is tried again: add `max_attempts = 3` or remove `retry_backoff`",
    ),
    (
        "no attempt at all",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nmax_attempts = 0\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].max_attempts: must be at least 1 (1, the default: no retry)",
    ),
    (
        "catch_up that is not a duration",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\ncatch_up = \"all\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].catch_up: \"all\" is not a duration (expected number at 0): write e.g. \"10m\" or \"1h\"",
    ),
    (
        "start_at that is not a time",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nstart_at = \"tomorrow\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].start_at: \"tomorrow\" is not an RFC 3339 time (premature end of input): write e.g. \"2027-01-01T09:00:00Z\" or \"2027-01-01T10:00:00+01:00\"",
    ),
    (
        "end_at before start_at",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nstart_at = \"2027-01-02T00:00:00Z\"\nend_at = \"2027-01-01T00:00:00Z\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].end_at: is not after `start_at`, so the timer would never fire: move `end_at` later",
    ),
    (
        "max_per_second on a timer that runs one tick at a time",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nmax_per_second = 5\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].max_per_second: applies to `overlap = \"allow\"` only, since `skip` and `buffer_one` run one tick at a time: add `overlap = \"allow\"` or remove `max_per_second`",
    ),
    (
        "a rate that is not positive",
        "[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"s\"\naddress = \"redis://localhost\"\nmax_per_second = 0\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].max_per_second: 0 is not a positive number: `max_per_second = 50` starts at most 50 events a second",
    ),
    (
        "a stream's longest retry wait shorter than its first",
        "[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"s\"\naddress = \"redis://localhost\"\nretry_backoff = \"2s\"\nmax_retry_backoff = \"1s\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].max_retry_backoff: 1s is shorter than `retry_backoff` (2s): the longest wait is at least the first",
    ),
    (
        "a stream's longest retry wait shorter than the default first",
        "[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"s\"\naddress = \"redis://localhost\"\nmax_retry_backoff = \"50ms\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].max_retry_backoff: 50ms is shorter than `retry_backoff` (100ms, its default): the longest wait is at least the first",
    ),
    (
        "a stream's retry wait without retries",
        "[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"s\"\naddress = \"redis://localhost\"\nmax_attempts = 1\nretry_backoff = \"2s\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].retry_backoff: applies when a failed entry is tried again: raise `max_attempts` or remove `retry_backoff`",
    ),
    (
        "a shared rate without a rate",
        "[[trigger.redis]]\ncomponent = \"c\"\nchannel = \"s\"\naddress = \"redis://localhost\"\nmax_per_second_shared = true\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis[0].max_per_second_shared: applies to a `max_per_second`: add `max_per_second = 50` or remove it",
    ),
    (
        "cron with speedup",
        "[application.trigger.timer]\nspeedup = 2\n[[trigger.timer]]\ncomponent = \"c\"\ncron = \"0 0 9 * * *\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].cron: `speedup` (2, in [application.trigger.timer]) applies to intervals only; a cron schedule fires at the times it names: remove `speedup` or use `interval`",
    ),
    (
        "non-positive speedup",
        "[application.trigger.timer]\nspeedup = 0\n",
        "spin.toml: application.trigger.timer.speedup: 0 is not a positive number: `speedup = 2` runs timers twice as often",
    ),
    (
        "component variable refers to an undeclared application variable",
        "[component.c]\nsource = \"c.wasm\"\nvariables = { message = \"{{ greeting }}\" }\n",
        "spin.toml: component.c.variables.message: refers to `{{ greeting }}`, which [variables] does not declare; add `greeting = { default = \"...\" }` there",
    ),
    (
        "unclosed expression",
        "[variables]\ngreeting = { default = \"hi\" }\n[component.c]\nsource = \"c.wasm\"\nvariables = { message = \"{{ greeting\" }\n",
        "spin.toml: component.c.variables.message: unclosed `{{` in \"{{ greeting\": write `{{ variable_name }}`",
    ),
    (
        "invalid variable name",
        "[variables]\nmy-var = { default = \"x\" }\n",
        "spin.toml: variables.my-var: invalid variable name `my-var`: use lowercase letters, digits and `_`, starting with a letter",
    ),
    (
        "variable with neither default nor required",
        "[variables]\nx = { secret = true }\n",
        "spin.toml: variables.x: a variable needs either `default = \"...\"` or `required = true`",
    ),
    (
        "variable both required and defaulted",
        "[variables]\nx = { default = \"a\", required = true }\n",
        "spin.toml: variables.x: a variable cannot be both `required = true` and have a `default`; keep one",
    ),
    (
        "unknown variable field",
        "[variables]\nx = { defualt = \"a\" }\n",
        "spin.toml: variables.x.defualt: unknown field `defualt`, expected one of `description`, `default`, `required`, `secret` (line 5)",
    ),
    (
        "invalid component id",
        "[component.My_Component]\nsource = \"c.wasm\"\n",
        "spin.toml: component.My_Component: invalid component id `My_Component`: use lowercase letters and digits in words joined by `-`, like `my-component`",
    ),
    (
        "remote component source",
        "[component.c]\nsource = \"https://example.com/c.wasm\"\n",
        "spin.toml: component.c.source: \"https://example.com/c.wasm\" is a URL: this host runs local components; build it and give the path of the .wasm file",
    ),
    (
        "outbound host without a scheme",
        "[component.c]\nsource = \"c.wasm\"\nallowed_outbound_hosts = [\"localhost:6379\"]\n",
        "spin.toml: component.c.allowed_outbound_hosts[0]: \"localhost:6379\" has no scheme: write e.g. \"redis://localhost:6379\"",
    ),
    (
        "Redis trigger without an address",
        "[[trigger.redis]]\ncomponent = \"c\"\nchannel = \"jobs\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis[0]: no Redis address: set `address` here or in [application.trigger.redis]",
    ),
    (
        "Redis trigger without a channel",
        "[application.trigger.redis]\naddress = \"redis://localhost\"\n[[trigger.redis]]\ncomponent = \"c\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis[0]: missing field `channel` (line 6)",
    ),
    (
        "empty Redis channel",
        "[application.trigger.redis]\naddress = \"redis://localhost\"\n[[trigger.redis]]\ncomponent = \"c\"\nchannel = \" \"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis[0].channel: the channel is empty: write e.g. `channel = \"orders\"` or a pattern like `\"orders.*\"`",
    ),
    (
        "Redis channel refers to an undeclared variable",
        "[application.trigger.redis]\naddress = \"redis://localhost\"\n[[trigger.redis]]\ncomponent = \"c\"\nchannel = \"{{ queue }}\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis[0].channel: refers to `{{ queue }}`, which [variables] does not declare; add `queue = { default = \"...\" }` there",
    ),
    (
        "zero Redis concurrency",
        "[application.trigger.redis]\naddress = \"redis://localhost\"\n[[trigger.redis]]\ncomponent = \"c\"\nchannel = \"jobs\"\nmax_in_flight = 0\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis[0].max_in_flight: must be at least 1 (the default, which keeps publish order)",
    ),
    (
        "unknown Redis application setting",
        "[application.trigger.redis]\nadress = \"redis://localhost\"\n",
        "spin.toml: application.trigger.redis.adress: unknown field `adress`, expected `address` (line 5)",
    ),
    (
        "Redis stream trigger without an address",
        "[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"jobs\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0]: no Redis address: set `address` here or in [application.trigger.redis-stream]",
    ),
    (
        "Redis stream trigger with an unknown field",
        "[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"jobs\"\nchannel = \"jobs\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].channel: unknown field `channel`, expected one of `stream`, `address`, `group`, `consumer`, `max_in_flight`, `max_attempts`, `dead_letter`, `claim_idle`, `batch_size`, `batch_wait`, `max_per_second`, `max_per_second_shared`, `retry_backoff`, `max_retry_backoff` (line 7)",
    ),
    (
        "Redis stream trigger with zero attempts",
        "[application.trigger.redis-stream]\naddress = \"redis://localhost\"\n[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"jobs\"\nmax_attempts = 0\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].max_attempts: must be at least 1 (1: no retry; the default is 5)",
    ),
    (
        "Redis stream trigger with a claim_idle that is not a duration",
        "[application.trigger.redis-stream]\naddress = \"redis://localhost\"\n[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \"jobs\"\nclaim_idle = \"soon\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].claim_idle: \"soon\" is not a duration (expected number at 0): write e.g. \"30s\" or \"2m\"",
    ),
    (
        "Redis stream trigger with an empty stream",
        "[application.trigger.redis-stream]\naddress = \"redis://localhost\"\n[[trigger.redis-stream]]\ncomponent = \"c\"\nstream = \" \"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.redis-stream[0].stream: the stream is empty: write e.g. `stream = \"orders\"`",
    ),
    (
        "handler timeout that is not a duration",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nhandler_timeout = \"forever\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].handler_timeout: \"forever\" is not a duration (expected number at 0): write e.g. \"30s\" or \"500ms\"",
    ),
    (
        "memory cap that is not a size",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nmax_memory = \"lots\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].max_memory: \"lots\" is not a memory size: write e.g. \"64MiB\", \"1GiB\" or \"512MB\"",
    ),
    (
        "memory cap under one page",
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\nmax_memory = \"1KiB\"\n[component.c]\nsource = \"c.wasm\"\n",
        "spin.toml: trigger.timer[0].max_memory: \"1KiB\" is less than one WebAssembly page (64KiB): give a component room to start",
    ),
    (
        "files glob leaving the app directory",
        "[component.c]\nsource = \"c.wasm\"\nfiles = [\"../secrets/*\"]\n",
        "spin.toml: component.c.files[0]: \"../secrets/*\" leaves the app directory: use a pattern relative to it, like \"static/**/*\"",
    ),
    (
        "files destination that is not absolute",
        "[component.c]\nsource = \"c.wasm\"\nfiles = [{ source = \"assets\", destination = \"assets\" }]\n",
        "spin.toml: component.c.files[0].destination: \"assets\" is not absolute: write e.g. \"/assets\"",
    ),
    (
        "wrong type for a field",
        "[component.c]\nsource = 42\n",
        "spin.toml: component.c.source: invalid type: integer `42`, expected a string (line 5)",
    ),
];

#[test]
fn malformed_manifests_fail_with_errors_naming_file_table_and_field() {
    assert!(MALFORMED.len() >= 12);
    let mut mismatches = Vec::new();
    for (case, body, expected) in MALFORMED {
        let text = if body.starts_with("spin_manifest_version") {
            body.to_string()
        } else {
            with_body(body)
        };
        match parse(&text) {
            Ok(_) => mismatches.push(format!("{case}: loaded, expected an error")),
            Err(actual) if actual != *expected => mismatches.push(format!(
                "{case}:\n  expected: {expected:?}\n  actual:   {actual:?}"
            )),
            Err(_) => {}
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn a_missing_manifest_file_is_an_error_naming_it() {
    let error = manifest::load("/nonexistent/spin.toml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "/nonexistent/spin.toml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn every_field_spin_accepts_loads_and_the_ones_the_host_will_use_are_kept() {
    let app = parse(&with_body(
        r#"version = "1.0.0"
targets = ["spin-up:3.3"]
[application.tool.spin-test]
source = "tests.wasm"
[variables]
token = { required = true, secret = true, description = "the API token" }
[[trigger.timer]]
component = "c"
interval_secs = 1
[component.c]
source = "c.wasm"
allowed_outbound_hosts = ["redis://127.0.0.1:6379"]
allowed_http_hosts = ["api.example.com:8080", "self", "https://other.example.com"]
key_value_stores = ["default", "cache"]
sqlite_databases = ["default"]
ai_models = ["llama2-chat"]
targets = ["spin-up:3.3"]
dependencies_inherit_configuration = true
[component.c.dependencies]
"my:dep/import" = { path = "dep.wasm" }
[component.c.tool.spin-test]
source = "tests/c.wasm"
[component.c.profile.debug]
source = "debug/c.wasm"
"#,
    ))
    .expect("every field Spin 4.0.2 accepts loads");
    let component = &app.components()["c"];
    assert_eq!(component.key_value_stores, ["default", "cache"]);
    assert_eq!(component.sqlite_databases, ["default"]);
    let hosts: Vec<String> = component
        .allowed_outbound_hosts
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        hosts,
        [
            "redis://127.0.0.1:6379",
            "http://api.example.com:8080",
            "https://api.example.com:8080",
            "http://other.example.com",
            "https://other.example.com",
        ],
        "allowed_http_hosts converted as Spin converts it; `self` means nothing here"
    );
    // Spin still refuses a field it does not know, and so does the host.
    let error = parse(&with_body(
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\n[component.c]\nsource = \"c.wasm\"\nkey_value_store = [\"default\"]\n",
    ))
    .unwrap_err();
    assert!(
        error
            .starts_with("spin.toml: component.c.key_value_store: unknown field `key_value_store`"),
        "{error}"
    );
    let error = parse(&with_body(
        "[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\n[component.c]\nsource = \"c.wasm\"\nallowed_http_hosts = [\"https://example.com/path\"]\n",
    ))
    .unwrap_err();
    assert_eq!(
        error,
        "spin.toml: component.c.allowed_http_hosts[0]: \"https://example.com/path\" has a path: give a host and optional port only"
    );
}

#[test]
fn skip_unsupported_triggers_runs_the_rest_and_leaves_http_out() {
    let text = with_body(
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n[[trigger.timer]]\ncomponent = \"c\"\ninterval_secs = 1\n[component.c]\nsource = \"c.wasm\"\n[component.web]\nsource = \"web.wasm\"\n",
    );
    assert!(parse(&text).is_err(), "refused by default");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spin.toml");
    std::fs::write(&file, &text).unwrap();
    let options = manifest::LoadOptions {
        skip_unsupported_triggers: true,
    };
    let app = manifest::load_with(&file, &options).unwrap();
    assert_eq!(app.triggers().len(), 1);
    assert_eq!(timers(&app)[0].0.component, "c");
}

/// A timer's policies load as written; left out, each is its default, which is how a timer
/// behaved before they existed.
#[test]
fn timer_policies_load_with_their_defaults() {
    let app = parse(
        r#"spin_manifest_version = 2
[application]
name = "policies"
[[trigger.timer]]
id = "plain"
component = "c"
interval_secs = 60
[[trigger.timer]]
id = "every-policy"
component = "c"
interval_secs = 60
overlap = "allow"
max_in_flight = 3
catch_up = "1h"
jitter = "5s"
max_attempts = 4
retry_backoff = "2s"
start_at = "2027-01-01T09:00:00+01:00"
end_at = "2027-06-30T00:00:00Z"
[[trigger.timer]]
id = "buffered"
component = "c"
cron = "0 * * * * *"
overlap = "buffer_one"
max_attempts = 2
[component.c]
source = "c.wasm"
"#,
    )
    .expect("loads");
    let timers = timers(&app);
    let policy = |index: usize| &timers[index].1.policy;
    assert_eq!(*policy(0), TimerPolicy::default());
    assert_eq!(policy(0).overlap, Overlap::Skip);
    assert_eq!(policy(0).max_attempts, 1);
    assert_eq!(policy(0).catch_up, None);
    assert_eq!(policy(0).jitter, Duration::ZERO);
    assert_eq!((policy(0).start_at, policy(0).end_at), (None, None));
    let all = policy(1);
    assert_eq!(all.overlap, Overlap::Allow { max_in_flight: 3 });
    assert_eq!(all.catch_up, Some(Duration::from_secs(3600)));
    assert_eq!(all.jitter, Duration::from_secs(5));
    assert_eq!(all.max_attempts, 4);
    assert_eq!(
        [1, 2, 3, 40].map(|attempt| all.backoff_after(attempt)),
        [2, 4, 8, 3600].map(Duration::from_secs),
        "doubling after each failed attempt, at most an hour"
    );
    let at = |secs: u64| std::time::UNIX_EPOCH + Duration::from_secs(secs);
    // 2027-01-01T08:00:00Z and 2027-06-30T00:00:00Z.
    assert_eq!(all.start_at, Some(at(1_798_790_400)));
    assert_eq!(all.end_at, Some(at(1_814_313_600)));
    assert!(!all.active_at(at(1_798_790_399)));
    assert!(all.active_at(at(1_798_790_400)) && all.active_at(at(1_814_313_600)));
    assert!(!all.active_at(at(1_814_313_601)));
    assert_eq!(policy(2).overlap, Overlap::BufferOne);
    assert_eq!(policy(2).max_attempts, 2);
    assert_eq!(policy(2).retry_backoff, Duration::from_secs(1));
}

/// `coordination` in `[application.trigger.timer]` applies to every timer; a trigger's own
/// wins; `{{ var }}` is kept for rendering; a cron timer carries its expression and zone.
#[test]
fn timers_take_coordination_from_the_application_or_their_own_and_cron_schedules() {
    let app = parse(
        r#"spin_manifest_version = 2
[application]
name = "coordinated"
[application.trigger.timer]
coordination = "redis://{{ redis_host }}:6379"
[variables]
redis_host = { default = "127.0.0.1" }
[[trigger.timer]]
id = "shared"
component = "c"
interval_secs = 5
[[trigger.timer]]
id = "own"
component = "c"
cron = "0 30 9 * * MON-FRI"
time_zone = "Europe/Paris"
coordination = "rediss://elsewhere:6380"
[component.c]
source = "c.wasm"
"#,
    )
    .expect("loads");
    let values =
        std::collections::BTreeMap::from([("redis_host".to_owned(), "10.0.0.7".to_owned())]);
    let rendered: Vec<(String, Option<String>, String)> = timers(&app)
        .into_iter()
        .map(|(trigger, timer)| {
            (
                trigger.id.clone(),
                timer
                    .coordination
                    .as_ref()
                    .map(|template| template.render(&values).unwrap()),
                timer.describe(),
            )
        })
        .collect();
    assert_eq!(
        rendered,
        [
            (
                "shared".to_owned(),
                Some("redis://10.0.0.7:6379".to_owned()),
                "every 5s".to_owned()
            ),
            (
                "own".to_owned(),
                Some("rediss://elsewhere:6380".to_owned()),
                "cron 0 30 9 * * MON-FRI in Europe/Paris".to_owned()
            ),
        ]
    );
}
